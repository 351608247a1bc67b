"""The offline proposer's calibration: cosine similarity -> how likely a careful curator keeps the link.

A confidence is read by the policy as "the probability a careful curator keeps this". The offline
proposer measures one thing, the cosine similarity of two patterns' TF-IDF vectors
(`garden.candidates`), so its confidence is that similarity passed through a monotone map fitted
to blind judgements. The figures below are the whole evidence; a garden will be able to refit them
from its own curators' decisions (issue 13), so they live here as data, not in code.

Where they come from: issue 12 (filed 2026-11, judged on the whole public library, 3,614
patterns). Two independent blind judges, each seeing only the two patterns' titles and summaries
and the link type, mixed at random with other links and random pairs, 40-60 links per band each,
kept the offline proposer's links by the confidence its previous formula gave them,
`c = 0.30 + 1.6 * s`. Inverting that formula gives each band's cosine range:

    old confidence   cosine s          kept    anchor (s, p) used here
    >= 0.85          >= 0.344          100%    (0.40, 0.98)
    0.70 - 0.85      0.250 - 0.344     100%    (0.297, 0.97)
    0.64 - 0.70      0.213 - 0.250      95%    (0.231, 0.95)
    0.55 - 0.64      0.156 - 0.213      88%    (0.184, 0.88)
    0.40 - 0.55      0.063 - 0.156      72%    (0.109, 0.72)
    random pairs     median 0.021        0%    (0.021, 0.02)

Each anchor sits at its band's middle cosine. A band kept 100% of about 100 judgements is not
certainty: it is written as 0.97-0.98 (a judged 0% as 0.02), and the top is capped at
MAX_CONFIDENCE. Random pairs' cosine (median 0.021, 95th percentile 0.071) was measured on the
600-pattern sample (../shared/corpus, 2,000 pairs, 2026-12-01). Below the lowest anchor the map
falls linearly to 0 at s = 0.

The judged links were all top-5 candidates of their pattern; the map is used for any target
(re-assessment). A cross-check says similarity alone carries over: the inherited links the judges
kept 10-12% of have a median cosine of 0.039 on the sample (only 3% of them are top-5 candidates),
and the map gives 0.039 a confidence of 0.16, 0.055 of 0.29: low, as judged, without a rank term.
"""

from __future__ import annotations

from bisect import bisect_right

#: (cosine similarity, judged keep rate) anchors, increasing in both; see the module docstring.
LINK_KEEP_RATE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.021, 0.02),
    (0.109, 0.72),
    (0.184, 0.88),
    (0.231, 0.95),
    (0.297, 0.97),
    (0.40, 0.98),
)
MAX_CONFIDENCE = 0.98
#: Where the figures came from, recorded with the table (shown by `garden health --json` users
#: and quoted in the README).
SOURCE = "issue 12 blind judgements (2 judges, 40-60 links per band each, whole library, 2026-11)"


def keep_rate(similarity: float, table: tuple[tuple[float, float], ...] = LINK_KEEP_RATE) -> float:
    """The judged keep rate at this similarity, linearly interpolated between anchors (monotone,
    since the anchors increase in both coordinates), flat beyond the last one."""
    s = max(0.0, float(similarity))
    xs = [x for x, _ in table]
    i = bisect_right(xs, s)
    if i >= len(table):
        return min(MAX_CONFIDENCE, table[-1][1])
    (x0, y0), (x1, y1) = table[i - 1], table[i]
    return min(MAX_CONFIDENCE, y0 + (y1 - y0) * (s - x0) / (x1 - x0))
