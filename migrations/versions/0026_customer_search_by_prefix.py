"""Support finds customers by the start of an email or an id, or by an email's domain:
accounts keep their email's domain, and PostgreSQL indexes serve prefix matches

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# LIKE 'prefix%' uses a btree index on PostgreSQL only through the pattern operator class
# (unless the column is C-collated, as Paddle's listed ids already are).
PATTERN_INDEXES = {
    "ix_accounts_email_pattern": "accounts (lower(email) text_pattern_ops)",
    "ix_accounts_id_pattern": "accounts (id text_pattern_ops)",
    "ix_accounts_paddle_customer_id_pattern": "accounts (paddle_customer_id text_pattern_ops)",
}


def upgrade():
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("email_domain", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_accounts_email_domain", ["email_domain"], unique=False)
    domain = (
        "lower(split_part(email, '@', 2))"
        if op.get_bind().dialect.name == "postgresql"
        else "lower(substr(email, instr(email, '@') + 1))"
    )
    op.execute(f"UPDATE accounts SET email_domain = {domain} WHERE email LIKE '%@%'")
    if op.get_bind().dialect.name == "postgresql":
        for name, target in PATTERN_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {target}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in PATTERN_INDEXES:
            op.execute(f"DROP INDEX {name}")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_index("ix_accounts_email_domain")
        batch_op.drop_column("email_domain")
