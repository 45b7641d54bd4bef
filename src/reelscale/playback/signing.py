"""Signed media URLs: an HMAC with expiry, bound to one asset and one play session.

The token lives in the URL *path*, not the query string:

    /media/s/{session_id}/{expires}/{signature}/{asset_id}/{file}

so a player resolving relative URIs from a playlist (segments, init sections, other
renditions) carries the token along without any rewriting, and a CDN or nginx can check
it from the path alone. One signature covers every file of the asset for that session:

    signature = base64url(HMAC-SHA256(key, "{session_id}/{expires}/{asset_id}"))  (no padding)
    key       = SHA-256("reelscale-media-url:" + platform secret)

nginx checks the very same signature with njs (deploy/nginx), so Python is not in the
segment path when nginx serves the files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

PREFIX = "/media/s"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


def media_key(secret: bytes) -> bytes:
    """The signing key, derived so it is useless for anything but media URLs."""
    return hashlib.sha256(b"reelscale-media-url:" + secret).digest()


def signature(key: bytes, *, session_id: str, expires: int, asset_id: str) -> str:
    mac = hmac.new(key, f"{session_id}/{expires}/{asset_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def signed_prefix(key: bytes, *, session_id: str, expires: int, asset_id: str) -> str:
    """The path every file of the asset is fetched under, ending in a slash."""
    sig = signature(key, session_id=session_id, expires=expires, asset_id=asset_id)
    return f"{PREFIX}/{session_id}/{expires}/{sig}/{asset_id}/"


@dataclass(frozen=True)
class SignedPath:
    session_id: str
    expires: int
    asset_id: str
    file: str


class InvalidSignature(Exception):
    """Tampered, malformed or expired: the caller answers 403."""


def verify(
    key: bytes, *, session_id: str, expires: str, sig: str, asset_id: str, file: str, now: float
) -> SignedPath:
    """Check a signed path's parts; raises InvalidSignature."""
    # fullmatch: "$" would let a trailing newline through; isdigit() would accept "²".
    if not (
        _SEGMENT.fullmatch(session_id)
        and _SEGMENT.fullmatch(asset_id)
        and _EXPIRES.fullmatch(expires)
    ):
        raise InvalidSignature("malformed media URL")
    if int(expires) < now:
        raise InvalidSignature("the media URL has expired")
    expected = signature(key, session_id=session_id, expires=int(expires), asset_id=asset_id)
    if not hmac.compare_digest(expected, sig):
        raise InvalidSignature("the media URL signature is invalid")
    if not file or file.startswith("/") or ".." in file.split("/") or "\\" in file:
        raise InvalidSignature("malformed media path")
    return SignedPath(session_id, int(expires), asset_id, file)
