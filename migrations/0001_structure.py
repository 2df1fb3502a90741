from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.accounts.models import AccountStatus, BillingMode, TenantType
from server.metering.models import GatewayKind, MeterBilling, MeterStatus
from server.staff.models import StaffRole
from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Organisation",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(unique=True, max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "organisation", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Site",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "organisation",
                    fields.ForeignKeyField(
                        "models.Organisation",
                        source_field="organisation_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sites",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("address", fields.CharField(default="", max_length=200)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "site",
                "app": "models",
                "unique_together": (("organisation", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AdminUser",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("username", fields.CharField(unique=True, max_length=64)),
                ("password_hash", fields.CharField(max_length=255)),
                ("display_name", fields.CharField(default="", max_length=64)),
                (
                    "role",
                    fields.CharEnumField(
                        description="SUPERADMIN: superadmin\nORG_ADMIN: org_admin\nFINANCE: finance\nOPERATOR: operator\nSITE_ADMIN: site_admin",
                        enum_type=StaffRole,
                        max_length=16,
                    ),
                ),
                (
                    "organisation",
                    fields.ForeignKeyField(
                        "models.Organisation",
                        source_field="organisation_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="staff",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "sites",
                    fields.ManyToManyField(
                        "models.Site",
                        unique=True,
                        db_constraint=True,
                        through="admin_user_site",
                        forward_key="site_id",
                        backward_key="admin_user_id",
                        related_name="staff",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("is_active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "admin_user", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Building",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="buildings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
            ],
            options={
                "table": "building",
                "app": "models",
                "unique_together": (("site", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Floor",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "building",
                    fields.ForeignKeyField(
                        "models.Building",
                        source_field="building_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="floors",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=50)),
                ("sort_order", fields.IntField(default=0)),
            ],
            options={
                "table": "floor",
                "app": "models",
                "unique_together": (("building", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Gateway",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="gateways",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("code", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(default="", max_length=100)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="MQTT: mqtt\nTCP_TRANSPARENT: tcp\nMODBUS_TCP: modbus_tcp",
                        enum_type=GatewayKind,
                        max_length=16,
                    ),
                ),
                ("host", fields.CharField(default="", max_length=255)),
                ("port", fields.IntField(default=0)),
                ("online", fields.BooleanField(default=False)),
                (
                    "last_seen_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("poll_interval_s", fields.IntField(default=900)),
            ],
            options={"table": "gateway", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Room",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "floor",
                    fields.ForeignKeyField(
                        "models.Floor",
                        source_field="floor_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="rooms",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=50)),
                ("area_m2", fields.DecimalField(default=0, max_digits=10, decimal_places=2)),
            ],
            options={
                "table": "room",
                "app": "models",
                "unique_together": (("floor", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Account",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="accounts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "room",
                    fields.ForeignKeyField(
                        "models.Room",
                        source_field="room_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="accounts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("number", fields.CharField(max_length=32)),
                ("tenant_name", fields.CharField(max_length=100)),
                ("phone", fields.CharField(default="", max_length=20)),
                (
                    "tenant_type",
                    fields.CharEnumField(
                        default=TenantType.COMPANY,
                        description="COMPANY: company\nPERSON: person",
                        enum_type=TenantType,
                        max_length=10,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=AccountStatus.OPEN,
                        description="OPEN: open\nCLOSED: closed",
                        enum_type=AccountStatus,
                        max_length=10,
                    ),
                ),
                (
                    "billing_mode",
                    fields.CharEnumField(
                        default=BillingMode.PREPAID,
                        description="PREPAID: prepaid\nPOSTPAID: postpaid",
                        enum_type=BillingMode,
                        max_length=10,
                    ),
                ),
                ("balance_fen", fields.BigIntField(default=0)),
                ("credit_limit_fen", fields.BigIntField(default=0)),
                ("opened_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "account",
                "app": "models",
                "unique_together": (("site", "number"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Meter",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="meters",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="meters",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "gateway",
                    fields.ForeignKeyField(
                        "models.Gateway",
                        source_field="gateway_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="meters",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="ELECTRICITY: electricity\nWATER: water",
                        enum_type=MeterKind,
                        max_length=16,
                    ),
                ),
                ("model", fields.CharField(default="", max_length=32)),
                (
                    "protocol",
                    fields.CharEnumField(
                        description="DLT645: dlt645\nMODBUS_TCP: modbus_tcp\nMODBUS_RTU_TCP: modbus_rtu_tcp\nCJT188: cjt188\nMQTT_GATEWAY: mqtt_gateway",
                        enum_type=MeterProtocol,
                        max_length=16,
                    ),
                ),
                ("address", fields.CharField(max_length=32)),
                ("unit", fields.IntField(default=0)),
                ("ct_ratio", fields.IntField(default=1)),
                ("pt_ratio", fields.IntField(default=1)),
                ("rated_kw", fields.DecimalField(default=10, max_digits=10, decimal_places=2)),
                (
                    "billing",
                    fields.CharEnumField(
                        default=MeterBilling.PLATFORM,
                        description="PLATFORM: platform\nMETER: meter",
                        enum_type=MeterBilling,
                        max_length=10,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=MeterStatus.ACTIVE,
                        description="ACTIVE: active\nREMOVED: removed\nSPARE: spare",
                        enum_type=MeterStatus,
                        max_length=10,
                    ),
                ),
                (
                    "relay_state",
                    fields.CharEnumField(
                        default=RelayState.UNKNOWN,
                        description="CLOSED: closed\nOPEN: open\nUNKNOWN: unknown",
                        enum_type=RelayState,
                        max_length=10,
                    ),
                ),
                ("protected", fields.BooleanField(default=False)),
                ("online", fields.BooleanField(default=False)),
                ("missed_reads", fields.IntField(default=0)),
                (
                    "installed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("removed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "meter", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TenantIdentity",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("openid", fields.CharField(unique=True, max_length=64)),
                ("unionid", fields.CharField(null=True, db_index=True, max_length=64)),
                ("nickname", fields.CharField(default="", max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "tenant_identity",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A WeChat user (mini-program openid, optional unionid across the official account).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AccountBinding",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "identity",
                    fields.ForeignKeyField(
                        "models.TenantIdentity",
                        source_field="identity_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="bindings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="bindings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "account_binding",
                "app": "models",
                "unique_together": (("identity", "account"),),
                "pk_attr": "id",
                "table_description": "A tenant identity may see an account: the isolation key of every tenant query.",
            },
            bases=["Model"],
        ),
    ]
