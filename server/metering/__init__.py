"""Metering: meters, readings, commands, alarms and automatic relay control.

Pure decision modules (no database, no clock): `reading` (the register reading every layer
passes on, from the drivers to billing, and `advance`, the one roll-over rule), `ingest`
(reading rules), `alarms` (levels and relay decisions), `nocut` (no-cut windows), `forecast`
(days left); `vocabulary` holds the words the rows and the meter drivers share (kinds,
protocols, relay states, money register).
Billing the readings is billing's work (`server.billing.pipeline`), not metering's.
"""
