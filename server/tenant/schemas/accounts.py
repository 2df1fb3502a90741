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
