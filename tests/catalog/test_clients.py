"""The catalog and accounts clients: in process and over HTTP, one contract."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import httpx
import pytest

from reelscale.accounts.client import HttpAccounts
from reelscale.accounts.inprocess import InProcessAccounts
from reelscale.catalog.client import HttpCatalog
from reelscale.catalog.inprocess import InProcessCatalog
from reelscale.core.errors import NotFound, Overloaded
from tests.conftest import Harness
from tests.support import bearer, editor_token

pytestmark = pytest.mark.asyncio

MOVIE = {
    "kind": "movie",
    "name": "Client Contract",
    "release_year": 2020,
    "maturity_rating": "PG",
    "original_language": "sv",
    "runtime_minutes": 91,
}


async def test_catalog_clients_agree(harness: Harness) -> None:
    token = await editor_token(harness.client, harness.app)
    created = await harness.client.post("/v1/catalog/titles", json=MOVIE, headers=bearer(token))
    title_id = uuid.UUID(created.json()["id"])
    transport = httpx.ASGITransport(app=harness.app)

    async def current_token() -> str:
        return token

    remote = HttpCatalog("http://testserver", token=current_token, transport=transport)
    local = InProcessCatalog(harness.app.state.catalog)
    try:
        for client in (local, remote):
            summary = await client.title_summary(title_id)
            assert (summary.name, summary.maturity_level, summary.original_language) == (
                "Client Contract",
                7,
                "sv",
            )
            with pytest.raises(NotFound):
                await client.title_summary(uuid.uuid4())
    finally:
        await remote.aclose()
        await local.aclose()


async def test_accounts_clients_agree(harness: Harness) -> None:
    remote = HttpAccounts("http://testserver", transport=httpx.ASGITransport(app=harness.app))
    local = InProcessAccounts(harness.app.state.accounts)
    try:
        assert await remote.jwks() == await local.jwks()
        assert (await local.jwks())["keys"][0]["alg"] == "EdDSA"
    finally:
        await remote.aclose()


async def test_unreachable_accounts_is_503_not_500() -> None:
    client = HttpAccounts("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(Overloaded):
        await client.jwks()
    await client.aclose()


async def test_generated_artwork_is_public_svg(harness: Harness) -> None:
    token = await editor_token(harness.client, harness.app)
    hostile = {**MOVIE, "name": '<script>alert(1)</script> & "Friends" onload="alert(2)'}
    created = await harness.client.post("/v1/catalog/titles", json=hostile, headers=bearer(token))
    title_id = created.json()["id"]
    for kind in ("poster", "backdrop"):
        response = await harness.client.get(f"/v1/catalog/artwork/{title_id}/{kind}.svg")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text.startswith("<svg")
        # The name is escaped in text and attributes: the SVG parses, with no script and
        # no event-handler attribute anywhere.
        root = ElementTree.fromstring(response.text)  # noqa: S314 (our own output)
        elements = list(root.iter())
        assert not [e for e in elements if e.tag.endswith("script")]
        assert not [a for e in elements for a in e.attrib if a.lower().startswith("on")]
        assert root.attrib["aria-label"] == hostile["name"]
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["x-content-type-options"] == "nosniff"
    missing = await harness.client.get(f"/v1/catalog/artwork/{uuid.uuid4()}/poster.svg")
    assert missing.status_code == 404
    wrong_kind = await harness.client.get(f"/v1/catalog/artwork/{title_id}/logo.svg")
    assert wrong_kind.status_code == 422
