"""The tenant's window onto the platform (/api/v1, for the mini-program): what a tenant sees
of the accounts bound to them, login and binding, recharge.

A context of its own because it composes the others: accounts (identities, bindings,
sessions), metering (live values, daily usage, available balance), the ledger's statement
and payments' orders. `server.accounts` cannot import metering or payments (metering already
imports accounts), so the composition lives here, above them.
"""
