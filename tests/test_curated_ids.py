"""Curated relationships given by pattern id (`pat_...`), as legacy files of the public library
hold them: read as the slugs they name, everywhere a curated relationship is used; an id that
names no pattern is a `check` warning and is otherwise ignored. The files are never changed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from events.parse_cache import ParseCache
from garden.candidates import make_request, rank_patterns
from garden.catalog import load_garden
from garden.validate import check_answer
from tests.conftest import CORPUS, garden_bin, needs_corpus

BODY = ("\n## Problem\n\nTeams share leadership across roles so decisions move to where the "
        "knowledge is; distributed leadership needs trust, clear roles and feedback loops.\n")

#: A legacy file curating by id (one id of the garden, one of no pattern) and by slug; its block
#: holds a link that repeats the id-given curated one.
ALPHA = """---
id: pat_aaa1
slug: alpha
title: Alpha leadership
description: Distributed leadership in teams.
generalizes_from:
- gamma
related:
- pat_bbb2
- pat_zzz9
graph_garden:
  inferred_links:
  - target: beta
    type: complementary
    confidence: 0.7
    reason: shared leadership
---
""" + BODY

#: A v7.1 file curating by slug, and by an id of no pattern in the dict form.
BETA = """---
id: pat_bbb2
slug: beta
title: Beta leadership
summary: Distributed leadership in practice.
relationships:
  complementary:
  - slug: alpha
  alternatives:
  - slug: pat_yyy8
    weight: 0.5
---
""" + BODY

GAMMA = "---\nid: pat_ccc3\nslug: gamma\ntitle: Gamma leadership\ndescription: Leadership.\n---\n" + BODY
DELTA = "---\nid: pat_ddd4\nslug: delta\ntitle: Delta leadership\ndescription: Leadership.\n---\n" + BODY

UNKNOWN_ALPHA = ('g/alpha.md:10:3: warning: related: no pattern in the garden has the id "pat_zzz9"; '
                 "this curated reference is ignored (give the target's slug, or add the pattern "
                 "whose id it is)")
UNKNOWN_BETA = ('g/beta.md:10:11: warning: relationships.alternatives: no pattern in the garden has '
                'the id "pat_yyy8"; this curated reference is ignored (give the target\'s slug, or '
                "add the pattern whose id it is)")


@pytest.fixture
def garden(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "g"
    root.mkdir()
    for slug, text in (("alpha", ALPHA), ("beta", BETA), ("gamma", GAMMA), ("delta", DELTA)):
        (root / f"{slug}.md").write_text(text, "utf-8")
    return root


def _texts(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.md"))}


def test_ids_resolve_to_slugs_in_relationships_and_curated_targets(garden):
    before = _texts(garden)
    loaded = load_garden(garden)
    alpha = loaded.patterns["alpha"]
    assert alpha.relationships == {"generalizes_from": ("gamma",), "complementary": ("beta",)}
    assert alpha.curated_targets() == {"gamma", "beta"}
    assert loaded.patterns["beta"].relationships == {"complementary": ("alpha",), "alternatives": ()}
    assert (loaded.id_references, loaded.id_references_resolved) == (3, 1)
    assert _texts(garden) == before  # reading only


def test_resolution_is_made_over_the_whole_garden_not_cached_per_file(garden, tmp_path):
    cache = tmp_path / "parse-cache.db"
    assert load_garden(garden, cache=ParseCache(cache)).patterns["alpha"].curated_targets() == {"gamma", "beta"}
    # beta's id changes; alpha's file does not (its parse comes from the cache) but what it names does
    (garden / "beta.md").write_text(BETA.replace("pat_bbb2", "pat_bbb3"), "utf-8")
    (garden / "delta.md").write_text(DELTA.replace("pat_ddd4", "pat_bbb2"), "utf-8")
    again = load_garden(garden, cache=ParseCache(cache))
    assert again.patterns["alpha"].relationships["complementary"] == ("delta",)
    assert [str(p) for p in again.warnings] == [UNKNOWN_ALPHA, UNKNOWN_BETA]


def test_an_unknown_id_is_a_check_warning_naming_file_field_and_id(garden):
    result = subprocess.run([garden_bin(), "check", "--garden", "g"], capture_output=True, text=True,
                            cwd=garden.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [UNKNOWN_ALPHA, UNKNOWN_BETA]
    shown = subprocess.run([garden_bin(), "check", "--garden", "g", "--json"], capture_output=True,
                           text=True, cwd=garden.parent)
    payload = json.loads(shown.stdout)
    assert shown.returncode == 0 and payload["ok"] is True
    assert [p["code"] for p in payload["problems"]] == ["unknown-curated-id", "unknown-curated-id"]


def test_a_proposal_repeating_an_id_given_curated_link_is_rejected(garden):
    loaded = load_garden(garden)
    ranking = rank_patterns(loaded.patterns.values())
    request = make_request(loaded.patterns["alpha"], None, ranking, loaded.patterns)
    assert request.curated["complementary"] == ("beta",)
    answer = {"inferred_links": [{"target": "beta", "type": "enables", "confidence": 0.8,
                                  "reason": "shared leadership"}], "entities": []}
    checked = check_answer(request, answer, set(loaded.patterns))
    assert checked.links == []
    assert [i.reason for i in checked.invalid] == [
        "target 'beta' is already a curated relationship (complementary)"]


def test_candidates_exclude_id_given_curated_targets(garden):
    loaded = load_garden(garden)
    ranking = rank_patterns(loaded.patterns.values())
    assert {s for s, _ in ranking.top("alpha")} == {"beta", "gamma", "delta"}  # all alike
    request = make_request(loaded.patterns["alpha"], None, ranking, loaded.patterns)
    assert [c.slug for c in request.candidates] == ["delta"]


def test_health_counts_id_given_curated_repeats(garden):
    result = subprocess.run([garden_bin(), "health", "--garden", "g", "--json", "--db", "g.db"],
                            capture_output=True, text=True, cwd=garden.parent)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["curated_repeats"] == {"count": 1, "examples": ["alpha -> beta"]}


@needs_corpus()
def test_corpus_ids_resolve():
    loaded = load_garden(CORPUS)
    # 686 references by id in 69 legacy files of the sample; 104 name a pattern of the sample
    assert loaded.id_references >= 680 and loaded.id_references_resolved >= 100
    unknown = [p for p in loaded.warnings if p.code == "unknown-curated-id"]
    assert len(unknown) == loaded.id_references - loaded.id_references_resolved
    resolved = {s for p in loaded.patterns.values() for s in p.curated_targets()}
    assert not any(s.startswith("pat_") for s in resolved)


def test_prune_curated_repeats_prunes_a_link_repeating_an_id_given_curated_one(garden):
    import datetime as dt

    from garden.policy import Policy, prune

    loaded = load_garden(garden)
    alpha = loaded.patterns["alpha"]
    events = prune("alpha", alpha.block.model_dump(mode="json"), alpha.curated_targets(),
                   loaded.known_slugs, Policy(prune_curated_repeats=True), None, dt.date(2026, 11, 22))
    assert [(e.payload.rule, e.payload.target) for e in events] == [("curated_repeat", "beta")]
