"""Available balance (可用余额): how much money an account (户) has, one rule for everyone
who shows it or acts on it — the tenant's balance, alarms and trips, the demo's tenants.

An account's money sits in two kinds of place:

- the **wallet** (`account.balance_fen`, written by the ledger only). Platform-billed meters
  (平台计费) are debited from it reading by reading;
- the **money registers** of meter-billed meters (表端计费): a recharge command writes money
  into the meter, which then deducts by itself. The platform knows a register as the meter
  last confirmed it (`meter.money_fen`). The wallet is debited only when the meter confirms
  a recharge, so money in an open (queued or sent) recharge command is still in the wallet:
  the wallet's *free* money is the wallet minus what is on its way to a meter.

    total     = wallet + Σ confirmed registers               (everything, each fen once)
    per utility (electricity, water):
        on meters   = Σ registers + open recharges of its meter-billed meters
        available   = on meters + the wallet's free money, if the utility draws on the
                      wallet (it has a platform-billed meter, or the account has no
                      platform-billed meter at all, so the wallet's money goes to its meters)
    alarm     = the free wallet, if any meter is platform-billed (that is the money their
                use is debited from and their relays are tripped on; a meter-billed meter
                trips itself on its own register); else the total (alarms only, no relay)

The wallet is shared: when two utilities both draw on it, each shows it, so per-utility
amounts add up to more than the total; `total_fen` counts it once. `Account.billing_mode`
(prepaid/postpaid) does not change any amount: a postpaid account's negative wallet is what
it owes. A meter-billed meter whose register was never confirmed counts 0 and is listed in
`unconfirmed`, so a screen can say "unknown" rather than show a wrong figure as certain.

`top_up_fen` says how much of the free wallet a credit should write to a meter-billed meter:
all of it when nothing else draws on the wallet; in a mixed account (一户多表 with both kinds)
enough to level the meter and the wallet, so a credit tops up whichever is lower first and
the platform-billed meters are not left with an empty wallet.

Pure: values in, frozen values out. The loader is `server.metering.service.balance`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MeterMoney:
    """What the rule needs to know of one active meter of the account."""

    meter_id: int
    utility: str  # the meter's kind: "electricity", "water"
    meter_billed: bool  # 表端计费: the meter keeps the money register
    register_fen: int | None = None  # as last confirmed by the meter (meter-billed only)
    pending_fen: int = 0  # open recharge commands to this meter (still in the wallet)


@dataclass(frozen=True, slots=True)
class UtilityBalance:
    utility: str
    available_fen: int
    on_meters_fen: int  # registers + open recharges of this utility's meter-billed meters
    draws_on_wallet: bool
    meter_billed: bool  # every meter of this utility is meter-billed


@dataclass(frozen=True, slots=True)
class Available:
    wallet_fen: int
    free_wallet_fen: int  # the wallet minus money in open recharge commands
    on_meters_fen: int  # Σ confirmed registers
    total_fen: int
    alarm_fen: int  # what alarms and platform trips act on (see the module docstring)
    platform_billed: bool  # some active meter is platform-billed (the wallet is theirs)
    utilities: tuple[UtilityBalance, ...]  # by utility name
    unconfirmed: tuple[int, ...] = ()  # meter-billed meters with no confirmed register

    def of(self, utility: str) -> UtilityBalance | None:
        return next((u for u in self.utilities if u.utility == utility), None)

    @property
    def lowest_fen(self) -> int:
        """The least any utility has left (the wallet, for an account with no meter)."""
        return min((u.available_fen for u in self.utilities), default=self.free_wallet_fen)


def available(wallet_fen: int, meters: Iterable[MeterMoney]) -> Available:
    """The account's available balance from its wallet and its active meters."""
    meters = list(meters)
    pending = sum(m.pending_fen for m in meters if m.meter_billed)
    registers = sum(m.register_fen or 0 for m in meters if m.meter_billed)
    free = wallet_fen - pending
    any_platform = any(not m.meter_billed for m in meters)
    utilities = []
    for utility in sorted({m.utility for m in meters}):
        own = [m for m in meters if m.utility == utility]
        billed = [m for m in own if m.meter_billed]
        on_meters = sum((m.register_fen or 0) + m.pending_fen for m in billed)
        draws = len(billed) < len(own) or not any_platform
        utilities.append(
            UtilityBalance(
                utility,
                on_meters + (free if draws else 0),
                on_meters,
                draws,
                meter_billed=len(billed) == len(own),
            )
        )
    total = wallet_fen + registers
    return Available(
        wallet_fen=wallet_fen,
        free_wallet_fen=free,
        on_meters_fen=registers,
        total_fen=total,
        alarm_fen=free if any_platform else total,
        platform_billed=any_platform,
        utilities=tuple(utilities),
        unconfirmed=tuple(m.meter_id for m in meters if m.meter_billed and m.register_fen is None),
    )


def top_up_fen(balance: Available, meter: MeterMoney) -> int:
    """How much of the free wallet to write to meter-billed `meter` now (0: nothing)."""
    if not meter.meter_billed or balance.free_wallet_fen <= 0:
        return 0
    if not balance.platform_billed:
        return balance.free_wallet_fen  # nothing else draws on the wallet
    on_meter = (meter.register_fen or 0) + meter.pending_fen
    # Level the two (the meter gets the odd fen): the lower one is topped up first.
    return max(0, min(balance.free_wallet_fen, (balance.free_wallet_fen - on_meter + 1) // 2))
