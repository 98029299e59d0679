"""One-time products and their purchases (what they grant each account); on PostgreSQL a
committed change to a purchase announces its account to the entitlement caches

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)
# What the entitlement read takes from `purchases`: a change to anything else is silent.
READ = "account_id, features::text, granted_until, revoked_at, product_slug"  # json has no =


def upgrade():
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.String(length=20), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("grant_days", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.CheckConstraint("grant_days >= 1", name=op.f("ck_products_grant_days_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("price_id", name=op.f("uq_products_price_id")),
        sa.UniqueConstraint("slug", name=op.f("uq_products_slug")),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("product_slug", sa.String(length=64), nullable=False),
        sa.Column("paddle_transaction_id", sa.String(length=64), nullable=False),
        sa.Column("paddle_customer_id", sa.String(length=64), nullable=True),
        sa.Column("price_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("completed_at", MOMENT, nullable=False),
        sa.Column("granted_until", MOMENT, nullable=True),
        sa.Column("revoked_at", MOMENT, nullable=True),
        sa.Column("revoked_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_purchases_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        sa.UniqueConstraint(
            "paddle_transaction_id",
            "product_id",
            name=op.f("uq_purchases_paddle_transaction_id_product_id"),
        ),
    )
    with op.batch_alter_table("purchases") as batch_op:
        batch_op.create_index(batch_op.f("ix_purchases_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_purchases_paddle_customer_id"), ["paddle_customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_purchases_paddle_transaction_id"),
            ["paddle_transaction_id"],
            unique=False,
        )

    _announce_purchases()


def _announce_purchases():
    if op.get_bind().dialect.name != "postgresql":
        return
    old = ", ".join(f"OLD.{column.strip()}" for column in READ.split(","))
    new = ", ".join(f"NEW.{column.strip()}" for column in READ.split(","))
    op.execute(
        f"""
        CREATE FUNCTION billing_announce_purchase_change() RETURNS trigger
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
        CREATE TRIGGER purchases_announce AFTER INSERT OR UPDATE OR DELETE
        ON purchases FOR EACH ROW EXECUTE FUNCTION billing_announce_purchase_change()
        """
    )
    op.execute(
        """
        CREATE TRIGGER purchases_truncate_announce AFTER TRUNCATE
        ON purchases FOR EACH STATEMENT EXECUTE FUNCTION billing_announce_plan_change()
        """
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER purchases_truncate_announce ON purchases")
        op.execute("DROP TRIGGER purchases_announce ON purchases")
        op.execute("DROP FUNCTION billing_announce_purchase_change()")
    with op.batch_alter_table("purchases") as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchases_paddle_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_purchases_paddle_customer_id"))
        batch_op.drop_index(batch_op.f("ix_purchases_account_id"))

    op.drop_table("purchases")
    op.drop_table("products")
