"""The tenant API's login and logout (`auth`) and the bearer guard (`guard`); what a tenant
sees and binding live in server.tenant.routes, above the contexts it composes."""
