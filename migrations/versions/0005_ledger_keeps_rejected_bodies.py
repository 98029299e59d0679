"""The webhook ledger keeps verified bodies it cannot apply, as `rejected`

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BEFORE = ("received", "processed", "duplicate", "stale", "ignored", "failed")
AFTER = (*BEFORE, "rejected")


def _statuses(values) -> str:
    return "status IN ({})".format(", ".join(f"'{value}'" for value in values))


def _allow(values) -> None:
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses(values))


def upgrade():
    _allow(AFTER)


def downgrade():
    op.execute("DELETE FROM webhook_events WHERE status = 'rejected'")
    _allow(BEFORE)
