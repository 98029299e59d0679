"""Subscriptions' Paddle ids compare byte by byte on PostgreSQL

The reconciler reads our rows a page of Paddle's list at a time, by a range of Paddle
subscription ids in Paddle's (byte) order. Under the database's locale collation that
range needed a COLLATE "C" the unique index could not serve: a full scan per page. With
the column in the C collation, the index is in Paddle's order. SQLite compares bytes
already, so there is nothing to do there.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "subscriptions",
        "paddle_subscription_id",
        type_=sa.String(length=64, collation=collation),
        existing_nullable=True,
    )


def upgrade():
    _collate("C")


def downgrade():
    _collate("default")
