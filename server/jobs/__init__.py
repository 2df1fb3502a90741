"""Durable background jobs: a `job` table claimed with a lease (see docs/jobs.md)."""
