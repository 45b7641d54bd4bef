"""The signing keys behind access tokens, and their rotation.

The newest propagated key signs. A key that stops signing stays in the published JWKS until
every token it signed has expired, so rotation never logs anyone out. Private keys are stored
encrypted with the platform secret.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.accounts.models import SigningKey
from reelscale.core.clock import Clock
from reelscale.core.identity import ALGORITHM

_KEYS_LOCK = 0x5EE15CA1F


class KeyRing:
    """Keys are published before they sign: a new key appears in the JWKS at once but signs
    only after `propagation_s`, longer than any verifier's JWKS refetch interval, so no
    verifier ever sees a token whose key it cannot fetch."""

    def __init__(
        self, *, secret: bytes, clock: Clock, access_ttl_s: int, propagation_s: float = 30.0
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._grace = timedelta(seconds=access_ttl_s + 60)
        self._propagation = timedelta(seconds=propagation_s)
        self._candidates: list[tuple[datetime, str, Ed25519PrivateKey]] = []  # oldest first
        self._published: dict[str, dict[str, Any]] = {}

    def _signer(self) -> tuple[datetime, str, Ed25519PrivateKey]:
        if not self._candidates:
            raise RuntimeError("key ring not loaded")
        now = self._clock.now()
        ready = [c for c in self._candidates if c[0] + self._propagation <= now]
        # Before any key has propagated (a brand-new deployment) the oldest one signs.
        return ready[-1] if ready else self._candidates[0]

    @property
    def newest_key_age_s(self) -> float:
        if not self._candidates:
            return 0.0
        return (self._clock.now() - self._candidates[-1][0]).total_seconds()

    async def load(self, *, db_session: AsyncSession) -> None:
        """Read the keys in force; create the first one if there is none."""
        if db_session.get_bind().dialect.name == "postgresql":
            # Replicas starting together on a new database must agree on one first key.
            await db_session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _KEYS_LOCK}
            )
        now = self._clock.now()
        rows = list(
            (
                await db_session.scalars(
                    select(SigningKey)
                    .where(
                        or_(
                            SigningKey.retired_at.is_(None),
                            SigningKey.retired_at > now - self._grace,
                        )
                    )
                    .order_by(SigningKey.created_at, SigningKey.kid)
                )
            ).all()
        )
        active = [row for row in rows if row.retired_at is None]
        if not active:
            active = [self._new_key(db_session)]
            rows.append(active[0])
            await db_session.flush()
        self._candidates = [
            (row.created_at, row.kid, self._decrypt(row.private_pem)) for row in active
        ]
        self._published = {row.kid: json.loads(row.public_jwk) for row in rows}
        # Keys older than the one signing now will never sign again: start their grace.
        signer_created = self._signer()[0]
        stale = [row.kid for row in active if row.created_at < signer_created]
        if stale:
            await db_session.execute(
                update(SigningKey).where(SigningKey.kid.in_(stale)).values(retired_at=now)
            )
            self._candidates = [c for c in self._candidates if c[1] not in stale]

    async def rotate(self, *, db_session: AsyncSession) -> tuple[str, datetime]:
        """Publish a fresh key now; it starts signing once it has propagated."""
        key = self._new_key(db_session)
        await db_session.flush()
        await self.load(db_session=db_session)
        return key.kid, key.created_at + self._propagation

    def _new_key(self, db_session: AsyncSession) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        kid = secrets.token_hex(8)
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._secret),
        ).decode()
        row = SigningKey(
            kid=kid, private_pem=pem, public_jwk=json.dumps(jwk), created_at=self._clock.now()
        )
        db_session.add(row)
        return row

    def _decrypt(self, pem: str) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(pem.encode(), password=self._secret)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("signing keys are Ed25519")
        return key

    def sign(self, claims: dict[str, Any]) -> str:
        _created, kid, key = self._signer()
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        return {"keys": list(self._published.values())}
