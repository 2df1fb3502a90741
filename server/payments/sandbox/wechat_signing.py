"""What the fake WeChat Pay platform signs, encrypts and checks, with fault injection.

- answers: `Wechatpay-*` headers, SHA256withRSA over "timestamp\\nnonce\\nbody\\n" with the
  platform key (what the SDK verifies);
- merchant requests: the `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,signature=…`
  header over "METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n" with the merchant's public key;
- notifications: the resource encrypted with AEAD_AES_256_GCM (APIv3 key), headers re-signed
  on every attempt (fresh timestamp and nonce, as the platform does on resends).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from server.payments.providers.crypto import (
    CryptoFailure,
    aes_gcm_encrypt,
    load_private_key,
    load_public_key,
    new_rsa_key,
    sign_sha256_rsa,
    verify_sha256_rsa,
)
from server.payments.sandbox.http import Build, Request, Response
from server.payments.sandbox.keys import SandboxKeys

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
_AUTH = re.compile(r'(\w+)="([^"]*)"')


class WechatFault(StrEnum):
    SIGNTEST = "signtest"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_SERIAL = "unknown_serial"
    WRONG_MCHID = "wrong_mchid"
    AMOUNT_MISMATCH = "amount_mismatch"


# Forged notifications are sent once: the real platform would never resend them.
FORGED = frozenset(
    {
        WechatFault.SIGNTEST,
        WechatFault.STALE_TIMESTAMP,
        WechatFault.BAD_SIGNATURE,
        WechatFault.UNKNOWN_SERIAL,
        WechatFault.WRONG_MCHID,
    }
)


def compact_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class WechatPlatformSigner:
    def __init__(self, keys: SandboxKeys, clock: Callable[[], datetime]) -> None:
        self.keys = keys
        self.clock = clock
        self._platform_key = load_private_key(keys.platform_private_key)
        self._merchant_public = load_public_key(keys.merchant_public_key)

    def response(self, status: int, data: Any = None) -> Response:
        body = b"" if data is None else compact_json(data)
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = sign_sha256_rsa(self._platform_key, f"{ts}\n{nonce}\n".encode() + body + b"\n")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Request-ID": uuid.uuid4().hex,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sig,
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Serial": self.keys.platform_public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }
        return Response(status, body, headers)

    def authorized(self, req: Request) -> bool:
        scheme, _, rest = req.headers.get("authorization", "").partition(" ")
        fields = dict(_AUTH.findall(rest))
        if scheme != SIGNATURE_TYPE or fields.get("mchid") != self.keys.wechat_mchid:
            return False
        if fields.get("serial_no") != self.keys.merchant_serial_no:
            return False
        head = f"{req.method}\n{req.target}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n"
        try:
            verify_sha256_rsa(
                self._merchant_public, head.encode() + req.body + b"\n", fields.get("signature", "")
            )
        except CryptoFailure:
            return False
        return True

    def envelope(
        self, event: str, summary: str, original_type: str, resource: dict[str, Any]
    ) -> bytes:
        nonce = secrets.token_urlsafe(9)[:12]
        ciphertext = aes_gcm_encrypt(
            self.keys.apiv3_key, nonce, compact_json(resource), original_type
        )
        return compact_json(
            {
                "id": str(uuid.uuid4()),
                "create_time": self.clock().isoformat(timespec="seconds"),
                "resource_type": "encrypt-resource",
                "event_type": event,
                "summary": summary,
                "resource": {
                    "original_type": original_type,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": ciphertext,
                    "associated_data": original_type,
                    "nonce": nonce,
                },
            }
        )

    def builder(self, body: bytes, fault: WechatFault | None = None) -> Build:
        """Headers for one delivery attempt of `body`, freshly signed, with the fault applied."""

        def build() -> tuple[dict[str, str], bytes]:
            ts = int(self.clock().timestamp())
            if fault is WechatFault.STALE_TIMESTAMP:
                ts -= 600
            nonce = secrets.token_hex(16)
            key = new_rsa_key() if fault is WechatFault.BAD_SIGNATURE else self._platform_key
            sig = sign_sha256_rsa(key, f"{ts}\n{nonce}\n".encode() + body + b"\n")
            if fault is WechatFault.SIGNTEST:
                sig = "WECHATPAY/SIGNTEST/" + sig
            serial = self.keys.platform_public_key_id
            if fault is WechatFault.UNKNOWN_SERIAL:
                serial = "PUB_KEY_ID_" + "0" * 24
            headers = {
                "Content-Type": "application/json",
                "Wechatpay-Serial": serial,
                "Wechatpay-Signature": sig,
                "Wechatpay-Timestamp": str(ts),
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature-Type": SIGNATURE_TYPE,
            }
            return headers, body

        return build
