"""Reconciliation also walks the transactions Paddle updated lately and fills the ledger's
gaps; each run counts those it saw and those it filled

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COLUMNS = ("transactions_seen", "transactions_filled")


def upgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        for name in COLUMNS:
            batch_op.drop_column(name)
