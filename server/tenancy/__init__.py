"""Tenancy (开户 / 销户 / 过户): an account's life in a room — opening it on the room's meters
with an opening balance, settling and closing it, handing the room to a new tenant. It
orchestrates the contexts below it (accounts, metering, billing, payments, ledger) and writes
no money itself: the ledger and the payments services do."""
