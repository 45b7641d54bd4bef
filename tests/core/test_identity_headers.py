"""Signed identity headers: what a service accepts from the edge, and what it refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import orjson
import pytest

from reelscale.core.errors import Unauthorized
from reelscale.core.identity import Principal
from reelscale.core.identity_headers import identity_key, sign_identity, verify_identity

KEY = identity_key(b"platform secret " * 4)
NOW = 1_800_000_000.0
PRINCIPAL = Principal(
    subject="member-1",
    roles=frozenset({"member"}),
    scopes=frozenset({"catalog:read", "playback:play"}),
    token_id="jti-1",
    expires_at=datetime.fromtimestamp(NOW + 600, UTC),
    session_id="sid-1",
    profile_id="profile-1",
    max_maturity=12,
    is_kids=True,
    plan="standard",
)


def signed(**overrides: object) -> str:
    values: dict[str, object] = {"key": KEY, "method": "GET", "path": "/v1/me", "now": NOW}
    values.update(overrides)
    return sign_identity(PRINCIPAL, **values)  # type: ignore[arg-type]


def verify(value: str, **overrides: object) -> Principal:
    values: dict[str, object] = {"key": KEY, "method": "GET", "path": "/v1/me", "now": NOW + 1}
    values.update(overrides)
    return verify_identity(value, **values)  # type: ignore[arg-type]


def test_a_valid_header_carries_every_field_of_the_principal() -> None:
    assert verify(signed()) == PRINCIPAL


def test_a_principal_without_profile_round_trips() -> None:
    bare = Principal(
        subject="m",
        roles=frozenset(),
        scopes=frozenset(),
        token_id="j",
        expires_at=datetime.fromtimestamp(NOW + 60, UTC),
    )
    value = sign_identity(bare, key=KEY, method="post", path="/x", now=NOW)
    assert verify_identity(value, key=KEY, method="POST", path="/x", now=NOW) == bare


def test_the_key_is_derived_for_this_purpose_alone() -> None:
    secret = b"platform secret " * 4
    assert secret[:32] != KEY
    assert identity_key(secret) == KEY
    assert identity_key(secret + b"!") != KEY


def test_a_header_signed_with_another_key_is_refused() -> None:
    forged = sign_identity(
        PRINCIPAL, key=identity_key(b"another secret" * 4), method="GET", path="/v1/me", now=NOW
    )
    with pytest.raises(Unauthorized, match="signature"):
        verify(forged)


def test_tampered_claims_are_refused() -> None:
    version, payload, mac = signed().split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] += " members:admin"
    raised = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(Unauthorized, match="signature"):
        verify(f"{version}.{raised}.{mac}")


def test_a_flipped_mac_is_refused() -> None:
    value = signed()
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    with pytest.raises(Unauthorized):
        verify(flipped)


def test_an_expired_header_is_refused() -> None:
    value = signed(ttl_s=10)
    assert verify(value, now=NOW + 9.9) == PRINCIPAL
    with pytest.raises(Unauthorized, match="expired"):
        verify(value, now=NOW + 10)


def test_a_header_never_outlives_its_token() -> None:
    value = signed(now=NOW + 590, ttl_s=30)
    with pytest.raises(Unauthorized, match="expired"):
        verify(value, now=NOW + 600)


def test_a_header_for_another_path_or_method_is_refused() -> None:
    value = signed()
    with pytest.raises(Unauthorized, match="another request"):
        verify(value, path="/v1/profiles")
    with pytest.raises(Unauthorized, match="another request"):
        verify(value, method="DELETE")


def test_a_header_claiming_a_long_life_is_refused() -> None:
    with pytest.raises(Unauthorized, match="too long"):
        verify(signed(ttl_s=3600))


@pytest.mark.parametrize(
    "value",
    ["", "v1", "v1..", "v2.e30.AAAA", "v1.!!!.AAAA", "v1.e30.***", "v1." + "A" * 9000 + ".A"],
)
def test_malformed_headers_are_refused(value: str) -> None:
    with pytest.raises(Unauthorized):
        verify(value)


def test_well_signed_but_incomplete_claims_are_a_401_not_a_500() -> None:
    payload = base64.urlsafe_b64encode(b'{"sub": "x"}').rstrip(b"=").decode()
    mac = hmac.new(KEY, f"v1.{payload}".encode(), hashlib.sha256).digest()
    value = f"v1.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthorized, match="malformed"):
        verify(value)
