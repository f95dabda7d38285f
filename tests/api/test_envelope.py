"""The seed's response format, request ids, and bad input handled as clear 4xx errors."""

from tests.helpers import data, error


def test_success_envelope_shape(client):
    resp = client.get("/health")
    body = resp.json()
    assert set(body) == {"success", "data", "meta"}
    assert body["meta"]["version"] == "0.1.0"
    assert body["meta"]["timestamp"].endswith("Z")
    assert resp.headers["content-type"].startswith("application/json")


def test_request_id_is_echoed_or_generated(client):
    resp = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123" == resp.json()["meta"]["requestId"]
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 36
    # an id that could inject into logs or headers is replaced
    assert client.get("/health", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"] != "a b\tc"


def test_unknown_route_and_method_are_enveloped(client):
    error(client.get("/api/nope"), 404, "NOT_FOUND")
    error(client.delete("/health"), 405, "METHOD_NOT_ALLOWED")


def test_malformed_json_is_422(api):
    error(
        api.client.post(
            "/api/auth/register", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "VALIDATION_ERROR",
    )
    error(api.client.post("/api/auth/register", json=[1, 2]), 422, "VALIDATION_ERROR")
    assert api.count("users") == 0


def test_body_over_the_limit_is_413_without_reading_it(api):
    big = b'{"email": "' + b"a" * 2_000_000 + b'"}'
    err = error(
        api.client.post("/api/auth/register", content=big, headers={"content-type": "application/json"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert err["details"]["limitBytes"] == 1_048_576


def test_streamed_body_over_the_limit_is_413(api):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    error(
        api.client.post("/api/auth/register", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )


def test_query_validation_names_the_parameter(api):
    owner = api.user()
    shop = api.shop(owner)
    err = error(api.client.get(f"/api/shops/{shop['id']}/followers?page=0", headers=owner.headers), 422)
    assert err["details"][0]["field"] == "page" and err["details"][0]["in"] == "query"


def test_path_id_must_be_an_integer(client):
    err = error(client.get("/api/shops/abc"), 422)
    assert err["details"][0]["field"] == "shop_id"


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/auth/login" in spec["paths"]
    data(client.get("/health"))
