"""Metering's use cases: the door other contexts, the windows and the workers import from.
The work lives in this package's modules (readings, commands, alarm_service, replacement,
balance, daily_usage, live_values, reconcile, reading_store, config, credits).

    queue_command(meter_id, op, params, *, actor, reason, batch_id=None, key=None)
    read_now(meter_id, *, actor)                                          点抄
    on_wallet_credited(account_id, *, reason, credit_key=None)            after a recharge
    on_wallets_credited(credits, *, now) -> failed                       the same, batched
    evaluate_accounts(account_ids, *, now)                                alarms + relay
    ingest(items, *, now)                                                 readings
    replace_meter(old_meter_id, *, new_meter, old_final_reading,          换表
                  new_first_reading, actor, at)
    available_balance(account_id) / available_balances(account_ids)      可用余额

Both `ingest` and `replace_meter` leave billable deltas `pending`: billing prices them
(`server.billing.pipeline.process_readings` / `process_replacement` run the whole round).
"""

from server.metering.service.alarm_service import evaluate_accounts
from server.metering.service.balance import available_balance, available_balances
from server.metering.service.commands import queue_command
from server.metering.service.credits import (
    WalletCredit,
    on_wallet_credited,
    on_wallets_credited,
    read_now,
)
from server.metering.service.readings import IncomingReading, IngestReport, ingest
from server.metering.service.replacement import MeterReplaced, replace_meter

__all__ = [
    "IncomingReading",
    "IngestReport",
    "MeterReplaced",
    "WalletCredit",
    "available_balance",
    "available_balances",
    "evaluate_accounts",
    "ingest",
    "on_wallet_credited",
    "on_wallets_credited",
    "queue_command",
    "read_now",
    "replace_meter",
]
