"""The Users HTTP API's own tests, through the gateway's sync routes."""


def test_get_create_and_delete_a_user(eventgateway):
    found = eventgateway.request("GET", "/users/1")
    assert found.status_code == 200
    assert found.headers["content-type"] == "application/json"
    assert found.json()["username"] == "ada"

    created = eventgateway.request("POST", "/users", json={"username": "grace"})
    assert created.status_code == 201
    user_id = created.json()["id"]
    assert eventgateway.request("GET", f"/users/{user_id}").json()["username"] == "grace"

    assert eventgateway.request("DELETE", f"/users/{user_id}").status_code == 204
    assert eventgateway.request("GET", f"/users/{user_id}").status_code == 404


def test_a_user_needs_a_username(eventgateway):
    refused = eventgateway.request("POST", "/users", json={"email": "x@example.com"})

    assert refused.status_code == 400
    assert refused.json() == {"error": "send a JSON object with a username"}
