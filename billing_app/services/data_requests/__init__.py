"""A customer's data on request: everything held about an account exported as one JSON
document, and its personal data erased while what the books need stays.

- `scope`: which rows of each table are an account's (the export and the erasure share it).
- `export`: the document, written piece by piece.
- `personal`: what is personal in Paddle's payloads, and taking it out.
- `erasure`: erasing an account, and keeping later webhooks about it without personal data.

May import: models, errors. The webhooks' ledger and handlers import `erasure`.
"""
