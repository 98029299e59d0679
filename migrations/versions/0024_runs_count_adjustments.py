"""Reconciliation also fills lost refunds, credits and chargebacks of the transactions it
walks; each run counts them

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        batch_op.add_column(
            sa.Column("adjustments_filled", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        batch_op.drop_column("adjustments_filled")
