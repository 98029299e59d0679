"""Selling as Paddle's customers sell: localized prices and discount codes.

- `discount_codes`: a code a buyer types, looked up at Paddle (remembered briefly) and
  judged usable, or refused with the reason, before anything is made at Paddle.
- `pricing_page`: every plan and product priced for a visitor (country, currency, code) by
  Paddle's pricing preview, one call per key at a time, remembered and served stale when
  Paddle is down.

May import: models, `services.plans`, `paddle_client`.
"""
