"""`garden calibrate --write`: a fitted map of a proposer's confidences recorded in the log
(CalibrationFitted), new proposals recorded on its calibrated scale with their raw value beside,
`--set-policy` writing the recommended thresholds into garden.toml, and replay to before a fit."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process
from events.projection import load_state, save_snapshot
from events.queries import curator_labels
from events.store import EventStore
from garden.event import EntityProposed, LinkProposed, ProposalAccepted, ProposalRejected, event
from garden.errors import SettingsError
from garden.policy import load_policy, policy_file_with, set_policy_values
from garden.precision import Label, calibrated, fit_isotonic, groups, recommend

runner = CliRunner()

# The scripted curator of tests/test_calibrate.py: how often it keeps an item of a confidence.
RULE = ((0.0, 0.4, 0.02), (0.4, 0.6, 0.30), (0.6, 0.8, 0.70), (0.8, 1.0, 0.97))
ELSEWHERE = "labelled-elsewhere"
# A tend past the rotation (30 days after the first tend was recorded): every pattern asked again.
LATER = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=31)  # a slug not in the garden: its proposals never reach a block


def keep_rate(confidence: float) -> float:
    return next(p for low, high, p in RULE if low <= confidence < high or (high == 1.0 and confidence == 1.0))


def labelled_events(links: int, entities: int, seed: int, by: str = "curator:ann") -> list:
    """Proposals by the offline proposer and a curator's decision on each, following RULE."""
    rnd = random.Random(seed)
    out = []
    for n in range(links + entities):
        confidence = round(rnd.random(), 3)
        if n < links:
            proposal = event(LinkProposed(target=f"t{n}", link_type="complementary", confidence=confidence,
                                          reason="scripted", proposer="offline", model="tfidf-v1"),
                             slug=ELSEWHERE, actor="proposer:offline/tfidf-v1")
        else:
            proposal = event(EntityProposed(entity_id=f"e{n}", entity_type="concept", label=f"E{n}",
                                            relevance=confidence, proposer="offline", model="tfidf-v1"),
                             slug=ELSEWHERE, actor="proposer:offline/tfidf-v1")
        kept = rnd.random() < keep_rate(confidence)
        decision = (ProposalAccepted(proposal_id=proposal.id, rule="curator") if kept
                    else ProposalRejected(proposal_id=proposal.id, reason="curator"))
        out += [proposal, event(decision, slug=ELSEWHERE, actor=by)]
    return out


# --- the pure part ----------------------------------------------------------------------------


def test_the_isotonic_fit_is_monotone_and_maps_raw_confidences_through_its_breakpoints():
    labels = [Label("offline", "m", "link", c, k) for c, k in
              [(0.1, False), (0.2, True), (0.3, False), (0.5, True), (0.6, False), (0.8, True), (0.9, True)]]
    fit = fit_isotonic(labels)
    xs, ys = [x for x, _ in fit], [y for _, y in fit]
    assert xs == sorted(xs) and ys == sorted(ys)
    # pool-adjacent-violators: 0.2 kept / 0.3 not pool to 0.5, 0.5 kept / 0.6 not likewise; a flat
    # run keeps its two ends
    assert fit == [(0.1, 0.0), (0.2, 0.5), (0.6, 0.5), (0.8, 1.0), (0.9, 1.0)]
    assert calibrated(0.05, fit) == 0.0 and calibrated(0.95, fit) == 1.0  # flat beyond the ends
    assert calibrated(0.15, fit) == pytest.approx(0.25) and calibrated(0.7, fit) == pytest.approx(0.75)
    assert calibrated(0.4, []) == 0.4  # no fit: the value as it is
    scripted = [Label("offline", "m", "link", round(random.Random(n).random(), 3), False) for n in range(50)]
    assert all(y == 0.0 for _, y in fit_isotonic(scripted))


def test_labels_are_grouped_by_prompt_version_and_old_events_have_none():
    old = LinkProposed.model_validate({"target": "x", "link_type": "enables", "confidence": 0.5,
                                       "reason": "r", "proposer": "llm", "model": "m"})
    assert old.prompt_version is None and old.raw_confidence is None
    labels = [Label("llm", "m", "link", 0.5, True, prompt_version="p1"),
              Label("llm", "m", "link", 0.5, True, prompt_version="p2"), Label("llm", "m", "link", 0.5, True)]
    assert list(groups(labels)) == [("llm", "m", None, "link"), ("llm", "m", "p1", "link"),
                                    ("llm", "m", "p2", "link")]


def test_policy_values_are_set_where_load_policy_reads_them(tmp_path):
    # a garden.toml that is the policy itself (no [policy] table): its top-level keys
    assert set_policy_values("# mine\nauto_accept = 0.7\n", {"auto_accept": 0.8, "review_floor": 0.3}) == \
        "# mine\nauto_accept = 0.8\nreview_floor = 0.3\n"
    with pytest.raises(SettingsError) as invalid:
        set_policy_values("[policy]\nreview_floor = 0.6\n", {"auto_accept": 0.5})
    assert str(invalid.value) == ("garden.toml: the new thresholds would make an invalid policy: review_floor must "
                                  "not be above auto_accept; garden.toml is unchanged")
    (tmp_path / "pyproject.toml").write_text("[tool.garden.policy]\nauto_accept = 0.9\n", "utf-8")
    with pytest.raises(SettingsError) as hidden:
        policy_file_with({"auto_accept": 0.8}, tmp_path)
    assert "a new garden.toml would hide it" in str(hidden.value)


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def labelled(tmp_path, monkeypatch):
    """A tended garden and a log with 400 curator-labelled offline links and 6 entities."""
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 40)
    tend_in_process(WIDE_REVIEW_POLICY)
    with EventStore(tmp_path / ".garden" / "events.db") as store:
        store.append(labelled_events(400, 6, seed=5))
    return tmp_path


def fits_in(tmp_path) -> list:
    with EventStore(tmp_path / ".garden" / "events.db", create=False) as store:
        return list(store.events(types=["CalibrationFitted"]))


def test_write_records_one_fit_per_key_with_enough_labels_and_says_which_were_skipped(labelled):
    result = runner.invoke(app, ["calibrate", "--write", "--by", "ann"])
    assert result.exit_code == 0, result.output
    fits = fits_in(labelled)
    assert len(fits) == 1
    fit = fits[0]
    assert fit.actor == "curator:ann" and fit.slug is None
    p = fit.payload
    assert (p.proposer, p.model, p.prompt_version, p.kind) == ("offline", "tfidf-v1", None, "link")
    assert len(p.labels) == 400 and p.target_precision == 0.9
    with EventStore(labelled / ".garden" / "events.db", create=False) as store:
        links = [l for l in curator_labels(store) if l.kind == "link"]
    assert {l.proposal_id for l in p.labels} == {l.proposal_id for l in links}
    assert [tuple(b) for b in p.breakpoints] == fit_isotonic(links)
    rec = recommend(links, 0.9)
    assert p.recommended["auto_accept"] == rec["auto_accept"] and p.recommended["review_floor"] == rec["review_floor"]
    assert p.recommended["calibrated_auto_accept"] == round(calibrated(rec["auto_accept"], p.breakpoints), 4)
    said = result.stdout
    assert (f"offline/tfidf-v1/link: wrote CalibrationFitted #{fit.seq} (400 labels); new proposals of "
            "offline/tfidf-v1/link are recorded on its calibrated scale") in said
    assert ("offline/tfidf-v1/entity: nothing written: 6 labels, a fit needs 20 or more") in said
    assert not (labelled / "garden.toml").exists()  # without --set-policy the policy file is never touched
    with EventStore(labelled / ".garden" / "events.db", create=False) as store:
        assert set(load_state(store).fits) == {"offline|tfidf-v1|-|link"}
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_a_later_tend_records_calibrated_confidences_and_the_policy_decides_by_them(labelled):
    assert runner.invoke(app, ["calibrate", "--write", "--by", "ann"]).exit_code == 0
    fit = fits_in(labelled)[0]
    tend_in_process(WIDE_REVIEW_POLICY, today=LATER)
    with EventStore(labelled / ".garden" / "events.db", create=False) as store:
        later = [e for e in store.events(types=["LinkProposed", "EntityProposed"]) if e.seq > fit.seq]
        decisions = {e.payload.proposal_id: e for e in store.events(types=["ProposalAccepted", "ProposalRejected"])
                     if e.seq > fit.seq and e.actor == "pruner"}
    links = [e for e in later if e.type == "LinkProposed"]
    assert links, "the second tend proposed no links"
    for e in links:
        p = e.payload
        assert p.raw_confidence is not None
        assert p.confidence == round(calibrated(p.raw_confidence, fit.payload.breakpoints), 4)
        decision = decisions.get(e.id)
        if p.confidence >= WIDE_REVIEW_POLICY.auto_accept:
            assert decision.type == "ProposalAccepted" and f"confidence {p.confidence} >=" in decision.payload.rule
        elif p.confidence < WIDE_REVIEW_POLICY.review_floor:
            assert decision.type == "ProposalRejected" and f"confidence {p.confidence} <" in decision.payload.reason
        else:
            assert decision is None
    # the policy went by the calibrated value: links it would have left for review at their raw one
    # (below auto_accept) it accepted
    moved = [e for e in links if e.payload.raw_confidence < WIDE_REVIEW_POLICY.auto_accept <= e.payload.confidence]
    assert moved and all(decisions[e.id].type == "ProposalAccepted" for e in moved)
    for e in later:
        if e.type == "EntityProposed":  # no fit for entities: the shipped calibration as it is
            assert e.payload.raw_confidence is None
    # re-assessment goes through the same map: the links in the blocks judged afresh on the new scale
    with EventStore(labelled / ".garden" / "events.db", create=False) as store:
        rescored = [e.payload for e in store.events(types=["LinkRescored", "EntityRescored"]) if e.seq > fit.seq]
    links_rescored = [p for p in rescored if p.type == "LinkRescored"]
    assert links_rescored
    for p in links_rescored:
        assert p.new_confidence == round(calibrated(p.evidence["raw_confidence"], fit.payload.breakpoints), 4)
    assert all("raw_confidence" not in p.evidence for p in rescored if p.type == "EntityRescored")
    # a refit fits the raw values, never the calibrated ones
    with EventStore(labelled / ".garden" / "events.db", create=False) as store:
        store.append([event(ProposalRejected(proposal_id=links[0].id, reason="curator"), slug=links[0].slug,
                            actor="curator:ann")])
        relabelled = [l for l in curator_labels(store) if l.proposal_id == links[0].id]
    assert relabelled[0].confidence == links[0].payload.raw_confidence
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_set_policy_writes_the_calibrated_thresholds_into_garden_toml(labelled):
    (labelled / "garden.toml").write_text("# our policy\n[policy]\nmax_links_per_pattern = 7\nauto_accept = 0.7\n\n"
                                          "[other]\nname = \"kept\"\n", "utf-8")
    result = runner.invoke(app, ["calibrate", "--write", "--set-policy", "--by", "ann"])
    assert result.exit_code == 0, result.output
    rec = fits_in(labelled)[0].payload.recommended
    text = (labelled / "garden.toml").read_text("utf-8")
    assert text == ("# our policy\n[policy]\nmax_links_per_pattern = 7\n"
                    f"auto_accept = {rec['calibrated_auto_accept']}\nreview_floor = {rec['calibrated_review_floor']}\n\n"
                    "[other]\nname = \"kept\"\n")
    policy = load_policy(labelled)
    assert (policy.auto_accept, policy.review_floor) == (rec["calibrated_auto_accept"], rec["calibrated_review_floor"])
    assert policy.max_links_per_pattern == 7
    assert (f"garden.toml [policy]: auto_accept = {rec['calibrated_auto_accept']}, review_floor = "
            f"{rec['calibrated_review_floor']} (from offline/tfidf-v1/link)") in result.stdout
    assert "garden.toml [policy]: entity thresholds left as they are: no fit for entities" in result.stdout
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_set_policy_creates_garden_toml_and_needs_write(labelled):
    refused = runner.invoke(app, ["calibrate", "--set-policy"])
    assert refused.exit_code == 1 and "error: --set-policy writes the thresholds of a new fit: give --write too" \
        in refused.output
    assert not (labelled / "garden.toml").exists() and not fits_in(labelled)
    assert runner.invoke(app, ["calibrate", "--write", "--set-policy", "--by", "ann"]).exit_code == 0
    rec = fits_in(labelled)[0].payload.recommended
    assert (labelled / "garden.toml").read_text("utf-8") == (
        f"[policy]\nauto_accept = {rec['calibrated_auto_accept']}\nreview_floor = {rec['calibrated_review_floor']}\n")
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_replay_to_before_the_fit_gives_the_garden_as_decided_with_the_old_confidences(labelled, tmp_path):
    before = {p.name: p.read_text("utf-8") for p in (labelled / "patterns").glob("*.md")}
    assert runner.invoke(app, ["calibrate", "--write", "--by", "ann"]).exit_code == 0
    fit = fits_in(labelled)[0]
    tend_in_process(WIDE_REVIEW_POLICY, today=LATER)
    after = {p.name: p.read_text("utf-8") for p in (labelled / "patterns").glob("*.md")}
    assert after != before  # the calibrated tend changed blocks
    with EventStore(labelled / ".garden" / "events.db") as store:
        assert load_state(store, fit.seq - 1).fits == {}
        assert load_state(store, fit.seq).fits["offline|tfidf-v1|-|link"]["breakpoints"] == [list(b) for b in fit.payload.breakpoints]
        state = load_state(store)
        save_snapshot(store, state)  # a fit survives a snapshot
        assert load_state(store).fits == state.fits
    out = tmp_path / "replayed"
    result = runner.invoke(app, ["replay", "--out", str(out), "--until", str(fit.seq - 1)])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_text("utf-8") for p in out.glob("*.md")} == before
    assert runner.invoke(app, ["verify"]).exit_code == 0


# --- an LLM: the prompt version is part of what is calibrated -------------------------------------

SEEDS = ("self-leadership-vs-self-management", "distributed-leadership-design")


def llm_labels(version: str, kept_from: float, count: int = 30) -> list:
    """`count` LLM link proposals under prompt `version`, a curator keeping those from `kept_from`."""
    out = []
    for n in range(count):
        confidence = round(0.3 + 0.69 * n / (count - 1), 3)
        proposal = event(LinkProposed(target=f"t{n}", link_type="enables", confidence=confidence, reason="r",
                                      proposer="llm", model="fake-model", prompt_version=version),
                         slug=ELSEWHERE, actor="proposer:llm/fake-model")
        decision = (ProposalAccepted(proposal_id=proposal.id, rule="curator") if confidence >= kept_from
                    else ProposalRejected(proposal_id=proposal.id, reason="curator"))
        out += [proposal, event(decision, slug=ELSEWHERE, actor="curator:bo")]
    return out


def test_llm_proposals_carry_the_prompt_version_and_each_version_has_its_own_fit(seed_garden, monkeypatch):
    from fake_openai import answer, fake_openai
    from proposers.llm import PROMPT_VERSION

    monkeypatch.chdir(seed_garden.parent)
    me, other = SEEDS
    with fake_openai() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key-123456")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("GARDEN_MODEL", "fake-model")
        reply = answer({"inferred_links": [{"target": other, "type": "complementary", "confidence": 0.9,
                                            "reason": "Both about leading."}],
                        "entities": [{"id": "shared-leadership", "type": "concept", "label": "Shared Leadership",
                                      "relevance": 0.8}]})
        server.handle_with(lambda body, i: reply)
        first = runner.invoke(app, ["propose", "--proposer", "llm", "--pattern", me, "--json"])
        assert first.exit_code == 0, first.output
        with EventStore(seed_garden.parent / ".garden" / "events.db") as store:
            made = [e.payload for e in store.events(types=["LinkProposed", "EntityProposed"])]
            assert made and all(p.prompt_version == PROMPT_VERSION and p.raw_confidence is None for p in made)
            # an older prompt's curator kept everything; the current prompt's kept only from 0.95
            store.append(llm_labels("graph-garden-prompt-1", kept_from=0.0) + llm_labels(PROMPT_VERSION, 0.95))
        refused = runner.invoke(app, ["calibrate", "--write", "--set-policy", "--by", "bo"])
        assert refused.exit_code == 1 and refused.stderr == (
            "error: --set-policy: 2 fits for links (llm/fake-model/graph-garden-prompt-1/link, "
            f"llm/fake-model/{PROMPT_VERSION}/link) and one policy: narrow it with --proposer, or set the "
            "thresholds by hand; nothing was written\n")
        assert not (seed_garden.parent / "garden.toml").exists() and not fits_in(seed_garden.parent)
        result = runner.invoke(app, ["calibrate", "--write", "--by", "bo"])
        assert result.exit_code == 0, result.output
        assert f"llm/fake-model/{PROMPT_VERSION}/link: wrote CalibrationFitted" in result.stdout
        assert "llm/fake-model/graph-garden-prompt-1/link: wrote CalibrationFitted" in result.stdout
        second = runner.invoke(app, ["propose", "--proposer", "llm", "--pattern", me, "--json"])
        assert second.exit_code == 0, second.output
    proposals = json.loads(second.stdout)["proposals"]
    (link,) = [p for p in proposals if p["type"] == "LinkProposed"]
    (entity,) = [p for p in proposals if p["type"] == "EntityProposed"]
    assert (link["raw_confidence"], link["confidence"]) == (0.9, 0.0)  # the current prompt's fit: 0.9 is rarely kept
    assert (entity["raw_confidence"], entity["relevance"]) == (None, 0.8)  # no fit for entities
    assert runner.invoke(app, ["verify"]).exit_code == 0
