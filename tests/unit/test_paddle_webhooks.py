"""Webhook signatures: Paddle's real vectors, independent vectors, and every way to fail."""

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paddle_client import webhooks
from paddle_client.webhooks import (
    MalformedNotification,
    MalformedSignature,
    MissingSignature,
    SignatureExpired,
    SignatureMismatch,
    parse_notification,
    sign,
    verify,
)
from tests.helpers.samples import SAMPLES, sample, sample_bytes

SECRET = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"
NOW = 1_700_000_000


def at(ts):
    return lambda: ts


@pytest.mark.parametrize("vector", sample("webhook-signature-test-vectors.json")["vectors"])
def test_paddles_own_signed_vectors_verify(vector):
    secrets = vector.get("secrets") or [vector["secret"]]
    verify(
        vector["paddle_signature_header"],
        vector["raw_body"].encode("utf-8"),
        secrets,
        tolerance=None,
    )


def test_a_vector_computed_independently_of_sign():
    body = b'{"event_id":"evt_1"}'
    expected = hmac.new(b"whsec", b"1700000000:" + body, hashlib.sha256).hexdigest()
    header = f"ts=1700000000;h1={expected}"
    verify(header, body, ["whsec"], now=at(NOW))
    assert sign(body, "whsec", timestamp=NOW) == header


PAYLOADS = sorted(p for p in SAMPLES.glob("webhook-*.json") if "signature" not in p.name)


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_every_sample_payload_signs_and_verifies(path):
    body = path.read_bytes()
    verify(sign(body, SECRET, timestamp=NOW), body, [SECRET], now=at(NOW))


def test_a_tampered_body_is_refused():
    body = sample_bytes("webhook-subscription.updated.json")
    header = sign(body, SECRET, timestamp=NOW)
    with pytest.raises(SignatureMismatch):
        verify(header, body.replace(b"active", b"paused", 1), [SECRET], now=at(NOW))


def test_a_reserialised_body_is_refused():
    body = sample_bytes("webhook-subscription.updated.json")
    header = sign(body, SECRET, timestamp=NOW)
    with pytest.raises(SignatureMismatch):
        verify(header, json.dumps(json.loads(body)).encode(), [SECRET], now=at(NOW))


def test_a_wrong_secret_is_refused():
    body = b"{}"
    with pytest.raises(SignatureMismatch):
        verify(sign(body, "other", timestamp=NOW), body, [SECRET], now=at(NOW))


def test_no_configured_secret_verifies_nothing():
    with pytest.raises(SignatureMismatch):
        verify(sign(b"{}", "", timestamp=NOW), b"{}", [""], now=at(NOW))


@pytest.mark.parametrize("skew", [-301, 301])
def test_old_and_future_timestamps_are_refused(skew):
    header = sign(b"{}", SECRET, timestamp=NOW + skew)
    with pytest.raises(SignatureExpired):
        verify(header, b"{}", [SECRET], tolerance=300, now=at(NOW))


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_within_the_tolerance_pass(skew):
    verify(sign(b"{}", SECRET, timestamp=NOW + skew), b"{}", [SECRET], tolerance=300, now=at(NOW))


def test_rotation_two_secrets_two_signatures():
    body = b'{"rotation":true}'
    header = sign(body, ["old-secret", "new-secret"], timestamp=NOW)
    assert header.count("h1=") == 2
    verify(header, body, ["new-secret"], now=at(NOW))
    verify(header, body, ["old-secret"], now=at(NOW))
    verify(sign(body, "new-secret", timestamp=NOW), body, ["old-secret", "new-secret"], now=at(NOW))


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, MissingSignature),
        ("", MissingSignature),
        ("h1=abc", MalformedSignature),
        ("ts=1700000000", MalformedSignature),
        ("ts=abc;h1=00", MalformedSignature),
        ("ts=1;ts=2;h1=00", MalformedSignature),
        ("ts=1700000000;h1=00;v2=11", MalformedSignature),
        ("garbage", MalformedSignature),
        ("ts=\u00b2;h1=00", MalformedSignature),  # a superscript digit: isdigit(), not int()
        ("ts=" + "9" * 400 + ";h1=00", MalformedSignature),  # would overflow the clock math
        ("ts=1700000000;h1=\u00e9\u00e9", SignatureMismatch),  # not ASCII: no match, no crash
    ],
)
def test_malformed_headers(header, error):
    with pytest.raises(error):
        verify(header, b"{}", [SECRET], now=at(NOW))


@settings(max_examples=500, deadline=None)
@given(header=st.text(max_size=200))
def test_any_made_up_header_is_a_signature_error_and_nothing_else(header):
    with pytest.raises(webhooks.SignatureError):
        verify(header, b"{}", [SECRET], now=at(NOW))


@settings(max_examples=300, deadline=None)
@given(
    ts=st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=40),
    h1=st.text(max_size=80),
)
def test_digit_like_timestamps_and_any_h1_are_signature_errors(ts, h1):
    with pytest.raises(webhooks.SignatureError):
        verify(f"ts={ts};h1={h1}", b"{}", [SECRET], now=at(NOW))


def test_every_failure_is_a_signature_error():
    for error in (MissingSignature, MalformedSignature, SignatureExpired, SignatureMismatch):
        assert issubclass(error, webhooks.SignatureError)


def test_parse_notification_reads_the_envelope():
    notification = parse_notification(sample_bytes("webhook-subscription.updated.json"))
    raw = sample("webhook-subscription.updated.json")
    assert notification.event_id == raw["event_id"]
    assert notification.event_type == "subscription.updated"
    assert notification.occurred_at.tzinfo is not None
    assert notification.data["id"] == raw["data"]["id"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"event_id": "evt_1"}',
        b'{"event_id":"e","event_type":"t","occurred_at":"yesterday","data":{}}',
        b'{"event_id":"e","event_type":"t","occurred_at":"2024-01-01T00:00:00Z","data":[]}',
    ],
)
def test_parse_notification_refuses_what_is_not_an_envelope(body):
    with pytest.raises(MalformedNotification):
        parse_notification(body)
