"""Scheduler processes record a heartbeat, so the console can say whether one is running

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "process_heartbeats",
        sa.Column("process", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("process", name=op.f("pk_process_heartbeats")),
    )
    op.create_index(
        op.f("ix_process_heartbeats_kind"), "process_heartbeats", ["kind"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_process_heartbeats_kind"), table_name="process_heartbeats")
    op.drop_table("process_heartbeats")
