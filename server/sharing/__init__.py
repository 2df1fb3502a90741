"""Sharing (公摊 and 线变损): a site's common accounts and their master meters, the period's
common-area and loss shares charged through the ledger, and the resale compliance statement.
Pure modules: `allocation` (the splits), `losses` (the energy balance), `compliance` (the
statement), `periods`; services in `service/`."""
