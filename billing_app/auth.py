"""Who is calling: user JWTs (HS256 secret or RS256/ES256 keys from a JWKS URL) and the
service token for backend-to-backend calls."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from flask import current_app, request

from billing_app.errors import Unauthorized

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
JWKS_REFRESH_INTERVAL = 300  # seconds a key set is trusted before it is fetched again
JWKS_MIN_REFETCH = 10  # an unknown `kid` refetches at most this often


@dataclass(frozen=True)
class Caller:
    account_id: str
    email: str | None
    email_verified: bool = False


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    return token.strip()


class JwksCache:
    """Signing keys from a JWKS URL, cached; refreshed when stale or when a token names an
    unknown `kid`. Fetches, failed or not, happen at most every JWKS_MIN_REFETCH seconds and
    one at a time; while one runs, requests whose key is known go on with it, so a slow or
    failing JWKS endpoint never holds every request, and a known key keeps working."""

    def __init__(self, url: str, session: requests.Session | None = None, timeout: float = 3):
        self.url = url
        self.session = session or requests.Session()
        self.timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0  # the last fetch that worked
        self._attempted_at: float | None = None  # the last fetch, whatever it gave
        self._fetching = threading.Lock()

    def _due(self, kid: str | None) -> bool:
        now = time.monotonic()
        if self._attempted_at is not None and now - self._attempted_at < JWKS_MIN_REFETCH:
            return False
        return kid not in self._keys or now - self._fetched_at > JWKS_REFRESH_INTERVAL

    def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            response = self.session.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            key_set = jwt.PyJWKSet.from_dict(response.json())
        except (requests.RequestException, ValueError, TypeError, jwt.PyJWTError) as error:
            log.warning(
                "could not refresh the JWKS (%s); keeping %d key(s)", error, len(self._keys)
            )
            return
        self._keys = {
            key.key_id: key
            for key in key_set.keys
            if key.key_id and key.algorithm_name in ASYMMETRIC_ALGORITHMS
        }
        self._fetched_at = time.monotonic()

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        if kid not in self._keys:
            with self._fetching:  # wait for a fetch under way, or make one if it is time
                if self._due(kid):
                    self._refresh()
        elif self._due(kid) and self._fetching.acquire(blocking=False):  # known: never wait
            try:
                if self._due(kid):
                    self._refresh()
            finally:
                self._fetching.release()
        key = self._keys.get(kid)
        if key is None:
            if not self._keys:
                raise Unauthorized("The token's signing keys are unavailable.")
            raise Unauthorized("The token is signed with an unknown key.")
        return key


def _jwks_cache() -> JwksCache:
    extensions = current_app.extensions
    cache = extensions.get("billing_jwks")
    if cache is None or cache.url != current_app.config["AUTH_JWKS_URL"]:
        cache = extensions["billing_jwks"] = JwksCache(current_app.config["AUTH_JWKS_URL"])
    return cache


def _verification_key(token: str) -> tuple[Any, list[str]]:
    """The key and the one algorithm it may verify: a JWKS key only with its own."""
    config = current_app.config
    if config["AUTH_JWKS_URL"]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthorized("The token is malformed.") from None
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("The token is malformed.")
        key = _jwks_cache().key_for(kid)
        return key.key, [key.algorithm_name]
    if config["AUTH_JWT_SECRET"]:
        return config["AUTH_JWT_SECRET"], ["HS256"]
    raise Unauthorized("User authentication is not configured on this service.")


class VerifiedTokens:
    """The callers of tokens already verified, so a busy caller's token is checked (and its
    claims read) once, not on every request. Expiry is still checked on every use; bounded
    in size."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._callers: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> Caller | None:
        with self._lock:
            entry = self._callers.get(token)
            if entry is None:
                return None
            if entry[1] <= time.time():
                del self._callers[token]
                return None
            self._callers.move_to_end(token)
            return entry[0]

    def put(self, token: str, caller: Caller, expires_at: float) -> None:
        with self._lock:
            self._callers[token] = (caller, expires_at)
            while len(self._callers) > self.size:
                self._callers.popitem(last=False)


def _verified_tokens() -> VerifiedTokens:
    return current_app.extensions.setdefault("billing_verified_tokens", VerifiedTokens())


def _verify(token: str) -> dict[str, Any]:
    config = current_app.config
    key, algorithms = _verification_key(token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=config["AUTH_JWT_AUDIENCE"],
            issuer=config["AUTH_JWT_ISSUER"],
            options={"require": ["exp"], "verify_aud": bool(config["AUTH_JWT_AUDIENCE"])},
            leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.") from None
    except (jwt.PyJWTError, TypeError, ValueError) as error:
        # A key of the wrong type for the token's algorithm raises TypeError in PyJWT.
        raise Unauthorized(f"The token is not valid: {_reason(error)}.") from None
    if isinstance(claims["exp"], bool) or not isinstance(claims["exp"], int | float):
        raise Unauthorized("The token is not valid: exp must be a number of seconds.")
    return claims


def _reason(error: Exception) -> str:
    if isinstance(error, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(error, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"it has no {error.claim} claim"
    if isinstance(error, jwt.InvalidSignatureError):
        return "the signature does not verify"
    return "it cannot be decoded or verified with the configured keys"


MAX_ACCOUNT_ID = 128  # the accounts table's key


def is_account_id(value: str) -> bool:
    """Can this be an account's id (the accounts table's key)?"""
    return len(value) <= MAX_ACCOUNT_ID and value.isprintable()


MAX_EMAIL = 320


def current_user() -> Caller:
    """The account a user request acts for: the token's `account_id`, else its `sub`.
    Verified once per request, and across requests by `VerifiedTokens` until it expires."""
    cached = request.environ.get("billing.caller")
    if cached is not None:
        return cached
    token = bearer_token()
    verified = _verified_tokens()
    caller = verified.get(token)
    if caller is None:
        claims = _verify(token)
        caller = _caller_of(claims)
        verified.put(token, caller, claims["exp"])  # a number: `_verify` checked it
    request.environ["billing.caller"] = caller
    return caller


def _caller_of(claims: dict[str, Any]) -> Caller:
    account_id = claims.get("account_id") or claims.get("sub")
    if isinstance(account_id, bool) or not isinstance(account_id, str | int):
        raise Unauthorized("The token names no account (account_id or sub).")
    account_id = str(account_id)
    if not account_id.strip():
        raise Unauthorized("The token names no account (account_id or sub).")
    if not is_account_id(account_id):
        raise Unauthorized(f"The token's account id must be printable, at most {MAX_ACCOUNT_ID}.")
    return Caller(
        account_id=account_id,
        email=_usable_email(claims.get("email")),
        email_verified=_email_verified(claims),
    )


def _usable_email(value: Any) -> str | None:
    """An address we may hand to Paddle; anything else counts as no email."""
    if not isinstance(value, str) or len(value) > MAX_EMAIL or "@" not in value:
        return None
    return value if value.isprintable() and " " not in value else None


def _email_verified(claims: dict[str, Any]) -> bool:
    """May the token's email find an existing Paddle customer? Only when the identity
    provider says it verified it, or the deployment trusts its provider's emails."""
    config = current_app.config
    return (
        bool(config["AUTH_TRUST_EMAIL"]) or claims.get(config["AUTH_EMAIL_VERIFIED_CLAIM"]) is True
    )


def require_service_token() -> None:
    expected = current_app.config["BILLING_SERVICE_TOKEN"]
    if not expected:
        raise Unauthorized("Service authentication is not configured on this service.")
    if not hmac.compare_digest(bearer_token().encode(), expected.encode()):
        raise Unauthorized("The service token is not valid.")
