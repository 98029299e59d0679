"""The webhook ledger is a work queue: rows are claimed by a worker for a while, and an
event that failed too often is parked as `dead`

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BEFORE = ("received", "processed", "duplicate", "stale", "ignored", "failed", "rejected")
AFTER = (*BEFORE, "dead")


def _statuses(values) -> str:
    return "status IN ({})".format(", ".join(f"'{value}'" for value in values))


def upgrade():
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses(AFTER))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_webhook_events_status_next_attempt_at", ["status", "next_attempt_at"]
        )


def downgrade():
    op.execute("UPDATE webhook_events SET status = 'failed' WHERE status = 'dead'")
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_index("ix_webhook_events_status_next_attempt_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses(BEFORE))
