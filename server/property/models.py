"""Property billing tables: fee items, a site's property settings, monthly runs with their
per-account lines, bills with their lines, organisations' print templates.

Idempotency: a run line that charged or billed carries `posted_key` — `fee:<account>:<item>:
<period start>` — UNIQUE, written in the same database transaction as its ledger posting, so
an account is charged for an item's period once whatever runs again. A bill is UNIQUE on its
`key` (`bill:period:<account>:<month>`, `bill:fees:<run>:<account>`).
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from server.property.fees import FeeBasis, FeeCollection, FeeCycle, FeeKind
from server.property.printing import PrintKind


class RunStatus(StrEnum):
    PREVIEW = "preview"  # computed and shown, nothing posted
    POSTED = "posted"  # charged and billed


class LineOutcome(StrEnum):
    CHARGED = "charged"  # posted by this run
    ALREADY = "already"  # posted before (another run of the period): nothing again
    PREVIEW = "preview"  # what a real run would post


class BillKind(StrEnum):
    FEES = "fees"  # 催缴账单: fees to pay, or the part the wallet could not cover
    PERIOD = "period"  # 后付费 period bill: the period's usage and fees


class BillStatus(StrEnum):
    DRAFT = "draft"  # 待审核 (postpaid)
    CONFIRMED = "confirmed"  # 已审核, not yet issued
    ISSUED = "issued"  # 已出账: on the tenant's receivable, to pay
    PAID = "paid"  # 已结清


class FeeItem(Model):
    """A fee a site charges its tenants (租金、物业费、服务费 or its own 自定义收费)."""

    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="fee_items", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=50)
    kind = fields.CharEnumField(FeeKind, max_length=16)
    basis = fields.CharEnumField(FeeBasis, max_length=8)
    # Fen (fixed) or fen per m² (area): exact decimal text, see server.property.fees.Rule.
    amount = fields.CharField(max_length=32)
    cycle = fields.CharEnumField(FeeCycle, max_length=10)
    billing_day = fields.SmallIntField(default=1)
    due = fields.DateField(null=True)  # a one-off's date
    collection = fields.CharEnumField(FeeCollection, max_length=8)
    active = fields.BooleanField(default=True)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "property_fee_item"
        unique_together = (("site", "name"),)


class PropertySettings(Model):
    """A site's property billing rules (a site without a row: the defaults)."""

    site: fields.OneToOneRelation = fields.OneToOneField(
        "models.Site",
        related_name="property_settings",
        on_delete=fields.CASCADE,
        primary_key=True,
    )
    fees_may_cut = fields.BooleanField(default=False)  # 费用欠缴可断电
    due_days = fields.SmallIntField(default=15)  # a bill is overdue this many days after issue

    class Meta:
        table = "property_settings"


class FeeRun(Model):
    """One month's run for a site: a preview, or the real thing."""

    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="fee_runs", on_delete=fields.RESTRICT
    )
    month = fields.CharField(max_length=7)  # "2026-11"
    status = fields.CharEnumField(RunStatus, max_length=8)
    accounts = fields.IntField(default=0)
    charged_fen = fields.BigIntField(default=0)  # deducted from wallets
    billed_fen = fields.BigIntField(default=0)  # onto bills
    already = fields.IntField(default=0)  # lines posted before
    steps = fields.JSONField(default=dict)  # each step's summary (steps other modules add)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "property_fee_run"
        indexes = (("site_id", "month"),)


class FeeRunLine(Model):
    """What the run did for one account, item and period."""

    id = fields.BigIntField(primary_key=True)
    run: fields.ForeignKeyRelation[FeeRun] = fields.ForeignKeyField(
        "models.FeeRun", related_name="lines", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="fee_lines", on_delete=fields.RESTRICT
    )
    item: fields.ForeignKeyRelation[FeeItem] = fields.ForeignKeyField(
        "models.FeeItem", related_name="lines", on_delete=fields.RESTRICT
    )
    period_start = fields.DateField()
    period_end = fields.DateField()
    days = fields.IntField()
    period_days = fields.IntField()
    full_fen = fields.BigIntField()
    amount_fen = fields.BigIntField()
    deducted_fen = fields.BigIntField(default=0)
    billed_fen = fields.BigIntField(default=0)
    outcome = fields.CharEnumField(LineOutcome, max_length=8)
    posted_key = fields.CharField(max_length=120, null=True, unique=True)
    # The bill its billed part is on (None: nothing billed, or a postpaid line waiting for
    # its period bill).
    bill: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Bill", related_name="fee_lines", on_delete=fields.RESTRICT, null=True
    )

    class Meta:
        table = "property_fee_run_line"


class Bill(Model):
    """A bill to pay: fees (催缴账单) or a postpaid period's bill."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=120, unique=True)
    number = fields.CharField(max_length=32, unique=True)
    kind = fields.CharEnumField(BillKind, max_length=8)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="bills", on_delete=fields.RESTRICT
    )
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="bills", on_delete=fields.RESTRICT
    )
    period_start = fields.DateField()
    period_end = fields.DateField()
    status = fields.CharEnumField(BillStatus, max_length=10)
    total_fen = fields.BigIntField()
    carried_fen = fields.BigIntField(default=0)  # postpaid usage moved from the wallet
    paid_fen = fields.BigIntField(default=0)
    due_date = fields.DateField(null=True)
    confirmed_by = fields.CharField(max_length=100, default="")
    issued_at = fields.DatetimeField(null=True)
    paid_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "property_bill"
        indexes = (("account_id", "status"), ("site_id", "status"))


class BillLine(Model):
    id = fields.BigIntField(primary_key=True)
    bill: fields.ForeignKeyRelation[Bill] = fields.ForeignKeyField(
        "models.Bill", related_name="lines", on_delete=fields.CASCADE
    )
    label = fields.CharField(max_length=100)
    revenue_code = fields.CharField(max_length=64, default="")  # '' for carried usage
    amount_fen = fields.BigIntField()

    class Meta:
        table = "property_bill_line"


class RunShareLine(Model):
    """What a run's sharing step did for one account: its share of a pool's common-area use
    (`sharing`) or of the site's line losses (`losses`), charged through server.sharing under
    that context's ledger key (`share:<pool>:<month>:<account>`, `loss:<site>:<month>:<account>`),
    previewed, or found charged before."""

    id = fields.BigIntField(primary_key=True)
    run: fields.ForeignKeyRelation[FeeRun] = fields.ForeignKeyField(
        "models.FeeRun", related_name="share_lines", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="run_share_lines", on_delete=fields.RESTRICT
    )
    step = fields.CharField(max_length=16)  # "sharing" | "losses"
    label = fields.CharField(max_length=100)
    amount_fen = fields.BigIntField()
    outcome = fields.CharEnumField(LineOutcome, max_length=8)

    class Meta:
        table = "property_run_share_line"


class PrintTemplate(Model):
    """An organisation's own paper for bills or counter receipts (Jinja2 source, rendered in
    the sandbox: server.property.printing). No row: our default for the kind."""

    id = fields.IntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Organisation", related_name="print_templates", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(PrintKind, max_length=8)
    source = fields.TextField()
    updated_by = fields.CharField(max_length=100, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "property_print_template"
        unique_together = (("organisation", "kind"),)
