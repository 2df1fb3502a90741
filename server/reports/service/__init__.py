"""The reports' queries: each report one or a few SQL statements over the scope's sites."""
