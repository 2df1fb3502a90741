"""The tenant API's windows: `accounts` (accounts, usage, records, recharge, orders) and
`binding` (sites, SMS and QR binding, unbinding, the tenant's own settings). Login and
logout live in server.accounts.routes.auth; `server.accounts.routes.guard` authenticates."""
