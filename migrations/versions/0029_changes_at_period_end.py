"""Changes at period end: the change a customer asked for waits in `subscription_changes`
until it is sent to Paddle shortly before the renewal; from then until the new period
begins, the subscription holds the plan and seats it had

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op

import billing_app.db

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('scheduled', 'sending')")


def upgrade():
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(sa.Column("held_plan_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("held_quantity", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("held_until", billing_app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_subscriptions_held_until", ["held_until"], unique=False)
    op.create_table(
        "subscription_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("price_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("from_price_id", sa.String(length=64), nullable=True),
        sa.Column("from_plan_id", sa.Integer(), nullable=True),
        sa.Column("from_quantity", sa.Integer(), nullable=True),
        sa.Column("effective_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proration_billing_mode", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sending', 'done', 'withdrawn', 'failed')",
            name=op.f("ck_subscription_changes_status"),
        ),
        sa.CheckConstraint(
            "kind IN ('plan', 'remove_addon')", name=op.f("ck_subscription_changes_kind")
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_subscription_changes_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_subscription_changes_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_changes_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_changes")),
    )
    with op.batch_alter_table("subscription_changes") as batch_op:
        batch_op.create_index(
            "ix_subscription_changes_subscription_id", ["subscription_id"], unique=False
        )
        batch_op.create_index(
            "ix_subscription_changes_status_effective_at", ["status", "effective_at"], unique=False
        )
        batch_op.create_index(
            "uq_subscription_changes_open",
            ["subscription_id", "price_id"],
            unique=True,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )


def downgrade():
    op.drop_table("subscription_changes")
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_index("ix_subscriptions_held_until")
        batch_op.drop_column("held_until")
        batch_op.drop_column("held_quantity")
        batch_op.drop_column("held_plan_id")
