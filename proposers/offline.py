"""The offline proposer: no key, no server, no network; the same garden gives the same proposals.

Links: the best-ranked candidates (the same ranking the LLM sees). Confidence is a calibrated
estimate of how likely a careful curator keeps the link: the candidates' cosine similarity s
through the monotone table in `garden.calibration`, fitted to blind judgements (issue 12):

    s = 0.02 -> 0.02 (random pairs), 0.07 -> 0.41, 0.109 -> 0.72, 0.184 -> 0.88,
    0.231 -> 0.95, 0.30 and above -> 0.97-0.98

The same function scores any target, not only top candidates (a re-assessment calls it). The type
is `complementary` unless the candidate's own curated graph already links back, in which case the
inverse of that relationship is used. The reason names the terms and entities the two patterns
share.

Entities exist to connect patterns. Offered: multi-word keywords, a short title, and entities the
10 most similar patterns carry whose label occurs at least twice in this pattern's text; never a
label that restates the pattern's own title or slug (`garden.validate.restates_title`: "Capsule
Wardrobe" on `capsule-wardrobe-design`), nor one word that occurs in a large share of the garden
(`ProposalRequest.common_terms`, by document frequency: "Presence", "Resilience"). Relevance
grows with how often the label occurs in the pattern's text, and with how many of its 10 nearest
patterns share it (carry it as an entity, or name it in their title or summary):

    relevance = min(0.95, 0.5 + 0.15 * log2(1 + occurrences) + SHARED_BONUS(shared)), 2 places
    SHARED_BONUS: nobody shares it -0.10, one neighbour +0.0, two or more +0.10, four or more +0.15

so a label the text repeats that no neighbour shares waits below the review line, and one the
neighbourhood shares is accepted sooner. It skips entities the pattern already has by id or label.

Re-assessment (`reassess`, called by the tend for every pattern it tends): every existing link
is scored by the same measure, `link_confidence` of the pair's cosine computed from the ranking's
vectors for any target (not only the top candidates; `garden.reassess.pair_evidence`), and a
target not in the garden scores 0. Every existing entity is scored as a new one is
(`score_entity`: a title restating or a generic word scores 0, and a label the text never uses
scores 0).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from collections.abc import Collection, Iterator, Sequence

from garden.block import to_kebab
from garden.calibration import keep_rate
from garden.candidates import INVERSE_TYPES
from garden.proposal import Budget, ProposalRequest, ProposerAnswer
from garden.validate import concept_words, normalise_label, restates_title
from garden.state import entity_of


#: Entities are borrowed only from (and counted as shared by) this many of the best candidates.
NEIGHBOURS_FOR_ENTITIES = 10


def link_confidence(similarity: float, **evidence) -> float:
    """How likely a careful curator keeps a link of this cosine similarity (`garden.calibration`).

    Other evidence (e.g. `rank=`) is accepted and not used: the judged links were top-5 candidates,
    and inherited links far down the ranking score as low as they were judged by similarity alone
    (see `garden.calibration`)."""
    return round(keep_rate(similarity), 2)


def is_generic(label: str, common_terms: Collection[str]) -> bool:
    """One word in a large share of the garden's patterns (document frequency), e.g. "Agency"."""
    words = normalise_label(label).split()
    if len(words) != 1:
        return False
    word = words[0]
    folded = concept_words(word)
    forms = {word, word + "s", *folded, *(w + "s" for w in folded)}
    return any(form in common_terms for form in forms)


def entity_relevance(occurrences: int, *, label: str | None = None, title: str = "", slug: str = "",
                     shared: int | None = None, common_terms: Collection[str] = ()) -> float:
    """An entity's relevance to a pattern: 0.0 when the label restates the pattern's title or slug
    or is one generic word, else growing with its occurrences in the pattern's text and with how
    many of the pattern's nearest patterns share it (`shared`; None: not known, no bonus)."""
    if label is not None and (restates_title(label, title, slug) or is_generic(label, common_terms)):
        return 0.0
    return round(max(0.0, min(0.95, 0.5 + 0.15 * math.log2(1 + occurrences) + _shared_bonus(shared))), 2)


def _shared_bonus(shared: int | None) -> float:
    if shared is None or shared == 1:
        return 0.0
    if shared == 0:
        return -0.10
    return 0.10 if shared < 4 else 0.15


def score_entity(request: ProposalRequest, label: str) -> float:
    """`entity_relevance` of a label for a request's pattern, with the evidence the proposer uses:
    for re-assessing an entity the pattern already has."""
    occurrences = _text_words(request.text).count(label)
    return entity_relevance(occurrences, label=label, title=request.title, slug=request.slug,
                            shared=shared_by(request, label), common_terms=request.common_terms)


def shared_by(request: ProposalRequest, label: str) -> int:
    """How many of the pattern's nearest candidates carry the label as an entity (the same
    concept, `garden.validate.same_concept`) or name it in their title or summary."""
    key, phrase = _concept(label), _phrase(label)
    if not phrase.strip():
        return 0
    count = 0
    for candidate in request.candidates[:NEIGHBOURS_FOR_ENTITIES]:
        if (phrase in _head_words(candidate.title, candidate.summary)
                or any(key & _concept(other) for other in candidate.entity_labels)):
            count += 1
    return count


@lru_cache(maxsize=100_000)
def _concept(label: str) -> frozenset:
    """The spellings `same_concept` treats as one: sorted words, and words run together."""
    words = concept_words(label)
    return frozenset({" ".join(sorted(words)), "".join(words)}) if words else frozenset()


@lru_cache(maxsize=100_000)
def _label_keys(label: str) -> tuple[str, str, str]:
    """A label with single spaces, its entity id and its normalised form: the neighbours' labels
    recur from pattern to pattern."""
    label = " ".join(label.split())
    return label, to_kebab(label), normalise_label(label)


@lru_cache(maxsize=20_000)
def _head_words(title: str, summary: str) -> str:
    return _words(f"{title} {summary}")


class OfflineProposer:
    name = "offline"
    model = "tfidf-v1"
    #: Patterns per Prefect task (`flows.tending.batches`): an answer takes about 3 ms, and a task
    #: run about 20 ms.
    batch_size = 500

    def __init__(self, max_links: int = 5, max_entities: int = 5):
        self.max_links = max_links
        self.max_entities = max_entities
        #: Entities not offered, by why: "title" (restates the pattern's title), "generic".
        self.skipped: Counter = Counter()

    def propose(self, requests: Sequence[ProposalRequest], budget: Budget | None = None) -> Iterator[ProposerAnswer]:
        for request in requests:
            yield ProposerAnswer(request.slug, self.answer(request))

    def answer(self, request: ProposalRequest) -> dict:
        text = _text_words(request.text)
        return {"inferred_links": self._links(request, text),
                "entities": self._entities(request, text)}

    def reassess(self, request: ProposalRequest, ranking) -> dict:
        """Every existing link and entity of the pattern, scored afresh on the scale of a new
        proposal, with its evidence: {"inferred_links": [{"target", "type", "confidence",
        "evidence"}], "entities": [{"id", "relevance", "evidence"}]}."""
        from garden.reassess import pair_evidences

        text = _text_words(request.text)
        links = []
        found = pair_evidences(ranking, request.slug, [link.target for link in request.existing_links])
        for link, evidence in zip(request.existing_links, found):
            confidence = 0.0 if evidence.get("missing") else link_confidence(evidence["cosine"])
            links.append({"target": link.target, "type": link.type, "confidence": confidence,
                          "evidence": evidence})
        entities = []
        for entity in request.existing_entities:
            label = " ".join((entity.label or entity.id.replace("-", " ")).split())
            count = text.count(label)
            entities.append({"id": entity.id, "relevance": score_entity(request, label) if count else 0.0,
                             "evidence": {"occurrences": count}})
        return {"inferred_links": links, "entities": entities}

    def ranking_for(self, requests: Sequence[ProposalRequest], ranking):
        """The part of `ranking` that `reassess` and `suspect_duplicates` read for `requests`,
        shipped with a batch asked elsewhere (a Dask worker) instead of the garden's whole
        ranking: the patterns' neighbours, and the vectors of the patterns, of their links'
        targets and of the neighbours close enough to be suspected duplicates."""
        from garden.duplicates import DUPLICATE_COSINE

        rows = {link.target for request in requests for link in request.existing_links}
        for request in requests:
            if request.slug in ranking:
                rows.update(slug for slug, cosine in ranking.top(request.slug) if cosine >= DUPLICATE_COSINE)
        return ranking.subset([request.slug for request in requests], rows)

    def suspect_duplicates(self, request: ProposalRequest, ranking) -> list[dict]:
        """The patterns that look like the same idea as this one: each ranked neighbour whose
        cosine is at or above `garden.duplicates.DUPLICATE_COSINE`, linked or curated or not,
        as an answer's `duplicates` items ({"target", "confidence", "reason", "evidence"})."""
        from garden.duplicates import DUPLICATE_COSINE, duplicate_confidence

        if request.slug not in ranking:
            return []
        near = [(target, cosine) for target, cosine in ranking.top(request.slug) if cosine >= DUPLICATE_COSINE]
        overlaps = ranking.overlaps(request.slug, [target for target, _ in near], 4)
        found = []
        for (target, cosine), (_, shared) in zip(near, overlaps):
            found.append({"target": target, "confidence": duplicate_confidence(cosine),
                          "reason": f"Nearly the same text (cosine {cosine:.2f}"
                                    + (f"; shared terms: {', '.join(shared)})" if shared else ")"),
                          "evidence": {"cosine": round(cosine, 4), "shared_terms": shared}})
        return found

    def _links(self, request: ProposalRequest, text: TextWords) -> list[dict]:
        links = []
        for candidate in request.candidates[: self.max_links]:
            shared_entities = [label for label in candidate.entity_labels if text.count(label)][:3]
            parts = []
            if candidate.shared_terms:
                parts.append("shared terms: " + ", ".join(candidate.shared_terms[:4]))
            if shared_entities:
                parts.append("shared entities: " + ", ".join(shared_entities))
            reason = "; ".join(parts) or f"similar text (cosine {candidate.score:.2f})"
            links.append({
                "target": candidate.slug,
                "type": INVERSE_TYPES.get(candidate.curated_back or "", "complementary"),
                "confidence": link_confidence(candidate.score),
                "reason": reason[0].upper() + reason[1:],
            })
        return links

    def _entities(self, request: ProposalRequest, text: TextWords) -> list[dict]:
        have = {e for e in map(entity_of, request.declined) if e is not None}
        have |= {e.id for e in request.existing_entities} | {
            normalise_label(e.label or e.id) for e in request.existing_entities
        }
        found: dict[str, dict] = {}
        refused: set[str] = set()

        def offer(label: str, kind: str, minimum: int = 1) -> None:
            label, entity_id, normalised = _label_keys(label)
            if (not entity_id or entity_id == request.slug or entity_id in have
                    or normalised in have or entity_id in found or entity_id in refused):
                return
            count = text.count(label)
            if count < minimum:
                return
            if restates_title(label, request.title, request.slug):
                self.skipped["title"] += 1
                refused.add(entity_id)
            elif is_generic(label, request.common_terms):
                self.skipped["generic"] += 1
                refused.add(entity_id)
            else:
                found[entity_id] = {"id": entity_id, "type": kind, "label": _titled(label),
                                    "relevance": entity_relevance(count, shared=shared_by(request, label))}

        if 1 <= len(request.title.split()) <= 4:
            offer(request.title, "concept")
        for keyword in request.keywords:
            if len(keyword.split()) > 1:  # single-word keywords are mostly filler ("within")
                offer(keyword, "concept")
        for candidate in request.candidates[:NEIGHBOURS_FOR_ENTITIES]:
            for label in candidate.entity_labels:
                offer(label, "concept", minimum=2)
        ranked = sorted(found.values(), key=lambda e: (-e["relevance"], e["id"]))
        return ranked[: self.max_entities]


#: Characters outside ASCII, each looked at once per text (`_words`).
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: UTF-8 bytes: an ASCII byte that is not a letter or a digit becomes a space; the bytes of other
#: characters (>= 128) stay as they are.
_ASCII_SEPARATORS = bytes(b if b >= 128 or chr(b).isalnum() else ord(" ") for b in range(256))


def _words(text: str) -> str:
    """Text as its lower-case words (the runs of letters and digits, `[^\\W_]+` of its casefold),
    space-separated and padded, so a phrase is a substring."""
    return _joined(_word_list(text))


def _joined(words: list[bytes] | tuple[bytes, ...]) -> str:
    """UTF-8 words space-separated and padded (`_words`)."""
    return " " + b" ".join(words).decode() + " "


def _word_list(text: str) -> list[bytes]:
    """The words of `_words`, UTF-8 encoded. A regex over a pattern's text took half the
    proposer's time; instead, the few distinct non-ASCII characters that are not letters or
    digits become spaces, then the ASCII ones do (`bytes.translate`), and the text splits on
    spaces. tests/test_offline_speed.py holds it equal to the regex."""
    folded = text.casefold()
    if not folded.isascii():
        for char in set(_NON_ASCII.findall(folded)):
            if not char.isalnum():
                folded = folded.replace(char, " ")
    return folded.encode().translate(_ASCII_SEPARATORS).split()


class TextWords:
    """A pattern's text as its words (`_words`), and the set of them: a label one of whose words
    the text lacks occurs 0 times, found without reading the text (on the corpus, three labels
    in four asked about lack one). Counts are kept: a label is asked about again (a candidate's entities are
    looked for as shared, then offered)."""

    __slots__ = ("words", "vocabulary", "_counts")

    def __init__(self, text: str):
        found = _word_list(text)
        self.words = _joined(found)
        self.vocabulary = set(found)
        self._counts: dict[str, int] = {}

    def count(self, label: str) -> int:
        """How often the label occurs in the text as whole words: its `_words` in `words`."""
        found = self._counts.get(label)
        if found is None:
            words = _phrase_words(label)
            found = self.words.count(_phrase(label)) if words and self.vocabulary.issuperset(words) else 0
            self._counts[label] = found
        return found


@lru_cache(maxsize=64)
def _text_words(text: str) -> TextWords:
    """`TextWords` of a pattern's text, kept while it is proposed and re-assessed (one after the
    other: `flows.asking.ask`); about 4 times the text's size."""
    return TextWords(text)


@lru_cache(maxsize=100_000)
def _phrase(label: str) -> str:
    return _joined(_phrase_words(label))


@lru_cache(maxsize=100_000)
def _phrase_words(label: str) -> tuple[bytes, ...]:
    return tuple(_word_list(label))


def _titled(label: str) -> str:
    return label if any(c.isupper() for c in label) else label.title()
