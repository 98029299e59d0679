"""Plans and one-time products.

- `plans_file`: the plans file's entries and their validation (and the identifiers, slugs,
  price ids and meter names, that the API validates the same way).
- `catalogue`: importing a plans file, refreshing price facts from Paddle, what is on sale.

May import: models, `paddle_client`.
"""
