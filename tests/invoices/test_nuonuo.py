"""The Nuonuo client against the local fake platform: a signed blue invoice accepted, pending,
then issued; a red one reversing it; the platform's refusals with their codes, temporary or
not; a refused token fetched anew; the platform down."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.invoices.providers.base import BillingLine, BillingOrder, Outcome, PlatformError
from server.invoices.providers.nuonuo import NuonuoClient, sign
from server.invoices.sandbox import FakeNuonuo

SELLER = "91350100M000100Y43"


def order(order_no: str, *, amount_fen: int = 11300, red_of: str = "", **kw: str) -> BillingOrder:
    sign_ = -1 if red_of else 1
    tax_fen = (amount_fen * 13 + 56) // 113  # 13 % of the tax-inclusive amount, rounded
    line = BillingLine(
        "*供电*电费", "1100101000000000000", Decimal("0.13"), sign_ * amount_fen, sign_ * tax_fen
    )
    values = {"buyer_name": "深圳市甲乙科技有限公司", "buyer_tax_id": "91110108MA01KPGK0L"} | kw
    return BillingOrder(
        order_no=order_no, seller_tax_id=SELLER, seller_address="深圳市南山区",
        seller_phone="0755-26000000", clerk="李会计", special=False, lines=[line],
        issued_on=datetime.now(UTC), red=bool(red_of), blue_invoice_no=red_of, **values,
    )  # fmt: skip


def test_signature_of_a_known_request() -> None:
    """A request of this exact shape passed the platform's gateway check (a published case)."""
    assert sign("SECRET", "APPKEY", "SENID", "12345678", "1700000000", '{"a":1}') == (
        "7iSZiR+0g+376QEJ38xLM+3vGDs="
    )


async def test_client_against_the_fake_platform() -> None:
    async with FakeNuonuo(pending_polls=2) as fake:
        client = fake.client()
        try:
            serial = await client.submit(order("I1"))
            assert serial and fake.calls == ["nuonuo.OpeMplatform.requestBillingNew"]
            sent = fake.order("I1")
            assert sent["invoiceLine"] == "pc" and sent["invoiceType"] == "1"
            assert sent["invoiceDetail"][0]["taxIncludedAmount"] == "113.00"
            assert sent["invoiceDetail"][0]["tax"] == "13.00" and sent["pushMode"] == "-1"
            # asynchronous: pending twice (开票中), then issued with its number and links
            for _ in range(2):
                (r,) = await client.results(SELLER, ["I1"])
                assert r.outcome is Outcome.PENDING and r.code == "20"
            (r,) = await client.results(SELLER, ["I1"])
            assert r.outcome is Outcome.ISSUED and r.serial == serial and len(r.invoice_no) == 20
            assert r.pdf_url.endswith(".pdf") and r.issued_at is not None
            # a submit whose answer was lost, sent again: accepted, not a second invoice
            assert await client.submit(order("I1")) == ""
            # another seller's query does not see it
            assert await client.results("91110108MA01KPGK0L", ["I1"]) == []

            # red invoice (冲红): whole, once, against an issued blue invoice
            fake.pending_polls = 0
            with pytest.raises(PlatformError) as partial:
                await client.submit(order("R1", amount_fen=100, red_of=r.invoice_no))
            assert partial.value.code == "E9121" and not partial.value.temporary
            await client.submit(order("R2", red_of=r.invoice_no))
            assert fake.order("R2")["invoiceType"] == "2"
            assert fake.order("R2")["invoiceNum"] == r.invoice_no
            (red,) = await client.results(SELLER, ["R2"])
            assert red.outcome is Outcome.ISSUED
            with pytest.raises(PlatformError) as twice:
                await client.submit(order("R3", red_of=r.invoice_no))
            assert twice.value.code == "E9122"

            # refusals keep the platform's code; busy and 5xx are temporary
            with pytest.raises(PlatformError) as bad_buyer:
                await client.submit(order("I2", buyer_tax_id="91110108MA01KPGK0X"))
            assert (bad_buyer.value.code, bad_buyer.value.temporary) == ("E9101", False)
            fake.faults += ["E9999", "500"]
            for code in ("E9999", "http.500"):
                with pytest.raises(PlatformError) as busy:
                    await client.submit(order("I3"))
                assert (busy.value.code, busy.value.temporary) == (code, True)
            # the platform fails an accepted order later: status 22 with its cause
            fake.fail_orders["I4"] = "购方名称与税号不匹配"
            await client.submit(order("I4"))
            (failed,) = await client.results(SELLER, ["I4"])
            assert failed.outcome is Outcome.FAILED and failed.message == "购方名称与税号不匹配"

            # a refused token is fetched again once; the call goes through
            assert fake.tokens_issued == 1
            fake.revoke_tokens()
            assert len(await client.results(SELLER, ["I1", "I4"])) == 2
            assert fake.tokens_issued == 2

            # a wrong secret: refused at the token endpoint, not retried
            wrong = NuonuoClient(fake.app_key, "not-the-secret",
                                 endpoint=f"{fake.base_url}/open/v1/services",
                                 token_url=f"{fake.base_url}/accessToken")  # fmt: skip
            with pytest.raises(PlatformError) as unsigned:
                await wrong.results(SELLER, ["I1"])
            assert unsigned.value.code.startswith("token.")
            await wrong.aclose()

            # down: unreachable, temporary; back up on the same address
            await fake.down()
            with pytest.raises(PlatformError) as down:
                await client.submit(order("I5"))
            assert (down.value.code, down.value.temporary) == ("nuonuo.unreachable", True)
            await fake.up()
            assert await client.submit(order("I5"))
        finally:
            await client.aclose()
