"""Log in as the default admin and mint an API key; prints `JWT KEY` for run.sh."""

from __future__ import annotations

import sys

import httpx


def main(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        login = client.post(
            "/api/v2/auth/login", json={"email": "admin@localhost.local", "password": "admin123"}
        ).json()["data"]
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        key = client.post(
            "/api/v2/clients", json={"name": "bench", "scopes": ["stats:read"]}, headers=headers
        ).json()["data"]["api_key"]
        print(login["access_token"], key)


if __name__ == "__main__":
    main(sys.argv[1])
