"""The offline proposer: no key, no server, no network; the same garden gives the same proposals.

Links: the best-ranked candidates (the same ranking the LLM sees). Confidence is a documented,
monotonic function of the candidates' cosine similarity s:

    confidence = min(0.95, 0.30 + 1.6 * s), rounded to 2 places

so on the real library (median best-candidate similarity about 0.25) a typical best candidate
lands at about 0.70 (the review floor), and only clearly similar pairs (s >= 0.35) reach the
auto-accept line of 0.85. The type is `complementary` unless the candidate's own curated graph
already links back, in which case the inverse of that relationship is used. The reason names the
terms and entities the two patterns share.

Entities: what the pattern's own text supports: multi-word keywords, a short title (unless it
names the pattern itself: an entity whose id is the slug says nothing), and entities
that the 10 most similar patterns carry whose label occurs at least twice in this pattern's
text. Relevance grows with how
often the label occurs:

    relevance = min(0.95, 0.5 + 0.15 * log2(1 + occurrences)), rounded to 2 places

(1 occurrence: 0.65, 3: 0.80, 7 or more: 0.95)

Re-assessment (`reassess`, called by the tend for every pattern it tends): every existing link
is scored by the same measure, `link_confidence` of the pair's cosine computed from the ranking's
vectors for any target (not only the top candidates; `garden.reassess.pair_evidence`), and a
target not in the garden scores 0. Every existing entity is scored as a new one is,
`entity_relevance` of its label's occurrences in the pattern's own text, and a label the text
never uses scores 0 (the text does not support it). Proposing skips entities the pattern already
has by id or label; fuzzy duplicates are left to the validation every proposer's answer goes
through.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from collections.abc import Iterator, Sequence

from garden.block import to_kebab
from garden.candidates import INVERSE_TYPES
from garden.proposal import Budget, ProposalRequest, ProposerAnswer
from garden.validate import normalise_label


#: Entities are borrowed only from this many of the best candidates.
NEIGHBOURS_FOR_ENTITIES = 10


def link_confidence(similarity: float) -> float:
    return round(min(0.95, 0.30 + 1.6 * max(0.0, similarity)), 2)


def entity_relevance(occurrences: int) -> float:
    return round(min(0.95, 0.5 + 0.15 * math.log2(1 + occurrences)), 2)


class OfflineProposer:
    name = "offline"
    model = "tfidf-v1"

    def __init__(self, max_links: int = 5, max_entities: int = 5):
        self.max_links = max_links
        self.max_entities = max_entities

    def propose(self, requests: Sequence[ProposalRequest], budget: Budget | None = None) -> Iterator[ProposerAnswer]:
        for request in requests:
            yield ProposerAnswer(request.slug, self.answer(request))

    def answer(self, request: ProposalRequest) -> dict:
        words = _words(request.text)
        return {"inferred_links": self._links(request, words),
                "entities": self._entities(request, words)}

    def reassess(self, request: ProposalRequest, ranking) -> dict:
        """Every existing link and entity of the pattern, scored afresh on the scale of a new
        proposal, with its evidence: {"inferred_links": [{"target", "type", "confidence",
        "evidence"}], "entities": [{"id", "relevance", "evidence"}]}."""
        from garden.reassess import pair_evidence

        words = _words(request.text)
        links = []
        for link in request.existing_links:
            evidence = pair_evidence(ranking, request.slug, link.target)
            confidence = 0.0 if evidence.get("missing") else link_confidence(evidence["cosine"])
            links.append({"target": link.target, "type": link.type, "confidence": confidence,
                          "evidence": evidence})
        entities = []
        for entity in request.existing_entities:
            label = " ".join((entity.label or entity.id.replace("-", " ")).split())
            count = _count(label, words)
            entities.append({"id": entity.id, "relevance": entity_relevance(count) if count else 0.0,
                             "evidence": {"occurrences": count}})
        return {"inferred_links": links, "entities": entities}

    def _links(self, request: ProposalRequest, text: str) -> list[dict]:
        links = []
        for candidate in request.candidates[: self.max_links]:
            shared_entities = [label for label in candidate.entity_labels if _occurs(label, text)][:3]
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

    def _entities(self, request: ProposalRequest, text: str) -> list[dict]:
        have = {key[len("entity|"):] for key in request.declined if key.startswith("entity|")}
        have |= {e.id for e in request.existing_entities} | {
            normalise_label(e.label or e.id) for e in request.existing_entities
        }
        found: dict[str, dict] = {}

        def offer(label: str, kind: str, minimum: int = 1) -> None:
            label = " ".join(label.split())
            entity_id = to_kebab(label)
            if (not entity_id or entity_id == request.slug or entity_id in have
                    or normalise_label(label) in have or entity_id in found):
                return
            count = _count(label, text)
            if count >= minimum:
                found[entity_id] = {"id": entity_id, "type": kind, "label": _titled(label),
                                    "relevance": entity_relevance(count)}

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


_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> str:
    """Text as its lower-case words, space-separated and padded, so a phrase is a substring."""
    return " " + " ".join(_WORD.findall(text.casefold())) + " "


@lru_cache(maxsize=100_000)
def _phrase(label: str) -> str:
    return _words(label)


def _count(label: str, words: str) -> int:
    phrase = _phrase(label)
    return words.count(phrase) if phrase.strip() else 0


def _occurs(label: str, words: str) -> bool:
    return _count(label, words) > 0


def _titled(label: str) -> str:
    return label if any(c.isupper() for c in label) else label.title()
