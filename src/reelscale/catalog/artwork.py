"""Generated artwork: a poster or backdrop drawn as SVG from a title's own metadata.

Titles without uploaded artwork still look like a streaming service, not a grid of grey
boxes. The drawing is deterministic: the same title always gets the same picture.
"""

from __future__ import annotations

import hashlib
import textwrap
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from reelscale.catalog.models import Title

ArtworkKind = Literal["poster", "backdrop"]
SIZES: dict[str, tuple[int, int]] = {"poster": (400, 600), "backdrop": (1280, 720)}


def _palette(seed: str) -> tuple[str, str, str]:
    digest = hashlib.sha256(seed.encode()).digest()
    hue = digest[0] * 360 // 256
    return (
        f"hsl({hue},55%,32%)",
        f"hsl({(hue + 40) % 360},60%,12%)",
        f"hsl({(hue + 180) % 360},70%,65%)",
    )


def render(title: Title, kind: ArtworkKind) -> str:
    width, height = SIZES[kind]
    top, bottom, accent = _palette(str(title.id))
    columns = 14 if kind == "poster" else 26
    lines = textwrap.wrap(title.name.upper(), columns)[:4]
    size = 44 if kind == "poster" else 72
    first_y = height * (0.62 if kind == "poster" else 0.55) - (len(lines) - 1) * size * 0.55
    text = "".join(
        f'<text x="{width * 0.08:.0f}" y="{first_y + i * size * 1.1:.0f}" font-size="{size}" '
        f'font-weight="800" fill="#fff" font-family="Helvetica, Arial, sans-serif" '
        f'letter-spacing="1">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    genres = escape(" · ".join(g.name for g in title.genres[:3]))
    meta_y = first_y + len(lines) * size * 1.1 + 10
    if kind == "backdrop":
        # Backdrops sit behind the page's own title text: art only, no lettering.
        text, meta = "", ""
    else:
        meta = (
            f'<text x="{width * 0.08:.0f}" y="{meta_y:.0f}" font-size="{size * 0.42:.0f}" '
            f'fill="#ddd" font-family="Helvetica, Arial, sans-serif">'
            f"{title.release_year} · {escape(title.maturity_rating)} · {genres}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title.name)}>'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0.3" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        f"</linearGradient></defs>"
        f'<rect width="100%" height="100%" fill="url(#g)"/>'
        f'<circle cx="{width * 0.8:.0f}" cy="{height * 0.22:.0f}" r="{width * 0.28:.0f}" '
        f'fill="{accent}" opacity="0.18"/>'
        f'<rect x="{width * 0.08:.0f}" y="{height * 0.08:.0f}" width="6" height="{size}" '
        f'fill="#e50914"/>'
        f"{text}{meta}"
        f"</svg>"
    )
