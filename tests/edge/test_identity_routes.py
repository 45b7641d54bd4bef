"""Every route is either authenticated or on the edge's explicit allow-list, never neither.

A new route that declares no bearer dependency and is not on `OPEN_ROUTES` fails here, and
so does an allow-listed route that declares one (the list would then be wider than needed).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route

from reelscale.app import create_app
from reelscale.core.auth import authenticated
from reelscale.core.clock import SystemClock
from reelscale.core.identity import TokenVerifier
from reelscale.core.identity_headers import IdentityHeaders
from reelscale.edge.identity import OPEN_ROUTES, EdgeAuthenticator
from tests.conftest import make_settings

_PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


def sample_path(template: str) -> str:
    """A concrete path the template matches (`{file:path}` spans segments)."""
    return _PARAM.sub(lambda m: "a/b.m4s" if m.group(2) else "x1", template)


def requires_bearer(dependant: Dependant) -> bool:
    return any(dep.call is authenticated or requires_bearer(dep) for dep in dependant.dependencies)


def authenticator() -> EdgeAuthenticator:
    async def no_keys() -> dict[str, object]:
        return {"keys": []}

    clock = SystemClock()
    return EdgeAuthenticator(
        verifier=TokenVerifier(fetch_jwks=no_keys, issuer="i", audience="a", clock=clock),
        identity_headers=IdentityHeaders(secret=lambda: b"s" * 32, clock=clock),
    )


def route_problems(app: FastAPI) -> tuple[list[str], int]:
    """Routes neither authenticated nor open, or both; and how many (method, path) were seen."""
    edge = authenticator()
    problems: list[str] = []
    checked = 0
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if isinstance(original, Mount):
            # Mounted apps (the UI's static files) declare no dependencies: open or refused.
            path = f"{route.path}/any/file.js"
            if not edge.is_open("GET", path):
                problems.append(f"mount {route.path} is neither authenticated nor open")
            checked += 1
            continue
        assert isinstance(original, Route), f"unknown kind of route {original!r}"
        assert route.path, f"a route without a path: {original!r}"
        path = sample_path(route.path)
        needs_token = isinstance(original, APIRoute) and requires_bearer(route.dependant)
        methods = route.methods or set()
        for method in sorted(methods):
            if method == "HEAD" and "GET" in methods:
                continue
            checked += 1
            is_open = edge.is_open(method, path)
            if needs_token and is_open:
                problems.append(f"{method} {route.path} needs a token but is on the allow-list")
            if not needs_token and not is_open:
                problems.append(f"{method} {route.path} is neither authenticated nor allow-listed")
    return problems, checked


@pytest.mark.parametrize("roles", ["all", "accounts,catalog,media,worker,playback,recs"])
def test_every_route_is_authenticated_or_explicitly_open(tmp_path: Path, roles: str) -> None:
    problems, checked = route_problems(create_app(make_settings(tmp_path), roles))
    assert not problems, "\n".join(problems)
    assert checked > 40  # the walk saw the real route table, not an empty one


def test_the_check_notices_a_new_unauthenticated_route(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))

    @app.get("/v1/catalog/oops")
    async def oops() -> dict[str, str]:
        return {}

    @app.post("/v1/auth/login/extra", dependencies=[Depends(authenticated)])
    async def fine() -> dict[str, str]:
        return {}

    @app.get("/healthz/deep", dependencies=[Depends(authenticated)])
    async def also_fine() -> dict[str, str]:
        return {}

    @app.get("/title/{title_id}", dependencies=[Depends(authenticated)])
    async def shadow(title_id: str) -> dict[str, str]:
        return {}

    problems, _ = route_problems(app)
    assert problems == [
        "GET /v1/catalog/oops is neither authenticated nor allow-listed",
        "GET /title/{title_id} needs a token but is on the allow-list",
    ]


def test_every_open_route_says_why() -> None:
    assert all(route.why and route.methods for route in OPEN_ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "is_open"),
    [
        ("POST", "/v1/auth/login", True),
        ("GET", "/v1/auth/login", False),
        ("POST", "/v1/auth/logout", False),
        ("GET", "/media/s/sid/123/sig/asset/seg_1.m4s", True),
        ("DELETE", "/media/s/sid/123/sig/asset/seg_1.m4s", False),
        ("GET", "/v1/catalog/artwork/abc/poster.svg", True),
        ("GET", "/v1/catalog/artwork/abc/poster.svg/../../titles", False),
        ("GET", "/v1/catalog/titles", False),
        ("GET", "/static/app.js", True),
        ("GET", "/title/abc", True),
        ("GET", "/title/abc/more", False),
        ("GET", "/nowhere", False),
        # Methods are matched in any case (the proxy asks with the method as sent).
        ("get", "/media/s/sid/123/sig/asset/seg_1.m4s", True),
        ("post", "/v1/auth/login", True),
        ("Get", "/healthz", True),
        ("get", "/v1/catalog/titles", False),
        ("put", "/healthz", False),
        ("", "/healthz", False),
    ],
)
def test_allow_list_matching(method: str, path: str, is_open: bool) -> None:
    assert authenticator().is_open(method, path) is is_open
