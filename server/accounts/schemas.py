"""Bodies of the login window (POST /api/v1/auth/login), as the OpenAPI spec declares them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.core.bodies import Body


class LoginIn(Body):
    code: str = Field(min_length=1, max_length=128, description="wx.login() 返回的 code")


class LoginIdentity(BaseModel):
    id: int
    accounts: int = Field(description="已绑定的户数")


class LoginOut(BaseModel):
    token: str = Field(description="Authorization: Bearer <token>")
    expires_at: str = Field(examples=["2026-12-11T18:59:24+08:00"])
    identity: LoginIdentity


class ErrorOut(BaseModel):
    error: str = Field(examples=["wechat_code_invalid"])
    message: str
    detail: dict[str, str] | None = None
