"""Item neighbour lists: collaborative (for Because You Watched) and blended (More Like This).

Both are computed once per model build, in row blocks so memory stays bounded by
`block x n_items` floats whatever the catalog size, and kept as short index lists: a
request then only walks a list, it never touches a matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from reelscale.recs.types import Csr, FloatArray

BLOCK = 512
#: More Like This weighs what members watch together against what the titles share.
COLLABORATIVE_SHARE = 0.6
GENRE_SHARE, CAST_SHARE, LANGUAGE_SHARE = 0.6, 0.3, 0.1


def collaborative_weights(matrix: Csr, ease_weights: FloatArray | None) -> FloatArray:
    """Item-to-item weights: EASE's B when fitted, else cosine over who watched what."""
    if ease_weights is not None and ease_weights.size:
        return np.maximum(ease_weights, 0.0)
    binary = (matrix != 0).astype(np.float64).tocsc()
    gram = np.asarray((binary.T @ binary).toarray(), dtype=np.float64)
    norms = np.sqrt(np.maximum(np.diag(gram), 1e-12))
    cosine: FloatArray = gram / norms[:, None] / norms[None, :]
    np.fill_diagonal(cosine, 0.0)
    return cosine


def content_matrices(
    genres: Sequence[Sequence[int]],
    cast: Sequence[Sequence[str]],
    n_genres: int,
) -> tuple[Csr, Csr]:
    """Row-normalised item x genre and item x person matrices (cosine by a dot product)."""
    people: dict[str, int] = {}
    g_rows, g_cols, c_rows, c_cols = [], [], [], []
    for item, (item_genres, item_cast) in enumerate(zip(genres, cast, strict=True)):
        g_rows += [item] * len(item_genres)
        g_cols += list(item_genres)
        for person in dict.fromkeys(item_cast):
            c_rows.append(item)
            c_cols.append(people.setdefault(person, len(people)))
    n = len(genres)
    genre = sp.csr_matrix((np.ones(len(g_rows)), (g_rows, g_cols)), shape=(n, max(n_genres, 1)))
    person = sp.csr_matrix((np.ones(len(c_rows)), (c_rows, c_cols)), shape=(n, max(len(people), 1)))
    return _normalise_rows(genre), _normalise_rows(person)


def neighbour_lists(
    weights: FloatArray,
    *,
    k: int,
    content: tuple[Csr, Csr] | None = None,
    languages: Sequence[str] = (),
) -> tuple[tuple[int, ...], ...]:
    """The k best other items per item, best first; items with no positive weight are left
    out, so a list may be shorter than k."""
    n = weights.shape[0]
    if n == 0:
        return ()
    codes = (
        np.unique(np.asarray(languages, dtype=object), return_inverse=True)[1]
        if languages
        else None
    )
    lists: list[tuple[int, ...]] = []
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        block = np.array(weights[start:stop], dtype=np.float64)
        if content is not None:
            peak = block.max(axis=1, keepdims=True)
            block = COLLABORATIVE_SHARE * np.divide(
                block, peak, out=np.zeros_like(block), where=peak > 0
            )
            genre, person = content
            block += (1 - COLLABORATIVE_SHARE) * (
                GENRE_SHARE * np.asarray((genre[start:stop] @ genre.T).toarray())
                + CAST_SHARE * np.asarray((person[start:stop] @ person.T).toarray())
            )
            if codes is not None:
                same = codes[start:stop, None] == codes[None, :]
                block += (1 - COLLABORATIVE_SHARE) * LANGUAGE_SHARE * same
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never itself
        lists.extend(_top(block, k))
    return tuple(lists)


def _top(block: FloatArray, k: int) -> list[tuple[int, ...]]:
    k = min(k, block.shape[1])
    part = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < block.shape[1] else None
    candidates = np.tile(np.arange(block.shape[1]), (block.shape[0], 1)) if part is None else part
    picked = np.take_along_axis(block, candidates, axis=1)
    order = np.lexsort((candidates, -picked), axis=1)
    best = np.take_along_axis(candidates, order, axis=1)
    good = np.take_along_axis(picked, order, axis=1) > 0
    return [tuple(int(i) for i in row[mask]) for row, mask in zip(best, good, strict=True)]


def _normalise_rows(matrix: Csr) -> Csr:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.diags(scale) @ matrix
