"""The parse cache's entry format: what JSON cannot hold goes beside it by its path, and comes
back in its place (events/parse_cache.py `_encode`, `_decode`)."""

from __future__ import annotations

import datetime as dt

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from events.parse_cache import _decode, _encode

ODD = st.one_of(st.dates(), st.datetimes(), st.binary(max_size=4), st.integers(2**64, 2**70),
                st.just(float("inf")), st.frozensets(st.integers(0, 9)).map(set),
                st.dictionaries(st.integers(0, 9), st.text(max_size=3), max_size=2))
PLAIN = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=5),
                  st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(st.one_of(PLAIN, ODD), lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)), max_leaves=20)


def test_a_typed_value_is_listed_by_its_path_and_left_null():
    entry = _encode({"a": ["x", {"when": dt.date(2026, 11, 30)}], "b": "y"})
    assert entry == {"json": {"a": ["x", {"when": None}], "b": "y"},
                     "typed": [[["a", 1, "when"], "date", "2026-11-30"]]}


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_every_value_comes_back_as_it_went_in(value):
    assert _decode(orjson.loads(orjson.dumps(_encode(value)))) == value
