"""The functions a process runs, registered by decorator or by spec.

    registry = FunctionRegistry()

    @registry.function("analytics-playback", stream="playback", batch_size=500)
    async def handle(batch: list[Record]) -> BatchFailure | None: ...

Registration only records and checks the spec; nothing runs until a `FunctionsRuntime`
built on the registry starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from reelscale.core.errors import Conflict, NotFound
from reelscale.functions.spec import FunctionSpec, Handler


class FunctionRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, FunctionSpec] = {}

    def function(self, name: str, *, stream: str, **options: Any) -> Callable[[Handler], Handler]:
        """Register the decorated async handler; see `FunctionSpec` for the options."""

        def register(handler: Handler) -> Handler:
            self.add(FunctionSpec(name=name, stream=stream, handler=handler, **options))
            return handler  # still an ordinary function: callable and testable on its own

        return register

    def add(self, spec: FunctionSpec) -> FunctionSpec:
        if not isinstance(spec, FunctionSpec):
            raise TypeError(f"expected a FunctionSpec, got {type(spec).__name__}")
        if spec.name in self._specs:
            raise Conflict(f"a function named {spec.name!r} is already registered")
        for other in self._specs.values():
            if (other.stream, other.consumer_group) == (spec.stream, spec.consumer_group):
                # Two readers of one group would take each other's shards' records.
                raise Conflict(
                    f"functions {other.name!r} and {spec.name!r} would share consumer group "
                    f"{spec.consumer_group!r} on stream {spec.stream!r}; give one a group="
                )
            if other.dead_letter_stream == spec.dead_letter_stream:
                raise Conflict(
                    f"functions {other.name!r} and {spec.name!r} would share the "
                    f"dead-letter stream {spec.dead_letter_stream!r}"
                )
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> FunctionSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise NotFound(f"no function named {name!r}")
        return spec

    def __iter__(self) -> Iterator[FunctionSpec]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs
