"""Bodies of the binding window (/api/v1/sites, /api/v1/bind…, /api/v1/me…), as the
OpenAPI spec declares them; the contract is docs/tenant-api.md."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.core.bodies import Body
from server.tenant.schemas.accounts import AccountSummary


class SiteItem(BaseModel):
    id: int
    name: str = Field(examples=["星河产业园"])
    organisation: str


class SiteList(BaseModel):
    items: list[SiteItem]


class SmsSendIn(Body):
    site_id: int = Field(gt=0)
    account_number: str = Field(min_length=1, max_length=32, examples=["A-0101"])


class SmsSendOut(BaseModel):
    phone_masked: str = Field(examples=["138****5678"])
    expires_in: int = Field(description="验证码有效秒数", examples=[300])
    resend_after: int = Field(description="多少秒后可重新发送", examples=[60])


class SmsVerifyIn(SmsSendIn):
    code: str = Field(pattern=r"^\d{6}$", examples=["123456"])


class QrBindIn(Body):
    ticket: str = Field(min_length=1, max_length=200, description="扫码得到的绑定码")


class BoundOut(BaseModel):
    account: AccountSummary


class MeOut(BaseModel):
    identity_id: int
    nickname: str
    accounts: list[AccountSummary]


class TemplateAllowance(BaseModel):
    template_id: str
    purpose: Literal["low_balance", "power_off", "recharge_done"]
    title: str = Field(examples=["余额不足提醒"])
    remaining: int = Field(description="还可发送的条数（每次“允许”加一条）")


class SubscriptionsOut(BaseModel):
    templates: list[TemplateAllowance]


class SubscriptionsIn(Body):
    results: dict[str, str] = Field(
        description="wx.requestSubscribeMessage 的返回，原样提交（errMsg 忽略）；"
        "每个模板 accept | reject | ban | filter",
        examples=[{"demo-low-balance": "accept"}],
    )
