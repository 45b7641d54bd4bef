"""Small helpers the API tests share."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from reelscale.accounts import service as accounts_service
from reelscale.accounts.roles import Role

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signup(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/login", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def member_token(client: httpx.AsyncClient, email: str | None = None) -> str:
    email = email or f"m{uuid.uuid4().hex[:8]}@example.com"
    await signup(client, email)
    return str((await login(client, email))["access_token"])


async def grant(app: Any, email: str, role: Role) -> None:
    db = app.state.platform.db
    async with db.transaction() as db_session:
        member = await accounts_service.find_member(db_session=db_session, email=email)
        await accounts_service.set_role(db_session=db_session, member_id=member.id, role=role)


async def editor_token(client: httpx.AsyncClient, app: Any) -> str:
    email = f"e{uuid.uuid4().hex[:8]}@example.com"
    await signup(client, email)
    await grant(app, email, Role.EDITOR)
    return str((await login(client, email))["access_token"])


async def profile_token(
    client: httpx.AsyncClient, token: str, name: str, **fields: Any
) -> tuple[str, str]:
    """Create a profile and switch into it; returns (profile id, profile-bound token)."""
    response = await client.post(
        "/v1/profiles", json={"name": name, **fields}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    profile_id = response.json()["id"]
    body = {"pin": fields["pin"]} if "pin" in fields else None
    selected = await client.post(
        f"/v1/profiles/{profile_id}/select", json=body, headers=bearer(token)
    )
    assert selected.status_code == 200, selected.text
    return profile_id, selected.json()["access_token"]


S3_BUCKET = "reelscale-contract"


def s3_url(endpoint: str, prefix: str) -> str:
    """A REELSCALE_BLOB_URL for moto's server at `endpoint`."""
    return (
        f"s3://{S3_BUCKET}/{prefix}?endpoint={endpoint}&region=us-east-1"
        "&access_key=testing&secret_key=testing&create_bucket=true"
    )
