"""`garden calibrate --write`: a fit per proposer/model/prompt version/kind recorded in the log,
and, when asked, its recommended thresholds written into the policy file.

The fits are computed from the curators' labels (`garden.precision.fitted`, pure) and appended
as CalibrationFitted events in one batch; the projection keeps the newest per key and a tend maps
that proposer's new confidences through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from events.store import EventStore
from garden.errors import GardenError
from garden.event import CalibrationFitted, FitLabel, event
from garden.policy import policy_file_with, write_policy_file
from garden.precision import MIN_LABELS, Label, fitted, groups, key_name

#: The policy's thresholds for each kind: (auto-accept name, review-floor name).
POLICY_NAMES = {"link": ("auto_accept", "review_floor"), "entity": ("entity_auto_accept", "entity_review_floor")}
PLURAL = {"link": "links", "entity": "entities"}


@dataclass
class CalibrationWrite:
    written: list[dict] = field(default_factory=list)  # {"key", "seq", "labels", "breakpoints", "recommended"}
    skipped: list[dict] = field(default_factory=list)  # {"key", "labels", "reason"}
    policy: dict[str, dict] = field(default_factory=dict)  # kind -> {"values", "from"} or {"reason"}
    policy_file: str | None = None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def write_fits(store: EventStore, labels: list[Label], target: float, curator: str,
               set_policy: bool = False, directory: Path | None = None) -> CalibrationWrite:
    """Append one CalibrationFitted per proposer/model/prompt version/kind with MIN_LABELS labels
    or more (the others are named in `skipped`); with `set_policy`, write each kind's calibrated
    thresholds into garden.toml. Nothing is written at all when the policy cannot take them (two
    fits of one kind, an invalid result, a pyproject.toml policy a new garden.toml would hide)."""
    done = CalibrationWrite()
    events, made = [], []
    for key, found in groups(labels).items():
        fit = fitted(found, target)
        if fit is None:
            done.skipped.append({"key": key_name(key), "labels": len(found),
                                 "reason": f"{len(found)} labels, a fit needs {MIN_LABELS} or more"})
            continue
        proposer, model, version, kind = key
        events.append(event(CalibrationFitted(
            proposer=proposer, model=model, prompt_version=version, kind=kind,
            labels=[FitLabel(proposal_id=l.proposal_id, confidence=l.confidence, kept=l.kept) for l in found],
            breakpoints=fit["breakpoints"], recommended=fit["recommended"], target_precision=target),
            actor=f"curator:{curator}"))
        made.append((key, {"labels": len(found), **fit}))
    planned = _plan_policy(done, made, directory) if set_policy else None  # refused before any write
    appended = store.append(events)
    for n, (key, fit) in enumerate(made):
        done.written.append({"key": key_name(key), "seq": (appended.first_seq or 0) + n, **fit})
    if planned:
        write_policy_file(*planned)
        done.policy_file = str(planned[0])
    return done


def _plan_policy(done: CalibrationWrite, made: list, directory: Path | None) -> tuple[Path, str] | None:
    """garden.toml's path and new text with each kind's calibrated thresholds (None: nothing to
    set); what is set or left, and why, goes into `done.policy`."""
    for kind in POLICY_NAMES:
        mine = [key_name(k) for k, _ in made if k[3] == kind]
        if len(mine) > 1:
            raise GardenError(f"--set-policy: {len(mine)} fits for {PLURAL[kind]} ({', '.join(mine)}) and one "
                              "policy: narrow it with --proposer, or set the thresholds by hand; nothing was written")
    values: dict[str, float] = {}
    for kind, (accept_name, floor_name) in POLICY_NAMES.items():
        fit = next(((key, f) for key, f in made if key[3] == kind), None)
        if fit is None:
            done.policy[kind] = {"reason": f"no fit for {PLURAL[kind]}"}
            continue
        key, f = fit
        rec = f["recommended"]
        chosen = {name: rec[f"calibrated_{which}"] for name, which in ((accept_name, "auto_accept"),
                                                                       (floor_name, "review_floor"))
                  if rec[f"calibrated_{which}"] is not None}
        if not chosen:
            done.policy[kind] = {"reason": f"{key_name(key)}'s labels recommend no threshold"}
            continue
        done.policy[kind] = {"values": chosen, "from": key_name(key)}
        values.update(chosen)
    return policy_file_with(values, directory) if values else None
