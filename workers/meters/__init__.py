"""Meter drivers: per protocol a pure framer, a transport and a driver behind MeterDriver."""
