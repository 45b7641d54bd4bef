"""A process that restarts still refuses the tokens it had seen revoked before.

The revocations function resumes after its checkpoint, so on its own a restarted process
would never read those revocations again and would take the tokens until they expire.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from reelscale.platform_functions import RevocationCatchUp
from tests.conftest import make_settings, started
from tests.support import bearer, login, signup


async def test_a_restarted_process_still_refuses_a_revoked_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    function = f"revocations-{settings.instance_name}"
    async with started(settings) as h:
        await signup(h.client, "restart@example.com")
        revoked = await login(h.client, "restart@example.com")
        kept = await login(h.client, "restart@example.com")
        out = await h.client.post(
            "/v1/auth/logout",
            json={"refresh_token": revoked["refresh_token"]},
            headers=bearer(revoked["access_token"]),
        )
        assert out.status_code == 204
        # The function has read the revocation and checkpointed past it.
        for _ in range(200):
            statuses = {s.name: s for s in await h.app.state.functions.status()}
            if statuses[function].invocations >= 1 and statuses[function].lag_records == 0:
                break
            await asyncio.sleep(0.05)
        assert statuses[function].lag_records == 0

    async with started(settings) as h:
        catch_up = next(
            s for s in h.app.state.platform.supervisor.services if isinstance(s, RevocationCatchUp)
        )
        assert catch_up.read >= 1
        me = await h.client.get("/v1/me", headers=bearer(revoked["access_token"]))
        assert me.status_code == 401
        me = await h.client.get("/v1/me", headers=bearer(kept["access_token"]))
        assert me.status_code == 200
