"""Finance (财务管理, issue #15): the clerk's read side of the money — the order overview,
income by period, channel and composition, the three-way reconciliation — and the counter
pages' use cases over the payments services. Reads the ledger; writes money only through
`server.payments.service` and `server.ledger` (one definition of balance)."""
