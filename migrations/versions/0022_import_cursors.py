"""Where `billing import paddle` has got to in Paddle's lists, so a stopped import goes on

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "import_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("after", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_import_cursors")),
    )


def downgrade():
    op.drop_table("import_cursors")
