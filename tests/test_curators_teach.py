"""Issue 13 end to end: a scripted curator whose decisions follow a known rule reviews a sample of
a few hundred items the way a person would (`garden review --sample`, then `garden accept` and
`garden reject` with many ids), and `garden calibrate` recovers the rule: the precision of each
band within its own interval, and thresholds that meet the target precision on held-out labels."""

from __future__ import annotations

import json
import random

from typer.testing import CliRunner

from cli.main import app
from conftest import make_garden
from test_review_sample import tend_with_llm

runner = CliRunner()
CUT, NOISE, TARGET = 0.6, 0.05, 0.8  # keeps what the model scored 0.6 or more; 5% of answers flipped


def truth(confidence: float) -> float:
    """How often the scripted curator keeps an item of this confidence."""
    return 1 - NOISE if confidence >= CUT else NOISE


def keeps(item: dict) -> bool:
    what = f"{item['slug']}|{item['kind']}|{item.get('target')}|{item.get('link_type')}|{item.get('entity')}"
    flipped = random.Random(what).random() < NOISE  # the same answer for an item, in every run
    return (item["confidence"] >= CUT) != flipped


def garden(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_a_scripted_curators_rule_is_recovered_from_a_sampled_review(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 150)
    tend_with_llm(monkeypatch)
    sampled = json.loads(garden("review", "--sample", "400", "--seed", "7", "--json").stdout)
    assert len(sampled) == 400 and len({i["id"] for i in sampled}) == 400
    assert {i["policy"] for i in sampled} == {"accepted", "rejected", "pending"}
    kept = [i["id"] for i in sampled if keeps(i)]
    dropped = [i["id"] for i in sampled if not keeps(i)]
    garden("accept", *kept, "--by", "ann")
    garden("reject", *dropped, "--by", "ann", "--note", "scripted")

    found = json.loads(garden("calibrate", "--target-precision", str(TARGET), "--json").stdout)
    assert found["labels"] == 400
    llm = [row for row in found["bands"] if row["proposer"] == "llm"]
    assert sum(row["n"] for row in llm) == 400
    outside = [row for row in llm if not row["precision_low"] <= truth(row["low"]) <= row["precision_high"]]
    assert len(outside) <= 1, outside  # 95% intervals: one band in about 14 may miss by chance

    held_out = [i for i in json.loads(garden("review", "--sample", "100000", "--seed", "8", "--json").stdout)]
    assert held_out and not {i["id"] for i in held_out} & {i["id"] for i in sampled}
    for rec in found["recommended"].values():
        assert rec["auto_accept"] is not None and rec["review_floor"] is not None, rec
        mine = [i for i in held_out if i["kind"] == rec["kind"]]
        accepted = [keeps(i) for i in mine if i["confidence"] >= rec["auto_accept"]]
        rejected = [keeps(i) for i in mine if i["confidence"] < rec["review_floor"]]
        assert accepted and sum(accepted) / len(accepted) >= TARGET, (rec, sum(accepted), len(accepted))
        assert rejected and sum(rejected) / len(rejected) <= 1 - TARGET, (rec, sum(rejected), len(rejected))

    written = garden("calibrate", "--write", "--by", "ann").stdout
    assert written.count("wrote CalibrationFitted") == 2  # llm links and llm entities
    assert garden("verify").exit_code == 0
