"""Ranking the garden: for each pattern, the other patterns most worth linking to.

Every proposer sees the same ranked candidates, never a truncated alphabetical list (the real
library's machine-written links sit 99% on slugs beginning with "a" because an earlier pipeline
showed its model such a list). Each pattern becomes a TF-IDF vector (scikit-learn) over its
title, summary, keywords and entity labels (weighted by repetition) and its body; candidates are
the top K by cosine similarity. Each vector keeps only its heaviest terms (TERMS_PER_PATTERN).
Similarities are computed a chunk of rows at a time and only the top K of each row is kept:
memory grows with N x K, never N x N.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # imported where a ranking is made: every command would pay numpy's import
    import numpy as np

from garden.document import stored_body
from garden.model import GardenBlock, Pattern
from garden.proposal import Candidate, PatternRef, ProposalRequest
from garden.state import link_target_of

CHUNK = 512
#: A word in at least this share of the garden's patterns is generic: an entity of that one word
#: connects everything and so nothing. On the 600-pattern sample: resilience 91%, vitality 60%,
#: agency 35%, presence 30% (generic); grief 8%, negotiation 11%, privacy 15% (kept).
GENERIC_SHARE = 0.25
MAX_FEATURES = 200_000
#: Terms kept per pattern vector (its heaviest by TF-IDF weight). The light ones barely move a
#: similarity, but common terms in every vector make the similarity product grow with the square
#: of their document frequency: at 20,000 patterns, keeping all terms took 135 s, keeping 250
#: takes under 30 s, and the best-5 candidates stay 73% the same on the real library.
TERMS_PER_PATTERN = 250


_CODE = re.compile(r"```.*?```", re.DOTALL)
#: A term: three or more ASCII letters and hyphens, starting and ending with a letter.
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z-]+[a-zA-Z]\b"
_ASCII_TOKEN = re.compile(TOKEN_PATTERN.removeprefix("(?u)"), re.ASCII)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def pattern_prose(pattern: Pattern) -> str:
    """Title, summary and body, without code blocks (diagrams would rank patterns by syntax)."""
    return prose(pattern.title, pattern.summary, pattern.body)


def prose(title: str, summary: str, body: str) -> str:
    return f"{title}\n{summary}\n{_CODE.sub(' ', body)}"


def pattern_document(pattern: Pattern) -> str:
    """The text a pattern is ranked by; the short fields count more by repetition."""
    return document_of(document_source(pattern))


class DocumentSource(NamedTuple):
    """What `pattern_document` is made of, as plain values that another process makes the
    document from (`document_of`), cheaper to send than the pattern: the head (title, summary,
    keywords and entity labels repeated by weight), the title and summary again, and the body's
    UTF-8 when the pattern keeps it, else where to read it (`garden.document.stored_body`)."""

    head: str
    title: str
    summary: str
    body_utf8: bytes | None
    path: str
    content_hash: str
    layout: tuple


def document_source(pattern: Pattern) -> DocumentSource:
    labels = " ".join(e.label or e.id for e in (pattern.block.entities if pattern.block else ()))
    keywords = " ".join(pattern.keywords)
    head = " ".join([pattern.title] * 2 + [pattern.summary] + [keywords] * 3 + [labels] * 2)
    return DocumentSource(head, pattern.title, pattern.summary, pattern.body_utf8, pattern.path,
                          pattern.content_hash, pattern.layout)


def document_of(source: DocumentSource) -> str:
    """The pattern's ranking document (`pattern_document`): the head, then its `prose`."""
    body = stored_body(source.body_utf8, source.path, source.content_hash, source.layout)
    return f"{source.head}\n{prose(source.title, source.summary, body)}"


@dataclass
class Ranking:
    """Top-k neighbours of every pattern: `neighbours[i]` and `scores[i]` are best first."""

    slugs: list[str]
    neighbours: np.ndarray  # (n, k) int32 indices into slugs; -1 where fewer exist
    scores: np.ndarray  # (n, k) float32 cosine similarities
    matrix: object  # the (n, terms) sparse TF-IDF matrix, rows L2-normalised
    terms: np.ndarray
    #: Words in at least GENERIC_SHARE of the patterns (document frequency), for proposers.
    common_terms: frozenset[str] = frozenset()

    def index(self, slug: str) -> int:
        return self._index[slug]

    def __contains__(self, slug: object) -> bool:
        return slug in self._index

    def __post_init__(self) -> None:
        self._index = {slug: i for i, slug in enumerate(self.slugs)}

    def top(self, slug: str, exclude: Iterable[str] = (), k: int | None = None) -> list[tuple[str, float]]:
        """The best candidates for `slug`, skipping `exclude`, as (slug, score)."""
        i = self._index[slug]
        skip = set(exclude)
        found = []
        for j, score in zip(self.neighbours[i].tolist(), self.scores[i].tolist()):  # not numpy's scalars: 3x faster
            if j < 0 or score <= 0:
                break
            other = self.slugs[j]
            if other not in skip:
                found.append((other, score))
                if k is not None and len(found) >= k:
                    break
        return found

    def overlap(self, a: str, b: str, n: int = 5) -> tuple[float, list[str]]:
        """The two patterns' cosine (the sum of their common terms' weight products, the rows
        being L2-normalised) and the n terms that contribute most to it, in one pass."""
        return self.overlaps(a, [b], n)[0]

    def overlaps(self, a: str, others: Sequence[str], n: int = 5) -> list[tuple[float, list[str]]]:
        """`overlap` of `a` with each of `others`, all in one pass of numpy calls (a pair at a
        time, `np.intersect1d` took a sixth of a first tend's proposing). The common terms of a
        pair are found by looking each of the other's columns up in a's (rows keep their columns
        sorted), so they come in column order, as `np.intersect1d` gives them, and the weights
        sum and sort as they did (tests/test_candidates_speed.py)."""
        import numpy as np

        m = self.matrix
        if m is None or not others:
            return [(0.0, []) for _ in others]
        m.sort_indices()  # a no-op on the ranking's own matrix, whose rows are sorted
        i = self._index[a]
        cols_a, data_a = m.indices[m.indptr[i] : m.indptr[i + 1]], m.data[m.indptr[i] : m.indptr[i + 1]]
        rows = np.array([self._index[b] for b in others], dtype=np.int64)
        starts, lengths = m.indptr[rows], m.indptr[rows + 1] - m.indptr[rows]
        # every entry of the others' rows, row after row, as positions in m.indices / m.data
        at = np.arange(lengths.sum()) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        cols = m.indices[at]
        where = np.minimum(np.searchsorted(cols_a, cols), max(cols_a.size - 1, 0))
        hit = cols_a[where] == cols if cols_a.size else np.zeros(cols.size, dtype=bool)
        weight = data_a[where[hit]] * m.data[at[hit]]
        common, pair = cols[hit], np.repeat(np.arange(rows.size), lengths)[hit]
        order = np.lexsort((-weight, pair))  # by pair, then heaviest first, ties in column order
        bounds = np.searchsorted(pair, np.arange(rows.size + 1))
        found = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if lo == hi:
                found.append((0.0, []))
                continue
            top = common[order[lo : min(hi, lo + n)]]
            found.append((float(weight[lo:hi].sum()), [str(self.terms[k]) for k in top]))
        return found

    def subset(self, slugs: Iterable[str], rows: Iterable[str] = ()) -> Ranking:
        """The part of the ranking that questions about `slugs` read, to ship where they are
        asked (a Dask worker) instead of the whole garden's: their neighbours and scores, every
        neighbour named, and the vectors of `slugs` and `rows` alone (terms renumbered). On it,
        `top` of one of `slugs`, `in`, and `overlap` of two kept vectors answer as on the whole."""
        import numpy as np
        from scipy.sparse import csr_matrix

        own = [s for s in dict.fromkeys(slugs) if s in self._index]
        at = np.array([self._index[s] for s in own], dtype=np.int64)
        named = dict.fromkeys(own)
        for j in self.neighbours[at].ravel() if at.size else ():
            if j >= 0:
                named.setdefault(self.slugs[j])
        with_rows = set(own) | {s for s in rows if s in self._index}
        named.update(dict.fromkeys(sorted(with_rows - named.keys())))
        names = list(named)
        old = np.array([self._index[s] for s in names], dtype=np.int64)
        renumber = np.full(len(self.slugs), -1, dtype=np.int32)
        renumber[old] = np.arange(len(names), dtype=np.int32)
        width = self.neighbours.shape[1] if self.neighbours.ndim == 2 else 0
        neighbours = np.full((len(names), width), -1, dtype=np.int32)
        scores = np.zeros((len(names), width), dtype=np.float32)
        if at.size:
            picked = self.neighbours[at]
            neighbours[: len(own)] = np.where(picked >= 0, renumber[np.maximum(picked, 0)], -1)
            scores[: len(own)] = self.scores[at]
        m = self.matrix
        if m is None:
            return Ranking(names, neighbours, scores, None, self.terms, self.common_terms)
        kept = [i if s in with_rows else None for s, i in zip(names, old)]
        parts = [(m.indices[m.indptr[i] : m.indptr[i + 1]], m.data[m.indptr[i] : m.indptr[i + 1]])
                 if i is not None else (np.empty(0, np.int32), np.empty(0, m.dtype)) for i in kept]
        indptr = np.concatenate([[0], np.cumsum([len(cols) for cols, _ in parts])]).astype(np.int64)
        cols = np.concatenate([c for c, _ in parts]) if parts else np.empty(0, np.int32)
        data = np.concatenate([d for _, d in parts]) if parts else np.empty(0, m.dtype)
        used = np.unique(cols)  # sorted: renumbering keeps each row's columns in order
        matrix = csr_matrix((data, np.searchsorted(used, cols).astype(np.int32), indptr),
                            shape=(len(names), max(len(used), 1)))
        return Ranking(names, neighbours, scores, matrix, self.terms[used], self.common_terms)


def warm_ranking_imports() -> None:
    """Import what `rank_patterns` imports (numpy, scipy, scikit-learn: seconds), so that a
    caller with time to spare, such as a tend waiting for Prefect's server, can do it early
    (in a thread: a later import of the same modules waits for it, never repeats it)."""
    from importlib import import_module

    for name in ("numpy", "scipy.sparse", "sklearn.feature_extraction.text", "sklearn.preprocessing"):
        import_module(name)


#: Patterns tokenised per piece of work (`count_sources`): pieces small enough that two
#: processes sharing them (`share`) finish together, large enough to cost little to send.
TOKENIZE_CHUNK = 150

#: `map`'s shape: fn applied to each item, the results in order, possibly computed elsewhere
#: (`flows.helper.Helper.share`): fn and the items must then pickle.
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


def rank_patterns(patterns: Iterable[Pattern], k: int = 20, extra: int = 30, share: Mapper | None = None) -> Ranking:
    """Rank every pattern's neighbours. Keeps k + extra per pattern, so that callers can skip
    curated targets and existing links and still have k candidates. The documents are tokenised
    in pieces through `share` (the builtin `map` when None), most of a ranking's time."""
    import numpy as np

    patterns = list(patterns)
    slugs = [p.slug for p in patterns]
    n = len(patterns)
    keep = max(0, min(k + extra, n - 1))
    if n == 0:
        empty = np.zeros((0, 0))
        return Ranking(slugs, empty.astype(np.int32), empty.astype(np.float32), None, np.array([]))
    # Imported here: scikit-learn takes a second to import, and most commands never rank.
    from sklearn.feature_extraction.text import TfidfTransformer

    # TfidfVectorizer's steps, split so that the words it would drop as too common (max_df) are
    # counted first: they are the garden's generic words (`common_terms`).
    max_df = 0.5 if n >= 50 else 1.0
    common: frozenset[str] = frozenset()
    sources = [document_source(p) for p in patterns]
    pieces = [sources[i : i + TOKENIZE_CHUNK] for i in range(0, n, TOKENIZE_CHUNK)]
    parts = list((share or map)(count_sources, pieces))  # outside the try: its errors are not "no terms"
    del sources, pieces
    try:
        counts, terms = merge_counts(parts, min_df=2 if n >= 50 else 1)
        counts = counts.tocsc()
        df = np.diff(counts.indptr)
        if n >= 20:  # too few patterns to call a word common
            common = frozenset(terms[df >= GENERIC_SHARE * n].tolist())
        keep_terms = np.flatnonzero(df <= max_df * n)
        if keep_terms.size > MAX_FEATURES:  # the most frequent, as TfidfVectorizer keeps them
            totals = np.asarray(counts[:, keep_terms].sum(axis=0)).ravel()
            keep_terms = np.sort(keep_terms[np.argsort(-totals, kind="stable")[:MAX_FEATURES]])
        if keep_terms.size == 0:
            raise ValueError("no terms left")
        counts, terms = counts[:, keep_terms].tocsr(), terms[keep_terms]
        matrix = TfidfTransformer(sublinear_tf=True).fit_transform(counts).astype(np.float32).tocsr()
    except ValueError:  # no usable terms at all (e.g. empty patterns)
        from scipy.sparse import csr_matrix

        matrix, terms = csr_matrix((n, 1), dtype=np.float32), np.array([""])
    matrix = _keep_heaviest(matrix, TERMS_PER_PATTERN)
    neighbours = np.full((n, keep), -1, dtype=np.int32)
    scores = np.zeros((n, keep), dtype=np.float32)
    transposed = matrix.T.tocsr()
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = (matrix[start:stop] @ transposed).toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = -1.0  # never yourself
        if keep == 0:
            continue
        part = np.argpartition(-block, keep - 1, axis=1)[:, :keep] if keep < n else np.argsort(-block, axis=1)[:, :keep]
        part_scores = np.take_along_axis(block, part, axis=1)
        # Best first; ties broken by slug position so the order is deterministic.
        order = np.lexsort((part, -part_scores), axis=1)
        neighbours[start:stop] = np.take_along_axis(part, order, axis=1)
        scores[start:stop] = np.take_along_axis(part_scores, order, axis=1)
    return Ranking(slugs, neighbours, scores, matrix, terms, common)


def count_terms(documents: Iterable[str], min_df: int = 1):
    """The term counts of the documents and their terms, as scikit-learn's
    `CountVectorizer(stop_words="english", min_df=min_df, dtype=np.float32,
    token_pattern=TOKEN_PATTERN)` gives them (`fit_transform`, `get_feature_names_out`): the same
    lower-casing, tokens and stop words, but the tokens found in ASCII (`_as_ascii`), and counted
    a document at a time (`collections.Counter`) rather than a token at a time in Python. Raises
    ValueError when no term is left, as it does. tests/test_candidates_speed.py holds the two
    equal."""
    return merge_counts([tokenize(documents)], min_df)


class TermCounts(NamedTuple):
    """The words of some documents, counted (`tokenize`), as compact as CountVectorizer's
    (2 x 4 bytes an entry): word `words[j]` is column j; a document's columns and counts follow
    the one before's, up to its `ends` entry. Stop words are still in: `merge_counts` drops them."""

    words: list[str]  # in order of first use
    columns: array
    counts: array
    ends: list[int]


def tokenize(documents: Iterable[str]) -> TermCounts:
    """Each document's words (lower-cased, `_ASCII_TOKEN`), counted (`TermCounts`)."""
    from collections import Counter, defaultdict

    vocabulary: defaultdict[str, int] = defaultdict()  # word -> column, in order of first use
    vocabulary.default_factory = vocabulary.__len__
    columns, values, ends = array("i"), array("i"), []
    for document in documents:
        counts = Counter(_ASCII_TOKEN.findall(_as_ascii(document.lower())))
        columns.extend(map(vocabulary.__getitem__, counts))
        values.extend(counts.values())
        ends.append(len(columns))
    return TermCounts(list(vocabulary), columns, values, ends)


def count_sources(sources: list[DocumentSource]) -> TermCounts:
    """`tokenize` of the documents of `document_source`s: one piece of a ranking's tokenising,
    done where it is sent (it imports neither numpy nor scikit-learn)."""
    return tokenize(map(document_of, sources))


def merge_counts(parts: Iterable[TermCounts], min_df: int = 1):
    """`count_terms`'s result from the counts of its documents in consecutive parts, in order."""
    from collections import defaultdict

    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as stop
    vocabulary: defaultdict[str, int] = defaultdict()  # word -> column, in order of first use
    vocabulary.default_factory = vocabulary.__len__
    columns, values, indptr = [], [], [0]
    for part in parts:
        own = np.fromiter(map(vocabulary.__getitem__, part.words), dtype=np.int32, count=len(part.words))
        columns.append(own[np.frombuffer(part.columns, dtype=np.intc)])
        values.append(np.frombuffer(part.counts, dtype=np.intc))
        indptr += [indptr[-1] + end for end in part.ends]
    if not vocabulary.keys() - stop:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    words = np.array(sorted(vocabulary), dtype=object)
    sorted_column = np.empty(len(words), dtype=np.int32)
    sorted_column[[vocabulary[word] for word in words]] = np.arange(len(words), dtype=np.int32)
    entries = indptr[-1]
    index = np.int32 if entries <= np.iinfo(np.int32).max else np.int64  # as CountVectorizer's
    counts = csr_matrix((np.concatenate(values).astype(np.float32), sorted_column[np.concatenate(columns)],
                         np.array(indptr, dtype=index)), shape=(len(indptr) - 1, len(words)))
    kept = np.flatnonzero((np.bincount(counts.indices, minlength=len(words)) >= min_df)
                          & np.fromiter((word not in stop for word in words), dtype=bool, count=len(words)))
    if kept.size == 0:
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    return counts[:, kept], words[kept]


def _as_ascii(text: str) -> str:
    """The text with each character outside ASCII replaced by "0" if it is a word character (a
    letter or digit: it glues the letters beside it into a word that is no term) and by a space
    if not: TOKEN_PATTERN finds the same terms in it, and faster (`_ASCII_TOKEN`)."""
    if not text.isascii():
        for char in set(_NON_ASCII.findall(text)):
            text = text.replace(char, "0" if char.isalnum() else " ")
    return text


def _keep_heaviest(matrix, m: int):
    """Each row keeps its m largest weights and is L2-normalised again."""
    import numpy as np

    from sklearn.preprocessing import normalize

    matrix = matrix.tocsr(copy=True)
    indptr, data = matrix.indptr, matrix.data
    for row in range(matrix.shape[0]):
        start, stop = indptr[row], indptr[row + 1]
        if stop - start > m:
            cut = np.partition(data[start:stop], stop - start - m)[stop - start - m]
            segment = data[start:stop]
            segment[segment < cut] = 0.0
    matrix.eliminate_zeros()
    return normalize(matrix, copy=False)


#: How a candidate's own curated link back to a pattern reads from the pattern's side.
INVERSE_TYPES = {
    "enables": "requires",
    "requires": "enables",
    "generalizes_from": "specializes_to",
    "specializes_to": "generalizes_from",
    "alternatives": "alternatives",
    "complementary": "complementary",
    "tools": "complementary",
}


def make_request(pattern: Pattern, block: GardenBlock | None, ranking: Ranking,
                 patterns: Mapping[str, Pattern], k: int = 20, shared: int = 5,
                 declined: frozenset[str] = frozenset(),
                 entity_types: tuple[tuple[str, int], ...] = ()) -> ProposalRequest:
    """What a proposer is asked about one pattern: the top k candidates it is not yet linked to
    (nor rejected by a curator), and the title and summary of every pattern its existing links
    and curated relationships name. `entity_types`: the garden's (`entity_type_counts`)."""
    block = block or GardenBlock()
    named = pattern.curated_targets() | {link.target for link in block.inferred_links}
    references = {slug: PatternRef(slug, patterns[slug].title, patterns[slug].summary)
                  for slug in sorted(named) if slug in patterns and slug != pattern.slug}
    exclude = (pattern.curated_targets() | {link.target for link in block.inferred_links}
               | {t for t in map(link_target_of, declined) if t is not None})
    top = ranking.top(pattern.slug, exclude, k)
    terms = [tuple(found) for _, found in ranking.overlaps(pattern.slug, [slug for slug, _ in top[:shared]])]
    candidates = []
    for rank, (slug, score) in enumerate(top):
        other = patterns[slug]
        back = next((kind for kind, slugs in other.relationships.items() if pattern.slug in slugs), None)
        candidates.append(Candidate(
            slug=slug, title=other.title, summary=other.summary, score=round(score, 4),
            shared_terms=terms[rank] if rank < shared else (),
            entity_labels=tuple(e.label or e.id for e in (other.block.entities if other.block else ())),
            curated_back=back,
        ))
    return ProposalRequest(
        slug=pattern.slug, title=pattern.title, summary=pattern.summary, keywords=pattern.keywords,
        text=pattern_prose(pattern), text_hash=pattern.text_hash,
        existing_links=block.inferred_links, existing_entities=block.entities,
        curated=dict(pattern.relationships), candidates=tuple(candidates), declined=declined,
        common_terms=ranking.common_terms, references=references, entity_types=entity_types,
    )
