"""Who is calling: user JWTs (HS256 secret or RS256/ES256 keys from a JWKS URL) and the
service token for backend-to-backend calls."""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from flask import current_app, request

from billing_app.errors import Unauthorized

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
JWKS_REFRESH_INTERVAL = 300  # seconds a key set is trusted before it is fetched again
JWKS_MIN_REFETCH = 10  # an unknown `kid` refetches at most this often


@dataclass(frozen=True)
class Caller:
    account_id: str
    email: str | None


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    return token.strip()


class JwksCache:
    """Signing keys from a JWKS URL, cached; refreshed when a token names an unknown `kid`."""

    def __init__(self, url: str, session: requests.Session | None = None, timeout: float = 5):
        self.url = url
        self.session = session or requests.Session()
        self.timeout = timeout
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        response = self.session.get(self.url, timeout=self.timeout)
        response.raise_for_status()
        key_set = jwt.PyJWKSet.from_dict(response.json())
        self._keys = {key.key_id: key for key in key_set.keys if key.key_id}
        self._fetched_at = time.monotonic()

    def key_for(self, kid: str | None) -> Any:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age > JWKS_REFRESH_INTERVAL
            unknown = kid not in self._keys and age > JWKS_MIN_REFETCH
            if not self._keys or stale or unknown:
                try:
                    self._fetch()
                except (requests.RequestException, ValueError, jwt.PyJWTError):
                    if not self._keys:
                        raise Unauthorized("The token's signing keys are unavailable.") from None
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("The token is signed with an unknown key.")
        return key.key


def _jwks_cache() -> JwksCache:
    extensions = current_app.extensions
    cache = extensions.get("billing_jwks")
    if cache is None or cache.url != current_app.config["AUTH_JWKS_URL"]:
        cache = extensions["billing_jwks"] = JwksCache(current_app.config["AUTH_JWKS_URL"])
    return cache


def _verification_key(token: str) -> tuple[Any, list[str]]:
    config = current_app.config
    if config["AUTH_JWKS_URL"]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthorized("The token is malformed.") from None
        return _jwks_cache().key_for(kid), ASYMMETRIC_ALGORITHMS
    if config["AUTH_JWT_SECRET"]:
        return config["AUTH_JWT_SECRET"], ["HS256"]
    raise Unauthorized("User authentication is not configured on this service.")


class VerifiedTokens:
    """Claims of tokens already verified, so a busy caller's token is checked once, not on
    every request. Expiry is still checked on every use; bounded in size."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            claims = self._claims.get(token)
            if claims is None:
                return None
            if claims["exp"] <= time.time():
                del self._claims[token]
                return None
            self._claims.move_to_end(token)
            return claims

    def put(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            self._claims[token] = claims
            while len(self._claims) > self.size:
                self._claims.popitem(last=False)


def _verified_tokens() -> VerifiedTokens:
    return current_app.extensions.setdefault("billing_verified_tokens", VerifiedTokens())


def decode_user_token(token: str) -> dict[str, Any]:
    verified = _verified_tokens()
    claims = verified.get(token)
    if claims is None:
        claims = _verify(token)
        verified.put(token, claims)
    return claims


def _verify(token: str) -> dict[str, Any]:
    config = current_app.config
    key, algorithms = _verification_key(token)
    try:
        return jwt.decode(
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
    except jwt.PyJWTError as error:
        raise Unauthorized(f"The token is not valid ({type(error).__name__}).") from None


def current_user() -> Caller:
    """The account a user request acts for: the token's `account_id`, else its `sub`."""
    claims = decode_user_token(bearer_token())
    account_id = claims.get("account_id") or claims.get("sub")
    if not isinstance(account_id, str | int) or not str(account_id).strip():
        raise Unauthorized("The token names no account (account_id or sub).")
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    return Caller(account_id=str(account_id), email=email)


def require_service_token() -> None:
    expected = current_app.config["BILLING_SERVICE_TOKEN"]
    if not expected:
        raise Unauthorized("Service authentication is not configured on this service.")
    if not hmac.compare_digest(bearer_token().encode(), expected.encode()):
        raise Unauthorized("The service token is not valid.")
