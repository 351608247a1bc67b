"""One validation path for every proposer's answer: each item is valid, a re-assessment, or
rejected with a reason (and the raw item kept, so the log shows exactly what was refused).

A link's target must be a valid slug (`garden.catalog.SLUG`) of a pattern that loaded without
errors: callers pass the slugs of `Garden.patterns`, never every slug some file claims."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from garden.catalog import is_valid_slug
from garden.model import LINK_TYPES
from garden.proposal import ProposalRequest
from garden.state import entity_key, link_key

MAX_REASON = 300
MAX_LABEL = 120
#: Words that carry no concept of their own when labels and titles are compared.
SMALL_WORDS = frozenset("a an and as at by for from in into of on or the to vs with".split())
_KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class NewLink:
    target: str
    type: str
    confidence: float
    reason: str


@dataclass(frozen=True, slots=True)
class NewEntity:
    id: str
    type: str
    label: str
    relevance: float


@dataclass(frozen=True, slots=True)
class Rescore:
    target: str
    type: str
    old: float | None
    new: float
    reason: str


@dataclass(frozen=True, slots=True)
class EntityRescore:
    id: str
    old: float | None
    new: float
    reason: str | None


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str
    item: Any


@dataclass
class Checked:
    links: list[NewLink]
    entities: list[NewEntity]
    rescores: list[Rescore | EntityRescore]  # existing links and entities re-assessed
    invalid: list[Invalid]


def clean_text(text: str, limit: int) -> str:
    """Control characters become spaces, runs of space collapse, and long text is capped."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def normalise_label(label: str) -> str:
    folded = unicodedata.normalize("NFKD", label).casefold()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", folded).split())


def _singular(word: str) -> str:
    """A plural folded to its singular, by ending: enough to match "trademarks" to "trademark"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=100_000)
def concept_words(label: str) -> tuple[str, ...]:
    """A label's words as the concept it names: case, accents, hyphens and punctuation, plurals and
    small words ("of", "the") folded, in their order."""
    return tuple(_singular(w) for w in normalise_label(label).split() if w not in SMALL_WORDS)


def same_concept(a: str, b: str) -> bool:
    """Two labels for one concept spelt differently: plural, hyphen or space, word order, case.

    Not two words a letter apart: prebiotics and probiotics, synchronous and asynchronous
    communication, knowledge-sharing and knowledge-hoarding are different concepts (a fuzzy ratio
    called them duplicates)."""
    wa, wb = concept_words(a), concept_words(b)
    if not wa or not wb:
        return normalise_label(a) == normalise_label(b)
    return sorted(wa) == sorted(wb) or "".join(wa) == "".join(wb)


def restates_title(label: str, title: str, slug: str) -> bool:
    """Whether an entity label only restates the pattern's own title or slug ("Trademark" on
    `trademarks`, "Capsule Wardrobe" on `capsule-wardrobe-design`, "Pre Mortem" on
    `pre-mortem-technique`): its words are among the title's (or the slug's) and cover at least
    half of them, or it holds all of them. One word of a long title ("Wardrobe" on
    `capsule-wardrobe-design`) names something else and may connect patterns."""
    words = set(concept_words(label))
    if not words:
        return False
    for name in (title, slug):
        own = set(concept_words(name))
        if not own:
            continue
        if own <= words or (words <= own and 2 * len(words) >= len(own)):
            return True
        if "".join(concept_words(label)) == "".join(concept_words(name)):
            return True
    return False


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def check_answer(request: ProposalRequest, items: Any, garden_slugs: Collection[str]) -> Checked:
    """Sort an answer's items into new links, new entities, re-assessments and rejections.

    A link the pattern already has (same target and type) or an entity it already has (same id)
    is a re-assessment (`Rescore`, `EntityRescore`): only its new score is checked.

    Links and entities a curator rejected for this pattern (`request.declined`, as "target|type"
    and "entity|id") are not proposed again until the pattern's text changes.
    """
    checked = Checked([], [], [], [])
    if not isinstance(items, dict):
        checked.invalid.append(Invalid("the answer is not a JSON object", items))
        return checked
    links, entities = items.get("inferred_links", []), items.get("entities", [])
    for key, value in (("inferred_links", links), ("entities", entities)):
        if not isinstance(value, list):
            checked.invalid.append(Invalid(f"{key} is not a list", value))
    if isinstance(links, list):
        _check_links(request, links, garden_slugs, request.declined, checked)
    if isinstance(entities, list):
        _check_entities(request, entities, checked)
    return checked


def _check_links(request, links, garden_slugs, declined, checked: Checked) -> None:
    curated = {slug: kind for kind, slugs in request.curated.items() for slug in slugs}
    existing = {(l.target, l.type): l for l in request.existing_links}
    seen: set[tuple[str, str]] = set()
    for item in links:
        # A link the pattern already has is a re-assessment, wherever its target is.
        known = isinstance(item, dict) and (item.get("target"), item.get("type")) in existing
        reason = _link_problem(item, request.slug, garden_slugs, {} if known else curated,
                               skip_target=known)
        if reason:
            checked.invalid.append(Invalid(reason, item))
            continue
        key = (item["target"], item["type"])
        confidence = _score(item.get("confidence"))
        why = clean_text(item["reason"], MAX_REASON)
        if key in seen:
            checked.invalid.append(Invalid("the same link twice in one answer", item))
        elif link_key(*key) in declined:
            checked.invalid.append(Invalid("a curator rejected this link; not proposed again until the pattern changes", item))
        elif key in existing:
            checked.rescores.append(Rescore(*key, existing[key].confidence, confidence, why))
        else:
            checked.links.append(NewLink(*key, confidence, why))
        seen.add(key)


def _link_problem(item, slug, garden_slugs, curated, skip_target=False) -> str | None:
    if not isinstance(item, dict):
        return "a link must be an object"
    target = item.get("target")
    if not isinstance(target, str) or not target.strip():
        return "a link needs a target slug"
    if not is_valid_slug(target):
        return f"target {target!r} is not a valid slug"
    if target == slug:
        return "self-link: a pattern cannot link to itself"
    if target not in garden_slugs and not skip_target:
        return f"target {target!r} is not in the garden"
    if target in curated:
        return f"target {target!r} is already a curated relationship ({curated[target]})"
    kind = item.get("type")
    if kind not in LINK_TYPES:
        return f"type {kind!r} is not one of {', '.join(LINK_TYPES)}"
    if _score(item.get("confidence")) is None:
        return f"confidence {item.get('confidence')!r} is not a number in [0, 1]"
    reason = item.get("reason")
    if not isinstance(reason, str) or not clean_text(reason, MAX_REASON):
        return "empty reason"
    return None


def _check_entities(request, entities, checked: Checked) -> None:
    known = [(e.id, normalise_label(e.label or e.id)) for e in request.existing_entities]
    existing = {e.id: e for e in request.existing_entities}
    rescored: set[str] = set()
    for item in entities:
        # An entity the pattern already has (same id) is a re-assessment: only its relevance counts.
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] in existing:
            _check_entity_rescore(item, existing[item["id"]], rescored, checked)
            continue
        reason = _entity_problem(item, known, request.slug, request.title)
        if reason:
            checked.invalid.append(Invalid(reason, item))
            continue
        if entity_key(item['id']) in request.declined:
            checked.invalid.append(Invalid("a curator rejected this entity; not proposed again until the pattern changes", item))
            continue
        label = clean_text(item["label"], MAX_LABEL)
        entity = NewEntity(item["id"], clean_text(item["type"], 40), label, _score(item["relevance"]))
        checked.entities.append(entity)
        known.append((entity.id, normalise_label(label)))


def _check_entity_rescore(item: dict, old, rescored: set[str], checked: Checked) -> None:
    relevance = _score(item.get("relevance"))
    if relevance is None:
        checked.invalid.append(Invalid(f"relevance {item.get('relevance')!r} is not a number in [0, 1]", item))
    elif old.id in rescored:
        checked.invalid.append(Invalid("the same entity twice in one answer", item))
    else:
        reason = item.get("reason")
        why = clean_text(reason, MAX_REASON) if isinstance(reason, str) else ""
        checked.rescores.append(EntityRescore(old.id, old.relevance, relevance, why or None))
        rescored.add(old.id)


def _entity_problem(item, known, slug: str, title: str = "") -> str | None:
    if not isinstance(item, dict):
        return "an entity must be an object"
    entity_id = item.get("id")
    if not isinstance(entity_id, str) or not _KEBAB.fullmatch(entity_id):
        return f"entity id {entity_id!r} is not kebab-case (like 'systems-thinking')"
    if entity_id == slug:
        return "the entity is the pattern itself (its id is the pattern's slug)"
    label = item.get("label")
    if not isinstance(label, str) or not clean_text(label, MAX_LABEL):
        return "an entity needs a label"
    if not isinstance(item.get("type"), str) or not item["type"].strip():
        return "an entity needs a type"
    if _score(item.get("relevance")) is None:
        return f"relevance {item.get('relevance')!r} is not a number in [0, 1]"
    if restates_title(label, title, slug) or restates_title(entity_id, title, slug):
        return f"the entity restates the pattern's own title ({label!r} on {slug!r})"
    norm = normalise_label(label)
    for other_id, other_label in known:
        if entity_id == other_id:
            return f"duplicate of entity {other_id!r} (same id)"
        if norm == other_label:
            return f"duplicate of entity {other_id!r} (same label)"
        if same_concept(norm, other_label):
            return f"near-duplicate of entity {other_id!r} (the same words spelt differently)"
    return None
