"""Modbus TCP / RTU-over-TCP meters: register maps as data and one driver for all models."""
