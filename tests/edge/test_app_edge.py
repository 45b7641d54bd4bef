"""The edge installed in the one-process platform: order, tokens, identity headers, metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reelscale.app import create_app
from reelscale.core.identity_headers import IDENTITY_HEADER, identity_key, sign_identity
from reelscale.core.middleware import BodyLimitMiddleware, RequestContextMiddleware
from reelscale.edge.middleware import EdgeMiddleware
from reelscale.edge.ratelimit import DEFAULT_RATE_LIMITS
from reelscale.edge.runtime import EdgeRuntime, rate_limits_from
from tests.conftest import TEST_SECRET, Harness, make_settings, started
from tests.support import bearer, member_token

KEY = identity_key(TEST_SECRET.encode())


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus exposition, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{([^}]*)\})? (\S+)$", line)
        if match and match.group(1) == name:
            got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if got == wanted:
                return float(match.group(3))
    return 0.0


def test_the_edge_sits_between_the_request_context_and_the_body_limit(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    order = [m.cls for m in app.user_middleware]  # outermost first
    assert order == [RequestContextMiddleware, EdgeMiddleware, BodyLimitMiddleware]
    assert isinstance(app.state.edge, EdgeRuntime)


def test_the_edge_can_be_switched_off(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, edge_enabled=False))
    assert EdgeMiddleware not in [m.cls for m in app.user_middleware]
    assert app.state.edge is None


def test_default_rate_limit_settings_are_the_edge_defaults(tmp_path: Path) -> None:
    from reelscale.core.settings import Settings

    assert rate_limits_from(Settings(data_dir=tmp_path)) == DEFAULT_RATE_LIMITS


def test_a_bad_extra_rule_stops_the_app_from_being_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a rule"):
        create_app(make_settings(tmp_path, edge_rules=("GET /x => ",)))


async def test_extra_rules_go_before_the_defaults(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, edge_rules=("GET /v1/catalog/titles => CRITICAL",))
    async with started(settings) as h:
        assert h.app.state.edge.started  # the supervisor runs it with the other services
        classify = h.app.state.edge.classifier.classify
        assert classify(method="GET", path="/v1/catalog/titles").name == "CRITICAL"
        assert classify(method="GET", path="/v1/catalog/search").name == "BEST_EFFORT"


async def test_a_missing_token_is_refused_at_the_edge_before_the_route_runs(
    sqlite_harness: Harness,
) -> None:
    c = sqlite_harness.client
    # A body the route could not even parse: the route would answer 422, the edge 401.
    response = await c.post(
        "/v1/profiles", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "an access token is required"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_unknown_paths_need_a_token_too(sqlite_harness: Harness) -> None:
    c = sqlite_harness.client
    assert (await c.get("/v1/nothing-here")).status_code == 401
    token = await member_token(c)
    assert (await c.get("/v1/nothing-here", headers=bearer(token))).status_code == 404


async def test_bad_tokens_are_refused_at_the_edge(sqlite_harness: Harness) -> None:
    c = sqlite_harness.client
    token = await member_token(c)
    assert (await c.get("/v1/me", headers=bearer(token))).status_code == 200
    for headers in (
        bearer(token[:-4] + "AAAA"),
        bearer("not-a-jwt"),
        {"Authorization": f"Basic {token}"},
        bearer("x" * 5000),
    ):
        response = await c.get("/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
    sqlite_harness.clock.advance(16 * 60)  # past the 15-minute access token
    expired = await c.get("/v1/me", headers=bearer(token))
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_allow_listed_routes_need_no_token(sqlite_harness: Harness) -> None:
    c = sqlite_harness.client
    for path in ("/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/openapi.json"):
        assert (await c.get(path)).status_code == 200, path
    for path in ("/", "/browse", "/login", "/docs"):
        assert (await c.get(path)).status_code == 200, path
    signup = await c.post(
        "/v1/auth/signup", json={"email": "open@example.com", "password": "a long password"}
    )
    assert signup.status_code == 201
    # An open route still answers for itself: a bad media signature is the route's 403.
    assert (await c.get("/media/s/s/1/sig/" + "a" * 32 + "/x.m4s")).status_code == 403


async def test_a_client_cannot_smuggle_an_identity_header(sqlite_harness: Harness) -> None:
    c = sqlite_harness.client
    mine = await member_token(c)
    me = (await c.get("/v1/me", headers=bearer(mine))).json()
    theirs = await member_token(c)
    victim = await sqlite_harness.app.state.verifier.verify(theirs)
    # Even a correctly signed header (a leaked one) is dropped at the edge: without a token
    # it does not authenticate, and with one the edge's own verification wins.
    smuggled = sign_identity(
        victim, key=KEY, method="GET", path="/v1/me", now=sqlite_harness.clock.now().timestamp()
    )
    assert (await c.get("/v1/me", headers={IDENTITY_HEADER: smuggled})).status_code == 401
    response = await c.get("/v1/me", headers={**bearer(mine), IDENTITY_HEADER: smuggled})
    assert response.status_code == 200
    assert response.json()["id"] == me["id"]


async def test_edge_counts_appear_on_metrics(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, edge_auth_rate_per_s=0.001, edge_auth_burst=2.0)
    async with started(settings) as h:
        c = h.client
        body = {"email": "m@example.com", "password": "a long enough password"}
        assert (await c.post("/v1/auth/signup", json=body)).status_code == 201
        assert (await c.post("/v1/auth/login", json=body)).status_code == 200
        throttled = await c.post("/v1/auth/login", json=body)
        assert throttled.status_code == 429
        assert throttled.headers["content-type"] == "application/problem+json"
        assert int(throttled.headers["retry-after"]) >= 1
        scrape = (await c.get("/metrics")).text
    assert metric(scrape, "reelscale_edge_admitted_total", priority="best_effort") >= 2
    assert metric(
        scrape, "reelscale_edge_shed_total", priority="best_effort", reason="rate_limit"
    ) == pytest.approx(1)
    assert metric(scrape, "reelscale_edge_concurrency_limit") >= 1
    for name in ("reelscale_edge_in_flight", "reelscale_edge_guaranteed_slots"):
        assert name in scrape


async def test_behind_a_standalone_edge_services_verify_signed_identity_headers(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, require_edge_identity=True)
    async with started(settings) as h:
        c = h.client
        token = await member_token(c)  # sign-up and sign-in are open: no identity needed
        principal = await h.app.state.verifier.verify(token)

        def header(method: str = "GET", path: str = "/v1/me", **kw: object) -> dict[str, str]:
            now = float(kw.pop("now", h.clock.now().timestamp()))  # type: ignore[arg-type]
            key = kw.pop("key", KEY)
            value = sign_identity(principal, key=key, method=method, path=path, now=now)  # type: ignore[arg-type]
            return {IDENTITY_HEADER: value}

        ok = await c.get("/v1/me", headers=header())
        assert ok.status_code == 200
        assert ok.json()["id"] == principal.subject
        # A bare bearer token did not come through the edge: refused.
        bare = await c.get("/v1/me", headers=bearer(token))
        assert bare.status_code == 401
        assert "through the edge" in bare.json()["detail"]
        refused = {
            "forged": header(key=identity_key(b"not the platform secret" * 2)),
            "other path": header(path="/v1/profiles"),
            "other method": header(method="POST"),
            "tampered": {IDENTITY_HEADER: header()[IDENTITY_HEADER][:-3] + "abc"},
            "expired": header(now=h.clock.now().timestamp() - 31),
        }
        for what, headers in refused.items():
            response = await c.get("/v1/me", headers={**headers, **bearer(token)})
            assert response.status_code == 401, what
            assert response.headers["content-type"] == "application/problem+json", what
        # Scopes are still the route's business: a valid identity without the scope is 403.
        admin_only = await c.put(
            f"/v1/admin/members/{principal.subject}/role",
            json={"role": "admin"},
            headers=header(method="PUT", path=f"/v1/admin/members/{principal.subject}/role"),
        )
        assert admin_only.status_code == 403


async def test_without_the_edge_routes_still_verify_the_bearer_themselves(tmp_path: Path) -> None:
    async with started(make_settings(tmp_path, edge_enabled=False)) as h:
        token = await member_token(h.client)
        assert (await h.client.get("/v1/me")).status_code == 401
        assert (await h.client.get("/v1/me", headers=bearer(token))).status_code == 200
