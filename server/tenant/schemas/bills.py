"""Bodies of the tenant's bills window (/api/v1/accounts/<id>/bills…, …/statement)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.tenant.schemas import Body


class BillLineOut(BaseModel):
    label: str = Field(examples=["租金（2026-11-01起，14/30天）"])
    amount_fen: int


class BillOut(BaseModel):
    id: int
    number: str = Field(examples=["HF-202611-12"])
    kind: Literal["fees", "period"] = Field(description="fees 催缴账单；period 后付费账单")
    period: str = Field(examples=["2026-11"])
    status: Literal["issued", "paid"]
    overdue: bool
    total_fen: int
    paid_fen: int
    owed_fen: int
    due_date: str | None = Field(examples=["2026-12-16"])
    lines: list[BillLineOut] = Field(default_factory=list, description="明细（详情中返回）")


class BillList(BaseModel):
    items: list[BillOut]
    owed_fen: int = Field(description="全部未结清账单的欠缴合计（分）")


class PayBillIn(Body):
    amount_fen: int | None = Field(
        default=None, ge=1, le=10**10, description="缴多少（分）；默认余额所能缴的全部欠款"
    )


class StatementQuery(Body):
    month: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}$", examples=["2026-11"], description="默认本月"
    )


class StatementLine(BaseModel):
    section: Literal["energy", "capacity", "fees", "common", "loss", "payments", "refunds",
                     "adjustments", "transfers"]  # fmt: skip
    label: str
    amount_fen: int = Field(description="正数增加、负数减少账户结余")


class BandOut(BaseModel):
    label: str = Field(examples=["峰"])
    quantity: str = Field(examples=["123.40"])
    amount_yuan: str = Field(description="精确金额（元），取整前", examples=["138.2534"])


class StatementOut(BaseModel):
    month: str
    opening_fen: int = Field(description="期初结余（钱包减未缴账单）")
    closing_fen: int = Field(description="期末结余")
    lines: list[StatementLine]
    bands: list[BandOut]
