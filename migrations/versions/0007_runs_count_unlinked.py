"""Reconcile runs count the subscriptions they found that no account owns

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        batch_op.add_column(sa.Column("unlinked", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        batch_op.drop_column("unlinked")
