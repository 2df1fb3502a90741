"""Bodies of the accounts window (/api/v1/accounts…, /api/v1/orders…), as the OpenAPI spec
declares them; the contract is docs/tenant-api.md."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SiteRef(BaseModel):
    id: int
    name: str


class AccountSummary(BaseModel):
    id: int
    site: SiteRef
    number: str = Field(examples=["A-0101"])
    tenant_name: str
    room: str = Field(examples=["1号楼 1F 0101"], description="楼栋 楼层 房间；无房间时为空")
    status: Literal["open", "closed"]
    billing_mode: Literal["prepaid", "postpaid"]
    role: Literal["owner", "accountant"]
    balance_fen: int = Field(description="钱包余额（分）")
    available_fen: int = Field(description="可用余额（分）：告警与充值所用的同一口径")


class AccountList(BaseModel):
    items: list[AccountSummary]


class ErrorOut(BaseModel):
    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["账户不存在"])
    detail: dict[str, str] | None = None


class TodayUse(BaseModel):
    electricity_kwh: str = Field(examples=["3.2100"])
    water_m3: str = Field(examples=["0.4000"])
    amount_fen: int = Field(description="今日平台计费金额（分）")


class LiveOut(BaseModel):
    """实时值：只含表计提供的项。"""

    voltage_v: str | None = Field(default=None, examples=["220.1"])
    current_a: str | None = Field(default=None, examples=["3.20"])
    power_kw: str | None = Field(default=None, examples=["0.704"])
    power_factor: str | None = Field(default=None, examples=["0.98"])
    at: str = Field(description="读取时间")


class MeterToday(BaseModel):
    quantity: str = Field(examples=["3.2100"])
    unit: Literal["kWh", "m³"]
    amount_fen: int | None


class MeterOut(BaseModel):
    id: int
    address: str
    kind: Literal["electricity", "water"]
    label: str = Field(examples=["电表"])
    relay: Literal["closed", "open", "unknown"] = Field(
        description="closed 供电/通水；open 断电/关阀"
    )
    online: bool
    last_read_at: str | None
    live: LiveOut | None
    today: MeterToday
    balance_fen: int | None = Field(description="表端计费表的表内余额（分）；平台计费为 null")


class AccountDetail(AccountSummary):
    credit_limit_fen: int
    days_left: float | None = Field(description="预计可用天数；无用量历史时为 null")
    today: TodayUse
    meters: list[MeterOut]
