"""A plan's amount, currency and interval may be empty until read from Paddle

The contract's plans file names a plan's `slug`, `name`, `price_id`, `features` and
`limits`; the price's facts belong to Paddle, and `plans import` or `plans sync` copy them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PRICE_FACTS = (
    ("amount", sa.String(length=20)),
    ("currency", sa.String(length=3)),
    ("interval", sa.String(length=8)),
)


def _nullable(nullable: bool) -> None:
    with op.batch_alter_table("plans") as batch_op:
        for name, type_ in PRICE_FACTS:
            batch_op.alter_column(name, existing_type=type_, nullable=nullable)


def upgrade():
    _nullable(True)


def downgrade():
    empty = op.get_bind().execute(
        sa.text("SELECT count(*) FROM plans WHERE amount IS NULL OR currency IS NULL OR interval IS NULL")
    ).scalar()
    if empty:
        raise RuntimeError(
            f"{empty} plan(s) have no amount, currency or interval yet: run `billing plans sync`"
            " (or give them in a plans file) before downgrading"
        )
    _nullable(False)
