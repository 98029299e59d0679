"""An account's entitlements as the service answers them (`GET
/api/v1/accounts/{id}/entitlements`), read into plain, immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class Meter:
    meter: str
    period_start: datetime | None
    period_end: datetime | None
    used: int
    included: int
    hard_limit: int | None
    remaining: int | None
    overage: int

    @classmethod
    def of(cls, figures: dict[str, Any]) -> Meter:
        return cls(
            meter=str(figures["meter"]),
            period_start=_time(figures.get("period_start")),
            period_end=_time(figures.get("period_end")),
            used=int(figures["used"]),
            included=int(figures["included"]),
            hard_limit=figures.get("hard_limit"),
            remaining=figures.get("remaining"),
            overage=int(figures.get("overage") or 0),
        )


@dataclass(frozen=True)
class Grant:
    """What a one-time purchase grants, until when (None: for good)."""

    product: str
    features: tuple[str, ...]
    until: datetime | None


@dataclass(frozen=True)
class Entitlements:
    account_id: str
    access: bool
    plan: str | None
    status: str
    features: frozenset[str]
    limits: dict[str, Any]
    seats: int | None
    meters: dict[str, Meter]
    grants: tuple[Grant, ...]
    recheck_at: datetime | None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Entitlements:
        return cls(
            account_id=str(answer["account_id"]),
            access=bool(answer["access"]),
            plan=answer.get("plan"),
            status=str(answer["status"]),
            features=frozenset(answer.get("features") or ()),
            limits=dict(answer.get("limits") or {}),
            seats=answer.get("seats"),
            meters={figures["meter"]: Meter.of(figures) for figures in answer.get("meters") or ()},
            grants=tuple(
                Grant(grant["product"], tuple(grant["features"]), _time(grant.get("until")))
                for grant in answer.get("grants") or ()
            ),
            recheck_at=_time(answer.get("recheck_at")),
        )
