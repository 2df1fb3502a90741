"""Topic names of the gateway contract. `prefix` lets tests and tenants share a broker."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TopicKind(StrEnum):
    DATA = "up/data"
    ACK = "up/ack"
    CMD = "down/cmd"
    STATUS = "status"


class BadTopic(ValueError):
    """A topic outside the contract."""


def topic(gw: str, kind: TopicKind, prefix: str = "") -> str:
    """`{prefix}gw/{gw}/{kind}`; gateway ids may not contain MQTT wildcards or '/'."""
    if not gw or any(c in gw for c in "/+#"):
        raise BadTopic(f"bad gateway id {gw!r}")
    return f"{prefix}gw/{gw}/{kind}"


def subscription(kind: TopicKind, prefix: str = "") -> str:
    """Wildcard over every gateway, e.g. `gw/+/up/data`."""
    return f"{prefix}gw/+/{kind}"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    gw: str
    kind: TopicKind


def parse_topic(name: str, prefix: str = "") -> ParsedTopic:
    """Gateway id and kind from a topic name; raises BadTopic for anything else."""
    if not name.startswith(prefix + "gw/"):
        raise BadTopic(name)
    gw, _, rest = name[len(prefix) + 3 :].partition("/")
    try:
        kind = TopicKind(rest)
    except ValueError:
        raise BadTopic(name) from None
    if not gw:
        raise BadTopic(name)
    return ParsedTopic(gw, kind)
