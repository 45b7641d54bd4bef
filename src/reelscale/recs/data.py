"""Interaction and item CSV files, id maps and the sparse user-item matrix.

Interactions: a header naming `user,item` and optionally `rating` and `timestamp`, in any
order. Ids are strings (kept exactly, after trimming surrounding blanks). A rating is a finite
number; a timestamp is Unix seconds or an ISO 8601 date-time. Rows that repeat a (user, item)
pair collapse into one: the latest by timestamp wins, else the last in the file.

Items: a header naming `item,title,genres,year`; genres are separated by `|`; the year may be
empty. Items may be missing from it (they get no features) and it may list items nobody has
interacted with (they can be recommended only as a last resort).

Every refusal is a `DataError` that names the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from reelscale.recs.errors import DataError
from reelscale.recs.types import BoolArray, Csr, FloatArray, IntArray

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")
ITEM_COLUMNS = ("item", "title", "genres", "year")
MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class Interactions:
    """Interaction rows coded as indices into `user_ids` and `item_ids`.

    Subsets made by `subset` keep the full id maps, so matrices built from a train and a test
    part line up column for column.
    """

    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    users: IntArray
    items: IntArray
    ratings: FloatArray | None = None
    timestamps: FloatArray | None = None
    collapsed_duplicates: int = field(default=0, compare=False)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def subset(self, mask: BoolArray | IntArray) -> Interactions:
        """The rows selected by a boolean mask or an index array, with the same id maps."""
        return Interactions(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            users=self.users[mask],
            items=self.items[mask],
            ratings=None if self.ratings is None else self.ratings[mask],
            timestamps=None if self.timestamps is None else self.timestamps[mask],
        )

    def with_items(self, item_ids: Sequence[str]) -> Interactions:
        """The same rows with any unknown `item_ids` appended to the item map."""
        known = set(self.item_ids)
        extra = tuple(dict.fromkeys(i for i in item_ids if i not in known))
        return replace(self, item_ids=self.item_ids + extra) if extra else self

    def matrix(self, values: FloatArray | None = None) -> Csr:
        """The users x items CSR matrix holding `values` (1.0 for every row by default)."""
        data = np.ones(len(self)) if values is None else values
        shape = (self.n_users, self.n_items)
        return sp.csr_matrix((data, (self.users, self.items)), shape=shape, dtype=np.float64)


@dataclass(frozen=True)
class ItemCatalog:
    """Item metadata from an items CSV, in file order."""

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    years: tuple[int | None, ...]

    def features(self, item_ids: Sequence[str]) -> ItemFeatures:
        """Features aligned to `item_ids` (an interaction item map); unknown items get none."""
        position = {item: n for n, item in enumerate(self.item_ids)}
        names = sorted({g for genres in self.genres for g in genres})
        column = {g: n for n, g in enumerate(names)}
        rows: list[int] = []
        cols: list[int] = []
        years = np.full(len(item_ids), np.nan)
        for row, item in enumerate(item_ids):
            at = position.get(item)
            if at is None:
                continue
            for genre in self.genres[at]:
                rows.append(row)
                cols.append(column[genre])
            year = self.years[at]
            if year is not None:
                years[row] = year
        genre_matrix = sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(item_ids), len(names))
        )
        return ItemFeatures(genre_names=tuple(names), genres=genre_matrix, years=years)


@dataclass(frozen=True)
class ItemFeatures:
    """Item features aligned to an interaction item map: a 0/1 genre matrix and years."""

    genre_names: tuple[str, ...]
    genres: Csr
    years: FloatArray  # NaN where unknown


def load_interactions(path: str | Path) -> Interactions:
    """Read and validate an interactions CSV (see the module docstring for the format)."""
    path = Path(path)
    user_of: dict[str, int] = {}
    item_of: dict[str, int] = {}
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    stamps: list[float] = []
    columns, rows = _table(path, required=("user", "item"), allowed=INTERACTION_COLUMNS)
    has_rating = "rating" in columns
    has_time = "timestamp" in columns
    for line, record in rows:
        user = _identifier(record["user"], "user", path, line)
        item = _identifier(record["item"], "item", path, line)
        users.append(user_of.setdefault(user, len(user_of)))
        items.append(item_of.setdefault(item, len(item_of)))
        if has_rating:
            ratings.append(_rating(record["rating"], path, line))
        if has_time:
            stamps.append(_timestamp(record["timestamp"], path, line))
    if not users:
        raise DataError(f"{path}: no interaction rows after the header")
    data = Interactions(
        user_ids=tuple(user_of),
        item_ids=tuple(item_of),
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        ratings=np.asarray(ratings, dtype=np.float64) if has_rating else None,
        timestamps=np.asarray(stamps, dtype=np.float64) if has_time else None,
    )
    return collapse_duplicates(data)


def collapse_duplicates(data: Interactions) -> Interactions:
    """One row per (user, item): the latest by timestamp, ties and no timestamps by file order."""
    n = len(data)
    order_key = np.arange(n, dtype=np.float64)
    keys: list[FloatArray | IntArray] = [order_key]
    if data.timestamps is not None:
        keys.append(data.timestamps)
    keys += [data.items, data.users]
    # lexsort sorts by the last key first: pairs together, the winner last within each pair.
    order = np.lexsort(tuple(keys))
    pair = data.users[order] * data.n_items + data.items[order]
    last_of_pair = np.append(pair[1:] != pair[:-1], True)
    keep = np.sort(order[last_of_pair])
    if keep.shape[0] == n:
        return data
    return replace(data.subset(keep), collapsed_duplicates=n - int(keep.shape[0]))


def load_items(path: str | Path) -> ItemCatalog:
    """Read and validate an items CSV (see the module docstring for the format)."""
    path = Path(path)
    ids: list[str] = []
    titles: list[str] = []
    genres: list[tuple[str, ...]] = []
    years: list[int | None] = []
    seen: dict[str, int] = {}
    _, rows = _table(path, required=ITEM_COLUMNS, allowed=ITEM_COLUMNS)
    for line, record in rows:
        item = _identifier(record["item"], "item", path, line)
        if item in seen:
            raise DataError(
                f"{path}:{line}: item {item!r} is listed twice (first on line {seen[item]})"
            )
        seen[item] = line
        ids.append(item)
        titles.append(record["title"].strip())
        genres.append(
            tuple(dict.fromkeys(g.strip() for g in record["genres"].split("|") if g.strip()))
        )
        years.append(_year(record["year"], path, line))
    if not ids:
        raise DataError(f"{path}: no item rows after the header")
    return ItemCatalog(tuple(ids), tuple(titles), tuple(genres), tuple(years))


def _table(
    path: Path, *, required: Sequence[str], allowed: Sequence[str]
) -> tuple[tuple[str, ...], Iterator[tuple[int, dict[str, str]]]]:
    """The validated header, and an iterator over (line number, record) of the body."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from None
    if header is None:
        raise DataError(f"{path}: the file is empty; it needs a header line")
    columns = tuple(c.strip().lower() for c in header)
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in allowed]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or unknown or repeated:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(repeated)}")
        raise DataError(
            f"{path}:1: bad header ({'; '.join(problems)}); expected the columns "
            f"{','.join(allowed)} with {','.join(required)} required"
        )
    return columns, _body(path, columns)


def _body(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    line = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank lines carry nothing
                if len(row) != len(columns):
                    raise DataError(
                        f"{path}:{line}: expected {len(columns)} fields "
                        f"({','.join(columns)}), got {len(row)}"
                    )
                yield line, dict(zip(columns, row, strict=True))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}:{line + 1}: unreadable ({exc})") from None


def _identifier(value: str, what: str, path: Path, line: int) -> str:
    value = value.strip()
    if not value:
        raise DataError(f"{path}:{line}: empty {what} id")
    if len(value) > MAX_ID_LENGTH:
        raise DataError(f"{path}:{line}: {what} id longer than {MAX_ID_LENGTH} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise DataError(f"{path}:{line}: {what} id {value!r} contains a control character")
    return value


def _rating(value: str, path: Path, line: int) -> float:
    try:
        rating = float(value)
    except ValueError:
        raise DataError(f"{path}:{line}: rating {value.strip()!r} is not a number") from None
    if not math.isfinite(rating):
        raise DataError(f"{path}:{line}: rating {value.strip()!r} is not a finite number")
    return rating


def _timestamp(value: str, path: Path, line: int) -> float:
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise DataError(
                f"{path}:{line}: timestamp {text!r} is neither Unix seconds nor ISO 8601"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    if not math.isfinite(seconds):
        raise DataError(f"{path}:{line}: timestamp {text!r} is not finite")
    return seconds


def _year(value: str, path: Path, line: int) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        year = int(text)
    except ValueError:
        raise DataError(f"{path}:{line}: year {text!r} is not a whole number") from None
    if not 1000 <= year <= 9999:
        raise DataError(f"{path}:{line}: year {year} is out of range (1000-9999)")
    return year
