"""Parsers for the platforms' daily trade bills (pure: bytes in, `BillRow`s out).

WeChat Pay v3 trade bill (`GET /v3/bill/tradebill`, tar_type=GZIP), UTF-8 CSV, every field
prefixed with a backtick so spreadsheets keep long numbers as text; amounts in yuan:

    交易时间,公众账号ID,商户号,…,微信订单号,商户订单号,…,交易状态,…,商户退款单号,…,订单金额,申请退款金额,…
    `2024-03-01 10:00:00,`wx…,`1900000100,…,`4200…,`R202403010001,…,`SUCCESS,…
    总交易单数,应结订单总金额,退款总金额,…          ← summary header
    `2,`12.30,`0.00,…                                ← summary values

The API gives `hash_type`/`hash_value` next to the link; the hash is of the bill itself, so
we check it on the decompressed bytes (as the official wechatpay-java SDK does).

Alipay trade bill (`alipay.data.dataservice.bill.downloadurl.query`): a zip holding a detail
CSV and a summary CSV, GBK, `#` comment lines above and below the table, fields padded with
tabs/spaces; amounts in yuan, refunds negative; 业务类型 is 交易 or 退款.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
from datetime import datetime
from decimal import InvalidOperation
from zoneinfo import ZoneInfo

from server.core.money import parse_yuan
from server.payments.providers.base import BillRow, BillRowType, Channel

SHANGHAI = ZoneInfo("Asia/Shanghai")


class BillError(Exception):
    """A bill file could not be trusted or read; reconciliation must not run on it."""


class BillHashMismatch(BillError):
    """The downloaded bill's digest differs from the one the platform announced."""


class BillMalformed(BillError):
    """The bill does not have the expected shape (columns, totals, amounts)."""


def _fen(text: str) -> int:
    try:
        return abs(parse_yuan(text or "0"))
    except (ValueError, InvalidOperation) as exc:
        raise BillMalformed(f"bad amount {text!r}") from exc


def _time(text: str) -> datetime:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError as exc:
        raise BillMalformed(f"bad time {text!r}") from exc


def check_hash(data: bytes, hash_type: str, hash_value: str) -> None:
    """Raise `BillHashMismatch` unless `data` has the announced digest (SHA1 or SM3)."""
    kind = hash_type.upper()
    if kind == "SHA1":
        digest = hashlib.sha1(data).hexdigest()
    elif kind == "SM3" and "sm3" in hashlib.algorithms_available:
        digest = hashlib.new("sm3", data).hexdigest()
    else:
        raise BillHashMismatch(f"unsupported or missing hash type {hash_type!r}")
    if digest.lower() != hash_value.strip().lower():
        raise BillHashMismatch(f"{kind} {digest} != announced {hash_value}")


def _wechat_row(rec: dict[str, str]) -> BillRow:
    state = rec["交易状态"]
    common = {
        "channel": Channel.WECHAT,
        "out_trade_no": rec["商户订单号"],
        "transaction_id": rec["微信订单号"],
        "time": _time(rec["交易时间"]),
    }
    if state == "REFUND":
        return BillRow(
            type=BillRowType.REFUND,
            out_refund_no=rec["商户退款单号"],
            amount_fen=_fen(rec.get("申请退款金额") or rec["退款金额"]),
            status=rec.get("退款状态") or "SUCCESS",
            **common,
        )
    return BillRow(
        type=BillRowType.PAYMENT,
        out_refund_no="",
        amount_fen=_fen(rec.get("订单金额") or rec["应结订单金额"]),
        status=state,
        **common,
    )


def parse_wechat_trade_bill(
    content: bytes, *, hash_type: str, hash_value: str, gzipped: bool = True
) -> list[BillRow]:
    """Parse a WeChat Pay v3 trade bill (ALL) after checking its announced digest."""
    try:
        data = gzip.decompress(content) if gzipped else content
    except (OSError, EOFError) as exc:
        raise BillMalformed("not a gzip file") from exc
    check_hash(data, hash_type, hash_value)
    lines = data.decode("utf-8-sig").splitlines()
    if not lines:
        raise BillMalformed("empty bill")
    header = next(csv.reader([lines[0]]))
    rows: list[BillRow] = []
    summary_at = None
    for index, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        if line.startswith("总交易单数"):
            summary_at = index
            break
        values = [v.removeprefix("`").strip() for v in next(csv.reader([line]))]
        if len(values) != len(header):
            raise BillMalformed(f"line {index + 1}: {len(values)} fields, want {len(header)}")
        try:
            rows.append(_wechat_row(dict(zip(header, values, strict=True))))
        except KeyError as exc:
            raise BillMalformed(f"missing column {exc}") from exc
    if summary_at is None or summary_at + 1 >= len(lines):
        raise BillMalformed("no summary lines")
    totals = [v.removeprefix("`").strip() for v in next(csv.reader([lines[summary_at + 1]]))]
    if not totals or not totals[0].isdigit() or int(totals[0]) != len(rows):
        raise BillMalformed(f"summary says {totals[:1]} rows, found {len(rows)}")
    return rows


ALIPAY_HEADER = "支付宝交易号"


def _alipay_detail_lines(content: bytes) -> list[str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise BillMalformed("not a zip file") from exc
    with archive:
        for info in archive.infolist():
            text = archive.read(info).decode("gbk")
            lines = text.splitlines()
            if any(line.startswith(ALIPAY_HEADER) for line in lines):
                return lines
    raise BillMalformed("no detail table (支付宝交易号…) in the zip")


def _alipay_row(rec: dict[str, str]) -> BillRow:
    kind = rec["业务类型"]
    if kind not in ("交易", "退款"):
        raise BillMalformed(f"unknown 业务类型 {kind!r}")
    is_refund = kind == "退款"
    return BillRow(
        channel=Channel.ALIPAY,
        type=BillRowType.REFUND if is_refund else BillRowType.PAYMENT,
        out_trade_no=rec["商户订单号"],
        out_refund_no=rec["退款批次号/请求号"] if is_refund else "",
        transaction_id=rec["支付宝交易号"],
        amount_fen=_fen(rec["订单金额（元）"]),
        status="SUCCESS",
        time=_time(rec["完成时间"] or rec["创建时间"]),
    )


def parse_alipay_bill(content: bytes) -> list[BillRow]:
    """Parse Alipay's zipped GBK trade bill (业务明细)."""
    lines = _alipay_detail_lines(content)
    table = [line for line in lines if line.strip() and not line.startswith("#")]
    reader = csv.reader(table)
    header = [h.strip() for h in next(reader)]
    rows: list[BillRow] = []
    for values in reader:
        values = [v.strip() for v in values]
        if len(values) != len(header):
            raise BillMalformed(f"{len(values)} fields, want {len(header)}")
        try:
            rows.append(_alipay_row(dict(zip(header, values, strict=True))))
        except KeyError as exc:
            raise BillMalformed(f"missing column {exc}") from exc
    _check_alipay_footer(lines, rows)
    return rows


def _check_alipay_footer(lines: list[str], rows: list[BillRow]) -> None:
    for line in lines:
        if line.startswith("#交易合计"):
            # "#交易合计：2笔，退款合计：1笔"
            try:
                parts = line.replace("#", "").split("，")
                payments = int(parts[0].split("：")[1].rstrip("笔"))
                refunds = int(parts[1].split("：")[1].rstrip("笔"))
            except (IndexError, ValueError) as exc:
                raise BillMalformed(f"bad footer {line!r}") from exc
            got_pay = sum(1 for r in rows if r.type is BillRowType.PAYMENT)
            if (payments, refunds) != (got_pay, len(rows) - got_pay):
                raise BillMalformed(f"footer says {payments}+{refunds}, found {len(rows)}")
            return
    raise BillMalformed("no #交易合计 footer")


__all__ = [
    "BillError",
    "BillHashMismatch",
    "BillMalformed",
    "check_hash",
    "parse_alipay_bill",
    "parse_wechat_trade_bill",
]
