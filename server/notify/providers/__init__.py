"""Clients of the messaging platforms, each written against the provider's published API and
signing; they take plain values and raise `SendError` (temporary or permanent, with the
provider's own code)."""
