"""What can go wrong in login and binding, each with the code and status the tenant API's
contract names (docs/tenant-api.md) and a Chinese message for the tenant."""

from __future__ import annotations

from server.core.errors import Conflict, Forbidden, NotFound, ShuidianError


class WechatCodeInvalid(ShuidianError):
    """wx.login's code is unknown, already used or expired (WeChat 40029 / 40163)."""

    status_code = 400
    code = "wechat_code_invalid"


class WechatRateLimited(ShuidianError):
    """WeChat refuses: too many logins of this user this minute (45011)."""

    status_code = 429
    code = "wechat_rate_limited"


class WechatUserBlocked(Forbidden):
    """WeChat flags the user as high-risk and blocks the login (40226)."""

    code = "wechat_user_blocked"


class WechatUnavailable(ShuidianError):
    """WeChat could not be reached or answered with an error of its own (-1, 5xx, timeout)."""

    status_code = 502
    code = "wechat_unavailable"


class AccountNotFound(NotFound):
    """No such account on this site, or not visible to the caller (never confirmed)."""


class NoPhoneOnFile(NotFound):
    """The account has no phone to send the code to: staff must bind it (or add a phone)."""


class TooManyCodes(ShuidianError):
    """The send limits (1 a minute, 10 a day, per phone and per identity) protect the phone's
    owner from being flooded and our SMS budget from being burnt."""

    status_code = 429
    code = "too_many_codes"


class CodeWrong(ShuidianError):
    status_code = 400
    code = "code_wrong"


class CodeExpired(ShuidianError):
    status_code = 400
    code = "code_expired"


class TooManyTries(ShuidianError):
    """At most 5 tries per code: 6 digits must not be guessable by retrying."""

    status_code = 429
    code = "too_many_tries"


class SmsUnavailable(ShuidianError):
    """No SMS channel is configured (production before the notifier's SMS channel exists)."""

    status_code = 503
    code = "sms_unavailable"


class TicketInvalid(ShuidianError):
    """The QR's token is not one we signed (forged, damaged, or not a binding code at all)."""

    status_code = 400
    code = "ticket_invalid"


class TicketExpired(ShuidianError):
    status_code = 400
    code = "ticket_expired"


class TicketUsed(Conflict):
    """A binding QR code binds once."""

    code = "ticket_used"
