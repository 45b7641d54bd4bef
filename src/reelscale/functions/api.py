"""Operator routes for functions: status, dead letters, replay.

Reads the runtime from `app.state.functions`. Listing needs `ops:read`; replaying, which
writes to streams, needs `ops:write`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from reelscale.core.auth import requires
from reelscale.core.errors import Overloaded
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES
from reelscale.functions.runtime import MAX_LETTERS_PER_READ, FunctionsRuntime
from reelscale.functions.schemas import DeadLetter, FunctionStatus, ReplayResult

router = APIRouter(prefix="/v1/ops/functions", tags=["operations"])
PROBLEMS = {
    **STANDARD_RESPONSES,
    503: {"description": "The functions runtime does not run in this process"},
}
log = logging.getLogger("reelscale.functions")

ops_reader = requires(Scope.OPS_READ)
ops_writer = requires(Scope.OPS_WRITE)

FunctionName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=48,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="The function's name",
    ),
]


def _runtime(request: Request) -> FunctionsRuntime:
    runtime: FunctionsRuntime | None = getattr(request.app.state, "functions", None)
    if runtime is None:
        raise Overloaded("the functions runtime does not run in this process", retry_after=30)
    return runtime


@router.get("", response_model=list[FunctionStatus], responses=PROBLEMS)
async def list_functions(
    _: Principal = Depends(ops_reader), runtime: FunctionsRuntime = Depends(_runtime)
) -> list[FunctionStatus]:
    """Every function with its lag, errors, throttles, starts and dead letters."""
    return await runtime.status()


@router.get("/{name}", response_model=FunctionStatus, responses=PROBLEMS)
async def get_function(
    name: FunctionName,
    _: Principal = Depends(ops_reader),
    runtime: FunctionsRuntime = Depends(_runtime),
) -> FunctionStatus:
    """One function's status."""
    return await runtime.function_status(name)


@router.get("/{name}/dead-letters", response_model=list[DeadLetter], responses=PROBLEMS)
async def list_dead_letters(
    name: FunctionName,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LETTERS_PER_READ, description="How many letters at most")
    ] = 100,
    after: Annotated[
        int | None,
        Query(ge=0, le=2**63, description="Only letters after this letter_sequence (paging)"),
    ] = None,
    _: Principal = Depends(ops_reader),
    runtime: FunctionsRuntime = Depends(_runtime),
) -> list[DeadLetter]:
    """The records the function gave up on, oldest first, with the error and attempts."""
    return await runtime.dead_letters(name, limit, after=after)


@router.post("/{name}/dead-letters/replay", response_model=ReplayResult, responses=PROBLEMS)
async def replay_dead_letters(
    name: FunctionName,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="Replay at most this many letters")
    ] = None,
    principal: Principal = Depends(ops_writer),
    runtime: FunctionsRuntime = Depends(_runtime),
) -> ReplayResult:
    """Put the letters not replayed yet back onto their source stream, with their
    partition keys, so the function processes them again. Running it twice does not put
    a letter back twice."""
    result = await runtime.replay(name, limit)
    log.info(
        "dead-letter replay requested",
        extra={"function": name, "by": principal.subject, "replayed": result.replayed},
    )
    return result
