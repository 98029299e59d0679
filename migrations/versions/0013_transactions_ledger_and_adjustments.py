"""The transactions ledger (billing history) and the adjustments against transactions

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)
# Compared byte by byte on PostgreSQL, as Paddle orders its lists (see 0002).
PADDLE_ID = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade():
    op.create_table(
        "adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paddle_adjustment_id", sa.String(length=64), nullable=False),
        sa.Column("paddle_transaction_id", sa.String(length=64), nullable=False),
        sa.Column("paddle_subscription_id", sa.String(length=64), nullable=True),
        sa.Column("paddle_customer_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("subtotal", sa.BigInteger(), nullable=True),
        sa.Column("tax", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("paddle_created_at", MOMENT, nullable=True),
        sa.Column("paddle_updated_at", MOMENT, nullable=True),
        sa.Column("last_event_at", MOMENT, nullable=True),
        sa.Column("last_event_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustments")),
        sa.UniqueConstraint(
            "paddle_adjustment_id", name=op.f("uq_adjustments_paddle_adjustment_id")
        ),
    )
    with op.batch_alter_table("adjustments") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adjustments_paddle_transaction_id"),
            ["paddle_transaction_id"],
            unique=False,
        )

    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paddle_transaction_id", PADDLE_ID, nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=True),
        sa.Column("paddle_customer_id", sa.String(length=64), nullable=True),
        sa.Column("paddle_subscription_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=48), nullable=True),
        sa.Column("collection_mode", sa.String(length=16), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("subtotal", sa.BigInteger(), nullable=True),
        sa.Column("discount", sa.BigInteger(), nullable=True),
        sa.Column("tax", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("invoice_number", sa.String(length=64), nullable=True),
        sa.Column("billing_period_start", MOMENT, nullable=True),
        sa.Column("billing_period_end", MOMENT, nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("paddle_created_at", MOMENT, nullable=True),
        sa.Column("billed_at", MOMENT, nullable=True),
        sa.Column("completed_at", MOMENT, nullable=True),
        sa.Column("paddle_updated_at", MOMENT, nullable=True),
        sa.Column("last_event_at", MOMENT, nullable=True),
        sa.Column("last_event_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "paddle_transaction_id", name=op.f("uq_transactions_paddle_transaction_id")
        ),
    )
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.create_index(
            "ix_transactions_history", ["account_id", "paddle_created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transactions_paddle_customer_id"), ["paddle_customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transactions_paddle_subscription_id"),
            ["paddle_subscription_id"],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_paddle_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_transactions_paddle_customer_id"))
        batch_op.drop_index("ix_transactions_history")

    op.drop_table("transactions")
    with op.batch_alter_table("adjustments") as batch_op:
        batch_op.drop_index(batch_op.f("ix_adjustments_paddle_transaction_id"))

    op.drop_table("adjustments")
