"""The viewing context of a request or of an interaction: time of day, week part, device.

A context is three small integers, so a model can keep one genre-affinity vector per value:

    hour    the hour of day in eight three-hour buckets (0 = 00:00-02:59 UTC)
    week    0 Monday to Friday, 1 Saturday and Sunday
    device  an index into DEVICE_CLASSES, or UNKNOWN_DEVICE

Hours are UTC everywhere. Interactions are stored in UTC and the serving clock is UTC, so a
profile's own daily rhythm is learnt and applied in one frame, whatever its timezone: a
member in Tokyo who watches cartoons at 07:00 local time does so at 22:00 UTC, every day.

Devices are free-form names (the player sends `web`, apps may send `ios`, `roku`,
`android-tv`...), so they are folded into a few classes by keyword; a request without one
is classed by its User-Agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

HOUR_BUCKETS = 8
WEEK_PARTS = 2
DEVICE_CLASSES = ("web", "mobile", "tablet", "tv", "other")
UNKNOWN_DEVICE = -1
#: Slots of a profile's affinity table: overall, then each hour, week part and device.
SLOTS = 1 + HOUR_BUCKETS + WEEK_PARTS + len(DEVICE_CLASSES)
HOUR_SLOT = 1
WEEK_SLOT = HOUR_SLOT + HOUR_BUCKETS
DEVICE_SLOT = WEEK_SLOT + WEEK_PARTS

# Checked in this order: "android-tv" is a TV, "android-tablet" a tablet, "android" a phone.
_DEVICE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tv", ("tv", "roku", "chromecast", "tizen", "webos", "console", "xbox", "playstation")),
    ("tablet", ("tablet", "ipad", "kindle")),
    ("mobile", ("mobile", "phone", "ios", "android")),
    ("web", ("web", "browser", "desktop", "chrome", "firefox", "safari", "edge")),
)
_UA_TV = re.compile(r"smart-?tv|tizen|web0s|webos|appletv|crkey|roku|\baft\w|bravia|hbbtv", re.I)
_UA_TABLET = re.compile(r"ipad|tablet|kindle|silk", re.I)
_UA_MOBILE = re.compile(r"mobi|iphone|ipod|android", re.I)


@dataclass(frozen=True)
class Context:
    hour: int = 0
    week: int = 0
    device: int = UNKNOWN_DEVICE

    @property
    def slots(self) -> tuple[int, int, int | None]:
        """Rows of an affinity table for this context: hour, week part, device (None for an
        unknown device: it then says nothing)."""
        device = None if self.device == UNKNOWN_DEVICE else DEVICE_SLOT + self.device
        return HOUR_SLOT + self.hour, WEEK_SLOT + self.week, device


def hour_bucket(moment: datetime) -> int:
    return moment.astimezone(UTC).hour * HOUR_BUCKETS // 24


def week_part(moment: datetime) -> int:
    return 1 if moment.astimezone(UTC).weekday() >= 5 else 0


def device_class(name: str | None) -> int:
    """The class index of a device name, UNKNOWN_DEVICE for none."""
    if not name:
        return UNKNOWN_DEVICE
    lowered = name.lower()
    for label, words in _DEVICE_WORDS:
        if any(word in lowered for word in words):
            return DEVICE_CLASSES.index(label)
    return DEVICE_CLASSES.index("other")


def device_from_user_agent(agent: str | None) -> str | None:
    """The device class a User-Agent header suggests, None when it says nothing useful."""
    if not agent:
        return None
    if _UA_TV.search(agent):
        return "tv"
    if _UA_TABLET.search(agent) or ("android" in agent.lower() and "mobile" not in agent.lower()):
        return "tablet"
    if _UA_MOBILE.search(agent):
        return "mobile"
    if agent.startswith("Mozilla/"):
        return "web"
    return None


def context_of(moment: datetime, device: str | None) -> Context:
    return Context(hour=hour_bucket(moment), week=week_part(moment), device=device_class(device))
