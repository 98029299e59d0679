"""On PostgreSQL, a new ledger row announces itself (NOTIFY billing_webhook_inbox) when its
transaction commits, so that waiting workers wake at once; SQLite has no NOTIFY (its worker
is woken in process)

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION billing_announce_webhook_inbox() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('billing_webhook_inbox', '');
            RETURN NULL;
        END $$
        """
    )
    # Per statement, not per row: one wake-up per delivery (PostgreSQL folds identical
    # notifications of one transaction into one).
    op.execute(
        """
        CREATE TRIGGER webhook_events_announce AFTER INSERT ON webhook_events
        FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_webhook_inbox()
        """
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER webhook_events_announce ON webhook_events")
    op.execute("DROP FUNCTION billing_announce_webhook_inbox()")
