"""The tenant context's services; windows import the modules (`from server.tenant.service
import views`), nothing is re-exported here."""
