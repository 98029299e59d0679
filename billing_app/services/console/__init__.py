"""Read models only the operators' console uses, and its audit log.

- `overview`: the front page's figures, each one aggregate query.
- `timeline`: one account's history as support reads it.
- `customer_search`: finding a customer by any id or email support hears.
- `audit`: the operators' audit log.

May import any other domain's reads; no other domain imports this package.
"""
