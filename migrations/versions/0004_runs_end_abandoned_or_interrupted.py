"""Reconcile runs can end interrupted or abandoned; leases remember when they were taken

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BEFORE = ("running", "succeeded", "failed")
AFTER = (*BEFORE, "interrupted", "abandoned")


def _statuses(values) -> str:
    return "status IN ({})".format(", ".join(f"'{value}'" for value in values))


def upgrade():
    with op.batch_alter_table("reconcile_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_reconcile_runs_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses(AFTER))
    with op.batch_alter_table("job_leases") as batch_op:
        batch_op.add_column(sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.execute("UPDATE reconcile_runs SET status = 'failed' WHERE status IN ('interrupted', 'abandoned')")
    with op.batch_alter_table("job_leases") as batch_op:
        batch_op.drop_column("acquired_at")
    with op.batch_alter_table("reconcile_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_reconcile_runs_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses(BEFORE))
