"""On PostgreSQL, a committed change to what entitlements read announces itself: the
accounts whose subscription facts changed (NOTIFY billing_entitlements_accounts), or every
account when a plan changed (NOTIFY billing_entitlements_all), so that each process's
entitlement cache forgets them

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The columns the entitlement read takes from `subscriptions` (and how it picks the
# account's current one): a change to anything else announces nothing.
READ = (
    "account_id, status, plan_id, quantity, current_period_start, current_period_end,"
    " scheduled_action, scheduled_effective_at, created_at, paddle_subscription_id"
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    old = ", ".join(f"OLD.{column.strip()}" for column in READ.split(","))
    new = ", ".join(f"NEW.{column.strip()}" for column in READ.split(","))
    op.execute(
        f"""
        CREATE FUNCTION billing_announce_account_change() RETURNS trigger
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
    )
    op.execute(
        """
        CREATE TRIGGER subscriptions_announce AFTER INSERT OR UPDATE OR DELETE
        ON subscriptions FOR EACH ROW EXECUTE FUNCTION billing_announce_account_change()
        """
    )
    op.execute(
        """
        CREATE FUNCTION billing_announce_plan_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('billing_entitlements_all', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER plans_announce AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON plans FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_plan_change()
        """
    )
    op.execute(
        """
        CREATE TRIGGER subscriptions_truncate_announce AFTER TRUNCATE
        ON subscriptions FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_plan_change()
        """
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER subscriptions_truncate_announce ON subscriptions")
    op.execute("DROP TRIGGER plans_announce ON plans")
    op.execute("DROP FUNCTION billing_announce_plan_change()")
    op.execute("DROP TRIGGER subscriptions_announce ON subscriptions")
    op.execute("DROP FUNCTION billing_announce_account_change()")
