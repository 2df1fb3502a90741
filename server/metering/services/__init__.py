"""Metering services (use cases over the database); `server.metering.service` is the facade."""
