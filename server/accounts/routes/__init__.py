"""The tenant API (/api/v1, JSON for the mini-program): `auth` (login, binding, the tenant's
own settings) and `tenant` (the accounts bound to the tenant). `guard` authenticates."""
