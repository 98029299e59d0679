"""Products may credit meters: units a purchase adds to a meter's allowance in the billing
period it completed in; each purchase keeps the credits it was sold with

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("products", "purchases"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("credits", sa.JSON(), nullable=True))
    op.create_index(
        "ix_purchases_account_id_completed_at", "purchases", ["account_id", "completed_at"]
    )


def downgrade():
    op.drop_index("ix_purchases_account_id_completed_at", table_name="purchases")
    for table in ("purchases", "products"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("credits")
