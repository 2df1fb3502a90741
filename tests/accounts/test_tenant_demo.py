"""The demo's tenants: bound once, whatever how often the seed runs."""

from __future__ import annotations

import pytest

from server.accounts.models import AccountBinding, TenantIdentity
from server.metering.models import MeterBilling
from server.seed import seed_tenants
from tests.factories import create_account, create_meter, create_site

pytestmark = pytest.mark.usefixtures("db")


async def test_demo_tenants_are_bound_once() -> None:
    site = await create_site()
    shops = [await create_account(site=site, number=f"A10{n}") for n in range(1, 6)]
    await create_meter(shops[4], billing=MeterBilling.METER)
    first = await seed_tenants(site.id)
    assert first == {"张老板": ["A101", "A102"], "李店长": ["A105"], "王会计": ["A101"]}
    assert await seed_tenants(site.id) == first
    zhang = await TenantIdentity.get(openid="o-demo-zhang")
    assert zhang.nickname == "张老板"
    assert await AccountBinding.filter(identity=zhang).count() == 2
    wang = await AccountBinding.get(identity__openid="o-demo-wang")
    assert (wang.account_id, wang.role) == (shops[0].id, "accountant")  # type: ignore[attr-defined]
    assert await AccountBinding.all().count() == 4
