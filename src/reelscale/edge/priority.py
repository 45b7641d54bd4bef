"""Request priorities and the classifier that assigns them.

A request's priority says what a member loses if it is shed. Losing CRITICAL means the
video does not start or stalls; losing DEGRADED means a stale resume point or a late
heartbeat; losing BEST_EFFORT means an empty row; losing BULK costs nobody anything now.

Classification is an ordered list of rules; the first rule that matches wins, so specific
rules (a prefetch header) go before broad ones (a path prefix). A rule is written either
as objects or as one line of text, which is how settings configure it:

    POST /v1/playback/sessions => CRITICAL
    * /media/s/** [x-prefetch=1] => BULK
    GET ~^/v1/recs/.*$ => BEST_EFFORT

Path patterns are globs (`*` matches within one path segment, `**` across segments) or,
after `~`, regular expressions. Bracketed header conditions must all hold; a header listed
twice in a rule accepts either value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum


class Priority(IntEnum):
    """Lower values are more important: they are shed last."""

    CRITICAL = 0
    DEGRADED = 1
    BEST_EFFORT = 2
    BULK = 3

    @property
    def label(self) -> str:
        return self.name.lower()


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A path glob as an anchored regex: `*` stays inside a segment, `**` crosses them."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


@dataclass(frozen=True)
class Rule:
    """Requests matching `methods`, `path` and every header condition get `priority`.

    `methods` None matches any method. `headers` maps a lower-case header name to the
    accepted lower-case values."""

    priority: Priority
    path: re.Pattern[str]
    methods: frozenset[str] | None = None
    headers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def glob(
        cls,
        pattern: str,
        priority: Priority,
        *,
        methods: Iterable[str] | None = None,
        headers: Mapping[str, Iterable[str]] | None = None,
    ) -> Rule:
        return cls._build(compile_glob(pattern), priority, methods, headers)

    @classmethod
    def regex(
        cls,
        pattern: str,
        priority: Priority,
        *,
        methods: Iterable[str] | None = None,
        headers: Mapping[str, Iterable[str]] | None = None,
    ) -> Rule:
        return cls._build(re.compile(pattern), priority, methods, headers)

    @classmethod
    def _build(
        cls,
        path: re.Pattern[str],
        priority: Priority,
        methods: Iterable[str] | None,
        headers: Mapping[str, Iterable[str]] | None,
    ) -> Rule:
        return cls(
            priority=priority,
            path=path,
            methods=frozenset(m.upper() for m in methods) if methods is not None else None,
            headers={
                name.lower(): frozenset(v.lower() for v in values)
                for name, values in (headers or {}).items()
            },
        )

    @classmethod
    def parse(cls, line: str) -> Rule:
        """One rule from `METHOD[,METHOD] PATH [header=value ...] => PRIORITY`."""
        match = _RULE_LINE.match(line.strip())
        if match is None:
            raise ValueError(f"not a rule: {line!r}; expected 'METHOD PATH [h=v] => PRIORITY'")
        try:
            priority = Priority[match["priority"].upper()]
        except KeyError:
            choices = ", ".join(p.name for p in Priority)
            raise ValueError(f"unknown priority in {line!r}; choose from {choices}") from None
        headers: dict[str, set[str]] = {}
        for condition in (match["headers"] or "").split():
            name, sep, value = condition.partition("=")
            if not sep or not name:
                raise ValueError(f"header condition {condition!r} in {line!r} needs name=value")
            headers.setdefault(name, set()).add(value)
        methods = None if match["methods"] == "*" else match["methods"].split(",")
        path = match["path"]
        if path.startswith("~"):
            return cls.regex(path[1:], priority, methods=methods, headers=headers)
        return cls.glob(path, priority, methods=methods, headers=headers)

    def matches(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        for name, accepted in self.headers.items():
            value = headers.get(name)
            if value is None or value.lower() not in accepted:
                return False
        return self.path.match(path) is not None


_RULE_LINE = re.compile(
    r"^(?P<methods>\*|[A-Za-z]+(?:,[A-Za-z]+)*)\s+(?P<path>\S+)"
    r"(?:\s+\[(?P<headers>[^\]]*)\])?\s*=>\s*(?P<priority>[A-Za-z_]+)$"
)

# Prefetches go first: a prefetched segment or manifest is a guess about the future, and
# shedding it costs the member nothing they can see. Browsers send `Sec-Purpose: prefetch`;
# our player sends `X-Prefetch: 1`.
DEFAULT_RULES: tuple[str, ...] = (
    "* /** [x-prefetch=1] => BULK",
    "* /** [purpose=prefetch] => BULK",
    "* /** [sec-purpose=prefetch] => BULK",
    # The play path: authorization, manifests and segments, licenses.
    "POST /v1/playback/sessions => CRITICAL",
    "GET,HEAD /media/s/** => CRITICAL",
    "* /v1/playback/license** => CRITICAL",
    # Keeping a started play healthy, and switching who watches.
    "POST /v1/playback/sessions/*/heartbeat => DEGRADED",
    "POST /v1/playback/sessions/*/stop => DEGRADED",
    "GET /v1/playback/continue-watching => DEGRADED",
    "GET /v1/playback/history => DEGRADED",
    "* /v1/playback/resume** => DEGRADED",
    "POST /v1/profiles/*/select => DEGRADED",
    # Browse rows, search, recommendations.
    "* /v1/catalog/** => BEST_EFFORT",
    "* /v1/recs/** => BEST_EFFORT",
    # Telemetry and bulk uploads.
    "* /v1/logs** => BULK",
    "* /v1/analytics/** => BULK",
    "POST /v1/events/** => BULK",
)

# Probes and scrapes must answer while the process is overloaded, or orchestrators kill a
# healthy but busy replica and monitoring goes blind exactly when it is needed.
# Never limited: probes, and live streams, which would hold a concurrency permit for
# minutes and feed that "latency" to the adaptive limit.
DEFAULT_EXEMPT: tuple[str, ...] = (
    "/healthz",
    "/readyz",
    "/livez",
    "/metrics",
    "/v1/ops/analytics/live",
)


class Classifier:
    """Assigns each request a `Priority`, or None for exempt paths (never limited)."""

    def __init__(
        self,
        *,
        rules: Sequence[Rule | str] | None = None,
        default: Priority = Priority.BEST_EFFORT,
        exempt: Iterable[str] = DEFAULT_EXEMPT,
    ) -> None:
        source = DEFAULT_RULES if rules is None else rules
        self.rules: tuple[Rule, ...] = tuple(
            Rule.parse(rule) if isinstance(rule, str) else rule for rule in source
        )
        self.default = default
        self.exempt = frozenset(exempt)

    def classify(
        self, *, method: str, path: str, headers: Mapping[str, str] | None = None
    ) -> Priority | None:
        """The first matching rule's priority; the default when none matches."""
        if path in self.exempt:
            return None
        method = method.upper()
        seen = headers or {}
        for rule in self.rules:
            if rule.matches(method, path, seen):
                return rule.priority
        return self.default
