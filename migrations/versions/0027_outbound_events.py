"""Outbound events: the outbox of what changed for each account, the endpoints it is sent
to, each delivery and its attempts, and how far the clock sweep has looked. On PostgreSQL
an event keeps the id of the transaction that wrote it (the pull feed reads up to the oldest
one still open) and a new event wakes the delivery workers and the feed's long polls

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op

import billing_app.db

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

EVENTS_CHANNEL = "billing_events"
CLOCK_INDEXES = (
    ("subscriptions", "ix_subscriptions_scheduled_effective_at", ["scheduled_effective_at"]),
    ("subscriptions", "ix_subscriptions_trial_ends_at", ["trial_ends_at"]),
    (
        "subscriptions",
        "ix_subscriptions_status_current_period_start",
        ["status", "current_period_start"],
    ),
    ("purchases", "ix_purchases_granted_until", ["granted_until"]),
)


def upgrade():
    op.create_table(
        "event_accounts",
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("entitlements", sa.JSON(), nullable=True),
        sa.Column("created_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_event_accounts")),
    )
    op.create_table(
        "event_clock",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("swept_until", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_clock")),
    )
    op.create_table(
        "event_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("types", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("previous_secret", sa.String(length=128), nullable=True),
        sa.Column(
            "previous_secret_until", billing_app.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("disabled_at", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_success_at", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_endpoints")),
    )
    op.create_table(
        "events",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("once_key", sa.String(length=160), nullable=True),
        sa.Column("occurred_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
        sa.UniqueConstraint("once_key", name=op.f("uq_events_once_key")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_feed", ["txid", "position"], unique=False)
        batch_op.create_index("ix_events_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_subject"), ["subject"], unique=False)
        batch_op.create_index("uq_events_account_sequence", ["account_id", "sequence"], unique=True)

    op.create_table(
        "event_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "event_position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_failed_at", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_latency_ms", sa.Integer(), nullable=True),
        sa.Column("delivered_at", billing_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_event_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["event_endpoints.id"],
            name=op.f("fk_event_deliveries_endpoint_id_event_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_position"],
            ["events.position"],
            name=op.f("fk_event_deliveries_event_position_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_deliveries")),
    )
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            batch_op.f("ix_event_deliveries_endpoint_id"), ["endpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_event_deliveries_event_position"), ["event_position"], unique=False
        )
        batch_op.create_index(
            "ix_event_deliveries_in_order",
            ["endpoint_id", "account_id", "sequence"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.create_table(
        "event_delivery_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("attempted_at", billing_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["event_deliveries.id"],
            name=op.f("fk_event_delivery_attempts_delivery_id_event_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_delivery_attempts")),
    )
    with op.batch_alter_table("event_delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_delivery_attempts_delivery_id"), ["delivery_id"], unique=False
        )

    # The event clock's sweep finds the moments access changes by the clock alone.
    for table, name, columns in CLOCK_INDEXES:
        op.create_index(name, table, columns, unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
        op.execute(
            f"""
            CREATE FUNCTION billing_announce_events() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('{EVENTS_CHANNEL}', '');
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            """
            CREATE TRIGGER events_announce AFTER INSERT ON events
            FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_events()
            """
        )
        op.execute(
            """
            CREATE TRIGGER event_deliveries_announce AFTER INSERT OR UPDATE OF next_attempt_at
            ON event_deliveries FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_events()
            """
        )


def downgrade():
    for table, name, _ in CLOCK_INDEXES:
        op.drop_index(name, table_name=table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER event_deliveries_announce ON event_deliveries")
        op.execute("DROP TRIGGER events_announce ON events")
        op.execute("DROP FUNCTION billing_announce_events()")
    with op.batch_alter_table("event_delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_delivery_attempts_delivery_id"))

    op.drop_table("event_delivery_attempts")
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_event_deliveries_in_order",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(batch_op.f("ix_event_deliveries_event_position"))
        batch_op.drop_index(batch_op.f("ix_event_deliveries_endpoint_id"))
        batch_op.drop_index(
            "ix_event_deliveries_due",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.drop_table("event_deliveries")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("uq_events_account_sequence")
        batch_op.drop_index(batch_op.f("ix_events_subject"))
        batch_op.drop_index("ix_events_occurred_at")
        batch_op.drop_index("ix_events_feed")

    op.drop_table("events")
    op.drop_table("event_endpoints")
    op.drop_table("event_clock")
    op.drop_table("event_accounts")
