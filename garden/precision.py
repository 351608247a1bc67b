"""How right a proposer is, measured from its curators' decisions.

Every curator decision on a proposal is a label: the proposer and model that made the item, the
item's kind, the confidence it had when proposed, and whether the curator kept it. From labels:

- `bands`: per proposer/model and kind, the labels in confidence bands with their precision (the
  share kept) and its Wilson score interval, so a band of 3 labels says how little it knows;
- `recommend`: the thresholds that would meet a target precision: `auto_accept`, the lowest
  confidence from which the kept share's interval lies wholly at or above the target, and
  `review_floor`, the highest confidence below which the kept share's interval lies wholly at or
  below 1 - target ("almost nothing kept"); None when the labels cannot say;
- `policy_outcome`: what a policy would have done with the labelled items, and how often the
  curator disagreed;
- `fit_isotonic` / `calibrated`: a monotone map from a proposer's confidence to the share its
  curators keep (isotonic regression by pool-adjacent-violators), and a confidence mapped through
  it. `garden calibrate --write` records one per proposer/model/prompt version/kind
  (CalibrationFitted) and new proposals are then recorded on its scale.

Labels are grouped by proposer, model, prompt version and kind: an LLM asked with another prompt
is another proposer as far as its confidences go.

Pure: no I/O (`events.queries.curator_labels` reads the labels from the log).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from garden.policy import Policy

BAND_EDGES = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIN_LABELS = 20  # fewer labels behind a threshold than this and it is not recommended


@dataclass(frozen=True)
class Label:
    proposer: str
    model: str | None
    kind: str  # "link" or "entity"
    confidence: float  # an entity's relevance; the raw value when the proposal was calibrated
    kept: bool
    prompt_version: str | None = None
    proposal_id: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None, str]:
        return self.proposer, self.model, self.prompt_version, self.kind


Key = tuple[str, str | None, str | None, str]


def key_name(key: Key) -> str:
    """How a proposer/model/prompt version/kind is shown: "offline/tfidf-v1/link", with the prompt
    version before the kind when there is one ("llm/gpt-4o/graph-garden-prompt-2/link")."""
    proposer, model, version, kind = key
    return "/".join([proposer, model or "-"] + ([version] if version else []) + [kind])


def fit_key(key: Key) -> str:
    """The key a fit is kept under in the state: "proposer|model|prompt_version|kind" ("-" for none)."""
    proposer, model, version, kind = key
    return f"{proposer}|{model or '-'}|{version or '-'}|{kind}"


def wilson(kept: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion kept/n (95% by default); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = kept / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def groups(labels: Iterable[Label]) -> dict[Key, list[Label]]:
    """Labels by (proposer, model, prompt_version, kind), in a stable order."""
    out: dict[Key, list[Label]] = defaultdict(list)
    for label in labels:
        out[label.key].append(label)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


def bands(labels: Iterable[Label], edges: Sequence[float] = BAND_EDGES) -> list[dict]:
    """One row per proposer/model/prompt version/kind and confidence band [low, high) (the last band includes 1.0)
    that holds labels: n, kept, precision and its 95% interval."""
    rows = []
    for (proposer, model, version, kind), found in groups(labels).items():
        for i, (low, high) in enumerate(zip(edges, edges[1:])):
            last = i == len(edges) - 2
            inside = [l for l in found if low <= l.confidence < high or (last and l.confidence == high)]
            if not inside:
                continue
            kept = sum(l.kept for l in inside)
            lo, hi = wilson(kept, len(inside))
            rows.append({"proposer": proposer, "model": model, "prompt_version": version, "kind": kind,
                         "low": low, "high": high,
                         "n": len(inside), "kept": kept, "precision": round(kept / len(inside), 4),
                         "precision_low": round(lo, 4), "precision_high": round(hi, 4)})
    return rows


def recommend(labels: Sequence[Label], target: float = 0.9, min_labels: int = MIN_LABELS) -> dict:
    """{"auto_accept", "review_floor", "labels"} for one proposer/model/prompt version/kind's labels: thresholds
    at label confidences (None when no threshold has `min_labels` labels behind it and an
    interval on the right side of the target)."""
    ordered = sorted(labels, key=lambda l: l.confidence)
    n = len(ordered)
    kept_from = [0] * (n + 1)  # kept_from[i]: kept among ordered[i:]
    for i in range(n - 1, -1, -1):
        kept_from[i] = kept_from[i + 1] + ordered[i].kept
    auto_accept = review_floor = None
    for i in range(n):  # the lowest threshold whose accepted share is surely good enough
        if i and ordered[i].confidence == ordered[i - 1].confidence:
            continue
        above = n - i
        if above >= min_labels and wilson(kept_from[i], above)[0] >= target:
            auto_accept = ordered[i].confidence
            break
    for i in range(n, 0, -1):  # the highest floor below which surely almost nothing is kept
        if i < n and ordered[i].confidence == ordered[i - 1].confidence:
            continue
        below, kept_below = i, kept_from[0] - kept_from[i]
        if below >= min_labels and wilson(kept_below, below)[1] <= 1 - target:
            review_floor = ordered[i].confidence if i < n else round(ordered[-1].confidence + 0.01, 4)
            break
    if auto_accept is not None and review_floor is not None and review_floor > auto_accept:
        review_floor = auto_accept
    return {"auto_accept": auto_accept, "review_floor": review_floor, "labels": n}


def policy_outcome(labels: Iterable[Label], policy: Policy) -> dict[str, int]:
    """What `policy` does with each labelled item at its confidence, against the curator:
    accepted and kept, accepted wrongly, rejected and dropped, rejected wrongly, and left for
    review (kept or dropped)."""
    out = {"accepted_kept": 0, "accepted_wrongly": 0, "rejected_dropped": 0, "rejected_wrongly": 0,
           "review_kept": 0, "review_dropped": 0}
    for label in labels:
        accept, floor, _ = policy.thresholds(label.kind, label.proposer, label.model)
        if label.confidence >= accept:
            out["accepted_kept" if label.kept else "accepted_wrongly"] += 1
        elif label.confidence < floor:
            out["rejected_wrongly" if label.kept else "rejected_dropped"] += 1
        else:
            out["review_kept" if label.kept else "review_dropped"] += 1
    return out


def band_action(low: float, high: float, accept: float, floor: float) -> str:
    """What the policy does with items of a band [low, high): all auto-accepted, all rejected, all
    left for review, or a mix (a threshold falls inside the band)."""
    if low >= accept:
        return "auto-accept"
    if high <= floor:
        return "reject"
    if low >= floor and high <= accept:
        return "review"
    return "mixed"


def measured(labels: Sequence[Label], policy: Policy) -> dict:
    """The measured precision per band beside the policy's thresholds, and how many labels stand
    behind each figure: what `garden health` and the HTML report show."""
    rows = []
    for row in bands(labels):
        accept, floor, _ = policy.thresholds(row["kind"], row["proposer"], row["model"])
        rows.append({**row, "policy": band_action(row["low"], row["high"], accept, floor)})
    return {"labels": len(labels), "bands": rows,
            "thresholds": {"link": {"auto_accept": policy.auto_accept, "review_floor": policy.review_floor},
                           "entity": {"auto_accept": policy.entity_auto_accept,
                                      "review_floor": policy.entity_review_floor}}}


def fit_isotonic(labels: Iterable[Label]) -> list[tuple[float, float]]:
    """The monotone (non-decreasing) share kept as a function of confidence that is closest to the
    labels in squared error: pool-adjacent-violators over the distinct confidences, each weighted
    by its labels. Returned as breakpoints (confidence, share kept), increasing in confidence; a
    flat run keeps only its two ends, so `calibrated` between them is that run's value."""
    by_value: dict[float, list[int]] = defaultdict(lambda: [0, 0])  # confidence -> [kept, n]
    for label in labels:
        tally = by_value[label.confidence]
        tally[0] += label.kept
        tally[1] += 1
    blocks: list[list] = []  # [share kept, weight, first confidence, last confidence]
    for x in sorted(by_value):
        kept, n = by_value[x]
        blocks.append([kept / n, n, x, x])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:  # a violator: pool it with the one before
            last = blocks.pop()
            prev = blocks[-1]
            weight = prev[1] + last[1]
            blocks[-1] = [(prev[0] * prev[1] + last[0] * last[1]) / weight, weight, prev[2], last[3]]
    points: list[tuple[float, float]] = []
    for share, _, first, last in blocks:
        share = round(share, 4)
        for x in (first, last) if last != first else (first,):
            if len(points) >= 2 and points[-1][1] == share == points[-2][1]:
                points[-1] = (x, share)  # a flat run goes on: keep its ends only
            else:
                points.append((x, share))
    return points


def calibrated(value: float, fit: Sequence[Sequence[float]]) -> float:
    """`value` mapped through a fit's breakpoints: linear between them, flat beyond the first and
    the last, clamped to [0, 1]. No breakpoints: the value as it is."""
    if not fit:
        return max(0.0, min(1.0, value))
    xs = [x for x, _ in fit]
    i = bisect_right(xs, value)
    if i == 0:
        y = fit[0][1]
    elif i == len(fit):
        y = fit[-1][1]
    else:
        (x0, y0), (x1, y1) = fit[i - 1], fit[i]
        y = y0 if x1 == x0 else y0 + (y1 - y0) * (value - x0) / (x1 - x0)
    return max(0.0, min(1.0, y))


def fitted(labels: Sequence[Label], target: float = 0.9, min_labels: int = MIN_LABELS) -> dict | None:
    """What `garden calibrate --write` records for one proposer/model/prompt version/kind: the
    fit's breakpoints and the recommended thresholds, raw and on the calibrated scale (the
    fit's value at the raw ones); None when there are fewer than `min_labels` labels."""
    if len(labels) < min_labels:
        return None
    fit = fit_isotonic(labels)
    rec = recommend(labels, target, min_labels)
    for name in ("auto_accept", "review_floor"):
        raw = rec[name]
        rec[f"calibrated_{name}"] = None if raw is None else round(calibrated(raw, fit), 4)
    return {"breakpoints": fit, "recommended": rec}
