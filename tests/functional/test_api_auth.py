"""Who may call what: user JWTs (HS256 or JWKS), the service token, and refusals."""

import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers.config import JWT_SECRET, SERVICE_TOKEN
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.tokens import auth, user_token

JWKS_URL = "https://auth.example.com/.well-known/jwks.json"


def get_entitlements(client, token):
    return client.get("/api/v1/entitlements", headers={"Authorization": f"Bearer {token}"})


def test_no_token_is_401(client):
    response = client.get("/api/v1/entitlements")
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


@pytest.mark.parametrize(
    "token",
    [
        user_token(exp=datetime.now(UTC) - timedelta(minutes=5)),
        user_token(secret="another-secret-that-is-long-enough-for-hs256"),
        jwt.encode(
            {"sub": "acct_1", "exp": datetime.now(UTC) + timedelta(hours=1)}, None, algorithm="none"
        ),
        jwt.encode({"sub": "acct_1"}, JWT_SECRET, algorithm="HS256"),  # no expiry
        user_token(sub=""),
        "not-a-jwt",
    ],
    ids=["expired", "wrong-key", "alg-none", "no-exp", "no-account", "garbage"],
)
def test_bad_tokens_are_refused(client, token):
    response = get_entitlements(client, token)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


def test_audience_and_issuer_are_checked_when_configured(make_app):
    client = make_app(
        AUTH_JWT_AUDIENCE="billing", AUTH_JWT_ISSUER="https://auth.example.com"
    ).test_client()
    good = user_token(aud="billing", iss="https://auth.example.com")
    assert get_entitlements(client, good).status_code == 200
    assert (
        get_entitlements(
            client, user_token(aud="other", iss="https://auth.example.com")
        ).status_code
        == 401
    )
    assert (
        get_entitlements(
            client, user_token(aud="billing", iss="https://evil.example.com")
        ).status_code
        == 401
    )
    assert get_entitlements(client, user_token()).status_code == 401


def test_account_id_claim_wins_over_sub(client, session):
    plan = make_plan(session)
    make_account(session, "acct_team")
    make_subscription(session, account_id="acct_team", status="active", plan_id=plan.id)
    response = client.get("/api/v1/entitlements", headers=auth("user_123", account_id="acct_team"))
    assert response.json["access"] is True
    assert client.get("/api/v1/entitlements", headers=auth("user_123")).json["access"] is False


def jwk_of(private_key, kid, alg):
    public = json.loads(
        jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key())
    )
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def jwks_client(make_app):
    return make_app(AUTH_JWT_SECRET=None, AUTH_JWKS_URL=JWKS_URL).test_client()


def signed(private_key, kid, alg, **claims):
    payload = {"sub": "acct_1", "exp": datetime.now(UTC) + timedelta(hours=1), **claims}
    return jwt.encode(payload, private_key, algorithm=alg, headers={"kid": kid})


def test_rs256_and_es256_tokens_verify_against_the_jwks(jwks_client):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with responses.RequestsMock() as mock:
        mock.get(
            JWKS_URL, json={"keys": [jwk_of(rsa_key, "r1", "RS256"), jwk_of(ec_key, "e1", "ES256")]}
        )
        assert get_entitlements(jwks_client, signed(rsa_key, "r1", "RS256")).status_code == 200
        assert get_entitlements(jwks_client, signed(ec_key, "e1", "ES256")).status_code == 200
        assert len(mock.calls) == 1  # the key set is cached


def test_an_unknown_kid_refreshes_the_key_set_once(jwks_client, monkeypatch):
    old_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    monkeypatch.setattr("billing_app.auth.JWKS_MIN_REFETCH", 0)
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": [jwk_of(old_key, "k1", "RS256")]})
        mock.get(
            JWKS_URL,
            json={"keys": [jwk_of(old_key, "k1", "RS256"), jwk_of(new_key, "k2", "RS256")]},
        )
        assert get_entitlements(jwks_client, signed(old_key, "k1", "RS256")).status_code == 200
        assert get_entitlements(jwks_client, signed(new_key, "k2", "RS256")).status_code == 200
        assert len(mock.calls) == 2


def test_an_hs256_token_is_refused_when_keys_come_from_a_jwks(jwks_client):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": [jwk_of(rsa_key, "r1", "RS256")]})
        forged = jwt.encode(
            {"sub": "acct_1", "exp": datetime.now(UTC) + timedelta(hours=1)},
            "x" * 32,
            algorithm="HS256",
            headers={"kid": "r1"},
        )
        assert get_entitlements(jwks_client, forged).status_code == 401


def test_the_service_token_reads_any_accounts_entitlements(client, session):
    plan = make_plan(session)
    make_account(session, "acct_9")
    make_subscription(session, account_id="acct_9", status="active", plan_id=plan.id)
    response = client.get(
        "/api/v1/accounts/acct_9/entitlements", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.json == {
        "access": True,
        "plan": "starter",
        "status": "active",
        "features": ["projects", "exports"],
        "limits": {"projects": 3},
        "seats": 1,  # the subscription's quantity
        "meters": [],
        "grants": [],
        "recheck_at": None,
    }


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {SERVICE_TOKEN}"])
def test_the_service_endpoint_refuses_anything_else(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/accounts/acct_9/entitlements", headers=headers)
    assert response.status_code == 401


def test_a_user_token_is_not_a_service_token(client):
    response = client.get("/api/v1/accounts/acct_1/entitlements", headers=auth("acct_1"))
    assert response.status_code == 401


def test_verified_tokens_expire_and_stay_bounded(monkeypatch):
    import billing_app.auth as auth_module

    cache = auth_module.VerifiedTokens(size=2)
    now = time.time()
    callers = {name: auth_module.Caller(account_id=f"acct_{name}", email=None) for name in "abc"}
    cache.put("a", callers["a"], now + 10)
    cache.put("b", callers["b"], now + 10)
    assert cache.get("a") == callers["a"]
    cache.put("c", callers["c"], now + 10)  # evicts the least recently used: b
    assert cache.get("b") is None and cache.get("c") is not None
    monkeypatch.setattr(auth_module.time, "time", lambda: now + 11)
    assert cache.get("a") is None  # an expired token's caller is never served


def test_a_token_naming_a_key_of_another_type_is_a_401(jwks_client):
    """RS256 in the header, the kid of an EC key: PyJWT would get a key of the wrong type."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": [jwk_of(ec_key, "e1", "ES256")]})
        confused = signed(rsa_key, "e1", "RS256")
        response = get_entitlements(jwks_client, confused)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert "Error" not in response.json["message"]  # no library exception names


def test_a_failing_jwks_endpoint_is_not_fetched_on_every_request(jwks_client):
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, status=500)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        answers = [get_entitlements(jwks_client, signed(rsa_key, "r1", "RS256")) for _ in range(50)]
        fetches = len(mock.calls)
    assert {answer.status_code for answer in answers} == {401}
    assert fetches == 1


def test_a_known_key_keeps_working_while_a_refresh_fails(jwks_client, monkeypatch):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": [jwk_of(rsa_key, "r1", "RS256")]})
        assert get_entitlements(jwks_client, signed(rsa_key, "r1", "RS256")).status_code == 200
        mock.replace(responses.GET, JWKS_URL, status=503)
        monkeypatch.setattr("billing_app.auth.JWKS_REFRESH_INTERVAL", 0)  # stale: refresh due
        monkeypatch.setattr("billing_app.auth.JWKS_MIN_REFETCH", 0)
        fresh = signed(rsa_key, "r1", "RS256", jti="another")
        assert get_entitlements(jwks_client, fresh).status_code == 200
        assert len(mock.calls) == 2  # it tried, it failed, the known key still served


def test_concurrent_requests_share_one_jwks_fetch(jwks_client):
    import threading

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {"keys": [jwk_of(rsa_key, "r1", "RS256")]}

    def slow(request):
        time.sleep(0.3)
        return (200, {"Content-Type": "application/json"}, json.dumps(jwks))

    answers = []
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, JWKS_URL, callback=slow)
        tokens = [signed(rsa_key, "r1", "RS256", jti=str(n)) for n in range(8)]
        threads = [
            threading.Thread(
                target=lambda token=token: answers.append(get_entitlements(jwks_client, token))
            )
            for token in tokens
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fetches = len(mock.calls)
    assert [answer.status_code for answer in answers] == [200] * 8, [a.json for a in answers]
    assert fetches == 1


@pytest.mark.parametrize(
    "token",
    [
        user_token(exp=str(int(time.time()) + 3600)),
        user_token("a" * 129),
        user_token("acct\x00one"),
    ],
    ids=["string-exp", "long-sub", "nul-in-sub"],
)
def test_odd_claims_are_a_401_on_every_request(client, token):
    for _ in range(2):  # the second answer comes through the verified-token cache
        response = get_entitlements(client, token)
        assert response.status_code == 401, response.json
        assert response.json["error"] == "unauthorized"


def test_an_unusable_email_claim_counts_as_none(client, session):
    response = client.get(
        "/api/v1/subscription", headers=auth("acct_1", email="x" * 330 + "@example.com")
    )
    assert response.status_code == 200


def test_an_anonymous_request_is_a_401_before_its_body_is_read(client):
    response = client.post(
        "/api/v1/checkout", data=b'{"plan": ' + b"[" * 50_000, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


def test_an_api_body_over_the_limit_is_413(make_app):
    client = make_app(API_MAX_BODY_BYTES=1024).test_client()
    response = client.post(
        "/api/v1/subscription/pause",
        json={"effective_from": "immediately", "pad": "x" * 2048},
        headers=auth("acct_1"),
    )
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


def test_the_webhook_limit_is_its_own(make_app):
    from tests.helpers.webhooks import post_webhook

    client = make_app(API_MAX_BODY_BYTES=1024).test_client()
    body = json.dumps({"event_id": "evt_1", "pad": "x" * 4096}).encode()
    response = post_webhook(client, body)
    assert response.status_code == 400  # read and verified (not a notification), not 413
