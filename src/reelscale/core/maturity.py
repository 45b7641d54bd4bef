"""Maturity ratings, shared by accounts (profile ceilings) and catalog (title ratings).

Each rating maps to the youngest age it suits. A profile with ceiling N sees titles whose
level is at most N. Kids profiles carry a ceiling of at most KIDS_MAX_LEVEL.
"""

from __future__ import annotations

from typing import Literal

Rating = Literal[
    "TV-Y", "G", "TV-G", "TV-Y7", "PG", "TV-PG", "PG-13", "TV-14", "R", "TV-MA", "NC-17"
]

RATING_LEVELS: dict[str, int] = {
    "TV-Y": 0,
    "G": 0,
    "TV-G": 0,
    "TV-Y7": 7,
    "PG": 7,
    "TV-PG": 10,
    "PG-13": 13,
    "TV-14": 14,
    "R": 17,
    "TV-MA": 17,
    "NC-17": 18,
}

ADULT_LEVEL = 18
KIDS_MAX_LEVEL = 12
KIDS_DEFAULT_LEVEL = 7


def level_of(rating: str) -> int:
    try:
        return RATING_LEVELS[rating]
    except KeyError:
        raise ValueError(f"unknown maturity rating {rating!r}") from None
