"""The webhook ledger counts an operator's replays beside the event's own outcome

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.add_column(sa.Column("replays", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("last_replay_outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("last_replayed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_column("last_replayed_at")
        batch_op.drop_column("last_replay_outcome")
        batch_op.drop_column("replays")
