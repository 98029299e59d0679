"""Add-ons: recurring extras a subscription carries beside its plan, with what each unit
adds to the plan's features, limits, meters and seats. On PostgreSQL what entitlements read
announces itself as before, now also a subscription's items (an add-on added or removed),
its held plan (a change at period end) and the add-ons' definitions

Revision ID: 0030
Revises: 0029
"""

import sqlalchemy as sa
from alembic import op

import billing_app.db

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "addons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.String(length=20), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("interval", sa.String(length=8), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("meters", sa.JSON(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("has_quantity", sa.Boolean(), nullable=False),
        sa.Column("plans", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "interval IN ('day', 'week', 'month', 'year')", name=op.f("ck_addons_interval")
        ),
        sa.CheckConstraint("seats >= 0", name=op.f("ck_addons_seats_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addons")),
        sa.UniqueConstraint("price_id", name=op.f("uq_addons_price_id")),
        sa.UniqueConstraint("slug", name=op.f("uq_addons_slug")),
    )
    if op.get_bind().dialect.name == "postgresql":
        announce()


# What the entitlement read takes from `subscriptions` (0010's, and the hold of 0029).
READ = (
    "account_id, status, plan_id, quantity, current_period_start, current_period_end,"
    " scheduled_action, scheduled_effective_at, created_at, paddle_subscription_id,"
    " held_plan_id, held_quantity, held_until"
)
READ_BEFORE = READ.rsplit(", held_plan_id", 1)[0]


def _account_change_function(columns: str) -> str:
    old = ", ".join(f"OLD.{column.strip()}" for column in columns.split(","))
    new = ", ".join(f"NEW.{column.strip()}" for column in columns.split(","))
    return f"""
        CREATE OR REPLACE FUNCTION billing_announce_account_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND ROW({old}) IS NOT DISTINCT FROM ROW({new}) THEN
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.account_id IS NOT NULL THEN
                PERFORM pg_notify('billing_entitlements_accounts', OLD.account_id);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.account_id IS NOT NULL THEN
                PERFORM pg_notify('billing_entitlements_accounts', NEW.account_id);
            END IF;
            RETURN NULL;
        END $$
        """


def announce():
    op.execute(_account_change_function(READ))
    op.execute(
        """
        CREATE FUNCTION billing_announce_item_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            owner text;
        BEGIN
            SELECT account_id INTO owner FROM subscriptions
            WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.subscription_id
                            ELSE NEW.subscription_id END;
            IF owner IS NOT NULL THEN
                PERFORM pg_notify('billing_entitlements_accounts', owner);
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER subscription_items_announce AFTER INSERT OR UPDATE OR DELETE
        ON subscription_items FOR EACH ROW EXECUTE FUNCTION billing_announce_item_change()
        """
    )
    op.execute(
        """
        CREATE TRIGGER addons_announce AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON addons FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_plan_change()
        """
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER addons_announce ON addons")
        op.execute("DROP TRIGGER subscription_items_announce ON subscription_items")
        op.execute("DROP FUNCTION billing_announce_item_change()")
        op.execute(_account_change_function(READ_BEFORE))
    op.drop_table("addons")
