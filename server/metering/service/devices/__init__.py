"""Gateways (buses) and meters as staff set them up in the admin: `gateways` and `meters`."""
