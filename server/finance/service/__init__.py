"""Finance use cases (see the package docstring); each function takes the caller's `site_ids`
(server.staff.service.scope): nothing outside them is read or touched."""
