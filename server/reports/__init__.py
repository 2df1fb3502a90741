"""Reports (报表): the numbers staff hand upward, read from the tables the core keeps — daily
usage (`daily_usage`, by reading time), the ledger (by posting time), meters, alarms and
commands — never from raw readings on a request. Pure period arithmetic in `periods`; the
queries in `service/`; admin pages in admin/reports.py, the CLI `shuidian report …`, and the
tenant's own monthly statement under server/tenant/routes."""
