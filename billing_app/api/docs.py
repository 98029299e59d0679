"""The interactive API page's assets (Swagger UI), served from a pinned package so `/docs`
works on a host with no internet: nothing on the page loads from another host."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, send_from_directory

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS_URL = "/docs/assets/"

blp = Blueprint("docs_assets", __name__)


@blp.get(f"{ASSETS_URL}<path:filename>")
def swagger_ui_asset(filename: str):
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)


SWAGGER_UI_SETTINGS = {
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
    # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}
