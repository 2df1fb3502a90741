"""Locally generated keys for the sandbox: both sides get matching halves.

`SandboxKeys.generate()` makes a WeChat merchant key, a WeChat platform key pair (+ its id),
an APIv3 key, an Alipay app key pair and an Alipay platform key pair. The merchant side gets
`wechat_config()` / `alipay_config()`; the fake platforms keep the other halves.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from server.payments.providers.alipay import AlipayConfig
from server.payments.providers.crypto import new_rsa_key, private_pem, public_pem
from server.payments.providers.wechat import WechatPayConfig


@dataclass(frozen=True, slots=True)
class SandboxKeys:
    wechat_appid: str
    wechat_mchid: str
    merchant_serial_no: str
    merchant_private_key: str
    merchant_public_key: str
    platform_private_key: str
    platform_public_key: str
    platform_public_key_id: str
    apiv3_key: str
    alipay_app_id: str
    alipay_seller_id: str
    alipay_app_private_key: str  # PKCS#1, what the Alipay SDK loads
    alipay_app_public_key: str
    alipay_private_key: str  # Alipay's own signing key (sandbox side)
    alipay_public_key: str

    @classmethod
    def generate(cls) -> SandboxKeys:
        merchant, platform, app, ali = (new_rsa_key() for _ in range(4))
        alphabet = string.ascii_letters + string.digits
        return cls(
            wechat_appid="wx" + secrets.token_hex(8),
            wechat_mchid=str(1900000000 + secrets.randbelow(99999999)),
            merchant_serial_no=secrets.token_hex(20).upper(),
            merchant_private_key=private_pem(merchant),
            merchant_public_key=public_pem(merchant.public_key()),
            platform_private_key=private_pem(platform),
            platform_public_key=public_pem(platform.public_key()),
            platform_public_key_id="PUB_KEY_ID_" + secrets.token_hex(12).upper(),
            apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
            alipay_app_id="2021" + "".join(secrets.choice(string.digits) for _ in range(12)),
            alipay_seller_id="2088" + "".join(secrets.choice(string.digits) for _ in range(12)),
            alipay_app_private_key=private_pem(app, pkcs1=True),
            alipay_app_public_key=public_pem(app.public_key()),
            alipay_private_key=private_pem(ali),
            alipay_public_key=public_pem(ali.public_key()),
        )

    def wechat_config(self, base_url: str, refund_notify_url: str = "") -> WechatPayConfig:
        return WechatPayConfig(
            appid=self.wechat_appid,
            mchid=self.wechat_mchid,
            merchant_serial_no=self.merchant_serial_no,
            merchant_private_key=self.merchant_private_key,
            apiv3_key=self.apiv3_key,
            platform_public_key=self.platform_public_key,
            platform_public_key_id=self.platform_public_key_id,
            refund_notify_url=refund_notify_url,
            base_url=base_url,
        )

    def alipay_config(self, gateway_url: str) -> AlipayConfig:
        return AlipayConfig(
            app_id=self.alipay_app_id,
            app_private_key=self.alipay_app_private_key,
            alipay_public_key=self.alipay_public_key,
            seller_id=self.alipay_seller_id,
            gateway_url=gateway_url,
        )
