"""Invoice use cases: `requests` (what is invoiceable, a tenant's request), `setup` (an
organisation's tax items and seller profile)."""
