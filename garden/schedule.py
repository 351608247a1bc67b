"""Choosing which patterns a tend asks the proposer about, so a large garden is tended in rotation.

Order: patterns whose last call failed or was deferred (they were promised to come first), then
patterns never tended, then patterns whose text changed since they were last proposed for, then
the longest untended among those last tended at least `retend_after_days` ago. A pattern tended
recently with unchanged text is not asked again (a re-run after a crash finishes the work without
recording any proposal twice). `limit` cuts the list; the rest wait for the next night.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from garden.state import Tended


@dataclass(frozen=True, slots=True)
class Choice:
    slug: str
    why: str  # retry | new | changed | rotation | asked


def choose_patterns(patterns: dict[str, str], tended: Mapping[str, Tended | None], today: dt.date,
                    limit: int | None = None, retend_after_days: int = 30,
                    explicit: Iterable[str] | None = None) -> list[Choice]:
    """`patterns` maps each slug in the garden to its current text hash, `tended` (some of)
    them to when they were last proposed for (`PatternState.tended`). A slug `explicit` names
    twice is chosen once."""
    if explicit:
        return [Choice(slug, "asked") for slug in dict.fromkeys(explicit)]
    groups: dict[str, list[tuple]] = {"retry": [], "new": [], "changed": [], "rotation": []}
    for slug, text_hash in patterns.items():
        last = tended.get(slug)
        if last is None or last.at is None:
            groups["retry" if last and last.retry else "new"].append((slug,))
        elif last.retry:
            groups["retry"].append((last.at, slug))
        elif last.text_hash != text_hash:
            groups["changed"].append((last.at, slug))
        else:
            # A tend recorded after `today` (a run given an earlier --today) was tended today.
            age = max((today - dt.date.fromisoformat(last.at[:10])).days, 0)
            if age >= retend_after_days:
                groups["rotation"].append((last.at, slug))
    chosen = [Choice(key[-1], why) for why, keys in groups.items() for key in sorted(keys)]
    return chosen[:limit] if limit is not None else chosen
