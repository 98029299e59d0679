"""Meters aggregate more than sums: a report may name its subject (a `unique_count` meter
counts distinct subjects, kept per period in `usage_subjects`), and a `latest` meter's
counter keeps when its value was reported

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op

import billing_app.db

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("usage_events") as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=200), nullable=True))
    with op.batch_alter_table("usage_counters") as batch_op:
        batch_op.add_column(
            sa.Column("latest_at", billing_app.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "usage_subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("meter", sa.String(length=64), nullable=False),
        sa.Column("period_start", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_subjects")),
        sa.UniqueConstraint(
            "account_id",
            "meter",
            "period_start",
            "subject",
            name=op.f("uq_usage_subjects_account_id_meter_period_start_subject"),
        ),
    )


def downgrade():
    op.drop_table("usage_subjects")
    with op.batch_alter_table("usage_counters") as batch_op:
        batch_op.drop_column("latest_at")
    with op.batch_alter_table("usage_events") as batch_op:
        batch_op.drop_column("subject")
