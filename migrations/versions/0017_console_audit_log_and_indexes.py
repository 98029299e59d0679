"""The operator console: its audit log, and indexes for what it filters and finds by
(the inbox by time and type, drifts by subscription, charges by account, chargebacks by time, accounts by email in any case)

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", MOMENT, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("account_id", sa.String(length=128), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_account_id", "audit_log", ["account_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target_at", "audit_log", ["target", "at"])
    op.create_index(
        "ix_reconcile_drifts_paddle_subscription_id", "reconcile_drifts", ["paddle_subscription_id"]
    )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])
    op.create_index(
        "ix_webhook_events_event_type_received_at", "webhook_events", ["event_type", "received_at"]
    )
    op.create_index("ix_adjustments_action_created_at", "adjustments", ["action", "created_at"])
    op.create_index("ix_usage_charges_account_id", "usage_charges", ["account_id"])
    op.create_index("ix_accounts_email_lower", "accounts", [sa.text("lower(email)")])


def downgrade():
    op.drop_index("ix_accounts_email_lower", table_name="accounts")
    op.drop_index("ix_usage_charges_account_id", table_name="usage_charges")
    op.drop_index("ix_adjustments_action_created_at", table_name="adjustments")
    op.drop_index("ix_webhook_events_event_type_received_at", table_name="webhook_events")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index("ix_reconcile_drifts_paddle_subscription_id", table_name="reconcile_drifts")
    op.drop_table("audit_log")
