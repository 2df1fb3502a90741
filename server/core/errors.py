"""One error family for the whole server.

Domain errors know nothing of HTTP; `ShuidianError` carries a status code and a Chinese
message for the user, and one handler (server.core.app) renders every subclass the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ShuidianError(Exception):
    """Base for every error a user may see. `message` is Simplified Chinese."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.context:
            body["detail"] = {k: str(v) for k, v in self.context.items()}
        return body


class ValidationFailed(ShuidianError):
    """Input from outside did not pass validation; nothing was changed."""

    status_code = 422
    code = "validation_failed"


class NotFound(ShuidianError):
    """The object does not exist, or is not visible to the caller (isolation)."""

    status_code = 404
    code = "not_found"


class Conflict(ShuidianError):
    """The request conflicts with the current state (duplicate, wrong status)."""

    status_code = 409
    code = "conflict"


class Forbidden(ShuidianError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class Unauthorized(ShuidianError):
    """No valid credentials."""

    status_code = 401
    code = "unauthorized"


class ConfigError(Exception):
    """A setting is wrong; the message names the setting. Printed as one line by the CLI."""
