"""Measured precision from curator labels: bands with Wilson intervals, thresholds that meet a
target precision, and `garden calibrate` over a real log of curator decisions."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process
from garden.policy import Policy
from garden.precision import Label, bands, policy_outcome, recommend, wilson

runner = CliRunner()

# A scripted curator's rule: how often it keeps an item of a given confidence.
RULE = ((0.0, 0.4, 0.02), (0.4, 0.6, 0.30), (0.6, 0.8, 0.70), (0.8, 1.0, 0.97))


def keep_rate(confidence: float) -> float:
    return next(p for low, high, p in RULE if low <= confidence < high or (high == 1.0 and confidence == 1.0))


def scripted_labels(n: int, seed: int) -> list[Label]:
    rnd = random.Random(seed)
    labels = []
    for _ in range(n):
        confidence = round(rnd.random(), 3)
        labels.append(Label("offline", "tfidf-v1", "link", confidence, rnd.random() < keep_rate(confidence)))
    return labels


def test_wilson_interval_holds_the_proportion_and_narrows_with_labels():
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(45, 50)
    assert low < 0.9 < high
    widths = [wilson(round(0.7 * n), n)[1] - wilson(round(0.7 * n), n)[0] for n in (50, 100, 300)]
    assert widths[0] > widths[1] > widths[2]


def test_a_scripted_curators_rule_is_recovered_band_by_band():
    rows = bands(scripted_labels(400, seed=1), edges=(0.0, 0.4, 0.6, 0.8, 1.0))
    assert [(r["low"], r["high"]) for r in rows] == [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0)]
    assert sum(r["n"] for r in rows) == 400
    for row, (_, _, truth) in zip(rows, RULE):
        assert row["precision_low"] <= truth <= row["precision_high"], row


def test_recommended_thresholds_meet_the_target_on_held_out_labels():
    rec = recommend(scripted_labels(400, seed=2), target=0.9)
    assert rec["auto_accept"] is not None and rec["review_floor"] is not None
    assert 0.75 <= rec["auto_accept"] <= 0.9 and 0.3 <= rec["review_floor"] <= 0.5
    held_out = scripted_labels(5000, seed=3)
    accepted = [l for l in held_out if l.confidence >= rec["auto_accept"]]
    rejected = [l for l in held_out if l.confidence < rec["review_floor"]]
    assert sum(l.kept for l in accepted) / len(accepted) >= 0.9
    assert sum(l.kept for l in rejected) / len(rejected) <= 0.1


def test_too_few_labels_recommend_nothing():
    assert recommend(scripted_labels(12, seed=4), target=0.9) == {"auto_accept": None, "review_floor": None,
                                                                   "labels": 12}


def test_what_the_policy_would_have_done():
    labels = [Label("offline", None, "link", 0.9, True), Label("offline", None, "link", 0.9, False),
              Label("offline", None, "link", 0.66, True), Label("offline", None, "link", 0.2, True),
              Label("offline", None, "entity", 0.9, False)]
    assert policy_outcome(labels, Policy()) == {"accepted_kept": 1, "accepted_wrongly": 2, "rejected_dropped": 0,
                                               "rejected_wrongly": 1, "review_kept": 1, "review_dropped": 0}


@pytest.fixture
def decided(tmp_path, monkeypatch):
    """A tended garden where a curator accepted two pending proposals and rejected two."""
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 40)
    tend_in_process(WIDE_REVIEW_POLICY)
    waiting = [p for group in json.loads(runner.invoke(app, ["review", "--json"]).stdout) for p in group["proposals"]]
    assert len(waiting) >= 4
    picked = waiting[:4]
    assert runner.invoke(app, ["accept", picked[0]["id"], picked[1]["id"], "--by", "ann"]).exit_code == 0
    assert runner.invoke(app, ["reject", picked[2]["id"], picked[3]["id"], "--by", "ann",
                               "--note", "not the same idea"]).exit_code == 0
    return picked


def test_calibrate_reads_the_curators_decisions_from_the_log(decided):
    result = runner.invoke(app, ["calibrate", "--json"])
    assert result.exit_code == 0, result.stdout
    found = json.loads(result.stdout)
    assert found["labels"] == 4
    assert sum(row["n"] for row in found["bands"]) == 4 and sum(row["kept"] for row in found["bands"]) == 2
    for row in found["bands"]:
        assert {"proposer", "model", "kind", "low", "high", "n", "kept", "precision", "precision_low",
                "precision_high"} <= set(row)
        assert row["proposer"] == "offline" and row["model"] == "tfidf-v1"
    assert all(rec["auto_accept"] is None and rec["review_floor"] is None for rec in found["recommended"].values())
    said = runner.invoke(app, ["calibrate"]).stdout
    assert "too few to recommend thresholds" in said and "curator labels: 4" in said
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_calibrate_without_decisions_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 6)
    missing = runner.invoke(app, ["calibrate"])
    assert missing.exit_code == 1 and "error: no event log" in missing.output
    tend_in_process(WIDE_REVIEW_POLICY)
    result = runner.invoke(app, ["calibrate"])
    assert result.exit_code == 0 and "no curator decisions yet" in result.stdout


def test_health_and_the_report_show_measured_precision_beside_the_thresholds(decided, tmp_path):
    health = json.loads(runner.invoke(app, ["health", "--json"]).stdout)["measured_precision"]
    assert health["labels"] == 4 and sum(row["n"] for row in health["bands"]) == 4
    assert health["thresholds"]["link"] == {"auto_accept": Policy().auto_accept, "review_floor": Policy().review_floor}
    assert all(row["policy"] in ("auto-accept", "review", "reject", "mixed") for row in health["bands"])
    shown = runner.invoke(app, ["health"], env={"COLUMNS": "200"}).stdout
    assert "measured precision from 4 curator labels" in shown
    page = tmp_path / "night.html"
    assert runner.invoke(app, ["report", "--html", str(page)]).exit_code == 0
    text = page.read_text("utf-8")
    assert "Measured precision (4 curator labels)" in text and "95% interval" in text


def test_band_action_names_where_the_thresholds_fall():
    from garden.precision import band_action

    assert [band_action(low, low + 0.1, 0.7, 0.6) for low in (0.5, 0.6, 0.65, 0.7)] == \
        ["reject", "review", "mixed", "auto-accept"]
