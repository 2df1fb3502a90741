"""WeChat's side of the conversation, as its documentation specifies it (消息管理 → 接收普通消息
/ 接收事件推送 / 被动回复用户消息, 消息加解密): the URL check, the signed (and in 安全模式
encrypted) XML that comes in, the XML that goes back.

Every request carries `signature` = SHA-1 of the sorted (token, timestamp, nonce); encrypted
ones also `msg_signature` over the ciphertext, checked by wechatpy's WeChatCrypto before it
decrypts (AES-256-CBC, the appid inside must be ours). A request is refused before the
XML is parsed when it is oversized, unsigned, signed wrongly, too old (a replay) or carries
a DTD (WeChat never sends one: no entity can expand, whatever the parser).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage, TextMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from server.wechat.config import OfficialSettings

MAX_SKEW_S = 300  # a signed request older (or newer) than this is a replay: refused


class Refused(Exception):
    """A request we do not act on: `status` is what WeChat (or an attacker) is answered."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message or event from a follower, as the chatbot needs it."""

    openid: str  # FromUserName: the follower (an openid of the official account)
    account: str  # ToUserName: our account's original id (gh_…)
    kind: str  # "text", "event" or another MsgType (image, voice, …)
    content: str = ""  # text messages
    event: str = ""  # subscribe, unsubscribe, click, scancode_waitmsg, …
    key: str = ""  # EventKey of a menu click
    scan: str = ""  # ScanResult of a scan-code menu button
    msg_id: int = 0  # MsgId (0 for events)
    create_time: int = 0

    @property
    def dedup_key(self) -> str:
        """WeChat's advice: messages by MsgId, events by sender and CreateTime."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.openid}:{self.create_time}:{self.event}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """How the request came: the reply goes back the same way (encrypted or not)."""

    encrypted: bool
    nonce: str
    message: BaseMessage


class Wire:
    """The official account's token and key; one per app."""

    def __init__(self, settings: OfficialSettings) -> None:
        self.settings = settings
        key = settings.aes_key()
        self.crypto = WeChatCrypto(settings.token, key, settings.appid) if key else None

    def verify_url(self, query: Mapping[str, str], *, now: float | None = None) -> str:
        """服务器配置's check: the `echostr` to echo when the signature is ours."""
        self._check(query, now)
        return query.get("echostr", "")

    def open(
        self, query: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> tuple[Incoming, Envelope]:
        """The message of a POST from WeChat; `Refused` for anything we must not act on."""
        if len(body) > self.settings.max_body_bytes:
            raise Refused(413, "body too large")
        self._check(query, now)
        if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
            raise Refused(400, "DTD refused")
        encrypted = query.get("encrypt_type", "raw") == "aes"
        if not encrypted and self.settings.encryption == "safe":
            raise Refused(403, "plain message refused in safe mode")
        text = body.decode("utf-8", errors="strict") if body else ""
        if encrypted:
            if self.crypto is None:
                raise Refused(403, "encrypted message without an EncodingAESKey")
            try:
                text = self.crypto.decrypt_message(
                    text, query.get("msg_signature", ""), query["timestamp"], query["nonce"]
                )
            except (InvalidSignatureException, InvalidAppIdException):
                raise Refused(403, "bad msg_signature or appid") from None
            except Exception:  # not XML, no <Encrypt>, bad base64 or padding
                raise Refused(400, "undecryptable message") from None
            if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
                raise Refused(400, "DTD refused")
        try:
            message = parse_message(text)
        except Exception:  # xmltodict's ExpatError, a missing <xml> or MsgType
            raise Refused(400, "malformed XML") from None
        if message is None or not message.source:
            raise Refused(400, "empty message")
        return _incoming(message), Envelope(encrypted, query.get("nonce", ""), message)

    def reply(self, envelope: Envelope, text: str, *, now: float | None = None) -> str:
        """The passive reply (被动回复) XML of `text`, encrypted when the request was."""
        xml = TextReply(message=envelope.message, content=text).render()
        if envelope.encrypted and self.crypto is not None:
            stamp = str(int(now if now is not None else time.time()))
            return str(self.crypto.encrypt_message(xml, envelope.nonce, stamp))
        return str(xml)

    def _check(self, query: Mapping[str, str], now: float | None) -> None:
        signature, stamp, nonce = (query.get(k, "") for k in ("signature", "timestamp", "nonce"))
        if not (signature and stamp and nonce and stamp.isdigit()):
            raise Refused(403, "unsigned request")
        try:
            check_signature(self.settings.token, signature, stamp, nonce)
        except InvalidSignatureException:
            raise Refused(403, "bad signature") from None
        if abs((now if now is not None else time.time()) - int(stamp)) > MAX_SKEW_S:
            raise Refused(403, "stale timestamp")


def _incoming(message: BaseMessage) -> Incoming:
    kind = str(message.type)
    common = {
        "openid": str(message.source),
        "account": str(message.target or ""),
        "msg_id": int(message.id or 0),
        "create_time": int(message.time or 0),
    }
    if isinstance(message, TextMessage):
        return Incoming(kind="text", content=str(message.content or "").strip(), **common)
    if kind == "event":
        event = str(getattr(message, "event", "") or "").lower()
        scan = ""
        if event in ("scancode_waitmsg", "scancode_push"):
            scan = str(message.scan_result or "")
        key = getattr(message, "key", "")
        return Incoming(kind="event", event=event, key=str(key or ""), scan=scan, **common)
    return Incoming(kind=kind, **common)


def describe(xml: str) -> dict[str, str]:
    """A reply's fields (tests and the CLI read the answers with this)."""
    parsed = xmltodict.parse(xml)["xml"]
    return {k: str(v) for k, v in parsed.items()}
