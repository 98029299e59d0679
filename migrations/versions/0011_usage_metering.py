"""Usage metering: plans carry meters and may be the free plan (which has no price);
usage events (with their idempotency keys) and the per-period counters they add up to

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "usage_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("meter", sa.String(length=64), nullable=False),
        sa.Column("period_start", MOMENT, nullable=False),
        sa.Column("period_end", MOMENT, nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("paddle_subscription_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.CheckConstraint("used >= 0", name=op.f("ck_usage_counters_used_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_counters")),
        sa.UniqueConstraint(
            "account_id",
            "meter",
            "period_start",
            name=op.f("uq_usage_counters_account_id_meter_period_start"),
        ),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("meter", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", MOMENT, nullable=False),
        sa.Column("period_start", MOMENT, nullable=False),
        sa.Column("period_end", MOMENT, nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("recorded_at", MOMENT, nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_usage_events_quantity_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_usage_events_idempotency_key")),
    )
    with op.batch_alter_table("usage_events") as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_events_account_id"), ["account_id"])

    with op.batch_alter_table("plans") as batch_op:
        batch_op.add_column(sa.Column("meters", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(
            sa.Column("free", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.alter_column("price_id", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_check_constraint("paid_plan_has_price", "free OR price_id IS NOT NULL")


def downgrade():
    op.execute("DELETE FROM plans WHERE price_id IS NULL")
    with op.batch_alter_table("plans") as batch_op:
        batch_op.drop_constraint(op.f("ck_plans_paid_plan_has_price"), type_="check")
        batch_op.alter_column("price_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("free")
        batch_op.drop_column("meters")
    with op.batch_alter_table("usage_events") as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_events_account_id"))
    op.drop_table("usage_events")
    op.drop_table("usage_counters")
