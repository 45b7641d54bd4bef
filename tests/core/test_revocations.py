"""Revocations as every follower reads them: one strict parser, and a bad record skipped.

Before one parser served both followers, a platform process accepted an `until` without a
time zone; the verifier then compared it with the clock's aware time and raised on every
later revocation, so one malformed record stopped that process following revocations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reelscale.core.clock import FakeClock
from reelscale.core.events import CloudEvent
from reelscale.core.identity import TokenVerifier, parse_revocation
from reelscale.events.records import Record
from reelscale.platform_functions import REVOKED, revocation_applier

pytestmark = pytest.mark.asyncio

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
UNTIL = (NOW + timedelta(minutes=15)).isoformat()


def record(sequence: int, data: dict[str, object], type_: str = REVOKED) -> Record:
    event = CloudEvent(id=f"e{sequence}", source="test", type=type_, time=NOW, data=data)
    return Record("auth", 0, sequence, "k", NOW, event)


async def no_keys() -> dict[str, object]:
    return {"keys": []}


@pytest.mark.parametrize(
    "data",
    [
        {"until": UNTIL},
        {"session_id": "", "until": UNTIL},
        {"session_id": "x" * 129, "until": UNTIL},
        {"session_id": 7, "until": UNTIL},
        {"session_id": "s", "until": "yesterday"},
        {"session_id": "s", "until": "2026-11-21T12:00:00"},  # no time zone
        {"session_id": "s", "until": "9" * 65},
        {"session_id": "s", "until": 12},
        ["s", UNTIL],
    ],
)
async def test_unusable_revocations_are_refused(data: object) -> None:
    assert parse_revocation(data) is None


async def test_a_revocation_reads_as_session_and_time() -> None:
    parsed = parse_revocation({"session_id": "s1", "until": UNTIL, "extra": 1})
    assert parsed == ("s1", NOW + timedelta(minutes=15))


async def test_the_platform_follower_skips_a_bad_record_and_applies_the_rest() -> None:
    clock = FakeClock(start=NOW)
    verifier = TokenVerifier(fetch_jwks=no_keys, issuer="i", audience="a", clock=clock)
    apply = revocation_applier(verifier)
    await apply(
        [
            record(1, {"session_id": "naive", "until": "2026-11-21T12:15:00"}),
            record(2, {"session_id": "s1", "until": UNTIL}),
            record(3, {"session_id": "other", "until": UNTIL}, type_="auth.login.succeeded"),
        ]
    )
    await apply([record(4, {"session_id": "s2", "until": UNTIL})])
    assert verifier._is_revoked("s1")
    assert verifier._is_revoked("s2")
    assert not verifier._is_revoked("naive")
    assert not verifier._is_revoked("other")
