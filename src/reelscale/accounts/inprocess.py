"""The accounts client for callers in the same process: no network, same contract."""

from __future__ import annotations

from typing import Any

from reelscale.accounts.runtime import AccountsRuntime


class InProcessAccounts:
    def __init__(self, runtime: AccountsRuntime) -> None:
        self._runtime = runtime

    async def jwks(self) -> dict[str, Any]:
        return self._runtime.ctx.keys.jwks()

    async def aclose(self) -> None:
        return None
