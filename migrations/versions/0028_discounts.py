"""Discounts: a subscription keeps the discount Paddle says is on it (and from when until
when), and a transaction the discount it carried

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

import billing_app.db

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(sa.Column("discount_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("discount_starts_at", billing_app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("discount_ends_at", billing_app.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.add_column(sa.Column("paddle_discount_id", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.drop_column("paddle_discount_id")
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("discount_ends_at")
        batch_op.drop_column("discount_starts_at")
        batch_op.drop_column("discount_id")
