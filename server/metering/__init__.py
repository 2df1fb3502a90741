"""Metering: meters, readings, commands, alarms and automatic relay control.

Pure decision modules (no database, no clock): `ingest` (reading rules), `alarms` (levels
and relay decisions), `nocut` (no-cut windows), `forecast` (days left).
"""
