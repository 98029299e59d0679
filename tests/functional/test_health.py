from openapi_spec_validator import validate


def test_health_answers_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_checks_the_database(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_answers_503_when_the_database_is_down(make_app, tmp_path):
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    client = make_app(DATABASE_URL=unreachable).test_client()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable"
    assert "nobody" not in response.get_data(as_text=True)


def test_unknown_routes_get_the_json_error_shape(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert response.json["message"]


def test_wrong_methods_get_the_json_error_shape(client):
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"


def test_a_crash_answers_500_without_its_details(make_app):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret-value-that-must-not-leak")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.json["error"] == "internal_error"
    assert "secret-value" not in response.get_data(as_text=True)


def test_the_openapi_document_is_served_and_valid(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert "/health" in document["paths"]
    assert "/health/ready" in document["paths"]


def test_the_docs_page_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
