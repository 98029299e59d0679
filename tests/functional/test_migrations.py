"""The migrations build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, text

from billing_app.extensions import db
from billing_app.services.reconcile import rows_in_range
from billing_app.services.usage import partitions


# SQLite cannot reflect an index on an expression (accounts by lower(email)): there it is
# left out of the comparison, which PostgreSQL makes in full.
def not_a_pattern_index(item, name, kind, reflected, compared_to) -> bool:
    """Migration 0026's prefix-search indexes exist on PostgreSQL only (an operator class
    SQLite lacks), made in SQL; the models do not declare them."""
    pattern_index = kind == "index" and name and name.endswith("_pattern")
    return not pattern_index and partitions.declared_in_models(
        item, name, kind, reflected, compared_to
    )


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_models_and_migrations_agree(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": not_a_pattern_index}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_the_migrations_built_every_table(app):
    tables = set(inspect(db.engine).get_table_names())
    assert {table.name for table in db.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


@pytest.mark.postgres
def test_paddle_ids_compare_in_paddles_order_through_the_index_on_postgresql(app):
    """The reconciler reads a page of Paddle's list as a range of ids, which must compare
    byte by byte as Paddle sorts them, whatever the database's locale, and be served by
    the unique index, or each page scans the whole table. (Alembic compares no collations.)"""
    query = rows_in_range("sub_01a", "sub_01z")
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as connection:
        collation = connection.execute(
            text(
                "SELECT collation_name FROM information_schema.columns"
                " WHERE table_name = 'subscriptions' AND column_name = 'paddle_subscription_id'"
            )
        ).scalar()
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {compiled}")))
    assert collation == "C"
    assert "uq_subscriptions_paddle_subscription_id" in plan, plan


@pytest.mark.postgres
def test_customer_search_by_prefix_is_served_by_an_index_on_postgresql(app):
    from sqlalchemy import select

    from billing_app.models import Account

    queries = {
        "ix_accounts_email_pattern": select(Account).where(
            func.lower(Account.email).startswith("gra", autoescape=True)
        ),
        "ix_accounts_id_pattern": select(Account).where(
            Account.id.startswith("acct_4", autoescape=True)
        ),
    }
    with db.engine.connect() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        for index, query in queries.items():
            compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {compiled}")))
            assert index in plan, plan
