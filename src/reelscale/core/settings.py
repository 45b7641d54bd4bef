"""Typed settings, read from `REELSCALE_*` environment variables.

Every backend is chosen by a URL. Left unset, a URL falls back to the embedded default
inside `data_dir`, so a newcomer needs no configuration at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ACCESS_TOKEN_TTL_CEILING_S = 900  # zero trust: an access token never lives past 15 minutes
OWASP_ARGON2_MIN_KIB = 19 * 1024


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reelscale"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELSCALE_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Field(default_factory=default_data_dir)

    # Backends, each a URL. None means the embedded default under data_dir.
    database_url: str | None = None
    blob_url: str | None = None  # file:///dir or s3://bucket/prefix?endpoint=...
    stream_url: str | None = None  # embedded:///dir or nats://host:4222

    # Where the other services live when this process does not run them. None: in process.
    accounts_url: str | None = None
    catalog_url: str | None = None
    media_url: str | None = None

    # Media: transcodes at once per worker process, and how long a signed media URL lives
    # (players renew it with every heartbeat).
    transcode_slots: int = Field(default=1, ge=1, le=64)
    # How long a worker's claim on a job lasts without renewal: how soon a killed worker's
    # job is resumed by another.
    transcode_lease_s: float = Field(default=45.0, ge=2.0, le=3600.0)
    media_url_ttl_s: int = Field(default=600, ge=30, le=6 * 3600)

    # How often each process publishes its per-service request counts (service.metrics).
    metrics_interval_s: float = Field(default=10.0, ge=1.0, le=3600.0)
    # This process's name among its peers: consumers that every process runs for itself
    # (revocations) are named after it, so a restart resumes where it left off.
    # None: host name and port.
    instance: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,23}$")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None

    secret_key: SecretStr | None = None

    token_issuer: str = "reelscale-accounts"
    token_audience: str = "reelscale"
    access_token_ttl_s: int = Field(default=ACCESS_TOKEN_TTL_CEILING_S, ge=30)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    signing_key_rotation_s: int = Field(default=24 * 3600, ge=60)

    # argon2id cost. The defaults are RFC 9106's second recommendation (64 MiB, t=3);
    # OWASP's floor is 19 MiB, t=2. Tests lower these to stay fast.
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_parallelism: int = Field(default=4, ge=1)

    # Failed-login throttling (OWASP ASVS 2.2.1: at most 100 failures per hour per account).
    login_failures_per_account_hour: int = Field(default=100, ge=1, le=100)
    login_failures_per_address_hour: int = Field(default=300, ge=1)
    login_backoff_after: int = Field(default=5, ge=1)
    login_backoff_max_s: int = Field(default=900, ge=1)
    pin_failures_per_window: int = Field(default=5, ge=1)
    pin_window_s: int = Field(default=900, ge=1)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # The edge (reelscale.edge, docs/edge.md): in front of every route it checks the access
    # token, sheds load by priority and applies rate limits. `edge_rules` are extra
    # classification lines tried before the built-in ones, e.g.
    # ["GET /v1/catalog/titles => DEGRADED"] (syntax in edge/priority.py).
    edge_enabled: bool = True
    edge_rules: tuple[str, ...] = ()
    edge_critical_wait_s: float = Field(default=0.05, ge=0.0, le=1.0)
    edge_limit_min: int = Field(default=4, ge=1, le=100_000)  # the adaptive floor
    edge_limit_max: int = Field(default=2000, ge=1, le=100_000)
    edge_utilisation_shedding: bool = True  # shed the lower classes on CPU and loop lag
    # Token buckets (tokens per second, burst): per client address, per member, and per
    # client address for POST /v1/auth/** (sign-up, sign-in, refresh, logout).
    edge_address_rate_per_s: float = Field(default=50.0, gt=0)
    edge_address_burst: float = Field(default=200.0, ge=1)
    edge_member_rate_per_s: float = Field(default=20.0, gt=0)
    edge_member_burst: float = Field(default=100.0, ge=1)
    edge_auth_rate_per_s: float = Field(default=0.2, gt=0)
    edge_auth_burst: float = Field(default=10.0, ge=1)
    # Shared rate-limit buckets for several edge instances (redis://host:6379/0). None: in
    # memory, per process.
    redis_url: str | None = None
    # For services behind a standalone edge: accept a caller only with the edge's signed
    # identity header, never a bare bearer token (see docs/security.md).
    require_edge_identity: bool = False
    # Proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client for the edge's
    # per-address limits and logs (docs/edge.md, "Client addresses behind proxies"). Empty:
    # trust nobody, the TCP peer is the client.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("access_token_ttl_s")
    @classmethod
    def _short_lived(cls, value: int) -> int:
        if value > ACCESS_TOKEN_TTL_CEILING_S:
            raise ValueError(f"access tokens live at most {ACCESS_TOKEN_TTL_CEILING_S} s")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies_are_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple):
            for cidr in value:
                try:
                    ipaddress.ip_network(str(cidr).strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{cidr!r} is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _edge_limits_ordered(self) -> Settings:
        if self.edge_limit_min > self.edge_limit_max:
            raise ValueError("REELSCALE_EDGE_LIMIT_MIN exceeds EDGE_LIMIT_MAX")
        return self

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.env == "production" and self.secret_key is None:
            raise ValueError("REELSCALE_SECRET_KEY must be set when REELSCALE_ENV=production")
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("REELSCALE_SECRET_KEY must be at least 32 characters")
        if self.env == "production" and (
            self.argon2_memory_kib < OWASP_ARGON2_MIN_KIB or self.argon2_time_cost < 2
        ):
            raise ValueError("argon2 below OWASP's floor (19 MiB, t=2) is refused in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'reelscale.db'}"

    @property
    def instance_name(self) -> str:
        if self.instance:
            return self.instance
        host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:16]
        return f"{host or 'host'}-{self.port}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def resolved_secret_key(self) -> bytes:
        """The platform secret: from settings, else one generated once and kept in data_dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.ensure_data_dir() / "secret.key"
        if not path.exists():
            # Write-then-rename so two processes starting together agree on one secret.
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)  # fails if another process won the race: keep theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()
