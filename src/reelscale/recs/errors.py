"""Errors of the recommendation package."""

from __future__ import annotations

from reelscale.core.errors import BadRequest


class DataError(BadRequest):
    """An input file (or the data in it) cannot be used; the message says where and why."""
