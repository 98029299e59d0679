"""Usage events on PostgreSQL are partitioned by month of their period's start (see
billing_app.services.usage.partitions); an idempotency key is unique within its period
(the recording rule looks for it in the other open periods): a unique index of a
partitioned table must hold its partition key. SQLite keeps one table with the same key.

The events move into the new table's default partition; the `usage-partitions` job makes
the months and moves them on.

Revision ID: 0032
Revises: 0031
"""

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("usage_events") as batch_op:
            batch_op.drop_constraint("uq_usage_events_idempotency_key", type_="unique")
            batch_op.create_unique_constraint(
                "uq_usage_events_idempotency_key_period_start", ["idempotency_key", "period_start"]
            )
        return
    for statement in (
        "CREATE TABLE usage_events_partitioned"
        " (LIKE usage_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        " PARTITION BY RANGE (period_start)",
        "CREATE TABLE usage_events_default PARTITION OF usage_events_partitioned DEFAULT",
        "INSERT INTO usage_events_partitioned SELECT * FROM usage_events",
        "ALTER SEQUENCE usage_events_id_seq OWNED BY NONE",
        "DROP TABLE usage_events",
        "ALTER TABLE usage_events_partitioned RENAME TO usage_events",
        "ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id",
        "ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (id, period_start)",
        "ALTER TABLE usage_events ADD CONSTRAINT uq_usage_events_idempotency_key_period_start"
        " UNIQUE (idempotency_key, period_start)",
        "CREATE INDEX ix_usage_events_account_id ON usage_events (account_id)",
    ):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("usage_events") as batch_op:
            batch_op.drop_constraint("uq_usage_events_idempotency_key_period_start", type_="unique")
            batch_op.create_unique_constraint(
                "uq_usage_events_idempotency_key", ["idempotency_key"]
            )
        return
    for statement in (
        "CREATE TABLE usage_events_single"
        " (LIKE usage_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        "INSERT INTO usage_events_single SELECT * FROM usage_events",
        "ALTER SEQUENCE usage_events_id_seq OWNED BY NONE",
        "DROP TABLE usage_events",  # and its partitions
        "ALTER TABLE usage_events_single RENAME TO usage_events",
        "ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id",
        "ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (id)",
        "ALTER TABLE usage_events ADD CONSTRAINT uq_usage_events_idempotency_key"
        " UNIQUE (idempotency_key)",
        "CREATE INDEX ix_usage_events_account_id ON usage_events (account_id)",
    ):
        op.execute(statement)
