"""Drawing a sample for review: stratified, so every confidence band has its say.

A curator's decisions are the labels a proposer's precision is measured from; drawing them from
the pending queue alone (one band, between the review floor and auto-accept) or at random from
everything (mostly the crowded bands) would leave most bands unmeasured. Items are put in
strata (a kind and a confidence band of 0.1), and drawn round by round: each round one item at
random from every stratum not yet used up, the strata in a random order, so a sample is even
across the non-empty strata and a stratum short of items gives what it has. The same items and
seed give the same sample.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

BAND_WIDTH = 0.1
T = TypeVar("T")


def band_of(score: float, width: float = BAND_WIDTH) -> tuple[float, float]:
    """The band [low, high) holding `score`; 1.0 is in the top band."""
    count = round(1 / width)
    index = min(max(int(score / width + 1e-9), 0), count - 1)
    return round(index * width, 6), round((index + 1) * width, 6)


def stratified_sample(items: Sequence[T], n: int, seed: int, stratum: Callable[[T], Hashable]) -> list[T]:
    """Up to `n` of `items`, evenly across their strata (see the module's docstring), in the
    order drawn. `items` must come in a fixed order for the sample to be reproducible, and the
    strata must sort."""
    rng = random.Random(seed)
    strata: dict = {}
    for item in items:
        strata.setdefault(stratum(item), []).append(item)
    pools = [strata[key] for key in sorted(strata)]
    for pool in pools:
        rng.shuffle(pool)
    chosen: list[T] = []
    while len(chosen) < n:
        order = [pool for pool in pools if pool]
        if not order:
            break
        rng.shuffle(order)
        for pool in order[: n - len(chosen)]:
            chosen.append(pool.pop())
    return chosen
