"""A frontend written in TypeScript against the contract: clients/typescript/example.ts
compiles with `tsc --strict` against types generated from the app's /openapi.json, and
stops compiling when the contract changes under it."""

from __future__ import annotations

import json
import shutil

from tests.helpers.clients import REPOSITORY, compile_typescript, generate_typescript, write_spec

EXAMPLE = REPOSITORY / "clients" / "typescript"


def project_with_types(app, directory, change=None):
    """The example and its tsconfig in `directory`, with types generated from the app's
    document (changed by `change` first, when given)."""
    for name in ("example.ts", "tsconfig.json"):
        shutil.copy(EXAMPLE / name, directory / name)
    spec = write_spec(app, directory)
    if change:
        document = json.loads(spec.read_text())
        change(document)
        spec.write_text(json.dumps(document))
    generate_typescript(spec, directory / "billing-api.d.ts")
    return directory


def test_the_example_compiles_strictly_against_the_contract(app, tmp_path):
    compiled = compile_typescript(project_with_types(app, tmp_path))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


def test_a_contract_change_that_breaks_the_frontend_fails_to_compile(app, tmp_path):
    def seats_become_text(document):
        quantity = document["components"]["schemas"]["Subscription"]["properties"]["quantity"]
        quantity["type"] = "string"

    compiled = compile_typescript(project_with_types(app, tmp_path, seats_become_text))
    assert compiled.returncode != 0
    assert "example.ts" in compiled.stdout and "TS2322" in compiled.stdout  # not assignable
