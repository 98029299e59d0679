"""Overage charges: one per (subscription, meter, closed period), with its way through Paddle

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)
STATUSES = ("pending", "submitting", "confirmed", "failed", "dead")


def upgrade():
    op.create_table(
        "usage_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("paddle_subscription_id", sa.String(length=64), nullable=False),
        sa.Column("meter", sa.String(length=64), nullable=False),
        sa.Column("period_start", MOMENT, nullable=False),
        sa.Column("period_end", MOMENT, nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("price_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", MOMENT, nullable=True),
        sa.Column("submitted_at", MOMENT, nullable=True),
        sa.Column("confirmed_at", MOMENT, nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_usage_charges_charge_quantity_positive")),
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in STATUSES)),
            name=op.f("ck_usage_charges_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_charges")),
        sa.UniqueConstraint(
            "paddle_subscription_id",
            "meter",
            "period_start",
            name=op.f("uq_usage_charges_paddle_subscription_id_meter_period_start"),
        ),
    )
    with op.batch_alter_table("usage_charges") as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_charges_status"), ["status"])


def downgrade():
    with op.batch_alter_table("usage_charges") as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_charges_status"))
    op.drop_table("usage_charges")
