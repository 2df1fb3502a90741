"""Daily bill parsers: hand-written vectors, then real downloads from the sandbox."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.payments.providers.base import BillRowType, Channel
from server.payments.providers.bills import (
    BillHashMismatch,
    BillMalformed,
    parse_alipay_bill,
    parse_wechat_trade_bill,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

WECHAT_BILL = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n"
    "`2024-03-01 09:15:02,`wx8888888888888888,`1900000109,`0,`,`4200002201202403011234567890,"
    "`R20240301A,`oUpF8uMuAJO,`JSAPI,`SUCCESS,`OTHERS,`CNY,`100.00,`0.00,`0,`0,`0.00,`0.00,`,`,"
    "`电费充值,`,`0.60000,`0.60%,`100.00,`0.00,`\r\n"
    "`2024-03-01 18:40:00,`wx8888888888888888,`1900000109,`0,`,`4200002201202403011234567890,"
    "`R20240301A,`oUpF8uMuAJO,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000012024,"
    "`RF20240301A,`12.34,`0.00,`ORIGINAL,`SUCCESS,`电费充值,`,`-0.07000,`0.60%,`0.00,`12.34,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`2,`100.00,`12.34,`0.00,`0.53000,`100.00,`12.34\r\n"
).encode()


def test_wechat_bill_vector():
    rows = parse_wechat_trade_bill(
        gzip.compress(WECHAT_BILL),
        hash_type="SHA1",
        hash_value=hashlib.sha1(WECHAT_BILL).hexdigest(),
    )
    pay, refund = rows
    assert (pay.type, pay.out_trade_no, pay.amount_fen, pay.status) == (
        BillRowType.PAYMENT, "R20240301A", 10000, "SUCCESS",
    )  # fmt: skip
    assert pay.transaction_id == "4200002201202403011234567890"
    assert pay.time == datetime(2024, 3, 1, 9, 15, 2, tzinfo=SHANGHAI)
    assert (refund.type, refund.out_refund_no, refund.amount_fen, refund.status) == (
        BillRowType.REFUND, "RF20240301A", 1234, "SUCCESS",
    )  # fmt: skip


def test_wechat_bill_hash_mismatch_and_bad_summary():
    with pytest.raises(BillHashMismatch):
        parse_wechat_trade_bill(gzip.compress(WECHAT_BILL), hash_type="SHA1", hash_value="0" * 40)
    short = WECHAT_BILL.replace(b"`2,`100.00", b"`3,`100.00")
    with pytest.raises(BillMalformed):
        parse_wechat_trade_bill(
            gzip.compress(short), hash_type="SHA1", hash_value=hashlib.sha1(short).hexdigest()
        )
    with pytest.raises(BillMalformed):
        parse_wechat_trade_bill(b"not gzip", hash_type="SHA1", hash_value="")


ALIPAY_DETAIL = "\r\n".join([
    "#支付宝业务明细查询",
    "#账号：[20881234567890120156]",
    "#起始日期：[2024年03月01日 00:00:00]   终止日期：[2024年03月02日 00:00:00]",
    "#-----------------------------------------业务明细列表----------------------------------------",
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注",
    "2024030122001400001\t,A20240301B\t,交易\t,水费充值\t,2024-03-01 10:00:00\t,"
    "2024-03-01 10:00:05\t,\t,\t,\t,\t,159****5620\t,88.80\t,88.80\t,0.00\t,0.00\t,0.00\t,"
    "0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,-0.53\t,0.00\t,\t",
    "2024030122001400001\t,A20240301B\t,退款\t,水费充值\t,2024-03-01 15:00:00\t,"
    "2024-03-01 15:00:01\t,\t,\t,\t,\t,159****5620\t,-8.80\t,-8.80\t,0.00\t,0.00\t,0.00\t,"
    "0.00\t,0.00\t,\t,0.00\t,0.00\t,AR20240301B\t,0.05\t,0.00\t,\t",
    "#-----------------------------------------业务明细列表结束------------------------------------",
    "#交易合计：1笔，退款合计：1笔",
    "#导出时间：[2024年03月02日 09:10:11]",
])  # fmt: skip


def _zip(detail: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("20881234567890120156_20240301_业务明细(汇总).csv", "#汇总".encode("gbk"))
        archive.writestr("20881234567890120156_20240301_业务明细.csv", detail.encode("gbk"))
    return buf.getvalue()


def test_alipay_bill_vector():
    pay, refund = parse_alipay_bill(_zip(ALIPAY_DETAIL))
    assert (pay.channel, pay.type, pay.out_trade_no, pay.amount_fen) == (
        Channel.ALIPAY, BillRowType.PAYMENT, "A20240301B", 8880,
    )  # fmt: skip
    assert (refund.type, refund.out_refund_no, refund.amount_fen) == (
        BillRowType.REFUND, "AR20240301B", 880,
    )  # fmt: skip
    assert refund.time == datetime(2024, 3, 1, 15, 0, 1, tzinfo=SHANGHAI)


def test_alipay_bill_footer_must_match():
    with pytest.raises(BillMalformed):
        parse_alipay_bill(_zip(ALIPAY_DETAIL.replace("退款合计：1笔", "退款合计：2笔")))
    with pytest.raises(BillMalformed):
        parse_alipay_bill(b"PK not really")


async def test_download_both_bills_from_the_sandbox(
    wechat, wechat_endpoint, alipay, alipay_endpoint, sandbox
):
    expires = datetime.now(SHANGHAI) + timedelta(minutes=30)
    await wechat.create_order("W202403030001", 2500, "电费", "oT", expires, wechat_endpoint.url)
    await alipay.create_order("A202403030001", 1999, "水费", None, expires, alipay_endpoint.url)
    sandbox.wechat.pay("W202403030001")
    sandbox.alipay.pay("A202403030001")
    await wechat.refund("W202403030001", "RF202403030001", 500, 2500, "退款")
    await alipay.refund("A202403030001", "AR202403030001", 999, 1999, "退款")
    today = datetime.now(SHANGHAI).date()

    rows = await wechat.download_bill(today)
    assert sorted((r.type, r.out_refund_no or r.out_trade_no, r.amount_fen) for r in rows) == [
        (BillRowType.PAYMENT, "W202403030001", 2500),
        (BillRowType.REFUND, "RF202403030001", 500),
    ]
    rows = await alipay.download_bill(today)
    assert sorted((r.type, r.out_refund_no or r.out_trade_no, r.amount_fen) for r in rows) == [
        (BillRowType.PAYMENT, "A202403030001", 1999),
        (BillRowType.REFUND, "AR202403030001", 999),
    ]
    sandbox.wechat.corrupt_bill_hash = True
    with pytest.raises(BillHashMismatch):
        await wechat.download_bill(today)
    await sandbox.wechat.notifier.drain()
    await sandbox.alipay.notifier.drain()
