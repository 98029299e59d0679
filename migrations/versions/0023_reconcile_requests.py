"""The console's "reconcile now" is a request a scheduler process takes, not a thread of a
web process

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "reconcile_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_requests")),
    )
    op.create_index(
        op.f("ix_reconcile_requests_taken_at"), "reconcile_requests", ["taken_at"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_reconcile_requests_taken_at"), table_name="reconcile_requests")
    op.drop_table("reconcile_requests")
