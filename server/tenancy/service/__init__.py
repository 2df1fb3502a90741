"""Tenancy services: opening, closing and transfer of accounts (see the package docstring)."""
