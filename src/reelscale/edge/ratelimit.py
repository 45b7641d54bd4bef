"""Token-bucket rate limits per member, client address and route, in memory or in Redis.

A `RateLimit` names a bucket family: how fast tokens refill, how many may be saved up,
what the bucket is keyed by, and which requests it applies to. A request takes one token
from every bucket that applies, all or nothing: a request refused by one bucket takes
nothing from the others, so a member throttled on one route keeps their allowance
elsewhere.

`MemoryBucketStore` is the embedded default (one process). `RedisBucketStore` shares the
buckets between edge instances: one Lua script checks and takes from every bucket
atomically, with Redis's own clock, so instances with skewed clocks still agree. Keys
expire once a bucket would be full again, because a full bucket and a missing one mean the
same thing. If Redis is unreachable the limiter fails open, counting the failures, and
stops asking for a second so requests do not each wait out a timeout: rate limits protect
against abuse, and refusing every member because a cache is down would be the bigger
outage.
"""

from __future__ import annotations

import abc
import collections
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from reelscale.core.clock import Clock, SystemClock
from reelscale.edge.priority import compile_glob

log = logging.getLogger("reelscale.edge.ratelimit")

KeyedBy = Literal["member", "address", "route"]


@dataclass(frozen=True)
class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up."""

    rate_per_s: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs rate_per_s > 0 and burst >= 1")


@dataclass(frozen=True)
class RateLimit:
    """A family of buckets: one per member, per client address, or one for the route.

    `path` (a glob, see `priority.compile_glob`) and `methods` narrow what it applies to."""

    name: str
    bucket: TokenBucket
    keyed_by: KeyedBy
    path: str | None = None
    methods: frozenset[str] | None = None
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if ":" in self.name:
            raise ValueError("a rate limit's name may not contain ':' (it prefixes keys)")
        pattern = compile_glob(self.path) if self.path is not None else None
        object.__setattr__(self, "_pattern", pattern)

    def applies(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self._pattern is None or self._pattern.match(path) is not None

    def key(self, *, member: str | None, address: str | None) -> str | None:
        """The bucket's key, or None when the request has no such identity."""
        if self.keyed_by == "route":
            return self.name
        who = member if self.keyed_by == "member" else address
        return f"{self.name}:{who}" if who else None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0
    limit: str | None = None  # the name of the limit that refused


ALLOWED = Decision(True)  # frozen, so one serves every request let through


class BucketStore(abc.ABC):
    """Where bucket state lives. `take` is atomic across all the buckets it is given."""

    @abc.abstractmethod
    async def take(self, buckets: Sequence[tuple[str, TokenBucket]], *, cost: float) -> Decision:
        """Take `cost` tokens from every bucket, or from none; `limit` names a key."""

    async def aclose(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections."""


class MemoryBucketStore(BucketStore):
    """Buckets in this process, at most `max_keys` of them (least recently used go first:
    forgetting a bucket only ever refills it, never throttles anyone wrongly)."""

    def __init__(self, *, clock: Clock, max_keys: int = 100_000) -> None:
        self.clock = clock
        # The system clock's reading without its method's frame (the proxy takes from a
        # bucket on every request); any other clock is asked as it is.
        self._monotonic = time.monotonic if type(clock) is SystemClock else clock.monotonic
        self.max_keys = max_keys
        self._state: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    async def take(self, buckets: Sequence[tuple[str, TokenBucket]], *, cost: float) -> Decision:
        return self.take_now(buckets, cost=cost)

    def take_now(self, buckets: Sequence[tuple[str, TokenBucket]], *, cost: float) -> Decision:
        """The same as `take`, synchronously: memory needs no I/O."""
        now = self._monotonic()
        state = self._state
        if len(buckets) == 1:
            # Nearly every request meets one bucket (its address): the same rule without
            # the lists, answered with the shared ALLOWED.
            key, bucket = buckets[0]
            previous = state.get(key)
            if previous is None:
                tokens = bucket.burst
            else:
                tokens = previous[0] + max(0.0, now - previous[1]) * bucket.rate_per_s
                if tokens > bucket.burst:
                    tokens = bucket.burst
            if tokens < cost:
                return Decision(False, (cost - tokens) / bucket.rate_per_s, key)
            state[key] = (tokens - cost, now)
            state.move_to_end(key)
            if len(state) > self.max_keys:
                state.popitem(last=False)
            return ALLOWED
        levels: list[float] = []
        wait = 0.0
        refused: str | None = None
        for key, bucket in buckets:
            tokens, updated = state.get(key, (bucket.burst, now))
            tokens = min(bucket.burst, tokens + max(0.0, now - updated) * bucket.rate_per_s)
            levels.append(tokens)
            if tokens < cost:
                needed = (cost - tokens) / bucket.rate_per_s
                if needed > wait:
                    wait, refused = needed, key
        if refused is not None:
            return Decision(False, wait, refused)
        for (key, _bucket), tokens in zip(buckets, levels, strict=True):
            state[key] = (tokens - cost, now)
            state.move_to_end(key)
        while len(state) > self.max_keys:
            state.popitem(last=False)
        return ALLOWED


# KEYS: the buckets. ARGV: cost, then rate and burst for each key, then the key TTL floor.
# Returns {allowed, wait-as-string, index of the refusing key}; floats cross as strings
# because Lua numbers returned to Redis are truncated to integers.
_TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local levels = {}
local wait = 0
local refused = 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = burst
    ts = now
  end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  levels[i] = tokens
  if tokens < cost then
    local needed = (cost - tokens) / rate
    if needed > wait then
      wait = needed
      refused = i
    end
  end
end
if refused > 0 then
  return {0, tostring(wait), refused}
end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - cost), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
end
return {1, '0', 0}
"""


class RedisBucketStore(BucketStore):
    """Buckets in Redis, shared by every edge instance using the same `prefix`.

    All of a request's keys go to one script call, so on Redis Cluster they would need a
    common hash slot; the prefix is wrapped in `{}` for that reason."""

    def __init__(
        self,
        *,
        url: str,
        prefix: str = "reelscale:ratelimit",
        timeout_s: float = 0.1,
        pause_after_failure_s: float = 1.0,
        clock: Clock | None = None,
        client: Any | None = None,
    ) -> None:
        import redis.asyncio  # here, not at import time: only the scaled-out edge needs it

        self.prefix = "{" + prefix + "}:"
        self.failures = 0
        self.clock = clock or SystemClock()
        self.pause_after_failure_s = pause_after_failure_s
        self._paused_until = 0.0
        self._redis: Any = client or redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._redis.register_script(_TAKE_SCRIPT)

    async def take(self, buckets: Sequence[tuple[str, TokenBucket]], *, cost: float) -> Decision:
        if not buckets:
            return Decision(True)
        if self.clock.monotonic() < self._paused_until:
            # Redis just failed: do not make every request wait out its own timeout.
            return Decision(True)
        keys = [self.prefix + key for key, _ in buckets]
        args: list[float] = [cost]
        for _key, bucket in buckets:
            args += [bucket.rate_per_s, bucket.burst]
        try:
            allowed, wait, refused = await self._script(keys=keys, args=args)
        except Exception as exc:  # any Redis or network failure: fail open, loudly
            self.failures += 1
            self._paused_until = self.clock.monotonic() + self.pause_after_failure_s
            log.warning("rate-limit store unavailable; allowing", extra={"error": repr(exc)})
            return Decision(True)
        if int(allowed):
            return Decision(True)
        return Decision(False, float(wait), buckets[int(refused) - 1][0])

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()


# Generous defaults: they stop floods and scrapers, never a household watching together
# (a player fetches a segment every few seconds; browsing fires bursts of row requests).
DEFAULT_RATE_LIMITS: tuple[RateLimit, ...] = (
    RateLimit("address", TokenBucket(rate_per_s=50, burst=200), keyed_by="address"),
    RateLimit("member", TokenBucket(rate_per_s=20, burst=100), keyed_by="member"),
    RateLimit(
        "login",
        TokenBucket(rate_per_s=0.2, burst=10),
        keyed_by="address",
        path="/v1/auth/**",
        methods=frozenset({"POST"}),
    ),
)


class RateLimiter:
    """Applies every matching `RateLimit` to a request through one store call."""

    def __init__(self, *, limits: Sequence[RateLimit], store: BucketStore) -> None:
        self.limits = tuple(limits)
        self.store = store
        self.refused: collections.Counter[str] = collections.Counter()

    async def check(
        self, *, method: str, path: str, member: str | None, address: str | None
    ) -> Decision:
        buckets: list[tuple[str, TokenBucket]] = []
        for limit in self.limits:
            if not limit.applies(method, path):
                continue
            key = limit.key(member=member, address=address)
            if key is not None:
                buckets.append((key, limit.bucket))
        if not buckets:
            return Decision(True)
        decision = await self.store.take(buckets, cost=1.0)
        if not decision.allowed:
            name = (decision.limit or "").split(":", 1)[0]
            self.refused[name] += 1
            return Decision(False, math.ceil(max(decision.retry_after_s, 1.0)), name)
        return decision
