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
