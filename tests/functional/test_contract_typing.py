"""What generated clients make of the contract: every request body gets a type (a union
of models where a body takes one of several shapes), and every field the server always
sends is required, nullable where it can be null, never `X | None | Unset`."""

import re
from collections.abc import Iterator

import pytest

from tests.helpers.clients import generate_python_client, generate_typescript, write_spec

COMPONENT = "#/components/schemas/"


def _named(schema) -> Iterator[str]:
    """The component schemas this schema refers to, at any depth."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith(COMPONENT):
            yield ref.removeprefix(COMPONENT)
        for value in schema.values():
            yield from _named(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _named(value)


def _closure(spec, roots) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_named(spec["components"]["schemas"][name]))
    return seen


def _operations(spec):
    for path in spec["paths"].values():
        for method, operation in path.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield operation


def request_bodies(spec) -> set[str]:
    return {
        name
        for operation in _operations(spec)
        for name in _named(operation.get("requestBody", {}).get("content", {}))
    }


def answers(spec) -> set[str]:
    """Every schema a successful answer is made of (errors have optional parts)."""
    roots = {
        name
        for operation in _operations(spec)
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for name in _named(response.get("content", {}))
    }
    return _closure(spec, roots)


@pytest.fixture
def spec(app):
    return app.test_client().get("/openapi.json").json


def test_every_field_of_every_answer_is_required(spec):
    assert "Subscription" in answers(spec) and "MeterUsage" in answers(spec)
    for name in sorted(answers(spec)):
        schema = spec["components"]["schemas"][name]
        optional = set(schema.get("properties", {})) - set(schema.get("required", []))
        assert not optional, f"{name} leaves {sorted(optional)} optional"


def test_a_body_of_one_of_several_shapes_names_each_shape(spec):
    checkout = spec["components"]["schemas"]["CheckoutRequest"]
    shapes = [spec["components"]["schemas"][name] for name in _named(checkout)]
    assert [shape["required"] for shape in shapes] == [["plan"], ["price_id"], ["product"]]
    assert all(shape["additionalProperties"] is False for shape in shapes)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_the_generated_python_client_types_every_body_and_every_answer(app, tmp_path):
    spec = app.test_client().get("/openapi.json").json
    package = generate_python_client(write_spec(app, tmp_path), tmp_path / "client")

    bodies = {
        module.relative_to(package / "api"): re.findall(
            r"^    body: (.+?)(?: = UNSET)?,$", text, re.M
        )
        for module in (package / "api").rglob("*.py")
        if (text := module.read_text())
    }
    typed = {str(module): set(found) for module, found in bodies.items() if found}
    assert typed["checkout/create_checkout.py"] == {
        "CheckoutPlan | CheckoutPrice | CheckoutProduct"
    }
    assert typed["subscription/change_subscription.py"] == {
        "ChangeSeats | ChangeToPlan | ChangeToPrice"
    }
    untyped = {module for module, found in typed.items() if any("Any" in kind for kind in found)}
    assert not untyped, f"request bodies typed Any in {sorted(untyped)}"
    assert len(typed) == sum("requestBody" in operation for operation in _operations(spec))

    for name in sorted(answers(spec)):
        model = (package / "models" / f"{_snake(name)}.py").read_text()
        fields = re.findall(r"^    (\w+): (.+)$", model.split("def ", 1)[0], re.M)
        maybe_unset = [field for field, kind in fields if "Unset" in kind]
        assert not maybe_unset, f"{name}: {maybe_unset} typed Unset"


def _typescript_schema(typescript: str, name: str) -> str:
    """The text of one schema in openapi-typescript's `components["schemas"]`."""
    match = re.search(
        rf"^        {name}: (.*?)(?=^        \w+: |^    }};)", typescript, re.M | re.S
    )
    assert match, f"{name} is not in the TypeScript types"
    return match.group(1)


def test_the_generated_typescript_types_every_body_and_every_answer(app, tmp_path):
    spec = app.test_client().get("/openapi.json").json
    typescript = generate_typescript(write_spec(app, tmp_path), tmp_path / "billing.d.ts")

    for name in sorted(request_bodies(spec)):
        shape = _typescript_schema(typescript, name)
        assert "unknown" not in shape, f"{name}: {shape}"
    checkout = _typescript_schema(typescript, "CheckoutRequest")
    assert checkout.strip().rstrip(";").split(" | ") == [
        f'components["schemas"]["{shape}"]'
        for shape in ("CheckoutPlan", "CheckoutPrice", "CheckoutProduct")
    ]

    for name in sorted(answers(spec)):
        optional = re.findall(r"^            (\w+)\?:", _typescript_schema(typescript, name), re.M)
        assert not optional, f"{name}: {optional} optional"
