"""What the simulator answers when a request is wrong, in Paddle's error shape; and its ids."""

from __future__ import annotations

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class SimError(Exception):
    """An answer in Paddle's error envelope."""

    def __init__(self, status: int, code: str, detail: str, errors: list[dict] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors or []


def not_found(kind: str, entity_id: str) -> SimError:
    return SimError(404, "not_found", f"Entity {entity_id} not found ({kind})")


def invalid_field(field: str, message: str) -> SimError:
    return SimError(
        400, "invalid_field", "Invalid request.", [{"field": field, "message": message}]
    )


def encode_id(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 32)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))
