"""Database constraints that back the model invariants (Tortoise 1.1 does not emit
Meta.constraints): one active device per address, ratios and areas sane. The wallet floor is
the ledger service's rule, not a CHECK: consumption already used is charged in full and may
take a wallet into arrears (欠费), while discretionary debits stop at the floor. SQLite cannot ALTER TABLE ADD CHECK, so there the checks are triggers.
"""

from tortoise import migrations

from server.core.migration_sql import per_dialect

ACTIVE_DEVICE = (
    "CREATE UNIQUE INDEX meter_active_device_unique ON meter (site_id, protocol, address, unit)"
    " WHERE status = 'active'"
)


def _sqlite_guard(name: str, table: str, columns: str, condition: str, message: str) -> list[str]:
    return [
        f"CREATE TRIGGER {name}_ins BEFORE INSERT ON {table} WHEN NOT ({condition})"
        f" BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {message}'); END;",
        f"CREATE TRIGGER {name}_upd BEFORE UPDATE OF {columns} ON {table} WHEN NOT ({condition})"
        f" BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {message}'); END;",
    ]


# (name, table, columns, condition). SQLite keeps Tortoise decimals as text, hence the CAST.
CHECKS = [
    ("room_area_not_negative", "room", "area_m2", "CAST(NEW.area_m2 AS NUMERIC) >= 0"),
    ("account_credit_not_negative", "account", "credit_limit_fen", "NEW.credit_limit_fen >= 0"),
    (
        "meter_ratio_positive",
        "meter",
        "ct_ratio, pt_ratio",
        "NEW.ct_ratio > 0 AND NEW.pt_ratio > 0",
    ),
]


class Migration(migrations.Migration):
    dependencies = [("models", "0001_structure")]

    initial = False

    operations = [
        per_dialect(
            postgres=[
                ACTIVE_DEVICE,
                *(
                    f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK "
                    f"({condition.replace('NEW.', '').replace('CAST(area_m2 AS NUMERIC)', 'area_m2')})"
                    for name, table, _, condition in CHECKS
                ),
            ],
            sqlite=[
                ACTIVE_DEVICE,
                *(
                    sql
                    for name, table, columns, condition in CHECKS
                    for sql in _sqlite_guard(name, table, columns, condition, name)
                ),
            ],
        ),
    ]
