"""The policy: which proposals are accepted, which wait for a curator, and what is pruned.

Values come from one place: a `garden.toml` in the working directory, or else the
`[tool.garden]` table of its `pyproject.toml`, with `GARDEN_POLICY_<NAME>` environment variables
on top (e.g. `GARDEN_POLICY_AUTO_ACCEPT=0.9`). Pydantic validates them, and every run records
the values it used in RunStarted.

`decide` and `prune` are pure: a pattern's state in, events out. Each prune event names its rule
and the values that triggered it. Human-curated `relationships:` are never touched: the policy
only ever sees the machine-written block. An item a curator accepted or a person wrote into the
file (`owned`) is never pruned by a rule: the rule becomes a PruneProposed that waits for a
curator. `cap_prunes` spreads a large clean-up over runs (`max_prunes_per_run`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from garden.errors import SettingsError
from garden.event import (
    CommunityPruned,
    EntityPruned,
    Event,
    LinkPruned,
    ProposalAccepted,
    ProposalRejected,
    PruneProposed,
    event,
)
from garden.model import LINK_TYPES
from garden.state import entity_key, link_key

class Thresholds(BaseModel):
    """A proposer's (or a proposer and model's) own review band; a value left out is the policy's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_accept: float | None = Field(None, ge=0, le=1)
    review_floor: float | None = Field(None, ge=0, le=1)
    entity_auto_accept: float | None = Field(None, ge=0, le=1)
    entity_review_floor: float | None = Field(None, ge=0, le=1)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Link confidences are calibrated keep rates (garden.calibration): see README "The policy".
    auto_accept: float = Field(0.70, ge=0, le=1, description="accept links at or above this confidence")
    review_floor: float = Field(0.65, ge=0, le=1, description="below this, reject; between, wait for a curator")
    entity_auto_accept: float = Field(0.85, ge=0, le=1)
    entity_review_floor: float = Field(0.80, ge=0, le=1)
    min_link_confidence: float = Field(0.65, ge=0, le=1)
    min_link_confidence_by_type: dict[str, float] = Field(default_factory=dict)
    min_entity_relevance: float = Field(0.50, ge=0, le=1)
    min_community_confidence: float = Field(0.60, ge=0, le=1)
    max_links_per_pattern: int = Field(15, ge=0)
    prune_missing_targets: bool = False
    prune_curated_repeats: bool = False
    decay_half_life_days: float | None = Field(None, gt=0)
    nightly_limit: int | None = Field(None, ge=1, description="patterns tended per run; None: all")
    retend_after_days: int = Field(30, ge=0, description="ask again about an unchanged pattern after this")
    batch_size: int | None = Field(
        None, ge=1, le=10_000, description="patterns per Prefect task; None: 50 asked of a model, 500 "
        "of the offline proposer (it answers in milliseconds, a task run costs about 20 ms)")
    max_prunes_per_run: int | None = Field(
        None, ge=0, description="prune at most this many items a run, the lowest scores first; None: no cap")
    by_proposer: dict[str, Thresholds] = Field(
        default_factory=dict, description='review bands per proposer ("llm") or proposer and model ("llm/gpt-4o")')

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        if self.review_floor > self.auto_accept:
            raise ValueError("review_floor must not be above auto_accept")
        if self.entity_review_floor > self.entity_auto_accept:
            raise ValueError("entity_review_floor must not be above entity_auto_accept")
        unknown = set(self.min_link_confidence_by_type) - set(LINK_TYPES)
        if unknown:
            raise ValueError(f"min_link_confidence_by_type has unknown link types: {', '.join(sorted(unknown))}")
        for kind, value in self.min_link_confidence_by_type.items():
            if not 0 <= value <= 1:
                raise ValueError(f"min_link_confidence_by_type.{kind} must be in [0, 1]")
        for name in self.by_proposer:
            for kind in ("link", "entity"):
                accept, floor, _ = self.thresholds(kind, *(name.split("/", 1) + [None])[:2])
                if floor > accept:
                    raise ValueError(f"by_proposer.{name}: the {kind} review floor {floor} is above its "
                                     f"auto_accept {accept}")
        return self

    def link_floor(self, kind: str) -> float:
        return self.min_link_confidence_by_type.get(kind, self.min_link_confidence)

    def thresholds(self, kind: str, proposer: str | None, model: str | None) -> tuple[float, float, str]:
        """(auto_accept, review_floor, whose) for a link or entity by this proposer and model: the
        most specific of `by_proposer["proposer/model"]`, `by_proposer["proposer"]` and the policy's
        own values, field by field; `whose` names where the band came from ("" for the policy's)."""
        names = ("auto_accept", "review_floor") if kind == "link" else ("entity_auto_accept", "entity_review_floor")
        values, whose = [getattr(self, n) for n in names], ""
        for key in (proposer, f"{proposer}/{model}" if model else None):
            found = self.by_proposer.get(key) if key else None
            if found is None:
                continue
            for i, name in enumerate(names):
                if getattr(found, name) is not None:
                    values[i], whose = getattr(found, name), key
        return values[0], values[1], whose


def load_policy(directory: Path | None = None, environ: dict[str, str] | None = None) -> Policy:
    """The policy from garden.toml or pyproject.toml's [tool.garden], then GARDEN_POLICY_* vars."""
    directory = Path(directory or Path.cwd())
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    source = "defaults"
    for name, pick in (("garden.toml", lambda d: d.get("policy", d)),
                       ("pyproject.toml", lambda d: d.get("tool", {}).get("garden", {}).get("policy"))):
        path = directory / name
        if not path.is_file():
            continue
        try:
            found = pick(tomllib.loads(path.read_text("utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SettingsError(f"{path.name}: cannot read: {e}") from e
        if found:
            values, source = dict(found), path.name
            break
    prefix = "GARDEN_POLICY_"
    for key, raw in environ.items():
        if key.startswith(prefix):
            name = key[len(prefix):].lower()
            values[name] = _parse_env(raw)
            source = f"{source} + environment"
    try:
        return Policy(**values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise SettingsError(f"invalid policy ({source}): {where}: {first['msg'].removeprefix('Value error, ')}") from e


_HEADER = re.compile(r"^\s*\[")
_POLICY_HEADER = re.compile(r"^\s*\[\s*policy\s*\]\s*(#.*)?$")


def set_policy_values(text: str, values: dict[str, float]) -> str:
    """garden.toml's text with `values` set in its policy (the [policy] table, or the top-level
    keys when the file is the policy itself, as `load_policy` reads it): a key already there is
    replaced on its line, a new one goes after the table's last line; every other line is kept
    as it is. Raises SettingsError when the result would not be a valid policy."""
    try:
        parsed = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingsError(f"garden.toml: cannot read: {e}") from e
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if "policy" in parsed:
        start = next((n + 1 for n, line in enumerate(lines) if _POLICY_HEADER.match(line)), None)
        if start is None:
            raise SettingsError("garden.toml: the policy is not a [policy] table this command can edit; "
                                "set the thresholds by hand")
    elif any(not isinstance(v, dict) for v in parsed.values()):
        start = 0  # the file's top-level keys are the policy
    else:
        lines += (["\n"] if lines else []) + ["[policy]\n"]
        start = len(lines)
    end = next((n for n in range(start, len(lines)) if _HEADER.match(lines[n])), len(lines))
    missing = []
    for key, value in values.items():
        at = next((n for n in range(start, end) if re.match(rf"^\s*{key}\s*=", lines[n])), None)
        if at is None:
            missing.append(f"{key} = {value}\n")
        else:
            lines[at] = f"{key} = {value}\n"
    last = max((n + 1 for n in range(start, end) if lines[n].strip()), default=start)
    lines[last:last] = missing
    new = "".join(lines)
    found = tomllib.loads(new)
    try:
        Policy(**found.get("policy", found))
    except ValidationError as e:
        first = e.errors()[0]
        where = "".join(f"{p}: " for p in first["loc"][:1])
        what = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"garden.toml: the new thresholds would make an invalid policy: {where}{what}; "
                            "garden.toml is unchanged") from e
    return new


def policy_file_with(values: dict[str, float], directory: Path | None = None) -> tuple[Path, str]:
    """garden.toml's path and its text with `values` set in its policy (see `set_policy_values`),
    for a file that may not exist yet; nothing is written. A pyproject.toml policy would be
    hidden by a new garden.toml: that is refused."""
    directory = Path(directory or Path.cwd())
    path = directory / "garden.toml"
    if not path.is_file():
        pyproject = directory / "pyproject.toml"
        try:
            hidden = pyproject.is_file() and tomllib.loads(pyproject.read_text("utf-8")).get(
                "tool", {}).get("garden", {}).get("policy")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            hidden = False
        if hidden:
            raise SettingsError("the policy is in pyproject.toml [tool.garden.policy]; a new garden.toml would "
                                "hide it: move it to garden.toml's [policy] first, or set the thresholds by hand")
    return path, set_policy_values(path.read_text("utf-8") if path.is_file() else "", values)


def write_policy_file(path: Path, text: str) -> None:
    temporary = path.with_name(".garden.toml.tmp")
    temporary.write_text(text, "utf-8")
    os.replace(temporary, path)  # whole or not at all


def _parse_env(raw: str) -> Any:
    text = raw.strip()
    if text.lower() in ("", "none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("{"):
        import json

        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


# --- decisions ------------------------------------------------------------------------------


def decide(slug: str, pending: dict[str, dict], policy: Policy, run_id: str | None,
           only: set[str] | None = None) -> list[Event]:
    """Accept, keep for review, or reject each pending proposal (those in `only`, if given)."""
    out: list[Event] = []
    for proposal_id, proposal in pending.items():
        if only is not None and proposal_id not in only:
            continue
        if proposal["kind"] == "prune":
            continue  # a proposed prune is a curator's decision, always
        kind = proposal["kind"]
        score, what = (proposal["confidence"], "confidence") if kind == "link" else (proposal["relevance"], "relevance")
        accept, floor, whose = policy.thresholds(kind, proposal.get("proposer"), proposal.get("model"))
        band = f"[{whose}]" if whose else ""
        if score >= accept:
            payload = ProposalAccepted(proposal_id=proposal_id,
                                       rule=f"auto_accept{band}: {what} {score} >= {accept}")
        elif score < floor:
            payload = ProposalRejected(proposal_id=proposal_id,
                                       reason=f"review_floor{band}: {what} {score} < {floor}")
        else:
            continue  # waits for a curator
        out.append(event(payload, slug=slug, run_id=run_id, actor="pruner"))
    return out


# --- pruning --------------------------------------------------------------------------------


def prune(slug: str, block: dict | None, curated: set[str], garden_slugs: set[str], policy: Policy,
          run_id: str | None, today: dt.date, refreshed: dict[str, str] | None = None,
          owned: dict[str, str] | None = None, asked: set[str] | frozenset[str] = frozenset()) -> list[Event]:
    """The prune events for one pattern's projected block (a dict as the projection keeps it).

    `owned` ("target|type" or "entity|id" -> "curator" or "hand"): items a rule would prune are
    proposed to a curator instead (PruneProposed), unless `asked` already holds that proposal's
    key ("prune|target|type": pending, or a curator kept the item for this text)."""
    if not block:
        return []
    out: list[Event] = []
    owned = owned or {}

    def emit(payload) -> None:
        key = (link_key(payload.target, payload.link_type) if isinstance(payload, LinkPruned)
               else entity_key(payload.entity_id) if isinstance(payload, EntityPruned) else None)
        if key is not None and key in owned:
            if f"prune|{key}" in asked:
                return
            is_link = isinstance(payload, LinkPruned)
            payload = PruneProposed(
                item="link" if is_link else "entity", rule=payload.rule, values=payload.values,
                target=payload.target if is_link else None, link_type=payload.link_type if is_link else None,
                entity_id=None if is_link else payload.entity_id, owner=owned[key],
                score=payload.confidence if is_link else payload.relevance)
        out.append(event(payload, slug=slug, run_id=run_id, actor="pruner"))

    kept: list[dict] = []
    for link in block["inferred_links"]:
        rule = _link_rule(link, curated, garden_slugs, policy, today, refreshed or {})
        if rule:
            emit(LinkPruned(target=link["target"], link_type=link["type"], rule=rule[0], values=rule[1],
                            confidence=link.get("confidence")))
        else:
            kept.append(link)
    if len(kept) > policy.max_links_per_pattern:
        ranked = sorted(kept, key=lambda l: (-(l.get("confidence") or 0.0), l["target"]))
        floor = ranked[policy.max_links_per_pattern - 1].get("confidence") if policy.max_links_per_pattern else None
        for link in ranked[policy.max_links_per_pattern:]:
            emit(LinkPruned(target=link["target"], link_type=link["type"], rule="max_links_per_pattern",
                            confidence=link.get("confidence"),
                            values={"confidence": link.get("confidence"), "max": policy.max_links_per_pattern,
                                    "kept_down_to": floor}))
    for entity in block["entities"]:
        relevance = entity.get("relevance")
        if relevance is not None and relevance < policy.min_entity_relevance:
            emit(EntityPruned(entity_id=entity["id"], rule="min_entity_relevance", relevance=relevance,
                              values={"relevance": relevance, "threshold": policy.min_entity_relevance}))
    for community in block["communities"]:
        confidence = community.get("confidence")
        if (community.get("source") == "inferred" and confidence is not None
                and confidence < policy.min_community_confidence):
            emit(CommunityPruned(community_id=community["id"], rule="min_community_confidence",
                                 confidence=confidence,
                                 values={"confidence": confidence, "threshold": policy.min_community_confidence}))
    return out


def _link_rule(link, curated, garden_slugs, policy, today, refreshed):
    confidence = link.get("confidence")
    kind = link.get("type") or "complementary"
    if policy.prune_missing_targets and link["target"] not in garden_slugs:
        return "missing_target", {"target": link["target"]}
    if policy.prune_curated_repeats and link["target"] in curated:
        return "curated_repeat", {"target": link["target"]}
    if confidence is None:
        return None  # a legacy link with no confidence: unknown, not low
    floor = policy.link_floor(kind)
    if confidence < floor:
        rule = "min_link_confidence" + (f".{kind}" if kind in policy.min_link_confidence_by_type else "")
        return rule, {"confidence": confidence, "threshold": floor}
    if policy.decay_half_life_days:
        since = refreshed.get(link_key(link['target'], kind))
        if since:
            age = (today - dt.date.fromisoformat(since[:10])).days
            decayed = confidence * math.pow(0.5, max(age, 0) / policy.decay_half_life_days)
            if decayed < floor:
                return "decayed", {"confidence": confidence, "decayed_to": round(decayed, 3),
                                   "age_days": age, "half_life_days": policy.decay_half_life_days,
                                   "threshold": floor}
    return None


def prune_score(e: Event) -> float:
    """How sure a prune is, lowest first: a missing target before any low score."""
    p = e.payload
    if p.rule == "missing_target":
        return -1.0
    score = getattr(p, "confidence", None) if not isinstance(p, EntityPruned) else p.relevance
    return 0.0 if score is None else score


def cap_prunes(events: list[Event], cap: int | None) -> tuple[list[Event], list[Event]]:
    """(kept, deferred): at most `cap` prunes (the lowest scores first, then by pattern), every
    other event kept. The deferred ones are pruned by a later run (the scores stay recorded)."""
    prunes = [e for e in events if e.type.endswith("Pruned")]
    if cap is None or len(prunes) <= cap:
        return events, []
    order = sorted(range(len(prunes)), key=lambda n: (prune_score(prunes[n]), prunes[n].slug or "", n))
    chosen = {id(prunes[n]) for n in order[:cap]}
    kept = [e for e in events if not e.type.endswith("Pruned") or id(e) in chosen]
    return kept, [e for e in prunes if id(e) not in chosen]
