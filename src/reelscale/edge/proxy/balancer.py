"""Choosing an instance: power of two choices on outstanding requests, with outlier ejection.

Power of two choices: pick two instances at random and send to the one with fewer requests
outstanding. It is nearly as good as always picking the least loaded instance, without
the herd that forms when every request chases the same momentary minimum.

Outlier ejection: `consecutive_failures` 5xx responses or connection failures in a row
take an instance out of rotation for `base_s` times the number of its recent ejections
(at most `max_s`), so an instance that keeps failing stays out longer each time. It comes
back by itself when the interval ends; the next failures eject it again. At most
`max_percent` of a pool is out at once, and never every instance: with all of them
failing, sending somewhere beats refusing everything.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from reelscale.edge.proxy.retry import RetryBudget
from reelscale.edge.proxy.upstreams import Origin


@dataclass(frozen=True)
class EjectionPolicy:
    consecutive_failures: int = 5
    base_s: float = 30.0
    max_s: float = 300.0
    max_percent: float = 50.0


class Instance:
    """One origin's live state in a pool."""

    __slots__ = (
        "consecutive_failures",
        "ejected_until",
        "ejections",
        "origin",
        "outstanding",
        "times_ejected",
    )

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.outstanding = 0
        self.consecutive_failures = 0
        self.ejected_until = 0.0
        self.ejections = 0  # recent ejections: the multiplier for the next interval
        self.times_ejected = 0  # all ejections, for metrics

    def available(self, now: float) -> bool:
        return self.ejected_until <= now

    def __repr__(self) -> str:
        return f"Instance({self.origin}, outstanding={self.outstanding})"


class Pool:
    """A named set of instances with its balancer, ejection state and retry budget."""

    def __init__(
        self,
        name: str,
        origins: Iterable[Origin],
        *,
        policy: EjectionPolicy,
        budget: RetryBudget,
        monotonic: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.budget = budget
        self.monotonic = monotonic
        self._random = (rng or random.Random()).random  # noqa: S311 - load balancing only
        self.instances: list[Instance] = []
        self.set_origins(origins)

    def set_origins(self, origins: Iterable[Origin]) -> None:
        """Adopt a new membership, keeping the state of instances that stay."""
        known = {instance.origin: instance for instance in self.instances}
        self.instances = [known.get(origin) or Instance(origin) for origin in origins]

    def pick(self, exclude: Collection[Instance] = ()) -> Instance | None:
        """Two random available instances, the less busy one; None when none is left."""
        instances = self.instances
        n = len(instances)
        if n == 1:
            only = instances[0]
            return None if only in exclude else only  # a sole instance is never ejected
        if n == 0:
            return None
        now = self.monotonic()  # only now: a sole instance needs no clock
        rand = self._random
        i = int(rand() * n)
        j = int(rand() * (n - 1))
        if j >= i:
            j += 1
        a, b = instances[i], instances[j]
        if a.ejected_until <= now and b.ejected_until <= now and not exclude:
            return b if b.outstanding < a.outstanding else a
        # Slow path: some are ejected or already tried; choose among the rest.
        excluded = set(exclude)
        usable = [x for x in instances if x.ejected_until <= now and x not in excluded]
        if not usable:
            return None
        if len(usable) == 1:
            return usable[0]
        a = usable[int(rand() * len(usable))]
        b = usable[int(rand() * len(usable))]
        return b if b.outstanding < a.outstanding else a

    def succeeded(self, instance: Instance) -> None:
        instance.consecutive_failures = 0

    def failed(self, instance: Instance) -> bool:
        """Count a 5xx or connection failure; True if it ejected the instance now."""
        instance.consecutive_failures += 1
        policy = self.policy
        if instance.consecutive_failures < policy.consecutive_failures:
            return False
        now = self.monotonic()
        if instance.ejected_until > now or not self._may_eject(now):
            return False
        if instance.ejected_until and now - instance.ejected_until > policy.max_s:
            instance.ejections = 0  # healthy for a long while since: start the growth over
        instance.ejections += 1
        instance.times_ejected += 1
        instance.ejected_until = now + min(policy.base_s * instance.ejections, policy.max_s)
        instance.consecutive_failures = 0
        return True

    def ejected(self, now: float | None = None) -> int:
        at = self.monotonic() if now is None else now
        return sum(1 for instance in self.instances if instance.ejected_until > at)

    def _may_eject(self, now: float) -> bool:
        n = len(self.instances)
        allowed = min(n - 1, math.floor(n * self.policy.max_percent / 100))
        if self.policy.max_percent > 0 and n > 1:
            allowed = max(1, allowed)  # a pool of two may still eject its bad half
        return self.ejected(now) < allowed
