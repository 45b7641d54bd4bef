"""`reelscale serve --roles edge`: load the settings, run the proxy until signalled.

The edge runs alone: it proxies to instances running the other roles, so combining it
with them in one process is refused. One process uses one core; run several with
`REELSCALE_EDGE_REUSE_PORT=true` to use more.

It always verifies tokens (docs/edge.md, "Zero trust in the proxy"), with the platform's
settings: the secret behind the signed identity header (`REELSCALE_SECRET_KEY`, as the
services have it), the token issuer and audience, and where the JWK Set lives. It follows
sign-outs on the shared event stream (`REELSCALE_STREAM_URL`, revocations.py) and believes
`X-Forwarded-For` only from `REELSCALE_TRUSTED_PROXIES` (edge/forwarded.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from pydantic import ValidationError

from reelscale.core.lifecycle import freeze_startup_heap
from reelscale.core.settings import Settings
from reelscale.edge.forwarded import TrustedProxies
from reelscale.edge.native import compiled_here
from reelscale.edge.proxy.auth import JWKS_PATH, EdgeTrust
from reelscale.edge.proxy.config import EdgeSettings
from reelscale.edge.proxy.revocations import RevocationFeed, instance_for, revocation_feed
from reelscale.edge.proxy.server import ProxyServer


class EdgeConfigError(ValueError):
    """The edge cannot start as configured; the message says why."""


log = logging.getLogger("reelscale.edge.proxy")


def edge_settings(settings: Settings, roles: str) -> EdgeSettings:
    """Check the roles and read `REELSCALE_EDGE_*`; `--host/--port` override theirs."""
    chosen = {role.strip() for role in roles.split(",") if role.strip()}
    if chosen != {"edge"}:
        others = ", ".join(sorted(chosen - {"edge"}))
        raise EdgeConfigError(
            f"the edge role runs alone; run {others} in other processes and list them in "
            "REELSCALE_EDGE_UPSTREAMS"
        )
    overrides: dict[str, object] = {}
    for name in ("host", "port"):
        if name in settings.model_fields_set:
            overrides[name] = getattr(settings, name)
    try:
        return EdgeSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            message = error["msg"]
            if error["type"] == "missing" and field == "upstreams":
                message = (
                    "required, e.g. default=http://127.0.0.1:8000;catalog=http://10.0.0.5:8001"
                )
            lines.append(f"  REELSCALE_EDGE_{field.upper()}: {message}")
        raise EdgeConfigError("Invalid edge settings:\n" + "\n".join(lines)) from None


def edge_trust(settings: Settings, edge: EdgeSettings) -> EdgeTrust:
    """Token checks as the services do them, with the platform secret read now (so a
    missing or unreadable one stops the edge at start, not at its first request)."""
    try:
        secret = settings.resolved_secret_key()
    except OSError as exc:
        raise EdgeConfigError(
            f"cannot read the platform secret (set REELSCALE_SECRET_KEY): {exc}"
        ) from None
    jwks_url = edge.jwks_url
    if jwks_url is None and settings.accounts_url:
        jwks_url = settings.accounts_url.rstrip("/") + JWKS_PATH
    return EdgeTrust(
        secret=lambda: secret,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        jwks_url=jwks_url,  # None: the pool that serves the JWKS path (accounts)
    )


def edge_revocations(settings: Settings, edge: EdgeSettings) -> RevocationFeed | None:
    """Where this proxy hears of sign-outs (None, logged, without a shared stream)."""
    try:
        return revocation_feed(
            settings.stream_url,
            instance=instance_for(
                instance=settings.instance,
                default=settings.model_copy(update={"port": edge.port}).instance_name,
                reuse_port=edge.reuse_port,
            ),
            token_ttl_s=settings.access_token_ttl_s,
            data_dir=settings.data_dir,
        )
    except ValueError as exc:
        raise EdgeConfigError(f"REELSCALE_STREAM_URL: {exc}") from None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it roughly halves the proxy's per-request overhead)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def run(
    settings: EdgeSettings,
    trust: EdgeTrust,
    *,
    trusted_proxies: TrustedProxies | None = None,
    revocations: RevocationFeed | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(settings, trust, trusted_proxies, revocations))


async def _serve(
    settings: EdgeSettings,
    trust: EdgeTrust,
    trusted_proxies: TrustedProxies | None,
    revocations: RevocationFeed | None,
) -> None:
    server = ProxyServer(
        settings, trust=trust, trusted_proxies=trusted_proxies, revocations=revocations
    )
    await server.start()
    freeze_startup_heap()
    compiled = compiled_here()
    log.info(
        "edge hot path: %s",
        f"compiled ({len(compiled)} modules)" if compiled else "interpreted (pure Python)",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await server.stop()


def serve_edge(settings: Settings, roles: str) -> None:
    edge = edge_settings(settings, roles)
    run(
        edge,
        edge_trust(settings, edge),
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
        revocations=edge_revocations(settings, edge),
    )
