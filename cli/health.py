"""`garden health` and `garden report`: the garden's shape, and a run as one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, open_app, out, print_json
from cli.curate import ByOption
from flows import calibration
from garden import precision
from garden.errors import display_path, escape_text


@handle_errors
def health(garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """The garden's health: links and entities per pattern, confidences, link types, targets
    missing from the garden, links repeating curated ones, near-duplicate entities, patterns
    never tended, and how link targets spread over the library (flagging concentration)."""
    app = open_app(garden, db)
    report = app.health()
    settings = app.settings
    if json_out:
        print_json(report)
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
    page = open_app(garden, db).report(run)
    html_file.write_text(page.html, "utf-8")
    out.print(f"wrote {display_path(html_file)}: run {page.run_id} ({'given' if run else 'the last tend'}), "
              f"{page.changed} blocks changed, {page.pending} pending proposals",
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
    calibrated = open_app(garden, db).calibrate(proposer, target, write, set_policy, by)
    result, written = calibrated.result, calibrated.written
    labels, recommended = result["labels"], result["recommended"]
    if json_out:
        print_json(result)
        return
    if not labels:
        out.print("no curator decisions yet: nothing to measure" + (" or fit; nothing was written" if write else "")
                  + ". Decide proposals with `garden review` (or accept/reject) and run this again.", markup=False)
        return
    table = Table(title=f"curator labels: {labels}", title_justify="left")
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
