"""The ranking's fast paths equal the plain computations they replace, value for value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import random as sparse_random

from conftest import SEEDS
from garden.candidates import TOKEN_PATTERN, Ranking, count_terms, merge_counts, rank_patterns, tokenize
from garden.catalog import load_garden
from garden.reassess import pair_evidence, pair_evidences


def overlap_by_intersection(ranking: Ranking, a: str, b: str, n: int) -> tuple[float, list[str]]:
    """The definition: the common columns of the two rows (`np.intersect1d`), their weight
    products summed, and the terms of the n heaviest (ties in column order)."""
    m = ranking.matrix
    i, j = ranking.index(a), ranking.index(b)
    cols_a, cols_b = m.indices[m.indptr[i] : m.indptr[i + 1]], m.indices[m.indptr[j] : m.indptr[j + 1]]
    common, at_a, at_b = np.intersect1d(cols_a, cols_b, assume_unique=True, return_indices=True)
    if common.size == 0:
        return 0.0, []
    weight = m.data[m.indptr[i] + at_a] * m.data[m.indptr[j] + at_b]
    order = np.argsort(-weight, kind="stable")[:n]
    return float(weight.sum()), [str(ranking.terms[common[k]]) for k in order]


def random_ranking(seed: int, rows: int = 40, columns: int = 60) -> Ranking:
    rng = np.random.default_rng(seed)
    matrix = sparse_random(rows, columns, density=rng.uniform(0.02, 0.5), format="csr",
                           dtype=np.float32, random_state=seed)
    matrix.data = np.round(matrix.data * 4) / 4  # equal weights, so ties are broken somewhere
    matrix.data[matrix.data == 0] = 0.25
    slugs = [f"p{i}" for i in range(rows)]
    empty = np.zeros((rows, 0))
    return Ranking(slugs, empty.astype(np.int32), empty.astype(np.float32), matrix,
                   np.array([f"t{c}" for c in range(columns)], dtype=object))


@pytest.mark.parametrize("seed", range(20))
def test_overlaps_equal_the_intersection_pair_by_pair(seed):
    ranking = random_ranking(seed)
    rng = np.random.default_rng(seed)
    for a in ranking.slugs:
        others = list(rng.choice(ranking.slugs, size=rng.integers(0, 12)))  # repeats, itself
        for n in (0, 1, 4, 5, 100):
            found = ranking.overlaps(a, others, n)
            assert found == [overlap_by_intersection(ranking, a, b, n) for b in others]
            for (cosine, _), b in zip(found, others):
                assert type(cosine) is float and cosine == ranking.overlap(a, b, n)[0]


def test_overlaps_on_a_real_ranking_and_its_subset(seed_garden):
    garden = load_garden(seed_garden)
    ranking = rank_patterns(garden.patterns.values())
    assert ranking.matrix.has_sorted_indices
    for a in ranking.slugs:
        assert ranking.overlaps(a, ranking.slugs) == [overlap_by_intersection(ranking, a, b, 5)
                                                      for b in ranking.slugs]
    part = ranking.subset(ranking.slugs[:1], ranking.slugs[1:])
    a = ranking.slugs[0]
    assert part.overlaps(a, ranking.slugs) == ranking.overlaps(a, ranking.slugs)


def test_pair_evidences_equal_pair_evidence_one_by_one(seed_garden):
    garden = load_garden(seed_garden)
    ranking = rank_patterns(garden.patterns.values())
    slug = ranking.slugs[0]
    targets = ranking.slugs + ["not-in-the-garden", slug, ranking.slugs[-1]]
    assert pair_evidences(ranking, slug, targets) == [pair_evidence_plainly(ranking, slug, t) for t in targets]
    assert pair_evidences(ranking, "not-in-the-garden", targets[:2]) == [
        pair_evidence(ranking, "not-in-the-garden", t) for t in targets[:2]]
    assert pair_evidences(ranking, slug, []) == []


def pair_evidence_plainly(ranking: Ranking, slug: str, target: str, terms: int = 4) -> dict:
    """`pair_evidence` as it was written before `pair_evidences`, on the intersection."""
    if slug not in ranking or target not in ranking or target == slug:
        return {"cosine": 0.0, "rank": None, "shared_terms": [], "missing": target not in ranking}
    i, j = ranking.index(slug), ranking.index(target)
    hits = (ranking.neighbours[i] == j).nonzero()[0]
    rank = int(hits[0]) + 1 if hits.size else None
    cosine, shared = overlap_by_intersection(ranking, slug, target, terms)
    if rank is not None:
        cosine = float(ranking.scores[i][hits[0]])
    return {"cosine": round(max(0.0, cosine), 4), "rank": rank, "shared_terms": shared}


def count_by_scikit_learn(documents: list[str], min_df: int):
    """The definition: scikit-learn's CountVectorizer, as `rank_patterns` called it."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", min_df=min_df, dtype=np.float32,
                                 token_pattern=TOKEN_PATTERN)
    counts = vectorizer.fit_transform(documents)
    return counts, vectorizer.get_feature_names_out()


def assert_same_counts(documents: list[str], min_df: int, count=count_terms) -> None:
    try:
        expected, expected_terms = count_by_scikit_learn(documents, min_df)
    except ValueError:  # no term left (rank_patterns takes any ValueError for that)
        with pytest.raises(ValueError):
            count(documents, min_df)
        return
    counts, terms = count(documents, min_df)
    assert terms.dtype == expected_terms.dtype and terms.tolist() == expected_terms.tolist()
    assert type(counts) is type(expected) and counts.shape == expected.shape
    a, b = counts.tocsc(), expected.tocsc()  # as rank_patterns reads them
    for part in ("data", "indices", "indptr"):
        assert getattr(a, part).dtype == getattr(b, part).dtype
        assert np.array_equal(getattr(a, part), getattr(b, part)), part


WORDS = ["the", "and", "garden", "Garden", "grief", "self-leadership", "-x-", "a-b", "ab", "co2",
         "snake_case", "café", "naïve", "über", "Straße", "İstanbul", "K", "—", "..", "3rd", "x", ""]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=12), min_size=1, max_size=8),
       st.sampled_from([1, 2, 3]), st.sampled_from([" ", "\n", "-", "0", "é", ", "]))
def test_count_terms_equal_scikit_learn(documents, min_df, glue):
    assert_same_counts([glue.join(words) for words in documents], min_df)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=12), min_size=1, max_size=8),
       st.sampled_from([1, 2, 3]), st.sampled_from([" ", "\n", "-", "0", "é", ", "]), st.integers(1, 4))
def test_counts_merged_from_parts_equal_scikit_learn(documents, min_df, glue, size):
    """As a ranking shared between two processes counts them: `tokenize` a piece at a time."""
    def in_pieces(documents, min_df):
        return merge_counts([tokenize(documents[i : i + size]) for i in range(0, len(documents), size)], min_df)

    assert_same_counts([glue.join(words) for words in documents], min_df, in_pieces)


def test_count_terms_equal_scikit_learn_on_the_seed_patterns():
    from garden.candidates import pattern_document

    garden = load_garden(SEEDS)
    documents = [pattern_document(p) for p in garden.patterns.values()]
    for min_df in (1, 2, 3, 4):
        assert_same_counts(documents * 2, min_df)
    assert_same_counts(["", "the and of"], 1)  # stop words alone: no vocabulary


def top_plainly(ranking: Ranking, slug: str, exclude=(), k=None) -> list[tuple[str, float]]:
    """`Ranking.top` as it was written, over numpy's scalars."""
    found = []
    for j, score in zip(ranking.neighbours[ranking.index(slug)], ranking.scores[ranking.index(slug)]):
        if j < 0 or score <= 0:
            break
        if ranking.slugs[j] not in exclude:
            found.append((ranking.slugs[j], float(score)))
            if k is not None and len(found) >= k:
                break
    return found


def test_top_equals_reading_numpy_scalars(tmp_path):
    from conftest import make_garden

    garden = load_garden(make_garden(tmp_path / "patterns", 60))
    ranking = rank_patterns(garden.patterns.values(), k=5, extra=3)
    for slug in ranking.slugs:
        skip = set(ranking.slugs[::7])
        for k in (None, 1, 3):
            found = ranking.top(slug, skip, k)
            assert found == top_plainly(ranking, slug, skip, k)
            assert all(type(score) is float for _, score in found)


def test_count_terms_equal_scikit_learn_beside_every_character():
    # each character between, before and after letters and hyphens: a word character outside
    # ASCII glues letters into no term, any other character parts them
    characters = [chr(c) for c in range(0x20000) if not 0xD800 <= c < 0xE000] + ["\ud800"]
    documents = ["".join(f"abc{c}def gh-{c}-ijk {c}lmn-op{c} " for c in characters[i : i + 4000])
                 for i in range(0, len(characters), 4000)]
    assert_same_counts(documents, 1)
