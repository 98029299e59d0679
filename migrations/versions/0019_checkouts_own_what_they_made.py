"""The ledger remembers which account our checkout made a transaction for: its owner,
whichever Paddle customer pays

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.add_column(sa.Column("checkout_account_id", sa.String(length=128), nullable=True))
    # Checkouts still waiting for their payment: the pending row our checkout made holds
    # the transaction's id and the account it is for.
    op.execute(
        f"""
        UPDATE transactions SET checkout_account_id = (
            SELECT subscriptions.account_id FROM subscriptions
            WHERE subscriptions.paddle_transaction_id = transactions.paddle_transaction_id
              AND {WAITING_CHECKOUT}
            LIMIT 1
        )
        WHERE paddle_transaction_id IN (
            SELECT subscriptions.paddle_transaction_id FROM subscriptions
            WHERE {WAITING_CHECKOUT}
        )
        """  # noqa: S608 (no input: our own constant)
    )


WAITING_CHECKOUT = """
    subscriptions.status = 'pending'
    AND subscriptions.paddle_subscription_id IS NULL
    AND subscriptions.account_id IS NOT NULL
    AND subscriptions.paddle_transaction_id IS NOT NULL
"""


def downgrade():
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.drop_column("checkout_account_id")
