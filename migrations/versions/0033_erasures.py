"""Data requests: the accounts erased on request and their Paddle customers

Revision ID: 0033
Revises: 0032
"""

import sqlalchemy as sa
from alembic import op

import billing_app.db

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

MOMENT = billing_app.db.UTCDateTime(timezone=True)


def upgrade():
    op.create_table(
        "erased_customers",
        sa.Column("paddle_customer_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("erased_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("paddle_customer_id", name=op.f("pk_erased_customers")),
    )
    with op.batch_alter_table("erased_customers") as batch_op:
        batch_op.create_index(batch_op.f("ix_erased_customers_account_id"), ["account_id"])
    op.create_table(
        "erasures",
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("erased_at", MOMENT, nullable=False),
        sa.Column("erased_by", sa.String(length=128), nullable=False),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_erasures")),
    )


def downgrade():
    op.drop_table("erasures")
    with op.batch_alter_table("erased_customers") as batch_op:
        batch_op.drop_index(batch_op.f("ix_erased_customers_account_id"))
    op.drop_table("erased_customers")
