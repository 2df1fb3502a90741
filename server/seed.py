"""A sample park on the platform: organisation, site, two buildings, rooms, accounts, gateways
and meters — registered from a simulated park so the demo, tests and benchmarks talk to the
same meters over the real protocols.

`seed_park` is idempotent: run again, it only refreshes gateway addresses (the simulator's
ports may differ between runs) and adds what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from server.accounts.models import Account, TenantType
from server.ledger.posting import TxKind
from server.metering.models import Gateway, GatewayKind, Meter, MeterBilling
from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
from server.places.models import Building, Floor, Organisation, Room, Site

BUILDINGS = ("A栋", "B栋")
FLOORS = 6
SHOP_NAMES = ("便利店", "茶饮店", "快餐店", "设计工作室", "科技有限公司", "面包房", "药店", "书店")


class SimulatedMeter(Protocol):
    address: str
    kind: MeterKind
    rated_kw: Decimal
    meter_billing: bool
    protected: bool
    purchase_count: int
    remaining_fen: int


class Where(Protocol):
    protocol: MeterProtocol
    host: str
    port: int
    slave: int | None
    model: str | None
    gateway: str | None


@dataclass(frozen=True, slots=True)
class SeedSummary:
    site_id: int
    rooms: int
    accounts: int
    meters: int
    gateways: int
    created: bool


async def seed_park(
    meters: Iterable[SimulatedMeter],
    directory: Mapping[str, Where],
    *,
    now: datetime,
    organisation: str = "示范集团",
    site: str = "南山科技园",
) -> SeedSummary:
    """Register every simulated meter that has an endpoint; one account per electricity meter,
    water meters joining the accounts in turn (一户多表: one wallet for both)."""
    sim = [m for m in meters if m.address in directory]
    electric = [m for m in sim if m.kind == MeterKind.ELECTRICITY]
    water = [m for m in sim if m.kind == MeterKind.WATER]
    async with in_transaction():
        org, _ = await Organisation.get_or_create(name=organisation)
        site_row, created = await Site.get_or_create(
            organisation=org, name=site, defaults={"address": "广东省深圳市南山区"}
        )
        rooms = await _rooms(site_row, len(electric))
        gateways = await _gateways(site_row, directory, {m.address for m in sim})
        known = set(await Meter.filter(site=site_row).values_list("address", flat=True))
        accounts: list[Account] = []
        for i, (m, room) in enumerate(zip(electric, rooms, strict=False)):
            account = await _account(site_row, room, i, now)
            accounts.append(account)
            if m.address not in known:
                await _meter(site_row, account, m, directory[m.address], gateways, now)
        for i, m in enumerate(water):
            if m.address not in known and accounts:
                account = accounts[i % len(accounts)]
                await _meter(site_row, account, m, directory[m.address], gateways, now)
        return SeedSummary(
            site_id=site_row.id,
            rooms=len(rooms),
            accounts=await Account.filter(site=site_row).count(),
            meters=await Meter.filter(site=site_row).count(),
            gateways=len(gateways),
            created=created,
        )


async def _rooms(site: Site, count: int) -> list[Room]:
    per_floor = max(1, math.ceil(count / (len(BUILDINGS) * FLOORS)))
    rooms: list[Room] = []
    for b_name in BUILDINGS:
        building, _ = await Building.get_or_create(site=site, name=b_name)
        for f in range(1, FLOORS + 1):
            floor, _ = await Floor.get_or_create(
                building=building, name=f"{f}F", defaults={"sort_order": f}
            )
            for r in range(1, per_floor + 1):
                area = Decimal(40 + (f * 7 + r * 13) % 80) + Decimal("0.50")
                room, _ = await Room.get_or_create(
                    floor=floor, name=f"{b_name[0]}{f}{r:02d}", defaults={"area_m2": area}
                )
                rooms.append(room)
    # Fill A栋 then B栋 floor by floor, as a leasing office would.
    return rooms[:count] if count else rooms


async def _account(site: Site, room: Room, i: int, now: datetime) -> Account:
    number = f"{room.name}"
    existing = await Account.get_or_none(site=site, number=number)
    if existing is not None:
        return existing
    is_person = i % 4 == 3
    name = f"张{'伟芳娜敏静丽强磊军洋'[i % 10]}" if is_person else f"{room.name}{SHOP_NAMES[i % 8]}"
    return await Account.create(
        site=site,
        room=room,
        number=number,
        tenant_name=name,
        phone=f"138{i:08d}",
        tenant_type=TenantType.PERSON if is_person else TenantType.COMPANY,
        opened_at=now,
    )


def _gateway_key(where: Where) -> tuple[str, GatewayKind]:
    if where.protocol == MeterProtocol.MQTT_GATEWAY:
        return f"{where.gateway}", GatewayKind.MQTT
    if where.protocol in (MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP):
        return f"{where.protocol}-{where.port}", GatewayKind.MODBUS_TCP
    return f"{where.protocol}-{where.port}", GatewayKind.TCP_TRANSPARENT


async def _gateways(
    site: Site, directory: Mapping[str, Where], addresses: set[str]
) -> dict[str, Gateway]:
    gateways: dict[str, Gateway] = {}
    for address in addresses:
        where = directory[address]
        code, kind = _gateway_key(where)
        if code in gateways:
            continue
        gateway, created = await Gateway.get_or_create(
            code=code,
            defaults={
                "site": site,
                "kind": kind,
                "host": where.host,
                "port": where.port,
                "name": f"模拟{code}",
            },
        )
        if not created and (gateway.host, gateway.port) != (where.host, where.port):
            gateway.host, gateway.port = where.host, where.port
            await gateway.save(update_fields=["host", "port"])
        gateways[code] = gateway
    return gateways


async def _meter(
    site: Site,
    account: Account,
    sim: SimulatedMeter,
    where: Where,
    gateways: Mapping[str, Gateway],
    now: datetime,
) -> Meter:
    code, _ = _gateway_key(where)
    default_model = "CJ-188" if sim.kind == MeterKind.WATER else "DDSY1352"
    return await Meter.create(
        site=site,
        account=account,
        room_id=account.room_id,  # type: ignore[attr-defined]
        gateway=gateways[code],
        kind=sim.kind,
        model=where.model or default_model,
        protocol=where.protocol,
        address=sim.address,
        unit=where.slave or 0,
        rated_kw=sim.rated_kw,
        billing=MeterBilling.METER if sim.meter_billing else MeterBilling.PLATFORM,
        protected=sim.protected,
        relay_state=RelayState.UNKNOWN,
        installed_at=now,
        # A meter-billed meter arrives with its money register and purchase count: the
        # platform's mirror starts from what the meter holds, or the daily reconciliation
        # would report every such meter as differing.
        purchase_count=sim.purchase_count,
        money_fen=sim.remaining_fen if sim.meter_billing else None,
        money_read_at=now if sim.meter_billing else None,
    )


def park_tou_spec() -> dict[str, object]:
    """The sample park's commercial TOU plan, on the same calendar as the simulated meters:
    valley 23–7, peak 8–11 and 17–22, sharp 19–21 in July and August, flat otherwise."""

    def day(sharp: bool) -> list[dict[str, object]]:
        cuts = [("00:00", "07:00", 4), ("07:00", "08:00", 3), ("08:00", "11:00", 2)]
        cuts += [("11:00", "17:00", 3)]
        if sharp:
            cuts += [("17:00", "19:00", 2), ("19:00", "21:00", 1), ("21:00", "22:00", 2)]
        else:
            cuts += [("17:00", "22:00", 2)]
        cuts += [("22:00", "23:00", 3), ("23:00", "24:00", 4)]
        return [{"start": a, "end": b, "band": band} for a, b, band in cuts]

    return {
        "kind": "tou",
        "prices": {"1": "1.2000", "2": "0.9500", "3": "0.6500", "4": "0.3500"},
        "seasons": [
            {"name": "夏季", "months": [7, 8], "workday": day(True)},
            {"name": "非夏季", "months": [1, 2, 3, 4, 5, 6, 9, 10, 11, 12], "workday": day(False)},
        ],
    }


WATER_SPEC = {"kind": "flat", "unit": "m³", "price": "4.2000"}
OPENING_BALANCE_FEN = 30000  # ¥300 paid at the counter when the account was opened
LOW_OPENING_BALANCE_FEN = 2500  # every tenth account starts at ¥25, under the first alarm level


def opening_fen(account_id: int) -> int:
    """The demo's opening balance: ¥300; every tenth account ¥25 (in alarm); every 25th from
    the 7th ¥0, so the alarm service trips it at its first billed reading (room monitoring
    has tripped rooms to show)."""
    if account_id % 25 == 7:
        return 0
    return LOW_OPENING_BALANCE_FEN if account_id % 10 == 0 else OPENING_BALANCE_FEN


def non_payer(account_id: int) -> bool:
    """The demo's tenants who never pay (the simulated tenants' recharges leave them out):
    those opened at ¥0 stay tripped, every 20th stays low, in alarm, on /admin/monitor."""
    return account_id % 25 == 7 or account_id % 20 == 0


# A per-account alarm override: no night, weekend or holiday protection (节假日不停电), so
# the demo's tenants at ¥0 are tripped whatever the day the demo starts.
CUT_ANY_TIME = {"no_cut": {"night_start": None, "night_end": None, "weekends": False,
                           "holidays": False}}  # fmt: skip


async def seed_non_payers(site_id: int) -> list[int]:
    """The site's accounts opened at ¥0 may be cut any time (`CUT_ANY_TIME`); returns them."""
    from server.metering.models import AccountAlarmState

    ids = [i for i in await Account.filter(site_id=site_id).values_list("id", flat=True)
           if opening_fen(i) == 0]  # fmt: skip
    for account_id in ids:
        await AccountAlarmState.update_or_create(
            defaults={"override": CUT_ANY_TIME}, account_id=account_id
        )
    return ids


def offline_addresses(directory: Mapping[str, Where], every: int = 40) -> list[str]:
    """Every `every`-th polled meter (DL/T 645 or Modbus, not behind an MQTT gateway) by
    address: the demo's simulator never lets them answer, so they stay offline."""
    polled = sorted(a for a, w in directory.items() if w.gateway is None)
    return polled[every // 2 :: every]


async def seed_money(site_id: int, *, now: datetime) -> int:
    """Tariff plans for the site, assigned to every account, and an opening cash recharge
    through the ledger (idempotent by key). Returns how many accounts were funded now."""
    from server.ledger.service import Channel, recharge
    from server.tariffs.models import TariffAssignment, TariffKind, TariffPlan
    from server.tariffs.service import assign, create_plan

    plans: dict[TariffKind, TariffPlan] = {}
    for kind, name, spec in (
        (TariffKind.ELECTRICITY, "商业分时电价", park_tou_spec()),
        (TariffKind.WATER, "非居民用水", WATER_SPEC),
    ):
        plan = await TariffPlan.get_or_none(site_id=site_id, name=name)
        if plan is None:
            plan = await create_plan(
                site_id, name, kind, spec, effective_from=now, actor="system:seed"
            )
        plans[kind] = plan
    funded = 0
    async for account in Account.filter(site_id=site_id).order_by("id"):
        async with in_transaction():
            for plan in plans.values():
                if not await TariffAssignment.exists(account_id=account.id, plan_id=plan.id):
                    await assign(account.id, plan.id)
            fen = opening_fen(account.id)
            if not fen:
                continue
            posted = await recharge(
                account.id,
                Channel.CASH,
                fen,
                key=f"seed:opening:{account.id}",
                actor="system:seed",
                memo="开户预存",
            )
            funded += posted.created
    return funded


# The demo's WeChat users: log in with code `demo-<name>` (the fake WeChat API in embedded
# mode answers openid `o-demo-<name>`). 张老板 owns two shops, 李店长 runs a meter-billed one
# (when the park has one), 王会计 keeps the books of 张老板's first shop.
DEMO_TENANTS = (("zhang", "张老板"), ("li", "李店长"), ("wang", "王会计"))


async def seed_tenants(site_id: int) -> dict[str, list[str]]:
    """Bind the demo tenants (idempotent); returns each one's account numbers."""
    from server.accounts.models import BindingRole, BindingVia, TenantApp, TenantIdentity
    from server.accounts.service.binding import bind

    accounts = await Account.filter(site_id=site_id).order_by("id").limit(3)
    if len(accounts) < 3:
        return {}
    shops = [accounts[0], accounts[1], accounts[2]]
    metered = (
        await Meter.filter(site_id=site_id, billing=MeterBilling.METER)
        .exclude(account_id__in=[shops[0].id, shops[1].id])
        .order_by("id")
        .first()
        .values_list("account_id", flat=True)
    )
    if metered is not None:
        shops[2] = await Account.get(id=metered)
    plan = {
        "zhang": [(shops[0], BindingRole.OWNER), (shops[1], BindingRole.OWNER)],
        "li": [(shops[2], BindingRole.OWNER)],
        "wang": [(shops[0], BindingRole.ACCOUNTANT)],
    }
    bound: dict[str, list[str]] = {}
    for name, nickname in DEMO_TENANTS:
        # The unionid links the official account's follower oa-demo-<name> (the chatbot's
        # sandbox, server/wechat/sandbox.py) to this mini-program identity.
        identity, _ = await TenantIdentity.get_or_create(
            app=TenantApp.MINIAPP, openid=f"o-demo-{name}",
            defaults={"nickname": nickname, "unionid": f"u-demo-{name}"},
        )  # fmt: skip
        for account, role in plan[name]:
            await bind(identity.id, account, role=role, via=BindingVia.STAFF, actor="system:seed")
        bound[nickname] = [account.number for account, _ in plan[name]]
    return bound


# The demo's staff login for the admin panel (printed in the banner): head office of the
# park's organisation.
DEMO_STAFF = ("demo", "shuidian-demo")


async def seed_staff(site_id: int) -> tuple[str, str]:
    """The demo staff member (idempotent); returns their username and password."""
    from server.staff.models import AdminUser, StaffRole
    from server.staff.service.users import create_admin

    username, password = DEMO_STAFF
    if not await AdminUser.exists(username=username):
        site = await Site.get(id=site_id)
        await create_admin(
            username, password, role=StaffRole.ORG_ADMIN,
            organisation=await Organisation.get(id=site.organisation_id),  # type: ignore[attr-defined]
            display_name="演示管理员", actor="system:seed",
        )  # fmt: skip
    return username, password


# -- the demo's back-dated month -----------------------------------------------------------------
HISTORY_DAYS = 30
_SPLIT = (10, 30, 35, 25, 0)  # a day's electricity per TOU band (尖 峰 平 谷 深谷), percent
_HISTORY_CHANNELS = ("wechat", "wechat", "alipay", "cash", "bank", "wechat", "cash")


async def seed_history(
    site_id: int, *, now: datetime, tz: ZoneInfo, days: int = HISTORY_DAYS
) -> int:
    """The site's last `days` local days before today, so every chart and list has something
    to show at start-up: each platform-billed meter's daily use (`daily_usage`) and its
    charge through the ledger (one per meter and day, at 23:00), and each paying account's
    recharges — one a week, by WeChat Pay, Alipay, cash or bank transfer, each paying for the
    week after it — posted at their own times (`post_batch(at=…)`). An account's recharges add
    up to its charges, so the balances the demo starts from (`seed_money`, `seed_non_payers`)
    are unchanged. Deterministic, one batch. Returns how many postings were written."""
    from server.ledger.batch import post_batch
    from server.ledger.posting import Channel, ChargeType, Posting, charge_legs, recharge_posting
    from server.metering.models import DailyUsage

    today = now.astimezone(tz).date()
    meters = (
        await Meter.filter(
            site_id=site_id, account_id__not_isnull=True, billing=MeterBilling.PLATFORM
        )
        .order_by("id")
        .values_list("id", "account_id", "kind")
    )
    postings: list[Posting] = []
    times: list[datetime] = []
    usage: list[DailyUsage] = []
    owed: dict[tuple[int, int], int] = {}  # (account, week) -> fen charged that week
    for meter_id, account_id, kind in meters:
        if opening_fen(account_id) == 0:  # the non-payers have no history of paying
            continue
        water = kind == MeterKind.WATER
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            wobble = (meter_id * 7919 + back * 104729) % 1000  # deterministic, 0..999
            # electricity 8–38 kWh at ~¥1.05; water 0.2–1.6 m³ at ¥4.60 (the seed's tariffs)
            e4 = (2_000 + wobble * 14) if water else (80_000 + wobble * 300)
            fen = e4 * (460 if water else 105) // 10_000
            bands = [0, 0, 0, 0, 0] if water else [e4 * p // 100 for p in _SPLIT]
            if not water:
                bands[2] += e4 - sum(bands)
            at = datetime.combine(day, time(23), tz)
            usage.append(DailyUsage(
                meter_id=meter_id, account_id=account_id, day=day, quantity_e4=e4,
                band1_e4=bands[0], band2_e4=bands[1], band3_e4=bands[2], band4_e4=bands[3],
                band5_e4=bands[4], amount_fen=fen, updated_at=at,
            ))  # fmt: skip
            item = ChargeType.WATER if water else ChargeType.ELECTRICITY
            postings.append(Posting(
                f"usage:history:{meter_id}:{day.isoformat()}", TxKind.CHARGE,
                charge_legs(account_id, item, fen), f"{'水费' if water else '电费'} {day}",
                "system:billing", allow_arrears=True,
            ))  # fmt: skip
            times.append(at)
            week = (back - 1) // 7
            owed[(account_id, week)] = owed.get((account_id, week), 0) + fen
    for (account_id, week), fen in sorted(owed.items()):
        back = min(days, week * 7 + 7)  # the week's first day: paid that morning
        day = today - timedelta(days=back)
        channel = _HISTORY_CHANNELS[(account_id + week) % len(_HISTORY_CHANNELS)]
        label = {"wechat": "微信充值", "alipay": "支付宝充值", "cash": "现金充值",
                 "bank": "对公转账充值"}[channel]  # fmt: skip
        postings.append(recharge_posting(
            account_id, Channel(channel), fen, key=f"history:recharge:{account_id}:{day}",
            actor="system:seed", memo=f"{label}（历史）",
        ))  # fmt: skip
        times.append(datetime.combine(day, time(9 + account_id % 9, account_id % 60), tz))
    async with in_transaction():
        await DailyUsage.bulk_create(usage, batch_size=2_000)
        await post_batch(postings, at=times)
    return len(postings)
