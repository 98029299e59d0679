"""Trials: when a subscription's trial ends; accounts keep their Paddle customer's name and
email as of the newest `customer.*` event

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("customer_updated_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(sa.Column("trial_ends_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("trial_ends_at")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("customer_updated_at")
        batch_op.drop_column("name")
