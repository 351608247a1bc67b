"""Review bands per proposer and model (issue 14): an LLM that reports a curator-keep probability
and the offline proposer's calibrated scale need not share one auto_accept and review_floor."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import make_garden
from garden.errors import SettingsError
from garden.policy import Policy, decide, load_policy
from test_review_sample import tend_with_llm

runner = CliRunner()

BANDS = Policy(by_proposer={"llm": {"auto_accept": 0.8, "review_floor": 0.5},
                            "llm/big-model": {"auto_accept": 0.9},
                            "offline": {"entity_auto_accept": 0.95}})


def proposal(kind: str, score: float, proposer: str, model: str | None) -> dict:
    key = "confidence" if kind == "link" else "relevance"
    return {"kind": kind, key: score, "proposer": proposer, "model": model}


def test_the_most_specific_band_wins_field_by_field():
    assert BANDS.thresholds("link", "llm", "big-model") == (0.9, 0.5, "llm/big-model")
    assert BANDS.thresholds("link", "llm", "small-model") == (0.8, 0.5, "llm")
    assert BANDS.thresholds("entity", "llm", "big-model") == (Policy().entity_auto_accept,
                                                              Policy().entity_review_floor, "")
    assert BANDS.thresholds("entity", "offline", "tfidf-v1") == (0.95, Policy().entity_review_floor, "offline")
    assert BANDS.thresholds("link", "offline", "tfidf-v1") == (Policy().auto_accept, Policy().review_floor, "")


def test_decide_uses_the_proposers_band_and_names_it():
    pending = {"a": proposal("link", 0.85, "llm", "big-model"), "b": proposal("link", 0.85, "llm", "small"),
               "c": proposal("link", 0.6, "llm", "small"), "d": proposal("link", 0.6, "offline", "tfidf-v1"),
               "e": proposal("link", 0.4, "llm", "small")}
    decided = {e.payload.proposal_id: e.payload for e in decide("x", pending, BANDS, None)}
    assert set(decided) == {"b", "d", "e"}  # a: 0.85 < 0.9 waits; c: inside llm's band waits
    assert decided["b"].rule == "auto_accept[llm]: confidence 0.85 >= 0.8"
    assert decided["d"].reason == f"review_floor: confidence 0.6 < {Policy().review_floor}"
    assert decided["e"].reason == "review_floor[llm]: confidence 0.4 < 0.5"


def test_a_band_is_read_from_garden_toml_and_checked(tmp_path):
    (tmp_path / "garden.toml").write_text('[policy]\nauto_accept = 0.7\n\n[policy.by_proposer."llm/gpt-4o"]\n'
                                          "auto_accept = 0.8\nreview_floor = 0.55\n", "utf-8")
    assert load_policy(tmp_path, {}).thresholds("link", "llm", "gpt-4o") == (0.8, 0.55, "llm/gpt-4o")
    (tmp_path / "garden.toml").write_text("[policy.by_proposer.llm]\nreview_floor = 0.9\n", "utf-8")
    with pytest.raises(SettingsError, match=r"invalid policy \(garden.toml\): policy: by_proposer.llm: "
                                            r"the link review floor 0.9 is above its auto_accept 0.7"):
        load_policy(tmp_path, {})


def test_a_tend_decides_an_llms_proposals_by_its_own_band(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 20)
    tend_with_llm(monkeypatch, Policy(by_proposer={"llm": {"auto_accept": 0.9, "review_floor": 0.2,
                                                          "entity_auto_accept": 0.9, "entity_review_floor": 0.2}}))
    waiting = [p for group in json.loads(runner.invoke(app, ["review", "--json"]).stdout) for p in group["proposals"]]
    scores = [p.get("confidence", p.get("relevance")) for p in waiting]
    assert scores and all(0.2 <= s < 0.9 for s in scores)  # the llm's band, not the policy's 0.65-0.70
    assert runner.invoke(app, ["verify"]).exit_code == 0
