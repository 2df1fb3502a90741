"""A simulated park: meters, meter boxes, water meters and gateways on the real protocols."""
