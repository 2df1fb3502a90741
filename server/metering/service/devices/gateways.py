"""Gateways (网关) and buses (总线) as staff set them up: list, detail, create, edit, retire.

A gateway row is where the collector finds a bus: a transparent channel (serial server, DTU)
carrying DL/T 645 or CJ/T 188 frames over TCP, a Modbus TCP / RTU-over-TCP box, or an MQTT
gateway publishing under `gw/{code}/…`. The collector reads the rows at every round, so a
change here takes effect at its next round without a restart. A gateway is never deleted:
retiring it (only once no active meter is on it) keeps its meters' history readable.

Every function takes the site ids of the staff member's scope; a gateway outside them is
NotFound, as if it did not exist. Every change writes the operation log in its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Page, Paging, paginate
from server.metering.models import Gateway, GatewayKind, Meter, MeterStatus
from server.metering.vocabulary import PROTOCOL_GATEWAYS, PROTOCOL_LABELS
from server.places.models import Site

GATEWAY_KIND_LABELS = {
    GatewayKind.TCP_TRANSPARENT: "透明传输（DL/T 645 / CJ/T 188 over TCP）",
    GatewayKind.MODBUS_TCP: "Modbus TCP / RTU over TCP",
    GatewayKind.MQTT: "MQTT 网关",
}
_FIELDS = {"code": "编号", "name": "名称", "kind": "类型", "host": "地址", "port": "端口"}


@dataclass(frozen=True, slots=True)
class GatewayInput:
    """What staff type in the gateway form, checked."""

    code: str
    name: str
    kind: GatewayKind
    host: str
    port: int

    @classmethod
    def of(cls, form: Mapping[str, str]) -> GatewayInput:
        """From the form's strings; ValidationFailed with words for staff otherwise."""
        code = (form.get("code") or "").strip()
        if not code or len(code) > 64 or not code.isascii() or not code.isprintable():
            raise ValidationFailed("网关编号不能为空，最长 64 个英文字母、数字或符号")
        if any(c in code for c in " /+#"):
            raise ValidationFailed("网关编号不能包含空格或 / + # 字符（MQTT 主题用它）")
        try:
            kind = GatewayKind(form.get("kind") or "")
        except ValueError:
            raise ValidationFailed("请选择网关类型") from None
        host = (form.get("host") or "").strip()
        port_text = (form.get("port") or "").strip()
        port = 0
        if kind is not GatewayKind.MQTT:
            if not host or len(host) > 255 or any(c.isspace() for c in host):
                raise ValidationFailed("请填写网关的 IP 地址或主机名")
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise ValidationFailed("端口应为 1 到 65535 之间的数字")
            port = int(port_text)
        else:
            host = ""  # an MQTT gateway is reached through the broker, by its code
        name = (form.get("name") or "").strip()
        if len(name) > 100:
            raise ValidationFailed("网关名称最长 100 个字")
        return cls(code, name, kind, host, port)


@dataclass(frozen=True, slots=True)
class GatewayRow:
    """A gateway as the list and the detail page show it."""

    id: int
    site_id: int
    site_name: str
    code: str
    name: str
    kind: GatewayKind
    host: str
    port: int
    online: bool
    last_seen_at: datetime | None
    retired_at: datetime | None
    meters: int  # active meters on it

    @property
    def kind_label(self) -> str:
        return GATEWAY_KIND_LABELS[self.kind]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.kind is not GatewayKind.MQTT else "经 MQTT"

    @property
    def protocols(self) -> list[str]:
        """The meter protocols this kind of gateway carries (the meter form offers these)."""
        return [PROTOCOL_LABELS[p] for p, k in PROTOCOL_GATEWAYS.items() if k == self.kind]


def _scoped(site_ids: Sequence[int]):  # type: ignore[no-untyped-def]
    return Gateway.filter(site_id__in=list(site_ids)).select_related("site")


async def _rows(gateways: Sequence[Gateway]) -> list[GatewayRow]:
    """The rows with their active meters counted (one query for them all)."""
    counts = dict(
        await Meter.filter(gateway_id__in=[g.id for g in gateways], status=MeterStatus.ACTIVE)
        .group_by("gateway_id")
        .annotate(n=Count("id"))
        .values_list("gateway_id", "n")
    )
    return [
        GatewayRow(
            gw.id,
            gw.site_id,
            gw.site.name,  # type: ignore[attr-defined]
            gw.code,
            gw.name,
            GatewayKind(gw.kind),
            gw.host,
            gw.port,
            gw.online,
            gw.last_seen_at,
            gw.retired_at,
            counts.get(gw.id, 0),
        )
        for gw in gateways
    ]


async def list_gateways(
    site_ids: Sequence[int],
    paging: Paging,
    *,
    q: str = "",
    kind: str = "",
    retired: bool = False,
) -> Page[GatewayRow]:
    """Gateways of the scope by code; `q` searches code, name and host; retired ones only
    when asked for."""
    query = _scoped(site_ids).filter(retired_at__isnull=not retired)
    if q:
        query = query.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(host__icontains=q))
    if kind in GatewayKind._value2member_map_:
        query = query.filter(kind=kind)
    page = await paginate(query.order_by("code", "id"), paging)
    return Page(await _rows(page.items), page.total, page.paging)


async def gateway_choices(site_ids: Sequence[int]) -> list[GatewayRow]:
    """Every gateway in service of the scope, for the meter form's select."""
    return await _rows(
        await _scoped(site_ids).filter(retired_at__isnull=True).order_by("code", "id")
    )


async def gateway_detail(site_ids: Sequence[int], gateway_id: int) -> GatewayRow:
    gw = await _scoped(site_ids).filter(id=gateway_id).first()
    if gw is None:
        raise NotFound("网关不存在")
    return (await _rows([gw]))[0]


async def _locked(site_ids: Sequence[int], gateway_id: int) -> Gateway:
    gw = await Gateway.filter(id=gateway_id, site_id__in=list(site_ids)).select_for_update().first()
    if gw is None:
        raise NotFound("网关不存在")
    return gw


async def _check_code(code: str, gateway_id: int | None = None) -> None:
    taken = Gateway.filter(code=code)
    if gateway_id is not None:
        taken = taken.exclude(id=gateway_id)
    if await taken.exists():
        raise Conflict(f"网关编号 {code} 已被使用")


async def create_gateway(
    site_ids: Sequence[int], site_id: int, data: GatewayInput, *, actor: str
) -> int:
    """A new gateway in `site_id` (which must be in scope); returns its id."""
    if site_id not in site_ids or not await Site.exists(id=site_id):
        raise NotFound("站点不存在")
    async with in_transaction():
        await _check_code(data.code)
        gw = await Gateway.create(
            site_id=site_id, code=data.code, name=data.name, kind=data.kind,
            host=data.host, port=data.port,
        )  # fmt: skip
        await record(
            actor, "gateway.create", target_type="gateway", target_id=gw.id, site_id=site_id,
            reason=f"新增网关 {data.code}（{GATEWAY_KIND_LABELS[data.kind]}）",
            detail=_detail(data),
        )  # fmt: skip
    return gw.id


def _detail(data: GatewayInput) -> dict[str, object]:
    return {f: str(getattr(data, f)) for f in _FIELDS}


async def edit_gateway(
    site_ids: Sequence[int], gateway_id: int, data: GatewayInput, *, actor: str
) -> None:
    """Change a gateway in service; its kind only while no active meter needs the old one."""
    async with in_transaction():
        gw = await _locked(site_ids, gateway_id)
        if gw.retired_at is not None:
            raise Conflict("网关已退役，不能修改")
        await _check_code(data.code, gw.id)
        if data.kind != gw.kind:
            used = await Meter.filter(gateway_id=gw.id, status=MeterStatus.ACTIVE).count()
            if used:
                raise Conflict(f"网关下还有 {used} 块在用仪表，不能改变网关类型")
        before = {f: str(getattr(gw, f)) for f in _FIELDS}
        after = _detail(data)
        changed = {f: [before[f], after[f]] for f in _FIELDS if before[f] != after[f]}
        if not changed:
            return
        for f in _FIELDS:
            setattr(gw, f, getattr(data, f))
        await gw.save(update_fields=list(_FIELDS))
        await record(
            actor, "gateway.edit", target_type="gateway", target_id=gw.id, site_id=gw.site_id,
            reason=f"修改网关 {gw.code}：{'、'.join(_FIELDS[f] for f in changed)}",
            detail=changed,
        )  # fmt: skip


async def retire_gateway(site_ids: Sequence[int], gateway_id: int, *, actor: str) -> None:
    """Retire a gateway none of whose meters is active any more (move or remove them first)."""
    async with in_transaction():
        gw = await _locked(site_ids, gateway_id)
        if gw.retired_at is not None:
            raise Conflict("网关已退役")
        used = await Meter.filter(gateway_id=gw.id, status=MeterStatus.ACTIVE).count()
        if used:
            raise Conflict(f"网关下还有 {used} 块在用仪表，请先移走或拆除")
        gw.retired_at, gw.online = datetime.now(UTC), False
        await gw.save(update_fields=["retired_at", "online"])
        await record(
            actor, "gateway.retire", target_type="gateway", target_id=gw.id, site_id=gw.site_id,
            reason=f"网关 {gw.code} 退役",
        )  # fmt: skip
