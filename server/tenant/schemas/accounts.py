"""Bodies of the accounts window (/api/v1/accounts…, /api/v1/orders…), as the OpenAPI spec
declares them; the contract is docs/tenant-api.md."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from server.tenant.schemas import Body


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


class UsageQuery(Body):
    by: Literal["day", "month"] = "day"
    start: date | None = Field(default=None, description="YYYY-MM-DD；默认近 30 天 / 12 个月")
    end: date | None = Field(default=None, description="YYYY-MM-DD；默认今天")


class UsageBands(BaseModel):
    sharp: str
    peak: str
    flat: str
    valley: str
    deep_valley: str | None = None


class UsageItem(BaseModel):
    period: str = Field(examples=["2026-12-01", "2026-12"])
    quantity: str = Field(examples=["12.3400"])
    amount_fen: int | None
    bands: UsageBands | None


class UsageOut(BaseModel):
    meter_id: int
    kind: Literal["electricity", "water"]
    unit: Literal["kWh", "m³"]
    by: Literal["day", "month"]
    items: list[UsageItem]


class RecordsQuery(Body):
    type: Literal["all", "recharge", "deduction", "refund", "fee", "adjustment"] = "all"
    limit: int = Field(default=20, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=200)


class RecordOut(BaseModel):
    id: str = Field(description="不透明标识")
    type: Literal["recharge", "deduction", "refund", "fee", "adjustment"]
    title: str = Field(examples=["微信充值"])
    amount_fen: int = Field(description="带符号：+ 入账，− 出账")
    at: str
    day: str = Field(examples=["2026-12-01"], description="扣费记录：按日汇总的那一天")
    detail: str


class RecordPage(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None


class RechargeOptions(BaseModel):
    choices_fen: list[int] = Field(examples=[[5000, 10000, 20000]])
    min_fen: int
    max_fen: int
    channels: list[Literal["wechat", "alipay"]]


class RechargeIn(Body):
    amount_fen: int = Field(gt=0, description="充值金额（分）")
    channel: Literal["wechat", "alipay"] = "wechat"


class WechatPay(BaseModel):
    """wx.requestPayment 的参数（微信支付 v3 JSAPI，已签名）。"""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str = Field(examples=["prepay_id=wx…"])
    signType: Literal["RSA"]
    paySign: str


class AlipayPay(BaseModel):
    pay_url: str


class RechargeOut(BaseModel):
    order_no: str
    amount_fen: int
    channel: Literal["wechat", "alipay"]
    status: Literal["created"]
    expires_at: str
    pay: WechatPay | AlipayPay


class OrderOut(BaseModel):
    order_no: str
    account_id: int
    amount_fen: int
    channel: Literal["wechat", "alipay"]
    status: Literal["created", "paid", "closed", "expired", "held"] = Field(
        description="held：支付通知与订单不符，待人工核查"
    )
    paid_at: str | None
    expires_at: str


class ComplianceQuery(Body):
    period: str | None = Field(
        default=None, description="账期 YYYY-MM；默认上月", examples=["2026-11"]
    )


class ComplianceFlag(BaseModel):
    code: Literal["markup", "loss_over_cap", "overcharged"]
    label: str


class ComplianceSite(BaseModel):
    grid_kwh: str = Field(description="关口表电量 kWh")
    grid_bill_fen: int = Field(description="电网账单金额（分）")
    grid_price: str = Field(description="电网平均结算电价 元/kWh")
    loss_kwh: str
    loss_rate: str = Field(examples=["6.00%"])
    loss_cap: str = Field(examples=["10.00%"])
    own_use_kwh: str = Field(description="物业自用电量（不分摊给租户）")
    own_use_fen: int
    own_use_passed_on: bool
    flags: list[ComplianceFlag]


class ComplianceMine(BaseModel):
    kwh: str
    energy_fen: int
    common_fen: int = Field(description="公摊")
    loss_fen: int = Field(description="线变损分摊")
    total_fen: int
    energy_price: str = Field(description="电度电价 元/kWh")
    effective_price: str = Field(description="综合电价（含公摊、损耗）元/kWh")
    loss_ratio: str = Field(description="损耗分摊占电费的比例")
    flags: list[ComplianceFlag]


class ComplianceOut(BaseModel):
    account_id: int
    period: str
    published: bool = Field(description="该账期的电网账单和关口表读数是否已录入")
    site: ComplianceSite | None = Field(description="未公布时为 null")
    mine: ComplianceMine | None = Field(description="未公布或本户本期无用电时为 null")
