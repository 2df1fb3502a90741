"""Request bodies of the payment use cases (validated at the edge, Chinese messages)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateRechargeOrderIn(_In):
    account_id: int = Field(gt=0)
    channel: Literal["wechat", "alipay"]
    amount_fen: int = Field(gt=0, description="充值金额（分）")


class RefundIn(_In):
    out_trade_no: str = Field(min_length=6, max_length=32)
    amount_fen: int = Field(gt=0)
    reason: str = Field(min_length=1, max_length=200)


class CounterPaymentIn(_In):
    account_id: int = Field(gt=0)
    channel: Literal["cash", "bank"]
    amount_fen: int = Field(gt=0)
    reference: str = Field(min_length=1, max_length=64, description="收据号或银行流水号")
    payer_name: str = Field(default="", max_length=100)
    memo: str = Field(default="", max_length=200)


class AdjustmentIn(_In):
    account_id: int = Field(gt=0)
    amount_fen: int = Field(description="调账金额（分），负数为扣减")
    reason: str = Field(min_length=1, max_length=200)


# What the platforms post to the notification endpoints (documentation of the OpenAPI spec;
# the providers verify and read the raw bytes themselves).


class WechatNotifyResource(BaseModel):
    original_type: str = Field(examples=["transaction"])
    algorithm: Literal["AEAD_AES_256_GCM"]
    ciphertext: str = Field(description="AES-256-GCM 密文（base64），APIv3 密钥解密")
    associated_data: str = ""
    nonce: str


class WechatNotifyIn(BaseModel):
    """微信支付 v3 回调通知（请求头带 Wechatpay-Serial/Signature/Timestamp/Nonce）。"""

    id: str
    create_time: str
    resource_type: str = Field(examples=["encrypt-resource"])
    event_type: str = Field(examples=["TRANSACTION.SUCCESS", "REFUND.SUCCESS"])
    summary: str = ""
    resource: WechatNotifyResource


class WechatNotifyFail(BaseModel):
    """非 2xx 应答：微信支付按其重试间隔重发通知。"""

    code: Literal["FAIL"]
    message: str


class AlipayNotifyIn(BaseModel):
    """支付宝异步通知（application/x-www-form-urlencoded，RSA2 签名）。"""

    notify_id: str
    notify_type: str = Field(examples=["trade_status_sync"])
    app_id: str
    seller_id: str
    sign_type: Literal["RSA2"]
    sign: str
    out_trade_no: str = Field(max_length=64)
    trade_no: str
    trade_status: str = Field(examples=["TRADE_SUCCESS"])
    total_amount: str = Field(description="金额（元，两位小数）", examples=["100.00"])
    out_biz_no: str = Field(default="", description="退款通知：退款请求号")
    refund_fee: str = Field(default="", description="退款通知：累计退款金额（元）")
