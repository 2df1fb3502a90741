"""E-mail over SMTP with aiosmtplib (implicit TLS, STARTTLS or plain on loopback). The
`email` package encodes Chinese subjects and names (RFC 2047)."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from server.notify.providers.base import Outgoing, SendError, unreachable


class SmtpMail:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        tls: str = "tls",
        user: str = "",
        password: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port, self._from = host, port, sender
        self._tls, self._user, self._password, self._timeout = tls, user, password, timeout_s

    async def send(self, message: Outgoing) -> str:
        mail = EmailMessage()
        mail["From"], mail["To"] = self._from, message.recipient
        mail["Subject"] = message.subject or "水电通知"
        mail["Message-ID"] = make_msgid(domain="shuidian")
        mail.set_content(message.text)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self._host,
                port=self._port,
                timeout=self._timeout,
                use_tls=self._tls == "tls",
                start_tls=self._tls == "starttls",
                username=self._user or None,
                password=self._password or None,
                tls_context=ssl.create_default_context() if self._tls != "none" else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = next(iter(exc.recipients), None)
            code = str(refused.code) if refused else "550"
            raise SendError(
                f"smtp.{code}", str(exc)[:300], temporary=code.startswith("4")
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(
                f"smtp.{exc.code}", exc.message[:300], temporary=400 <= exc.code < 500
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise unreachable("smtp", exc) from None
        return str(mail["Message-ID"])

    async def aclose(self) -> None:
        return None
