"""`garden health` and `garden report`: the garden's shape, and a run as one HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, out
from cli.curate import ByOption
from cli.log import open_garden
from events.projection import load_state
from events.store import EventStore
from flows import calibration, curate
from flows.report import html_report
from events.queries import curator_labels
from garden import precision
from garden.errors import GardenError, display_path, escape_text
from garden.health import garden_health
from garden.policy import load_policy
from garden.precision import policy_outcome, recommend
from garden.settings import load_settings


@handle_errors
def health(garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """The garden's health: links and entities per pattern, confidences, link types, targets
    missing from the garden, links repeating curated ones, near-duplicate entities, patterns
    never tended, and how link targets spread over the library (flagging concentration)."""
    settings = load_settings(garden=garden, db=db)
    found = open_garden(settings)
    blocks: dict = {}
    tended: dict = {}
    reassessed: dict = {}
    labels: list = []
    duplicates: dict = {}
    if settings.db.exists():
        with EventStore(settings.db, create=False) as store:
            labels = curator_labels(store)
            state = load_state(store)
            duplicates = state.duplicates
            for slug in found.patterns:
                known = state.patterns.get(slug)
                if known is not None:
                    blocks[slug], tended[slug] = known.block, known.tended
                    reassessed[slug] = known.reassessed
    else:  # no log yet: the files are all there is
        blocks = {s: p.block.model_dump(mode="json") if p.block else None for s, p in found.patterns.items()}
    report = garden_health(found, blocks, tended, reassessed, duplicates)
    report["measured_precision"] = precision.measured(labels, load_policy())
    if json_out:
        out.print_json(json.dumps(report))
        return
    table = Table(title=f"garden health: {display_path(settings.garden)}", title_justify="left")
    table.add_column("")
    table.add_column("value")
    for key in ("patterns", "with_block", "links"):
        table.add_row(key.replace("_", " "), str(report[key]))
    for key in ("links_per_pattern", "entities_per_pattern"):
        table.add_row(key.replace("_", " "), ", ".join(f"{k} {v}" for k, v in report[key].items()))
    table.add_row("confidence histogram", ", ".join(f"{k}: {v}" for k, v in report["confidence_histogram"].items()))
    table.add_row("link types", Text(escape_text(", ".join(f"{k} {v}" for k, v in report["link_types"].items()))))
    for key in ("missing_targets", "curated_repeats", "near_duplicate_entities", "never_tended"):
        table.add_row(key.replace("_", " "), str(report[key]["count"]))
    dup = report["duplicate_patterns"]
    table.add_row("duplicate patterns", f"{dup['suspected']['count']} suspected (merge candidates in `garden review`), "
                  f"{dup['confirmed']['count']} confirmed, {dup['dismissed']['count']} dismissed")
    left = report["inherited_unreassessed"]
    table.add_row("inherited, not yet re-assessed", f"{left['count']} ({left['links']} links, {left['entities']} entities)")
    out.print(table)
    letters = report["targets_by_first_letter"]
    spread = Table(title="link targets by first letter of the slug (share of all machine links / of the "
                         f"library; total variation {letters['total_variation']:.2f})", title_justify="left")
    for letter in sorted(letters["library"]):
        spread.add_column(letter, justify="right")
    spread.add_row(*[f"{letters['links'].get(k, 0):.0%}" for k in sorted(letters["library"])])
    spread.add_row(*[f"{letters['library'][k]:.0%}" for k in sorted(letters["library"])])
    out.print(spread)
    out.print(precision_table(report["measured_precision"]))
    for flag in report["flags"]:
        err.print(f"[yellow]warning:[/yellow] {flag}", markup=True)
    for key in ("missing_targets", "curated_repeats", "near_duplicate_entities"):
        for example in report[key]["examples"][:5]:
            out.print(f"  {key.replace('_', ' ')}: {escape_text(example)}", markup=False)
    for status in ("suspected", "confirmed"):
        for example in dup[status]["examples"][:5]:
            out.print(f"  {status} duplicate: {escape_text(example)}", markup=False)


def precision_table(measured: dict) -> Table | str:
    """The measured precision per band beside the policy's thresholds, or why there is none."""
    if not measured["labels"]:
        return ("measured precision: no curator decisions yet (each accept or reject in `garden review` "
                "is a label; `garden review --sample N` draws items across the whole confidence range)")
    t = measured["thresholds"]
    table = Table(title=f"measured precision from {measured['labels']} curator labels (policy: links accept >= "
                        f"{t['link']['auto_accept']}, reject < {t['link']['review_floor']}; entities accept >= "
                        f"{t['entity']['auto_accept']}, reject < {t['entity']['review_floor']})",
                  title_justify="left")
    for column in ("proposer", "kind", "confidence", "labels", "kept", "95% interval", "the policy"):
        table.add_column(column, justify="right" if column in ("labels", "kept") else "left")
    for row in measured["bands"]:
        table.add_row(f"{row['proposer']}/{row['model'] or '-'}", row["kind"], f"{row['low']:.1f}-{row['high']:.1f}",
                      str(row["n"]), f"{row['precision']:.0%}",
                      f"{row['precision_low']:.0%}-{row['precision_high']:.0%}", row["policy"])
    return table


@handle_errors
def report(
    run: Annotated[Optional[str], typer.Argument(help="The run. [default: the last tend, not a curator's run]", show_default=False)] = None,
    html_file: Annotated[Path, typer.Option("--html", help="Write the page here.", dir_okay=False)] = Path("garden-report.html"),
    garden: GardenOption = None,
    db: DbOption = None,
) -> None:
    """One self-contained HTML page (no network fetches) with a run's summary, the diff of every
    block it changed, and the pending proposals: for curators who would rather look. Without
    RUN, the last tend (the night's run, not the morning's accepts)."""
    settings = load_settings(garden=garden, db=db)
    with EventStore(settings.db, create=False) as store:
        chosen = curate.resolve_run(store, run) if run else curate.last_tend(store)
        changes = curate.run_changes(store, chosen)
        diffs = curate.run_diff(changes)
        state = load_state(store)
        pending = curate.pending_by_pattern(state)
        pending_diffs = {slug: curate.review_diff(state, slug, ps) for slug, ps in pending.items()}
        about = curate.describe_run(store, changes.run_id)
        measured = precision.measured(curator_labels(store), load_policy())
    which = about if run else f"the last tend: {about} (`garden report RUN` shows another run)"
    page = html_report(changes.run_id, changes.counts, diffs, pending, pending_diffs, which=which,
                       measured=measured)
    html_file.write_text(page, "utf-8")
    out.print(f"wrote {display_path(html_file)}: run {changes.run_id} ({'given' if run else 'the last tend'}), "
              f"{len(diffs)} blocks changed, {sum(len(p) for p in pending.values())} pending proposals",
              markup=False)


@handle_errors
def calibrate(
    proposer: Annotated[Optional[str], typer.Option("--proposer", help="Only this proposer's items (e.g. offline, llm).")] = None,
    target: Annotated[float, typer.Option("--target-precision", min=0.5, max=0.999,
                                          help="The share of accepted items a curator should keep.")] = 0.9,
    write: Annotated[bool, typer.Option("--write", help="Record a fit per proposer/model/prompt version/kind with "
                                        "enough labels (CalibrationFitted): their new proposals are then "
                                        "recorded on its calibrated scale.")] = False,
    set_policy: Annotated[bool, typer.Option("--set-policy", help="With --write: put the fits' recommended "
                                             "thresholds (calibrated) into garden.toml's [policy].")] = False,
    by: ByOption = None,
    garden: GardenOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """How right each proposer is, from the curators' decisions: per proposer/model/prompt version
    and kind, the labelled items in confidence bands (count, kept, precision with its 95% Wilson
    interval), the auto_accept and review_floor that would meet the target precision (none when
    the labels are too few to say), and what the policy in force would have done with the
    labelled items. --write records the fitted maps; --set-policy writes the thresholds."""
    if set_policy and not write:
        raise GardenError("--set-policy writes the thresholds of a new fit: give --write too")
    settings = load_settings(garden=garden, db=db)
    if not settings.db.exists():
        raise GardenError(f"no event log at {display_path(settings.db)}: run `garden tend` first")
    with EventStore(settings.db, create=False) as store:
        labels = curator_labels(store, proposer)
        written = (calibration.write_fits(store, labels, target, by or curate.default_curator(), set_policy)
                   if write and labels else None)
    policy = load_policy()
    recommended = {}
    for key, found in precision.groups(labels).items():
        p, m, v, k = key
        recommended[precision.key_name(key)] = {"proposer": p, "model": m, "prompt_version": v, "kind": k,
                                                **recommend(found, target)}
    result = {"labels": len(labels), "target_precision": target, "bands": precision.bands(labels),
              "recommended": recommended, "policy_in_force": policy_outcome(labels, policy)}
    if written is not None:
        result["written"] = written.to_dict()
    if json_out:
        out.print_json(json.dumps(result))
        return
    if not labels:
        out.print("no curator decisions yet: nothing to measure" + (" or fit; nothing was written" if write else "")
                  + ". Decide proposals with `garden review` (or accept/reject) and run this again.", markup=False)
        return
    table = Table(title=f"curator labels: {len(labels)}", title_justify="left")
    for column in ("proposer", "model", "prompt", "kind", "confidence", "n", "kept", "precision", "95% interval"):
        table.add_column(column, justify="right" if column in ("n", "kept", "precision") else "left")
    for row in result["bands"]:
        table.add_row(row["proposer"], row["model"] or "-", row["prompt_version"] or "-", row["kind"],
                      f"{row['low']:.1f}-{row['high']:.1f}", str(row["n"]), str(row["kept"]),
                      f"{row['precision']:.0%}", f"{row['precision_low']:.0%}-{row['precision_high']:.0%}")
    out.print(table)
    for name, rec in recommended.items():
        if rec["labels"] < precision.MIN_LABELS:
            out.print(f"{name}: {rec['labels']} labels are too few to recommend thresholds for a precision "
                      f"of {target:.0%} (each needs {precision.MIN_LABELS} or more behind it)", markup=False)
            continue
        said = [f"auto_accept {rec['auto_accept']}" if rec["auto_accept"] is not None else
                f"auto_accept: none (no confidence above which {target:.0%} are surely kept)",
                f"review_floor {rec['review_floor']}" if rec["review_floor"] is not None else
                f"review_floor: none (no confidence below which at most {1 - target:.0%} are surely kept)"]
        out.print(f"{name}: recommended for {target:.0%} precision: {', '.join(said)} ({rec['labels']} labels)",
                  markup=False)
    o = result["policy_in_force"]
    out.print(f"the policy in force, on these items: accepted {o['accepted_kept'] + o['accepted_wrongly']} "
              f"({o['accepted_wrongly']} wrongly), rejected {o['rejected_dropped'] + o['rejected_wrongly']} "
              f"({o['rejected_wrongly']} wrongly), left for review {o['review_kept'] + o['review_dropped']}",
              markup=False)
    if written is not None:
        show_written(written)


def show_written(written: calibration.CalibrationWrite) -> None:
    for fit in written.written:
        out.print(f"{fit['key']}: wrote CalibrationFitted #{fit['seq']} ({fit['labels']} labels); new proposals "
                  f"of {fit['key']} are recorded on its calibrated scale", markup=False)
    for skipped in written.skipped:
        out.print(f"{skipped['key']}: nothing written: {skipped['reason']}", markup=False)
    for kind, said in written.policy.items():
        if "values" in said:
            values = ", ".join(f"{k} = {v}" for k, v in said["values"].items())
            out.print(f"garden.toml [policy]: {values} (from {said['from']})", markup=False)
        else:
            out.print(f"garden.toml [policy]: {kind} thresholds left as they are: {said['reason']}", markup=False)
