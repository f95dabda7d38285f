"""Concurrent writers against a real uvicorn server: no 'database is locked', nothing lost."""

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.helpers import PASSWORD


def test_concurrent_writes_all_succeed(server_url, api):
    def signup_and_follow(i: int, shop_id: int) -> list[int]:
        with httpx.Client(base_url=server_url, timeout=30) as c:
            statuses = []
            r = c.post(
                "/api/auth/register",
                json={"email": f"c{i}@example.com", "password": PASSWORD, "username": f"conc{i}"},
            )
            statuses.append(r.status_code)
            r = c.post("/api/auth/login", json={"email": f"c{i}@example.com", "password": PASSWORD})
            statuses.append(r.status_code)
            headers = {"Authorization": f"Bearer {r.json()['data']['accessToken']}"}
            statuses.append(c.post(f"/api/shops/{shop_id}/follow", headers=headers).status_code)
            statuses.append(c.post("/api/shops", json={"name": f"Shop {i}"}, headers=headers).status_code)
            return statuses

    with httpx.Client(base_url=server_url) as c:
        c.post(
            "/api/auth/register", json={"email": "o@example.com", "password": PASSWORD, "username": "owner"}
        )
        token = c.post("/api/auth/login", json={"email": "o@example.com", "password": PASSWORD}).json()
        shop = c.post(
            "/api/shops",
            json={"name": "Popular"},
            headers={"Authorization": f"Bearer {token['data']['accessToken']}"},
        ).json()["data"]

    n = 24
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda i: signup_and_follow(i, shop["id"]), range(n)))
    assert all(s == [201, 200, 200, 201] for s in results), results
    with httpx.Client(base_url=server_url) as c:
        assert c.get(f"/api/shops/{shop['id']}").json()["data"]["followerCount"] == n
    assert api.count("shop_followers") == n
    assert len(api.events("shop.followed")) == n
    assert len(api.events("shop.created")) == n + 1
