"""Every environment variable the service reads, with its type and default.

`load_config` is the only place that looks at `os.environ`; everything else reads
`current_app.config`. The README's configuration table is the reference for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def _text(raw: str) -> str | None:
    return raw.strip() or None


def _integer(raw: str) -> int:
    return int(raw.strip())


def _seconds(raw: str) -> float:
    value = float(raw.strip())
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {raw!r}")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _comma_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: Any
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", _text, None),
    Setting("PADDLE_ENVIRONMENT", _text, "sandbox"),
    Setting("PADDLE_API_BASE_URL", _text, None),
    Setting("PADDLE_API_KEY", _text, None, secret=True),
    Setting("PADDLE_TIMEOUT_SECONDS", _integer, 10),
    Setting("PADDLE_REQUEST_DEADLINE_SECONDS", _seconds, 8.0),
    Setting("PADDLE_WEBHOOK_SECRETS", _comma_list, [], secret=True),
    Setting("PADDLE_WEBHOOK_TOLERANCE_SECONDS", _integer, 300),
    Setting("WEBHOOK_MAX_BODY_BYTES", _integer, 1_048_576),
    Setting("API_MAX_BODY_BYTES", _integer, 65_536),
    Setting("AUTH_JWT_SECRET", _text, None, secret=True),
    Setting("AUTH_JWKS_URL", _text, None),
    Setting("AUTH_JWT_AUDIENCE", _text, None),
    Setting("AUTH_JWT_ISSUER", _text, None),
    Setting("AUTH_EMAIL_VERIFIED_CLAIM", _text, "email_verified"),
    Setting("AUTH_TRUST_EMAIL", _boolean, False),
    Setting("BILLING_SERVICE_TOKEN", _text, None, secret=True),
    Setting("CHECKOUT_URL", _text, None),
    Setting("PAST_DUE_GRACE_DAYS", _integer, 7),
    Setting("RECONCILE_CRON", _text, "0 3 * * *"),
    Setting("RECONCILE_REQUESTS_PER_MINUTE", _integer, 120),
    Setting("RECONCILE_TRANSACTION_DAYS", _integer, 7),
    Setting("JOB_LEASE_SECONDS", _integer, 60),
    Setting("SCHEDULER_ENABLED", _boolean, False),
    Setting("WEBHOOK_RETENTION_DAYS", _integer, 90),
    Setting("WEBHOOK_MAX_ATTEMPTS", _integer, 12),
    Setting("WEBHOOK_WORKER_IN_PROCESS", _boolean, True),
    Setting("WEBHOOK_CLAIM_SECONDS", _integer, 30),
    Setting("WEBHOOK_WORKER_POLL_SECONDS", _seconds, 0.2),
    Setting("USAGE_LATE_SECONDS", _integer, 3600),
    Setting("USAGE_OVERAGE_EFFECTIVE_FROM", _text, "next_billing_period"),
    Setting("USAGE_BILLING_MINUTES", _integer, 10),
    Setting("USAGE_CHARGE_MAX_ATTEMPTS", _integer, 12),
    Setting("USAGE_RETENTION_DAYS", _integer, 400),
    Setting("ENTITLEMENTS_CACHE_SIZE", _integer, 100_000),
    Setting("ENTITLEMENTS_CACHE_TTL_SECONDS", _seconds, 60.0),
    Setting("RATE_LIMIT_ENABLED", _boolean, True),
    Setting("RATE_LIMIT_STORAGE_URL", _text, None),
    Setting("RATE_LIMIT_ACTIONS", _text, "30/minute"),
    Setting("RATE_LIMIT_READS", _text, "600/minute"),
    Setting("RATE_LIMIT_PUBLIC", _text, "300/minute"),
    Setting("PADDLE_USER_REQUESTS_PER_MINUTE", _integer, 120),
    Setting("PRICING_CACHE_SECONDS", _seconds, 300.0),
    Setting("PRICING_COUNTRY_HEADER", _text, None),
    Setting("TRUSTED_PROXIES", _integer, 0),
    Setting("ADMIN_PASSWORD_HASH", _text, None, secret=True),
    Setting("ADMIN_SESSION_SECRET", _text, None, secret=True),
    Setting("ADMIN_SESSION_HOURS", _integer, 8),
    Setting("ADMIN_SIGN_IN_RATE_LIMIT", _text, "10/minute"),
    Setting("ADMIN_SIGN_IN_RATE_LIMIT_ENABLED", _boolean, True),
    Setting("ADMIN_COOKIE_SECURE", _boolean, False),
    Setting("EVENTS_ENDPOINT_URL", _text, None),
    Setting("EVENTS_ENDPOINT_SECRET", _text, None, secret=True),
    Setting("EVENTS_ALLOW_PRIVATE_URLS", _boolean, False),
    Setting("EVENTS_RETENTION_DAYS", _integer, 30),
    Setting("EVENTS_TRIAL_ENDING_NOTICE_HOURS", _integer, 72),
    Setting("EVENTS_ORDER_HOLD_SECONDS", _integer, 21_600),
    Setting("EVENTS_DISABLE_AFTER_HOURS", _integer, 120),
    Setting("EVENTS_DISABLE_AFTER_FAILURES", _integer, 0),
    Setting("EVENTS_TIMEOUT_SECONDS", _seconds, 15.0),
    Setting("EVENTS_FEED_MAX_WAIT_SECONDS", _integer, 55),
    Setting("LOG_LEVEL", _text, "INFO"),
    Setting("LOG_FORMAT", _text, "text"),
    Setting("METRICS_ENABLED", _boolean, True),
)


class ConfigError(ValueError):
    """An environment variable holds a value of the wrong type."""


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every setting from `environ` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None:
            config[setting.name] = setting.default
            continue
        try:
            config[setting.name] = setting.parse(raw)
        except ValueError as error:
            detail = "invalid value" if setting.secret else str(error)
            raise ConfigError(f"{setting.name}: {detail}") from None
    for name, allowed in CHOICES.items():
        if config[name] not in allowed:
            raise ConfigError(f"{name} must be one of: {', '.join(allowed)}")
    return config


CHOICES = {
    "PADDLE_ENVIRONMENT": ("sandbox", "live"),
    "USAGE_OVERAGE_EFFECTIVE_FROM": ("next_billing_period", "immediately"),
    "LOG_FORMAT": ("text", "json"),
}
