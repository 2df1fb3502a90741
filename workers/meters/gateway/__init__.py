"""MQTT gateway contract (Shuidian's own, see docs/gateway-protocol.md): schemas, topics,
the platform-side client and a MeterDriver for one meter behind a gateway."""
