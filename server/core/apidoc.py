"""What the OpenAPI spec says of a window besides its own bodies: the app's one error shape
(`ErrorOut`, rendered by server.core.app for every ShuidianError), a route's error answers
(`error_answers`) and its query parameters (`query_docs`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field
from sanic.response import HTTPResponse
from sanic_ext import openapi

Handler = Callable[..., Awaitable[HTTPResponse]]
SIGNED_OUT = (401, "未登录或登录已失效")


class ErrorOut(BaseModel):
    """{error, message, detail}: a code to branch on, a Chinese message to show."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["账户不存在"])
    detail: dict[str, str] | None = None


def error_answers(
    *answers: tuple[int, str], signed_in: bool = True
) -> Callable[[Handler], Handler]:
    """The route's error answers in the spec, each in the one error shape; a route behind a
    sign-in also answers 401."""

    def add(handler: Handler) -> Handler:
        for status, text in (SIGNED_OUT, *answers) if signed_in else answers:
            handler = openapi.response(status, {"application/json": ErrorOut}, text)(handler)
        return handler

    return add


def query_docs(*params: tuple[str, type[Any], str]) -> Callable[[Handler], Handler]:
    """The route's query parameters in the spec: (name, type, description)."""

    def add(handler: Handler) -> Handler:
        for name, kind, text in params:
            handler = openapi.parameter(name, kind, "query", description=text)(handler)
        return handler

    return add
