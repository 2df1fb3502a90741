"""Bill files as the platforms format them, built from rows keyed by column name.

Columns a row does not name are left empty. The parsers in providers/bills.py read these.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from datetime import date, datetime

WECHAT_COLUMNS = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
).split(",")
WECHAT_SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)

ALIPAY_COLUMNS = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
).split(",")
_RULE = "-" * 41


def wechat_trade_bill(rows: Sequence[dict[str, str]], summary_count: int | None = None) -> bytes:
    """UTF-8 CSV: header, backtick-prefixed rows, summary header and values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(WECHAT_COLUMNS)
    for row in rows:
        writer.writerow("`" + row.get(col, "") for col in WECHAT_COLUMNS)
    writer.writerow(WECHAT_SUMMARY.split(","))
    count = len(rows) if summary_count is None else summary_count
    writer.writerow([f"`{count}"] + ["`0.00"] * 6)
    return out.getvalue().encode("utf-8")


def alipay_bill_zip(
    account: str, day: date, rows: Sequence[dict[str, str]], exported_at: datetime
) -> bytes:
    """Zip with the GBK detail CSV (comment lines around the table) and a summary CSV."""
    refunds = sum(1 for r in rows if r.get("业务类型") == "退款")
    span = f"{day:%Y年%m月%d日}"
    lines = [
        "#支付宝业务明细查询",
        f"#账号：[{account}]",
        f"#起始日期：[{span} 00:00:00]   终止日期：[{span} 23:59:59]",
        f"#{_RULE}业务明细列表{_RULE}",
        ",".join(ALIPAY_COLUMNS),
        *(",".join(f"{r.get(col, '')}\t" for col in ALIPAY_COLUMNS) for r in rows),
        f"#{_RULE}业务明细列表结束{_RULE}",
        f"#交易合计：{len(rows) - refunds}笔，退款合计：{refunds}笔",
        f"#导出时间：[{exported_at:%Y年%m月%d日 %H:%M:%S}]",
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        stem = f"{account}_{day:%Y%m%d}"
        archive.writestr(f"{stem}_业务明细.csv", "\r\n".join(lines).encode("gbk"))
        archive.writestr(f"{stem}_业务明细(汇总).csv", "#支付宝业务汇总查询\r\n".encode("gbk"))
    return buf.getvalue()
