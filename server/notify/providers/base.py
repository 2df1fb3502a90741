"""What every channel client takes and raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as a channel sends it."""

    recipient: str
    template: str  # our template key; each provider maps it to its approved template
    params: Mapping[str, Any]
    text: str
    subject: str = ""
    wechat_template_id: str = ""
    wechat_data: Mapping[str, Any] = field(default_factory=dict)
    out_id: str = ""  # our message id, where the provider echoes it (voice OutId)


class SendError(Exception):
    """The provider did not take the message. `temporary`: try again later (busy, rate
    limited, unreachable); otherwise retrying cannot help (bad number, not subscribed,
    template rejected). `code` is the provider's own, kept for the delivery log."""

    def __init__(self, code: str, reason: str, *, temporary: bool) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.temporary = temporary


class Sender(Protocol):
    name: str

    async def send(self, message: Outgoing) -> str:
        """Send; returns the provider's message id, or raises SendError."""
        ...

    async def aclose(self) -> None: ...


def unreachable(provider: str, exc: BaseException) -> SendError:
    """A network failure or timeout: temporary, named after the provider."""
    return SendError(
        f"{provider}.unreachable", f"{type(exc).__name__}: {exc}"[:300], temporary=True
    )
