"""The standalone edge proxy's settings, read from `REELSCALE_EDGE_*` environment variables.

Upstreams are written as one line, pool by pool:

    REELSCALE_EDGE_UPSTREAMS="catalog=http://10.0.0.5:8001,http://10.0.0.6:8001;default=http://10.0.0.7:8000"

`default` is required: it serves every path no route names, and any routed pool that is not
configured (a deployment that runs recs inside its default instances needs no `recs` pool).
Routes map path prefixes to pools; the defaults follow the services' routers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reelscale.edge.adaptive import AdaptiveSettings
from reelscale.edge.proxy.upstreams import Membership, Origin

_POOL_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

# Prefix to pool, from the services' routers (accounts declares full paths; the others a
# router prefix). A prefix matches itself and anything below it (`/v1/catalog` matches
# `/v1/catalog` and `/v1/catalog/titles`, never `/v1/catalogue`); the longest wins.
DEFAULT_ROUTES: tuple[tuple[str, str], ...] = (
    ("/v1/auth", "accounts"),
    ("/v1/accounts", "accounts"),
    ("/v1/me", "accounts"),
    ("/v1/profiles", "accounts"),
    ("/v1/admin/members", "accounts"),
    ("/v1/admin/keys", "accounts"),
    ("/.well-known/jwks.json", "accounts"),
    ("/v1/catalog", "catalog"),
    ("/v1/media", "media"),
    ("/v1/playback", "playback"),
    ("/media/", "playback"),
    ("/v1/recs", "recs"),
)


def parse_upstreams(text: str) -> Membership:
    """`name=url[,url...];name=url...` into pool name -> origins, or a ValueError saying why."""
    pools: dict[str, tuple[Origin, ...]] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, urls = part.partition("=")
        name = name.strip()
        if not sep or not urls.strip():
            raise ValueError(f"upstream pool {part!r} needs the form name=http://host:port[,...]")
        if not _POOL_NAME.match(name):
            raise ValueError(
                f"upstream pool name {name!r}: lower-case letters, digits, '-' or '_', "
                "starting with a letter"
            )
        if name in pools:
            raise ValueError(f"upstream pool {name!r} is given twice")
        origins = [parse_origin(url.strip()) for url in urls.split(",") if url.strip()]
        if len(set(origins)) != len(origins):
            raise ValueError(f"upstream pool {name!r} lists an instance twice")
        pools[name] = tuple(origins)
    if not pools:
        raise ValueError("no upstream pools given")
    if "default" not in pools:
        raise ValueError("upstreams need a 'default' pool (for paths no route names)")
    return pools


def parse_origin(url: str) -> Origin:
    """`http://host:port` (port 80 when omitted); nothing else is accepted."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError as exc:
        raise ValueError(f"upstream {url!r} is not a URL: {exc}") from None
    if split.scheme != "http":
        raise ValueError(f"upstream {url!r}: only http:// instances are supported")
    if not split.hostname:
        raise ValueError(f"upstream {url!r} has no host")
    if split.path not in ("", "/") or split.query or split.fragment or split.username:
        raise ValueError(f"upstream {url!r}: give scheme, host and port only (no path or query)")
    return Origin(split.hostname, port or 80)


def parse_routes(text: str) -> tuple[tuple[str, str], ...]:
    """`/prefix=pool;/other=pool` into (prefix, pool) pairs."""
    routes: list[tuple[str, str]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        prefix, sep, pool = (piece.strip() for piece in part.partition("="))
        if not sep or not prefix.startswith("/") or not _POOL_NAME.match(pool):
            raise ValueError(f"route {part!r} needs the form /path/prefix=pool")
        routes.append((prefix, pool))
    return tuple(routes)


class EdgeSettings(BaseSettings):
    """Everything `reelscale serve --roles edge` reads. Times are seconds."""

    model_config = SettingsConfigDict(env_prefix="REELSCALE_EDGE_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Several edge processes may share one port (the kernel spreads connections).
    reuse_port: bool = False
    upstreams: str = Field(min_length=1)
    # None: DEFAULT_ROUTES. Routes naming a pool that is not configured are an error.
    routes: str | None = None
    # What X-Forwarded-Proto says: "https" when TLS ends in front of the edge.
    forwarded_proto: str = Field(default="http", pattern=r"^https?$")

    # Clients. A request head must arrive whole within header_timeout_s of its first byte
    # (slowloris); a kept-alive connection may idle keepalive_timeout_s between requests;
    # a request body may stall body_timeout_s between reads.
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    keepalive_timeout_s: float = Field(default=75.0, gt=0, le=3600)
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=8, le=1000)
    max_url_bytes: int = Field(default=8 * 1024, ge=256, le=64 * 1024)
    # The largest body the platform accepts is one 64 MiB upload chunk.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_connections: int = Field(default=10_000, ge=1)

    # Upstreams. first_byte_timeout_s runs from the request's last byte sent to the
    # response's first byte received; idle_timeout_s bounds any stall while a response
    # streams; total_timeout_s bounds the whole exchange. A pooled connection idle for
    # pool_idle_timeout_s is closed: keep it under the instances' keep-alive (uvicorn: 5 s),
    # so the edge never reuses one the instance is closing.
    connect_timeout_s: float = Field(default=2.0, gt=0, le=60)
    first_byte_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    idle_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    total_timeout_s: float = Field(default=600.0, gt=0, le=24 * 3600)
    pool_idle_timeout_s: float = Field(default=4.0, gt=0, le=3600)
    max_idle_per_instance: int = Field(default=128, ge=0, le=10_000)

    # Retries: at most retry_budget_ratio of requests, saved up to retry_budget_burst.
    retry_budget_ratio: float = Field(default=0.1, ge=0, le=1)
    retry_budget_burst: int = Field(default=20, ge=1, le=10_000)
    # A request body up to this size is kept until the response starts, so it can be
    # replayed; a longer one is streamed and only retried if none of it was sent.
    retry_body_max_bytes: int = Field(default=64 * 1024, ge=0, le=16 * 1024 * 1024)

    # Outlier ejection: this many consecutive 5xx or connection failures eject an instance
    # for eject_base_s times the number of its recent ejections, at most eject_max_s; at most
    # eject_max_percent of a pool is ejected at once, and never its last instance.
    eject_consecutive_failures: int = Field(default=5, ge=1, le=1000)
    eject_base_s: float = Field(default=30.0, gt=0, le=3600)
    eject_max_s: float = Field(default=300.0, gt=0, le=24 * 3600)
    eject_max_percent: float = Field(default=50.0, ge=0, le=100)

    # Shedding and rate limits (the same parts as the in-process middleware).
    redis_url: str | None = None
    limit_initial: float = Field(default=20.0, ge=1)
    limit_min: float = Field(default=4.0, ge=1)
    limit_max: float = Field(default=2000.0, ge=1)
    # Shed lower classes when the process's CPU or event-loop lag runs high. Turn off only
    # where the process shares its CPU with unrelated work (a test run, a benchmark).
    utilisation_shedding: bool = True
    address_rate_per_s: float = Field(default=50.0, gt=0)
    address_burst: float = Field(default=200.0, ge=1)
    # Per member (the verified token's subject), as in the in-process edge.
    member_rate_per_s: float = Field(default=20.0, gt=0)
    member_burst: float = Field(default=100.0, ge=1)

    # Tokens (docs/edge.md, "Zero trust in the proxy"). The JWK Set comes from jwks_url;
    # unset, from REELSCALE_ACCOUNTS_URL, else from the pool serving /.well-known/jwks.json.
    # A verified token is remembered (keyed by the token itself) for token_cache_ttl_s at
    # most, never past its expiry, in an LRU of token_cache_size entries (0: no cache).
    jwks_url: str | None = None
    token_cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    token_cache_ttl_s: float = Field(default=30.0, ge=0, le=300)

    # How often deadlines are checked: every timeout above fires up to this much late.
    timer_resolution_s: float = Field(default=0.25, ge=0.01, le=1.0)
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=600)

    @field_validator("upstreams")
    @classmethod
    def _upstreams_parse(cls, value: str) -> str:
        parse_upstreams(value)
        return value

    @field_validator("routes")
    @classmethod
    def _routes_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_routes(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("jwks_url must start with http:// or https://")
        return value or None

    @model_validator(mode="after")
    def _consistent(self) -> EdgeSettings:
        if not self.limit_min <= self.limit_initial <= self.limit_max:
            raise ValueError("need limit_min <= limit_initial <= limit_max")
        if self.eject_base_s > self.eject_max_s:
            raise ValueError("eject_base_s must not exceed eject_max_s")
        if self.routes is not None:
            pools = self.pools
            unknown = sorted({pool for _, pool in parse_routes(self.routes)} - set(pools))
            if unknown:
                raise ValueError(f"routes name unconfigured pool(s): {', '.join(unknown)}")
        return self

    @property
    def pools(self) -> Membership:
        return parse_upstreams(self.upstreams)

    @property
    def route_table(self) -> tuple[tuple[str, str], ...]:
        """(prefix, pool) pairs; default routes to unconfigured pools go to `default`."""
        if self.routes is not None:
            return parse_routes(self.routes)
        pools = self.pools
        return tuple((p, pool if pool in pools else "default") for p, pool in DEFAULT_ROUTES)

    def adaptive(self) -> AdaptiveSettings:
        return AdaptiveSettings(
            initial_limit=self.limit_initial, min_limit=self.limit_min, max_limit=self.limit_max
        )
