"""Refunds are judged per line: an adjustment keeps its items (the lines it covers), and a
purchase the transaction line it was bought on

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("adjustments") as batch_op:
        batch_op.add_column(sa.Column("items", sa.JSON(), nullable=True))
    with op.batch_alter_table("purchases") as batch_op:
        batch_op.add_column(sa.Column("paddle_item_id", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("purchases") as batch_op:
        batch_op.drop_column("paddle_item_id")
    with op.batch_alter_table("adjustments") as batch_op:
        batch_op.drop_column("items")
