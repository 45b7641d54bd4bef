"""CSV loading: the formats, duplicate rows, and clear refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reelscale.recs.data import load_interactions, load_items
from reelscale.recs.errors import DataError
from tests.recs.conftest import write


def test_reads_ids_as_strings_and_optional_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "item,user\n007,u1\n7,u1\n007,u2\n")
    data = load_interactions(path)
    assert data.item_ids == ("007", "7")
    assert data.user_ids == ("u1", "u2")
    assert data.ratings is None
    assert data.timestamps is None
    assert data.matrix().toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_duplicates_collapse_to_the_latest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "i.csv",
        "user,item,rating,timestamp\n"
        "a,x,5,300\na,x,1,100\na,y,3,1998-01-01T00:00:00Z\nb,x,4,5\na,x,2,200\n",
    )
    data = load_interactions(path)
    assert len(data) == 3
    assert data.collapsed_duplicates == 2
    pair = np.flatnonzero((data.users == 0) & (data.items == 0))
    assert data.ratings is not None
    assert data.ratings[pair].tolist() == [5.0]
    assert data.timestamps is not None
    assert 883612800.0 in data.timestamps.tolist()


def test_items_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "items.csv",
        'item,title,genres,year\n1,"Heat, the film",Action|Crime,1995\n2,Untitled,,\n',
    )
    catalog = load_items(path)
    assert catalog.titles[0] == "Heat, the film"
    assert catalog.genres == (("Action", "Crime"), ())
    assert catalog.years == (1995, None)
    features = catalog.features(["2", "1", "9"])
    assert features.genre_names == ("Action", "Crime")
    assert features.genres.toarray().tolist() == [[0, 0], [1, 1], [0, 0]]
    assert np.isnan(features.years[[0, 2]]).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("user,rating\nu,3\n", "missing column"),
        ("user,item,ratings\nu,i,3\n", "unknown column"),
        ("user,item,user\nu,i,v\n", "repeated column"),
        ("user,item\nu,i\nu\n", r":3: expected 2 fields"),
        ("user,item\nu,i,extra\n", r":2: expected 2 fields"),
        ("user,item\n ,i\n", r":2: empty user id"),
        ("user,item,rating\nu,i,five\n", r":2: rating 'five' is not a number"),
        ("user,item,rating\nu,i,nan\n", "not a finite number"),
        ("user,item,timestamp\nu,i,yesterday\n", "neither Unix seconds nor ISO 8601"),
        ("user,item\n", "no interaction rows"),
        ("user,item\nu,i\x00\n", "control character"),
    ],
)
def test_bad_interactions_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message) as caught:
        load_interactions(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item,title\n1,a\n", "missing column"),
        ("item,title,genres,year\n1,a,b,199x\n", "year '199x' is not a whole number"),
        ("item,title,genres,year\n1,a,b,99\n", "out of range"),
        ("item,title,genres,year\n1,a,b,1990\n1,b,c,1991\n", "listed twice"),
    ],
)
def test_bad_items_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_items(write(tmp_path / "items.csv", text))


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_interactions(tmp_path / "absent.csv")
    (tmp_path / "latin1.csv").write_bytes(b"user,item\n\xe9,x\n")
    with pytest.raises(DataError, match=r"cannot read it .*codec can.t decode"):
        load_interactions(tmp_path / "latin1.csv")
