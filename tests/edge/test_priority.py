"""Classification: the default table, header rules, configuration lines, exemptions."""

from __future__ import annotations

import pytest

from reelscale.edge.priority import Classifier, Priority, Rule, compile_glob

SESSION = "0b8e7a9e-2f7c-4b43-9b43-8a9b6f5b6b2d"
SIGNED = f"/media/s/{SESSION}/1767225600/c2lnbmF0dXJl/asset-1/720p/seg_00042.m4s"


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("POST", "/v1/playback/sessions", {}, Priority.CRITICAL),
        ("GET", SIGNED, {}, Priority.CRITICAL),
        ("GET", f"/media/s/{SESSION}/1/s/a/master.m3u8", {}, Priority.CRITICAL),
        ("HEAD", SIGNED, {}, Priority.CRITICAL),
        ("POST", "/v1/playback/license", {}, Priority.CRITICAL),
        ("POST", f"/v1/playback/sessions/{SESSION}/heartbeat", {}, Priority.DEGRADED),
        ("POST", f"/v1/playback/sessions/{SESSION}/stop", {}, Priority.DEGRADED),
        ("GET", "/v1/playback/continue-watching", {}, Priority.DEGRADED),
        ("GET", "/v1/playback/history", {}, Priority.DEGRADED),
        ("POST", "/v1/profiles/p-1/select", {}, Priority.DEGRADED),
        ("GET", "/v1/catalog/titles", {}, Priority.BEST_EFFORT),
        ("GET", "/v1/catalog/genres/drama/titles", {}, Priority.BEST_EFFORT),
        ("GET", "/v1/catalog/search", {}, Priority.BEST_EFFORT),
        ("GET", "/v1/recs/home", {}, Priority.BEST_EFFORT),
        ("POST", "/v1/logs", {}, Priority.BULK),
        ("POST", "/v1/analytics/uploads", {}, Priority.BULK),
        ("POST", "/v1/events/playback", {}, Priority.BULK),
        # Prefetch flags beat the route: a guessed-at segment is not a stalled player.
        ("GET", SIGNED, {"x-prefetch": "1"}, Priority.BULK),
        ("GET", SIGNED, {"purpose": "prefetch"}, Priority.BULK),
        ("GET", SIGNED, {"purpose": "Prefetch"}, Priority.BULK),
        ("GET", "/v1/catalog/titles", {"sec-purpose": "prefetch"}, Priority.BULK),
        ("GET", SIGNED, {"x-prefetch": "0"}, Priority.CRITICAL),
        # Method matters: only POST authorizes a play; a GET there is just a read.
        ("GET", "/v1/playback/sessions", {}, Priority.BEST_EFFORT),
        # Unknown routes are BEST_EFFORT.
        ("GET", "/v1/me", {}, Priority.BEST_EFFORT),
        ("GET", "/nowhere", {}, Priority.BEST_EFFORT),
        # A segment-shaped path under the wrong prefix is not a segment.
        ("GET", "/x/media/s/a/b", {}, Priority.BEST_EFFORT),
    ],
)
def test_default_classification(
    method: str, path: str, headers: dict[str, str], expected: Priority
) -> None:
    assert Classifier().classify(method=method, path=path, headers=headers) is expected


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_and_metrics_are_exempt(path: str) -> None:
    assert Classifier().classify(method="GET", path=path) is None


def test_rules_from_lines_first_match_wins_and_default_is_configurable() -> None:
    classifier = Classifier(
        rules=[
            "GET /v1/catalog/titles [x-device=tv x-device=console] => DEGRADED",
            "GET,HEAD /v1/catalog/** => BULK",
            r"* ~^/v1/items/\d+$ => CRITICAL",
        ],
        default=Priority.BULK,
    )

    def classify(method: str, path: str, **headers: str) -> Priority | None:
        return classifier.classify(method=method, path=path, headers=headers)

    assert classify("GET", "/v1/catalog/titles", **{"x-device": "tv"}) is Priority.DEGRADED
    assert classify("GET", "/v1/catalog/titles", **{"x-device": "Console"}) is Priority.DEGRADED
    assert classify("GET", "/v1/catalog/titles", **{"x-device": "phone"}) is Priority.BULK
    assert classify("HEAD", "/v1/catalog/titles") is Priority.BULK
    assert classify("DELETE", "/v1/items/42") is Priority.CRITICAL
    assert classify("DELETE", "/v1/items/42x") is Priority.BULK  # the default


def test_rule_objects_and_globs() -> None:
    rule = Rule.glob("/a/*/c", Priority.CRITICAL, methods=["get"], headers={"X-K": ["V"]})
    assert rule.matches("GET", "/a/b/c", {"x-k": "v"})
    assert not rule.matches("GET", "/a/b/x/c", {"x-k": "v"})  # * stays in one segment
    assert not rule.matches("POST", "/a/b/c", {"x-k": "v"})
    assert not rule.matches("GET", "/a/b/c", {})
    assert compile_glob("/a/**").match("/a/b/c/d")
    assert compile_glob("/a.b").match("/aXb") is None  # glob text is literal


@pytest.mark.parametrize(
    "line",
    [
        "GET /x",
        "GET /x => URGENT",
        "GET /x [novalue] => BULK",
        "/x => BULK",
    ],
)
def test_bad_rule_lines_are_refused_with_a_reason(line: str) -> None:
    with pytest.raises(ValueError, match=r"rule|priority|header"):
        Rule.parse(line)
