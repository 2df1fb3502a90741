"""SMS binding over the real app: the sandbox sender keeps the last code per phone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from server.accounts.models import Account, AccountBinding, BindingCode
from server.accounts.service.sms import NoSmsChannel, SandboxSmsSender, mask
from tests.accounts.tenant_fixtures import (  # noqa: F401  (fixtures)
    Tenant,
    login,
    tenant_app_fixture,
)
from tests.factories import create_account
from tests.payments.service_fixtures import PayApp

PHONE = "13812345678"


def sender(pay: PayApp) -> SandboxSmsSender:
    return pay.app.ctx.sms_sender


async def send(tenant: Tenant, site_id: int, number: str) -> dict:
    answer = await tenant.post(
        "/api/v1/bind/sms/send", json={"site_id": site_id, "account_number": number}
    )
    return {"status": answer.status_code, **answer.json()}


async def verify(tenant: Tenant, site_id: int, number: str, code: str) -> dict:
    answer = await tenant.post(
        "/api/v1/bind/sms/verify",
        json={"site_id": site_id, "account_number": number, "code": code},
    )
    return {"status": answer.status_code, **answer.json()}


async def code_sent(pay: PayApp, tenant: Tenant, account: Account) -> str:
    """Send a code for `account` and read it from the sandbox sender."""
    await send(tenant, account.site_id, account.number)
    code = sender(pay).last_code(account.phone)
    assert code is not None
    return code


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_send_then_verify_binds_as_owner(tenant_app: PayApp) -> None:
    account = await create_account(number="A-0101", phone=PHONE)
    tenant = await login(tenant_app)
    sent = await send(tenant, account.site_id, "A-0101")
    assert sent == {"status": 200, "phone_masked": "138****5678", "expires_in": 300,
                    "resend_after": 60}  # fmt: skip
    code = sender(tenant_app).last_code(PHONE)
    assert code is not None and len(code) == 6
    row = await BindingCode.get(phone=PHONE)
    assert code not in row.code_hash  # only the HMAC is stored
    bound = await verify(tenant, account.site_id, "A-0101", code)
    assert bound["status"] == 200, bound
    assert bound["account"]["id"] == account.id
    assert bound["account"]["role"] == "owner"
    binding = await AccountBinding.get(identity_id=tenant.identity.id, account_id=account.id)
    assert binding.via == "sms"
    again = await verify(tenant, account.site_id, "A-0101", code)  # the code is used up
    assert again["status"] == 400 and again["error"] == "code_expired"
    me = (await tenant.get("/api/v1/me")).json()
    assert [a["id"] for a in me["accounts"]] == [account.id]


async def test_wrong_code_counts_down_then_too_many_tries(tenant_app: PayApp) -> None:
    account = await create_account(phone=PHONE)
    tenant = await login(tenant_app)
    code = await code_sent(tenant_app, tenant, account)
    for left in (4, 3, 2, 1, 0):
        answer = await verify(tenant, account.site_id, account.number, wrong(code))
        assert (answer["status"], answer["error"]) == (400, "code_wrong")
        assert answer["detail"] == {"tries_left": str(left)}
    dead = await verify(tenant, account.site_id, account.number, code)  # right, but too late
    assert (dead["status"], dead["error"]) == (429, "too_many_tries")
    assert not await AccountBinding.exists(identity_id=tenant.identity.id)


async def test_parallel_guesses_cannot_exceed_five_tries(tenant_app: PayApp) -> None:
    account = await create_account(phone=PHONE)
    tenant = await login(tenant_app)
    code = await code_sent(tenant_app, tenant, account)
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 13)]
    answers = await asyncio.gather(
        *(verify(tenant, account.site_id, account.number, g) for g in guesses)
    )
    assert sorted(a["status"] for a in answers) == [400] * 5 + [429] * 7
    assert (await BindingCode.get(phone=PHONE)).tries == 5


async def test_an_expired_code_is_refused(tenant_app: PayApp) -> None:
    account = await create_account(phone=PHONE)
    tenant = await login(tenant_app)
    code = await code_sent(tenant_app, tenant, account)
    await BindingCode.filter(phone=PHONE).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    answer = await verify(tenant, account.site_id, account.number, code)
    assert (answer["status"], answer["error"]) == (400, "code_expired")


async def test_one_send_a_minute_per_phone_and_per_identity(tenant_app: PayApp) -> None:
    first = await create_account(phone=PHONE)
    second = await create_account(site=await first.site, phone="13900001111")
    tenant, other = await login(tenant_app), await login(tenant_app)
    assert (await send(tenant, first.site_id, first.number))["status"] == 200
    same_phone = await send(other, first.site_id, first.number)
    assert (same_phone["status"], same_phone["error"]) == (429, "too_many_codes")
    assert 0 < int(same_phone["detail"]["retry_after"]) <= 60
    same_identity = await send(tenant, second.site_id, second.number)
    assert (same_identity["status"], same_identity["error"]) == (429, "too_many_codes")
    assert (await send(other, second.site_id, second.number))["status"] == 200


async def test_parallel_sends_send_one_code(tenant_app: PayApp) -> None:
    account = await create_account(phone=PHONE)
    tenant = await login(tenant_app)
    answers = await asyncio.gather(
        *(send(tenant, account.site_id, account.number) for _ in range(5))
    )
    assert sorted(a["status"] for a in answers) == [200] + [429] * 4
    assert await BindingCode.filter(phone=PHONE).count() == 1


async def sent_earlier(account: Account, hours_ago: int, senders: list[tuple[int, str]]) -> None:
    """Codes sent `hours_ago`, a minute apart, each by (identity id, phone)."""
    earlier = datetime.now(UTC) - timedelta(hours=hours_ago)
    for n, (identity_id, phone) in enumerate(senders):
        await BindingCode.create(
            identity_id=identity_id, account_id=account.id, phone=phone, code_hash="x",
            expires_at=earlier, created_at=earlier + timedelta(minutes=n),
        )  # fmt: skip


async def test_ten_sends_a_day_per_phone(tenant_app: PayApp) -> None:
    account = await create_account(phone=PHONE)
    tenant = await login(tenant_app)
    others = [(await login(tenant_app)).identity.id for _ in range(10)]
    await sent_earlier(account, 20, [(identity_id, PHONE) for identity_id in others])
    answer = await send(tenant, account.site_id, account.number)
    assert (answer["status"], answer["error"]) == (429, "too_many_codes")
    assert 3 * 3600 < int(answer["detail"]["retry_after"]) <= 4 * 3600 + 60


async def test_ten_sends_a_day_per_identity(tenant_app: PayApp) -> None:
    account = await create_account(phone=PHONE)
    tenant = await login(tenant_app)
    await sent_earlier(account, 2, [(tenant.identity.id, f"1390000{n:04d}") for n in range(10)])
    answer = await send(tenant, account.site_id, account.number)
    assert (answer["status"], answer["error"]) == (429, "too_many_codes")


async def test_unknown_account_or_no_phone_is_404(tenant_app: PayApp) -> None:
    account = await create_account(phone="")
    tenant = await login(tenant_app)
    assert (await send(tenant, account.site_id, account.number))["status"] == 404
    assert (await send(tenant, account.site_id, "NO-SUCH"))["status"] == 404
    assert (await send(tenant, account.site_id + 999, account.number))["status"] == 404
    bad = await tenant.post("/api/v1/bind/sms/send", json={"site_id": "x"})
    assert bad.status_code == 422


async def test_production_without_sms_channel_is_503(tenant_app: PayApp) -> None:
    tenant_app.app.ctx.sms_sender = NoSmsChannel()
    account = await create_account(phone=PHONE)
    answer = await send(await login(tenant_app), account.site_id, account.number)
    assert (answer["status"], answer["error"]) == (503, "sms_unavailable")
    assert not await BindingCode.exists()  # nothing sent, nothing counted


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13812345678", "138****5678"), ("+8613812345678", "+86*******5678"), ("12345", "*****")],
)
def test_mask(phone: str, masked: str) -> None:
    assert mask(phone) == masked
