"""Accounts and catalog as two processes on loopback, each with its own database.

The catalog process never sees the accounts database or signing keys: it verifies tokens
against the JWKS it fetches from the accounts process over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.server import cli, reelscale_env, running

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"
TITLE = {
    "kind": "movie",
    "name": "Across the Wire",
    "release_year": 2025,
    "maturity_rating": "PG-13",
    "original_language": "en",
    "genres": ["Drama"],
}


def test_catalog_write_authorised_by_accounts_token(tmp_path: Path) -> None:
    accounts_env = reelscale_env(tmp_path / "accounts")
    with running(accounts_env, "accounts", log=tmp_path / "accounts.log") as accounts_url:
        catalog_env = reelscale_env(tmp_path / "catalog", accounts_url=accounts_url)
        # A different secret: the catalog holds nothing that could mint tokens.
        catalog_env["REELSCALE_SECRET_KEY"] = "another-secret-" + "y" * 40
        with running(catalog_env, "catalog", log=tmp_path / "catalog.log") as catalog_url:
            accounts = httpx.Client(base_url=accounts_url, timeout=30)
            catalog = httpx.Client(base_url=catalog_url, timeout=30)

            for email in ("writer@example.com", "reader@example.com"):
                signup = accounts.post(
                    "/v1/auth/signup", json={"email": email, "password": PASSWORD}
                )
                assert signup.status_code == 201
            granted = cli(accounts_env, "members", "set-role", "writer@example.com", "editor")
            assert granted.returncode == 0, granted.stderr

            def token(email: str) -> str:
                response = accounts.post(
                    "/v1/auth/login", json={"email": email, "password": PASSWORD}
                )
                assert response.status_code == 200
                return str(response.json()["access_token"])

            writer, reader = token("writer@example.com"), token("reader@example.com")
            created = catalog.post(
                "/v1/catalog/titles", json=TITLE, headers={"Authorization": f"Bearer {writer}"}
            )
            assert created.status_code == 201, created.text
            read = catalog.get(
                f"/v1/catalog/titles/{created.json()['id']}",
                headers={"Authorization": f"Bearer {reader}"},
            )
            assert read.json()["name"] == "Across the Wire"
            denied = catalog.post(
                "/v1/catalog/titles", json=TITLE, headers={"Authorization": f"Bearer {reader}"}
            )
            assert denied.status_code == 403

            # Each process serves only its own roles.
            assert catalog.post("/v1/auth/login", json={}).status_code == 404
            # (With a token: the edge answers 401 to any path off its allow-list without one.)
            assert accounts.get("/v1/catalog/genres").status_code == 401
            reading = {"Authorization": f"Bearer {reader}"}
            assert accounts.get("/v1/catalog/genres", headers=reading).status_code == 404
            assert catalog.get("/readyz").json()["roles"] == ["catalog"]
            assert (
                not (tmp_path / "catalog" / "reelscale.db").read_bytes().count(b"accounts_members")
            )
            accounts.close()
            catalog.close()


def test_catalog_alone_needs_to_know_where_accounts_is(tmp_path: Path) -> None:
    result = cli(reelscale_env(tmp_path), "serve", "--roles", "catalog", "--port", "0")
    assert result.returncode == 2
    assert "REELSCALE_ACCOUNTS_URL" in result.stderr
    unknown = cli(reelscale_env(tmp_path), "serve", "--roles", "billing")
    assert unknown.returncode == 2
    assert "unknown role" in unknown.stderr
