"""`shuidian` — the command line: demo, serve, worker, migrate, seed, createadmin, simulate,
ledger check, usage backfill, tenant qr, wechat menu/say, report. A wrong setting ends the command
with one line naming it, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from server.core.errors import ConfigError, ShuidianError
from server.core.logs import configure_logging
from server.core.settings import Settings, load_settings
from workers.sim.config import add_arguments as add_sim_arguments


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from workers.sim.run import main as simulate_main

        return simulate_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        return int(args.func(settings, args) or 0)
    except ConfigError as exc:
        print(f"shuidian: {exc}", file=sys.stderr)
        return 2
    except ShuidianError as exc:
        print(f"shuidian: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


REPORTS = ("monthly", "energy", "compare", "combined", "ranking", "arrears", "offline", "faults",
           "commands")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shuidian", description="水电 Shuidian 预付费水电平台")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="embedded mode: everything in one process with a simulated park")
    sub.add_parser("serve", help="run the web/API server (production: several workers)")
    w = sub.add_parser("worker", help="run one background worker")
    w.add_argument("name", help="collector | controller | scheduler | payments")
    sub.add_parser("migrate", help="apply database migrations")
    seed = sub.add_parser(
        "seed",
        help="register the simulated park's meters (give the options `shuidian simulate` got)",
    )
    add_sim_arguments(seed)
    seed.add_argument(
        "--poll-interval", type=int, default=900, help="seconds between polling rounds (900)"
    )
    a = sub.add_parser("createadmin", help="create a staff user")
    a.add_argument("--username", required=True)
    a.add_argument("--password", help="prompted for when omitted; or SHUIDIAN_ADMIN_PASSWORD")
    a.add_argument("--role", default="superadmin")
    a.add_argument("--organisation", help="organisation name (not for superadmin)")
    sub.add_parser("simulate", help="run the simulated park (see `shuidian simulate --help`)")
    st = sub.add_parser("status", help="what the collectors and controllers on this host do")
    st.add_argument("--stale", type=float, default=120, metavar="SECONDS",
                    help="a worker silent this long is reported stuck (exit 1)")  # fmt: skip
    led = sub.add_parser("ledger", help="ledger tools")
    led.add_argument("action", choices=["check"])
    led.add_argument(
        "--pending-after",
        type=float,
        metavar="SECONDS",
        help="list readings still unbilled this long after they were stored"
        " (default SHUIDIAN_PENDING_ALERT_S, 900)",
    )
    use = sub.add_parser("usage", help="daily usage tools")
    use.add_argument("action", choices=["backfill"], help="rebuild daily usage from readings")
    use.add_argument("--meters-per-batch", type=int, default=100)
    ten = sub.add_parser("tenant", help="tenant self-service tools")
    ten_sub = ten.add_subparsers(dest="action", required=True)
    qr = ten_sub.add_parser("qr", help="a one-use binding QR code for an account (PNG or PDF)")
    qr.add_argument("--site", required=True, help="site id or name")
    qr.add_argument("--account", required=True, help="account number (户号)")
    qr.add_argument("--role", choices=["owner", "accountant"], default="owner")
    qr.add_argument("--hours", type=int, default=None, help="valid this long (default 72)")
    qr.add_argument("--out", required=True, help="file.png or file.pdf")
    wx = sub.add_parser("wechat", help="the official account's chatbot")
    wx_sub = wx.add_subparsers(dest="action", required=True)
    menu = wx_sub.add_parser("menu", help="publish server/wechat/menu.json (WeChat menu/create)")
    menu.add_argument("--print", action="store_true", help="print the menu, do not publish")
    say = wx_sub.add_parser(
        "say", help="write to the chatbot as WeChat's server would (signed, encrypted)"
    )
    say.add_argument("text", nargs="?", default="", help="what the follower writes (余额 …)")
    say.add_argument("--openid", required=True, help="the follower's official-account openid")
    say.add_argument("--click", metavar="KEY", help="a menu click instead (BALANCE, USAGE …)")
    say.add_argument("--plain", action="store_true", help="明文模式 (default: encrypted)")
    say.add_argument("--url", help="the endpoint (default http://<host>:<port>/wechat/official)")
    sh = sub.add_parser("sharing", help="common-area sharing (公摊) of a period")
    sh.add_argument("action", choices=["run", "preview"])
    sh.add_argument("period", help="the month, e.g. 2026-11")
    sh.add_argument("--site", type=int, action="append", required=True, help="site id (repeatable)")
    tf = sub.add_parser("tariffs", help="tariff tools")
    tf_sub = tf.add_subparsers(dest="action", required=True)
    levy = tf_sub.add_parser(
        "levy-capacity", help="levy two-part plans' basic charge (基本电费) of an ended month"
    )
    levy.add_argument("--month", required=True, help="the month, e.g. 2026-11")
    levy.add_argument("--organisation", type=int, help="one organisation's accounts only")
    rep = sub.add_parser("report", help="a report as Excel, the sheets of its admin page's export")
    rep.add_argument("name", choices=REPORTS, help=" | ".join(REPORTS))
    rep.add_argument("--site", action="append", required=True,
                     help="site id or name (repeatable)")  # fmt: skip
    rep.add_argument("--month", help="YYYY-MM (default this month): energy, faults and commands"
                     " cover its days, combined January to it")  # fmt: skip
    rep.add_argument("--days", type=int, default=3, help="offline: at least this many days (3)")
    rep.add_argument("--top", type=int, default=20, help="ranking: this many accounts (20)")
    rep.add_argument("--out", required=True, help="file.xlsx")
    for name, parser in sub.choices.items():
        parser.set_defaults(func=COMMANDS.get(name))
    return p


def _run(coro_factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(coro_factory())


def cmd_demo(settings: Settings, _: argparse.Namespace) -> int:
    from server.runtime import demo, stop_on_signals

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await demo(settings, stop)

    _run(go)
    return 0


def cmd_serve(settings: Settings, _: argparse.Namespace) -> int:
    from server.runtime import serve_web, stop_on_signals

    if settings.web_workers > 1:
        _run(lambda: check_existing_db(settings))
        return _serve_multi(settings)

    async def go() -> None:
        from server.core.db import close_db

        await open_existing_db(settings)  # fail fast with a one-line error before listening
        await close_db()
        stop = asyncio.Event()
        stop_on_signals(stop)
        print(f"shuidian: serving on http://{settings.host}:{settings.port}", flush=True)
        await serve_web(settings, stop, manage_db=True)

    _run(go)
    return 0


def _serve_multi(settings: Settings) -> int:
    """Several Sanic worker processes (production), each building the app from settings."""
    from functools import partial

    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from server.core.app import create_app

    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    app.prepare(host=settings.host, port=settings.port, workers=settings.web_workers)
    Sanic.serve(primary=app, app_loader=loader)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from server.runtime import run_worker, stop_on_signals

    async def go() -> None:
        await check_existing_db(settings)
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(args.name, settings, stop)

    _run(go)
    return 0


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from server.core.db import migrate

    _run(lambda: migrate(settings))
    print("shuidian: database is up to date")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    """Register every meter `shuidian simulate` serves with the same options (polled and
    behind MQTT gateways), without opening a port: the simulator may be running already."""
    from server.core.db import close_db, init_db, migrate
    from server.metering.models import MeteringPolicy
    from server.seed import seed_money, seed_park
    from workers.sim.config import config_from
    from workers.sim.run import Simulation

    try:
        sim = Simulation(config_from(args))
        directory = sim.plan()
    except ValueError as exc:
        raise ConfigError(f"seed: {exc}") from None

    async def go() -> Any:
        await migrate(settings)
        await init_db(settings)
        try:
            now = datetime.now(UTC)
            summary = await seed_park(sim.park.meters.values(), directory, now=now)
            await seed_money(summary.site_id, now=now)
            await MeteringPolicy.update_or_create(
                defaults={"poll_interval_s": args.poll_interval}, site_id=summary.site_id
            )
            return summary
        finally:
            await close_db()

    summary = _run(go)
    print(
        f"shuidian: site {summary.site_id}: {summary.accounts} accounts, "
        f"{summary.meters} meters ({summary.gateways} buses and gateways), "
        f"{summary.rooms} rooms; polled every {args.poll_interval} s"
    )
    return 0


def cmd_createadmin(settings: Settings, args: argparse.Namespace) -> int:
    from server.core.db import close_db
    from server.places.models import Organisation
    from server.staff.models import StaffRole
    from server.staff.service.users import create_admin

    password = args.password or os.environ.get("SHUIDIAN_ADMIN_PASSWORD")
    if not password:
        password = getpass.getpass("password: ")
    try:
        role = StaffRole(args.role)
    except ValueError:
        raise ConfigError(
            f"--role: one of {', '.join(r.value for r in StaffRole)}, not {args.role!r}"
        ) from None

    async def go() -> None:
        await open_existing_db(settings)
        try:
            org = None
            if args.organisation:
                org = await Organisation.get_or_none(name=args.organisation)
                if org is None:
                    raise ConfigError(
                        f"--organisation: no organisation named {args.organisation!r}"
                    )
            await create_admin(
                args.username, password, role=role, organisation=org, actor=_cli_actor()
            )
        finally:
            await close_db()

    _run(go)
    print(f"shuidian: created {role} {args.username}")
    return 0


def cmd_ledger(settings: Settings, args: argparse.Namespace) -> int:
    from server.core.db import close_db
    from server.ledger.check import run_check

    async def go() -> int:
        await open_existing_db(settings)
        try:
            ledger = await run_check()
            return max(ledger, await _check_pending(args.pending_after or settings.pending_alert_s))
        finally:
            await close_db()

    return int(_run(go))


async def _check_pending(after_s: float) -> int:
    """Readings the collector's sweep should have billed by now: 0 when there are none."""
    from datetime import timedelta

    from server.metering.service.readings import pending_before

    stale = await pending_before(datetime.now(UTC) - timedelta(seconds=after_s))
    if not stale:
        print(f"抄表读数检查通过：没有超过 {after_s:.0f} 秒仍未计费的读数。")
        return 0
    print(f"有 {len(stale)} 条读数入库超过 {after_s:.0f} 秒仍未计费（采集进程是否在运行？）：")
    for r in stale[:20]:
        print(f"  reading {r.id}: meter {r.meter_id}, 抄表时间 {r.taken_at.isoformat()},"
              f" 入库 {r.received_at.isoformat()}")  # fmt: skip
    return 1


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """One line per worker status file (workers/status.py); 1 when one is stale."""
    import time

    from workers.status import read_all

    workers = read_all(settings.data_dir)
    if not workers:
        print(f"shuidian: no collector or controller has reported in {settings.data_dir}/status")
        return 1
    stale = 0
    for w in workers:
        age = time.time() - float(w.pop("updated_at"))
        stale += age > args.stale
        flag = "STUCK" if age > args.stale else "ok"
        name = w.pop("worker")
        rest = " ".join(f"{k}={v}" for k, v in w.items() if k not in ("role", "host"))
        print(f"{flag:<5} {name}@{w.get('host')} {age:.0f} s ago: {rest}")
    return 1 if stale else 0


def cmd_usage(settings: Settings, args: argparse.Namespace) -> int:
    """`usage backfill`: daily_usage from stored readings and charges (idempotent)."""
    from server.core.db import close_db
    from server.metering.service.daily_usage import backfill

    async def go() -> Any:
        await open_existing_db(settings)
        try:
            return await backfill(tz=settings.tz, meters_per_batch=args.meters_per_batch)
        finally:
            await close_db()

    report = _run(go)
    print(
        f"shuidian: daily usage rebuilt for {report.meters} meters from {report.readings} "
        f"readings and {report.charges} charges: {report.days} meter-days"
    )
    return 0


def cmd_sharing(settings: Settings, args: argparse.Namespace) -> int:
    """`sharing run|preview PERIOD --site N`: each common account's period, shared (run posts
    it once; a second run posts nothing and prints what was posted)."""
    from server.core.db import close_db
    from server.sharing.service.pools import pools
    from server.sharing.service.sharing import preview, run_sharing

    async def go() -> list[Any]:
        await open_existing_db(settings)
        try:
            if args.action == "run":
                return await run_sharing(
                    args.period, site_ids=args.site, tz=settings.tz, actor=_cli_actor()
                )
            return [
                await preview(args.site, p.id, args.period, settings.tz)
                for p in await pools(args.site)
            ]
        finally:
            await close_db()

    for done in _run(go):
        state = "已入账" if done.posted else "预览"
        print(f"{done.pool.site} {done.pool.name} {done.period}: {done.quantity} kWh,"
              f" ¥{done.amount_fen / 100:.2f}, {len(done.lines)} 户 ({state})")  # fmt: skip
        for line in done.lines:
            print(f"  {line.number} {line.tenant_name}: ¥{line.amount_fen / 100:.2f}")
    return 0


def cmd_tariffs(settings: Settings, args: argparse.Namespace) -> int:
    """`tariffs levy-capacity --month YYYY-MM`: the month's basic charge of two-part plans,
    once per account (a second run charges nothing and says how many were charged before)."""
    from server.core.db import close_db
    from server.tariffs.levy import levy_capacity

    async def go() -> Any:
        await open_existing_db(settings)
        try:
            return await levy_capacity(args.month, args.organisation, actor=_cli_actor())
        finally:
            await close_db()

    report = _run(go)
    money = f"¥{report.charged_fen / 100:,.2f}"
    print(f"{report.month} 基本电费：本次征收 {report.charged} 户 {money}，"
          f"此前已征收 {report.already} 户，跳过 {len(report.skipped)} 户")  # fmt: skip
    for skipped in report.skipped:
        print(f"  跳过 {skipped.number}：{skipped.reason}")
    return 0


def cmd_tenant(settings: Settings, args: argparse.Namespace) -> int:
    """`tenant qr`: a signed, one-use binding ticket drawn as a QR card with its caption."""
    from pathlib import Path

    from server.accounts.config import TenantSettings
    from server.accounts.models import BindingRole
    from server.accounts.service.keys import secret_key
    from server.accounts.service.qr_card import binding_card, save_card
    from server.accounts.service.tickets import issue_ticket
    from server.core.db import close_db
    from server.places.service.sites import site_by_ref

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".pdf"):
        raise ConfigError(f"--out: a .png or .pdf file, not {args.out!r}")
    hours = TenantSettings().qr_ticket_hours if args.hours is None else args.hours
    if hours < 1:
        raise ConfigError("--hours: at least 1")

    async def go() -> Any:
        await open_existing_db(settings)
        try:
            site = await site_by_ref(args.site)
            return await issue_ticket(
                secret_key(settings), site.id, args.account, role=BindingRole(args.role),
                hours=hours, actor=_cli_actor(),
            )  # fmt: skip
        finally:
            await close_db()

    issued = _run(go)
    card = binding_card(
        issued.token, site=issued.site_name, number=issued.account.number,
        tenant_name=issued.account.tenant_name, role=issued.role.value,
        expires_at=issued.expires_at.astimezone(settings.tz),
    )  # fmt: skip
    save_card(card, out)
    if card.font is None:
        print("shuidian: no Chinese font found (install fonts-wqy-microhei): caption in English",
              file=sys.stderr)  # fmt: skip
    until = issued.expires_at.astimezone(settings.tz).isoformat(timespec="minutes")
    print(f"shuidian: binding QR for {issued.site_name} {issued.account.number} "
          f"({issued.role.value}) valid until {until}: {out}")  # fmt: skip
    print(f"ticket: {issued.token}")  # what the QR says, to send as text where scanning is hard
    return 0


def cmd_wechat(settings: Settings, args: argparse.Namespace) -> int:
    """`wechat menu`: publish the chatbot's menu; `wechat say`: sign and post a follower's
    message to the endpoint (the demo's sandbox account when none is configured)."""
    import json

    from server.accounts.config import TenantSettings
    from server.wechat.config import OfficialSettings

    official = OfficialSettings()
    if not official.configured():
        if settings.mode != "embedded":
            raise ConfigError("SHUIDIAN_WECHAT_APPID and SHUIDIAN_WECHAT_TOKEN: not set")
        official = official.sandboxed()
    if args.action == "say":
        return _wechat_say(settings, official, args)
    from server.wechat.service.menu import load_menu

    try:
        menu = load_menu(official, official.miniapp_appid or TenantSettings().miniapp_appid)
    except ValueError as exc:
        raise ConfigError(f"menu: {exc}") from None
    if args.print:
        print(json.dumps(menu, ensure_ascii=False, indent=2))
        return 0
    if official.appid == OfficialSettings().sandboxed().appid:
        raise ConfigError("SHUIDIAN_WECHAT_APPID/SECRET: the sandbox account has no menu to set")

    async def go() -> None:
        from server.core.services import redis_client
        from server.notify.providers.wechat import Tokens
        from server.wechat.service.menu import publish
        from server.wechat.service.official import OfficialApi, OfficialApiError

        redis = redis_client(settings)  # the token is shared with the web workers
        tokens = Tokens(official.appid, official.secret_value(), official.api_base_url, redis)
        try:
            await publish(OfficialApi(official.appid, tokens, official.api_base_url), menu)
        except OfficialApiError as exc:
            raise ConfigError(f"WeChat refused the menu: {exc}") from None
        finally:
            if redis is not None:
                await redis.aclose()

    _run(go)
    print(f"shuidian: menu published for {official.appid}")
    return 0


def _wechat_say(settings: Settings, official: Any, args: argparse.Namespace) -> int:
    import httpx

    from server.wechat.sandbox import WechatServer

    url = args.url or f"http://{settings.host}:{settings.port}/wechat/official"
    server = WechatServer(url, official)
    if args.click:
        xml = server.event_xml(args.openid, "click", args.click)
    elif args.text:
        xml = server.text_xml(args.openid, args.text)
    else:
        raise ConfigError("wechat say: give the text, or --click KEY")
    try:
        delivery = _run(lambda: server.post(xml, encrypted=not args.plain))
    except httpx.HTTPError as exc:
        raise ConfigError(f"wechat say: nothing answers at {url} ({exc})") from None
    if delivery.status != 200:
        print(f"shuidian: refused ({delivery.status}): {delivery.body}", file=sys.stderr)
        return 1
    print(delivery.text or delivery.body)
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """`report <name> --site … --month … --out file.xlsx`: one report as the admin page's
    Excel export (the same sheets), for the sites given."""
    import shutil
    from pathlib import Path

    from server.reports.periods import Month

    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        raise ConfigError(f"--out: an .xlsx file, not {args.out!r}")
    try:
        today = datetime.now(settings.tz).date()
        month = Month.parse(args.month) if args.month else Month.of(today)
    except ValueError:
        raise ConfigError(f"--month: YYYY-MM, not {args.month!r}") from None

    async def go() -> tuple[str, int, Any]:
        from admin.report_pages import export
        from server.core.db import close_db
        from server.core.excel import build_xlsx
        from server.places.service.sites import site_by_ref

        await open_existing_db(settings)
        try:
            site_ids = [(await site_by_ref(ref)).id for ref in args.site]
            title, sheets = await export(args.name, site_ids, month, settings.tz,
                                         days=max(1, args.days), top=max(1, args.top))  # fmt: skip
            rows = sum(len(s.rows) for s in sheets)  # type: ignore[arg-type]
            spool = await build_xlsx(*sheets)
        finally:
            await close_db()
        return title, rows, spool

    title, rows, spool = _run(go)
    with spool, out.open("wb") as f:
        shutil.copyfileobj(spool, f)
    print(f"shuidian: {title}: {rows} rows → {out}")
    return 0


def _cli_actor() -> str:
    """Who ran the command, for the operation log: `cli:<login name>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        user = "unknown"
    return f"cli:{user}"[:64]


def no_database(settings: Settings, why: str) -> ConfigError:
    """The one line a command prints when there is no migrated Shuidian database."""
    from server.core.db import _safe

    demo = f"sqlite://{settings.data_dir / 'demo.sqlite3'}"
    return ConfigError(
        f"SHUIDIAN_DB_URL: no Shuidian database at {_safe(settings.db_url)} ({why}); create it"
        f" with `shuidian migrate`, or use the demo's: SHUIDIAN_DB_URL={demo}"
        " (rebuilt at every `./run demo`)"
    )


def _sqlite_file_exists(settings: Settings) -> bool:
    """False only for a SQLite URL whose file is missing."""
    if not settings.db_url.startswith("sqlite://"):
        return True
    path = settings.db_url.removeprefix("sqlite://").split("?", 1)[0]
    return path == ":memory:" or os.path.isfile(path)


async def open_existing_db(settings: Settings) -> None:
    """`init_db` for commands that read the database and must not create it: a missing
    SQLite file is refused before connecting (connecting would create it), a database
    without our tables after (the connection is closed again)."""
    from server.core.db import close_db, init_db

    if not _sqlite_file_exists(settings):
        raise no_database(settings, "no such file")
    await init_db(settings)
    from tortoise import connections

    try:
        await connections.get("default").execute_query("SELECT 1 FROM tortoise_migrations LIMIT 1")
    except Exception:  # the table is missing (asyncpg, sqlite3 and tortoise each name it)
        await close_db()
        raise no_database(settings, "no tables: never migrated") from None


async def check_existing_db(settings: Settings) -> None:
    """`open_existing_db`, then close again: for commands that connect later themselves."""
    from server.core.db import close_db

    await open_existing_db(settings)
    await close_db()


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "seed": cmd_seed,
    "createadmin": cmd_createadmin,
    "ledger": cmd_ledger,
    "sharing": cmd_sharing,
    "status": cmd_status,
    "tariffs": cmd_tariffs,
    "usage": cmd_usage,
    "report": cmd_report,
    "tenant": cmd_tenant,
    "wechat": cmd_wechat,
}


if __name__ == "__main__":
    raise SystemExit(main())
