"""The Python client calls only what the service documents, under the API version its own
major version names."""

from __future__ import annotations

import billing_client
from billing_client.endpoints import API, ENDPOINTS


def test_every_endpoint_the_client_calls_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json["paths"]
    for method, path in ENDPOINTS:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not documented"
        assert "401" in paths[path][method]["responses"]  # a service-token endpoint


def test_the_client_version_is_the_api_version():
    assert billing_client.__version__.split(".")[0] == API.removeprefix("/api/v")
