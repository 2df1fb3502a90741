"""Posting rules: which accounts move, and by how much, for each kind of money event. Pure.

Chart of accounts, by code (credit-positive amounts, see models.py):

    wallet:<account id>     a tenant's prepaid wallet           recharge +, charge −
    clearing:<channel>      money held by WeChat Pay / Alipay / cash / bank
    revenue:<charge type>   electricity, water, rent, property fee, … income
    revenue:item:<id>       income of an organisation's own fee item (自定义收费, property)
    receivable:<account id> what a tenant owes on issued bills (催缴账单, arrears): an asset
    refunds_payable         refunds promised but not yet paid out (two-phase refunds)
    adjustments             staff corrections, each with a reason

    recharge       wallet +a, clearing −a
    charge         wallet −a, revenue +a
    adjustment     wallet ±a, adjustments ∓a
    refund hold    wallet −a, refunds_payable +a          (phase 1: money set aside)
    refund settle  refunds_payable −a, clearing +a        (phase 2a: money left the channel)
    refund void    refunds_payable −a, wallet +a          (phase 2b: refund failed)
    transfer       wallet(from) −a, wallet(to) +a         (过户: the balance to the new tenant)
    bill           receivable −t, revenue +a…, [wallet +c] (a bill issued: its lines' income;
                                                          a postpaid period's usage debt c
                                                          moved from the wallet onto the bill)
    bill settle    wallet −a, receivable +a               (a bill paid from the wallet; online
                                                          and counter payments are a recharge
                                                          of the amount, then this)
    reversal       every leg of the original, negated

Everything here is a value in, a value out; the service does the database work.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from server.ledger.errors import UnbalancedTransaction


class LedgerAccountKind(StrEnum):
    WALLET = "wallet"  # a tenant account's prepaid wallet (liability to the tenant)
    CLEARING = "clearing"  # a payment channel's clearing account (asset)
    REVENUE = "revenue"  # income per charge type
    REFUNDS_PAYABLE = "refunds_payable"  # refunds accepted but not yet paid out
    ADJUSTMENTS = "adjustments"  # manual corrections by staff, with a reason
    RECEIVABLE = "receivable"  # what a tenant owes on issued bills (asset: negative sums)


class TxKind(StrEnum):
    RECHARGE = "recharge"
    CHARGE = "charge"
    ADJUSTMENT = "adjustment"
    REFUND_HOLD = "refund_hold"
    REFUND_SETTLE = "refund_settle"
    REFUND_VOID = "refund_void"
    REVERSAL = "reversal"
    TRANSFER = "transfer"  # wallet to wallet (过户 with the balance carried over)
    BILL = "bill"  # a bill issued: the tenant's receivable against revenue (property)
    BILL_SETTLE = "bill_settle"  # a bill paid from the wallet: wallet to receivable


class Channel(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"
    CASH = "cash"
    BANK = "bank"


class ChargeType(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    RENT = "rent"
    PROPERTY_FEE = "property_fee"
    SERVICE_FEE = "service_fee"
    COMMON_SHARE = "common_share"  # 公摊
    LOSS_SHARE = "loss_share"  # 线损分摊
    CAPACITY = "capacity"  # 基本电费 (capacity / demand)


REFUNDS_PAYABLE = "refunds_payable"
ADJUSTMENTS = "adjustments"

_CHANNEL_NAMES = {
    Channel.WECHAT: "微信支付清算",
    Channel.ALIPAY: "支付宝清算",
    Channel.CASH: "现金",
    Channel.BANK: "银行转账",
}
_CHARGE_NAMES = {
    ChargeType.ELECTRICITY: "电费收入",
    ChargeType.WATER: "水费收入",
    ChargeType.RENT: "租金收入",
    ChargeType.PROPERTY_FEE: "物业费收入",
    ChargeType.SERVICE_FEE: "服务费收入",
    ChargeType.COMMON_SHARE: "公摊费用收入",
    ChargeType.LOSS_SHARE: "损耗分摊收入",
    ChargeType.CAPACITY: "基本电费收入",
}


class Leg(NamedTuple):
    """`amount_fen` added to the account named by `code` (credit-positive). A named tuple:
    billing posts thousands per round."""

    code: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What a ledger account row is, derived from its code alone."""

    code: str
    kind: LedgerAccountKind
    name: str
    account_id: int | None  # the tenant account, for wallets


def wallet(account_id: int) -> str:
    return f"wallet:{int(account_id)}"


@functools.lru_cache(maxsize=64)
def clearing(channel: Channel) -> str:
    return f"clearing:{Channel(channel).value}"


@functools.lru_cache(maxsize=64)
def revenue(charge_type: ChargeType) -> str:
    return f"revenue:{ChargeType(charge_type).value}"


def receivable(account_id: int) -> str:
    return f"receivable:{int(account_id)}"


def item_revenue(item_id: int) -> str:
    """The revenue account of an organisation's own fee item (its id: one account each)."""
    if type(item_id) is not int or item_id <= 0:
        raise UnbalancedTransaction("收费项目编号无效", item_id=item_id)
    return f"revenue:item:{item_id}"


def spec_of(code: str) -> AccountSpec:
    """Parse a code; an unknown one is refused (no account springs from a typo)."""
    head, _, tail = code.partition(":")
    if head == "revenue" and tail.startswith("item:") and tail[5:].isdigit():
        return AccountSpec(code, LedgerAccountKind.REVENUE, f"收费项目{tail[5:]}收入", None)
    if head == "receivable" and tail.isdigit():
        return AccountSpec(code, LedgerAccountKind.RECEIVABLE, f"账户{tail}应收", None)
    if head == "wallet" and tail.isdigit():
        return AccountSpec(code, LedgerAccountKind.WALLET, f"账户{tail}钱包", int(tail))
    if head == "clearing" and tail in Channel._value2member_map_:
        return AccountSpec(code, LedgerAccountKind.CLEARING, _CHANNEL_NAMES[Channel(tail)], None)
    if head == "revenue" and tail in ChargeType._value2member_map_:
        return AccountSpec(code, LedgerAccountKind.REVENUE, _CHARGE_NAMES[ChargeType(tail)], None)
    if code == REFUNDS_PAYABLE:
        return AccountSpec(code, LedgerAccountKind.REFUNDS_PAYABLE, "应付退款", None)
    if code == ADJUSTMENTS:
        return AccountSpec(code, LedgerAccountKind.ADJUSTMENTS, "调账", None)
    raise UnbalancedTransaction("未知的会计科目", code=code)


@functools.lru_cache(maxsize=256)
def _known(code: str) -> bool:
    """`spec_of` as a check, remembered (the chart's few codes other than wallets)."""
    spec_of(code)
    return True


def _is_wallet(code: str) -> bool:
    return code.startswith("wallet:") and code[7:].isdigit()


def check_amount(amount_fen: int) -> int:
    """A positive whole number of fen (bool and Decimal are refused: no implicit rounding)."""
    if type(amount_fen) is not int or amount_fen <= 0:
        raise UnbalancedTransaction("金额必须是正整数（分）", amount_fen=amount_fen)
    return amount_fen


def validate(legs: Sequence[Leg]) -> tuple[Leg, ...]:
    """At least two legs on distinct known accounts, whole non-zero fen, summing to zero."""
    legs = tuple(legs)
    if len(legs) == 2:  # most postings (billing's thousands): the same checks, inline
        (c1, a1), (c2, a2) = legs
        if (type(a1) is int and type(a2) is int and a1 == -a2 != 0 and c1 != c2
                and (_is_wallet(c1) or _known(c1)) and (_is_wallet(c2) or _known(c2))):  # fmt: skip
            return legs
    if len(legs) < 2:
        raise UnbalancedTransaction("一笔记账至少需要两条分录", legs=len(legs))
    total = 0
    for code, amount in legs:
        if type(amount) is not int or amount == 0:
            raise UnbalancedTransaction("分录金额必须是非零整数（分）", code=code)
        if not _is_wallet(code):
            _known(code)
        total += amount
    if len({leg.code for leg in legs}) != len(legs):
        raise UnbalancedTransaction("同一科目在一笔记账中只能出现一次")
    if total != 0:
        raise UnbalancedTransaction("借贷不平衡：分录合计不为零", total_fen=total)
    return legs


def fingerprint(kind: TxKind, legs: Sequence[Leg]) -> tuple[str, tuple[tuple[str, int], ...]]:
    """What must match for a replayed key to count as the same effect."""
    return TxKind(kind).value, tuple(sorted((leg.code, leg.amount_fen) for leg in legs))


def recharge_legs(account_id: int, channel: Channel, amount_fen: int) -> tuple[Leg, ...]:
    a = check_amount(amount_fen)
    return Leg(wallet(account_id), a), Leg(clearing(channel), -a)


def charge_legs(account_id: int, charge_type: ChargeType, amount_fen: int) -> tuple[Leg, ...]:
    a = check_amount(amount_fen)
    return Leg(wallet(account_id), -a), Leg(revenue(charge_type), a)


def fee_legs(account_id: int, revenue_code: str, amount_fen: int) -> tuple[Leg, ...]:
    """A fee from the wallet to a revenue account (a charge type's or a fee item's)."""
    a = check_amount(amount_fen)
    if spec_of(revenue_code).kind is not LedgerAccountKind.REVENUE:
        raise UnbalancedTransaction("收费只能记入收入科目", code=revenue_code)
    return Leg(wallet(account_id), -a), Leg(revenue_code, a)


def bill_legs(
    account_id: int, lines: Sequence[tuple[str, int]], carried_fen: int = 0
) -> tuple[Leg, ...]:
    """A bill issued: each line's amount to its revenue account (lines of one account are
    summed), the whole onto the tenant's receivable; `carried_fen` is a postpaid period's
    usage already charged to the wallet, moved from the wallet onto the bill."""
    per_code: dict[str, int] = {}
    for code, amount in lines:
        if spec_of(code).kind is not LedgerAccountKind.REVENUE:
            raise UnbalancedTransaction("账单明细只能记入收入科目", code=code)
        per_code[code] = per_code.get(code, 0) + check_amount(amount)
    if type(carried_fen) is not int or carried_fen < 0:
        raise UnbalancedTransaction("结转金额必须是非负整数（分）", carried_fen=carried_fen)
    total = sum(per_code.values()) + carried_fen
    check_amount(total)
    legs = [Leg(receivable(account_id), -total)]
    legs += [Leg(code, amount) for code, amount in sorted(per_code.items())]
    if carried_fen:
        legs.append(Leg(wallet(account_id), carried_fen))
    return tuple(legs)


def bill_settle_legs(account_id: int, amount_fen: int) -> tuple[Leg, ...]:
    a = check_amount(amount_fen)
    return Leg(wallet(account_id), -a), Leg(receivable(account_id), a)


def adjust_legs(account_id: int, amount_fen: int) -> tuple[Leg, ...]:
    """+ credits the wallet, − debits it; the adjustments account takes the other side."""
    if type(amount_fen) is not int or amount_fen == 0:
        raise UnbalancedTransaction("调整金额必须是非零整数（分）", amount_fen=amount_fen)
    return Leg(wallet(account_id), amount_fen), Leg(ADJUSTMENTS, -amount_fen)


def refund_hold_legs(account_id: int, amount_fen: int) -> tuple[Leg, ...]:
    a = check_amount(amount_fen)
    return Leg(wallet(account_id), -a), Leg(REFUNDS_PAYABLE, a)


def refund_settle_legs(channel: Channel, amount_fen: int) -> tuple[Leg, ...]:
    a = check_amount(amount_fen)
    return Leg(REFUNDS_PAYABLE, -a), Leg(clearing(channel), a)


def refund_void_legs(account_id: int, amount_fen: int) -> tuple[Leg, ...]:
    a = check_amount(amount_fen)
    return Leg(REFUNDS_PAYABLE, -a), Leg(wallet(account_id), a)


def transfer_legs(from_account_id: int, to_account_id: int, amount_fen: int) -> tuple[Leg, ...]:
    """One wallet's money to another (过户): two distinct wallets, nothing else moves."""
    a = check_amount(amount_fen)
    if int(from_account_id) == int(to_account_id):
        raise UnbalancedTransaction("不能转给同一个账户", account_id=from_account_id)
    return Leg(wallet(from_account_id), -a), Leg(wallet(to_account_id), a)


class Posting(NamedTuple):
    """One transaction to post, as a value: what `post()` posts, and `post_batch` takes a list
    of. A named tuple: billing builds thousands per round. `account_id` names the tenant
    account of a transaction that moves no wallet or several (by default the one wallet it
    moves); `reverses_id` / `resolves_id` the transaction it reverses or settles (each once:
    a UNIQUE reference)."""

    key: str
    kind: TxKind
    legs: tuple[Leg, ...]
    memo: str
    actor: str
    channel: Channel | None = None
    allow_arrears: bool = False
    require_open: bool = False
    account_id: int | None = None
    reverses_id: int | None = None
    resolves_id: int | None = None


MAX_KEY = 160


def checked(p: Posting) -> Posting:
    """What no posting may be, refused before anything is written (legs: `validate`; a key of
    at most 160 characters and an actor); memo and actor cut to their columns. The posting
    itself when it needs no change (a posting rule's own value: billing's thousands)."""
    legs = validate(p.legs)
    if not p.key or len(p.key) > MAX_KEY or not p.actor:
        raise UnbalancedTransaction("记账需要幂等键（不超过160字符）和操作人", key=p.key)
    if legs is p.legs and type(p.kind) is TxKind and len(p.memo) <= 200 and len(p.actor) <= 100:
        return p
    return p._replace(kind=TxKind(p.kind), legs=legs, memo=p.memo[:200], actor=p.actor[:100])


def recharge_posting(
    account_id: int, channel: Channel, amount_fen: int, *, key: str, actor: str, memo: str = ""
) -> Posting:
    """Money in through a payment channel: wallet +, channel clearing −, open accounts only."""
    legs = recharge_legs(account_id, channel, amount_fen)
    return Posting(key, TxKind.RECHARGE, legs, memo or "充值", actor, Channel(channel),
                   require_open=True)  # fmt: skip


def reversal_legs(legs: Sequence[Leg]) -> tuple[Leg, ...]:
    return tuple(Leg(leg.code, -leg.amount_fen) for leg in legs)
