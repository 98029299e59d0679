"""Clients generated from the service's /openapi.json by real generators, as a frontend or
another service would make them: openapi-python-client, and openapi-typescript from the
repository's package.json (`npm ci`)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
OPENAPI_TYPESCRIPT = REPOSITORY / "node_modules" / ".bin" / "openapi-typescript"
TSC = REPOSITORY / "node_modules" / ".bin" / "tsc"


def write_spec(app, directory: Path) -> Path:
    spec = directory / "openapi.json"
    spec.write_text(json.dumps(app.test_client().get("/openapi.json").json))
    return spec


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def compile_typescript(project: Path) -> subprocess.CompletedProcess:
    """`tsc -p project` (its tsconfig.json): what it printed, and whether it compiled."""
    assert TSC.exists(), "typescript is missing: run `npm ci`"
    return subprocess.run([str(TSC), "-p", str(project)], capture_output=True, text=True)


def generate_python_client(spec: Path, package: Path) -> Path:
    # Installed beside this Python (the test extra), whether or not its bin is on PATH.
    beside = Path(sys.executable).parent / "openapi-python-client"
    generator = str(beside) if beside.exists() else shutil.which("openapi-python-client")
    assert generator, "openapi-python-client is missing: pip install -e '.[test]'"
    output = ["--output-path", str(package), "--meta", "none"]
    _run([generator, "generate", "--path", str(spec), *output])
    return package


def generate_typescript(spec: Path, output: Path) -> str:
    assert OPENAPI_TYPESCRIPT.exists(), "openapi-typescript is missing: run `npm ci`"
    _run([str(OPENAPI_TYPESCRIPT), str(spec), "--output", str(output)])
    return output.read_text()
