"""Body of the tenant's monthly statement (/api/v1/accounts/<id>/monthly-statement)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AccountOut(BaseModel):
    number: str
    tenant_name: str


class PaymentOut(BaseModel):
    channel: str = Field(examples=["wechat"])
    label: str = Field(examples=["微信"])
    amount_fen: int


class BandOut(BaseModel):
    band: int = Field(description="1 尖 2 峰 3 平 4 谷 5 深谷")
    label: str = Field(examples=["峰"])
    quantity: str = Field(examples=["150.0000"], description="kWh，按读数时间")
    amount_fen: int


class ElectricityOut(BaseModel):
    quantity: str = Field(examples=["190.0000"])
    amount_fen: int = Field(description="按读数时间的电费（含次月入账的部分）")
    bands: list[BandOut]
    other_fen: int = Field(description="不分时的电费（单一电价、阶梯、基本电费）")


class WaterOut(BaseModel):
    quantity: str = Field(examples=["12.5000"], description="m³")
    amount_fen: int


class PostedOut(BaseModel):
    electricity_fen: int = Field(description="本月入账的电费")
    water_fen: int
    fees_fen: int = Field(description="租金、物业、服务等费用")
    shares_fen: int = Field(description="公摊与损耗")
    earlier_usage_fen: int = Field(description="其中上月读数本月入账")


class MonthlyStatementOut(BaseModel):
    month: str = Field(examples=["2026-11"])
    label: str = Field(examples=["2026年11月"])
    account: AccountOut
    opening_fen: int = Field(description="期初余额")
    closing_fen: int = Field(description="期末余额 = 期初 + 缴费 − 退费 ± 调账/过户 − 入账")
    payments_fen: int
    payments: list[PaymentOut]
    electricity: ElectricityOut
    water: WaterOut
    posted: PostedOut
    late_usage_fen: int = Field(description="本月读数在次月入账的部分（计入下月）")
    refunds_fen: int
    adjustments_fen: int
    transfers_fen: int
