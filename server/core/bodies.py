"""Reading request bodies and query strings at the edge: `Body` (the base request model),
`parse_body(request, Model)` and `query_params(request, Model)`, or 422 `validation_failed`
naming the failing field with a Chinese message. Every window reads its input this way
(server.tenant.schemas re-exports them for the tenant API's windows)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sanic import Request

from server.core.errors import ValidationFailed

In = TypeVar("In", bound=BaseModel)


class Body(BaseModel):
    """Base of every request body: unknown fields refused, strings stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def parse_body(request: Request, model: type[In]) -> In:
    """The request's JSON body as `model`, or 422 `validation_failed` naming the first bad
    field (`detail.field`) with a Chinese message."""
    try:
        data: Any = request.json if request.body else {}
    except Exception as exc:  # Sanic's InvalidUsage on malformed JSON
        raise ValidationFailed("请求体不是有效的 JSON") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("请求体必须是 JSON 对象")
    return _validated(model, data, "body")


def query_params(request: Request, model: type[In]) -> In:
    """The query string as `model` (one value per name), or 422 naming the field."""
    return _validated(model, {name: values[-1] for name, values in request.args.items()}, "query")


def _validated(model: type[In], data: dict[str, Any], where: str) -> In:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or where
        raise ValidationFailed(_message(first), field=field) from exc


_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不认识的字段",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "string_type": "应为字符串",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
}


def _message(error: Any) -> str:
    return _MESSAGES.get(error["type"], "字段不合法")
