"""The interactive API page's assets (Swagger UI), served from a pinned package so `/docs`
works on a host with no internet: nothing on the page loads from another host. The
document's version is the package's, and its introduction says how to get a token."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, send_from_directory

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS_URL = "/docs/assets/"
FAVICON_DIRECTORY = Path(__file__).resolve().parent / "static"

blp = Blueprint("docs_assets", __name__)


@blp.get(f"{ASSETS_URL}<path:filename>")
def swagger_ui_asset(filename: str):
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)


@blp.get("/favicon.ico")
def favicon():
    return send_from_directory(FAVICON_DIRECTORY, "favicon.ico", max_age=86400)


def package_version() -> str:
    try:
        return version("paddle-billing-service")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


INTRODUCTION = """The billing service's HTTP API. Amounts are integer minor units in strings; times
are UTC (ISO 8601). Errors are `{"error": <stable code>, "message": ...}`.

**Tokens.** User endpoints take `Authorization: Bearer <JWT>` for one account: the `account_id`
claim (else `sub`) names it, `exp` is required, and it is signed with HS256 and
`AUTH_JWT_SECRET` or by a key of `AUTH_JWKS_URL`. The product's sign-in issues these; to try the
API, `scripts/demo` prints one, or sign your own:
`python -c "import jwt, time; print(jwt.encode({'sub': 'acct_1', 'exp': int(time.time()) + 3600},
'<AUTH_JWT_SECRET>', 'HS256'))"`. Service endpoints (`/api/v1/accounts/...`, the batch read) take
`Authorization: Bearer <BILLING_SERVICE_TOKEN>`. Press **Authorize** to send one with every call."""


API_SETTINGS = {
    "API_TITLE": "Billing service",
    "API_VERSION": package_version(),
    "API_SPEC_OPTIONS": {"info": {"description": INTRODUCTION}},
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
    # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}
