"""The batch's body taken as it is when it plainly passes the schema: whatever the body,
the plain reading either steps aside (None: the schema judges it) or is exactly what the
schema loads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from billing_app.api.schemas import UsageBatchRequestSchema
from billing_app.api.usage import plain_batch

text = st.one_of(
    st.text(max_size=3),
    st.text(min_size=120, max_size=210),
    st.sampled_from(["acct_1", "api_calls", "k-1", "Api", "a\n", "a b", "\u00e9", "x" * 129]),
)
moments = st.one_of(
    st.sampled_from(
        [
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:00:00+02:00",
            "2026-12-04T10:00:00",
            "2026-12-04",
            "20261204T100000Z",
            "not a time",
        ]
    ),
    st.integers(),
    st.none(),
)
values = st.one_of(text, st.integers(-2, 2_000_000_000), st.booleans(), st.none(), st.floats())
report = st.fixed_dictionaries(
    {},
    optional={
        "account_id": values,
        "meter": st.one_of(values, st.sampled_from(["api_calls", "a.b-c_1", "-x", "API"])),
        "quantity": st.one_of(st.integers(-1, 1_000_000_001), st.booleans(), st.floats(), text),
        "idempotency_key": values,
        "occurred_at": moments,
        "subject": values,
        "surprise": values,
    },
)
valid = st.fixed_dictionaries(
    {
        "account_id": st.sampled_from(["acct_1", "acct_2"]),
        "meter": st.just("api_calls"),
        "quantity": st.integers(1, 1_000_000_000),
        "idempotency_key": st.text(min_size=1, max_size=128).filter(str.isprintable),
    },
    optional={"occurred_at": moments, "subject": text},
)


def loaded_by_the_schema(body):
    try:
        return UsageBatchRequestSchema().load(body)
    except ValidationError:
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(report, valid), min_size=0, max_size=4))
def test_the_plain_reading_is_the_schemas_or_steps_aside(reports):
    body = {"reports": reports}
    plain = plain_batch(body)
    if plain is not None:
        assert plain == loaded_by_the_schema(body)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid, min_size=1, max_size=5))
def test_a_plain_batch_is_taken_as_it_is(reports):
    body = {"reports": reports}
    expected = loaded_by_the_schema(body)
    if expected is not None:  # (a subject or time the schema refuses steps aside, tested above)
        assert plain_batch(body) == expected or plain_batch(body) is None
    clean = [
        {key: r[key] for key in ("account_id", "meter", "quantity", "idempotency_key")}
        for r in reports
    ]
    assert plain_batch({"reports": clean}) == loaded_by_the_schema({"reports": clean})


def test_bodies_that_are_not_a_batch_step_aside():
    for body in (None, [], {"reports": []}, {"reports": "x"}, {"reports": [{}], "more": 1}):
        assert plain_batch(body) is None
    assert (
        plain_batch(
            {
                "reports": [
                    {"account_id": "a", "meter": "m", "quantity": 1, "idempotency_key": "k"}
                ]
                * 1001
            }
        )
        is None
    )
