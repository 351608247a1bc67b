"""Curator and maintainer commands: review, accept, reject, lift, diff, revert."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Optional

import typer

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, open_app, out, print_json
from flows import curate
from flows.app import GardenApp, Review
from garden.errors import GardenError, escape_text

ByOption = Annotated[Optional[str], typer.Option("--by", help="Who decides. [default: git's user.name, else the login name]", show_default=False)]
NoteOption = Annotated[Optional[str], typer.Option("--note", help="Why (kept in the log).")]
NoWriteOption = Annotated[bool, typer.Option("--no-write", help="Record the decision; write the files at the next tend.")]
PatternOpt = Annotated[Optional[str], typer.Option("--pattern", help="Only this pattern.")]
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Only proposals made by this run.")]


def print_diff(lines: list[str]) -> None:
    for line in lines:
        style = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "cyan" if line.startswith("@@") else None)
        out.print(line, style=style, markup=False, highlight=False)


def describe(pid: str, p: dict) -> str:
    who = p.get("proposer", "?") + (f"/{p['model']}" if p.get("model") else "")
    if p["kind"] == "prune":  # accept: prune it; reject: keep it
        owner = "accepted by a curator" if p["owner"] == "curator" else "written by hand"
        return (f"{pid}  prune {curate.prune_target(p)}  re-assessed {curate.proposal_score(p):.2f}  "
                f"({owner})\n    {p['rule']} {json.dumps(p['values'])}: accept prunes it, reject keeps it")
    if p["kind"] == "link":
        return (f"{pid}  link -> {p['target']} ({p['link_type']})  confidence {p['confidence']:.2f}  "
                f"by {who}\n    {p['reason']}")
    return (f"{pid}  entity {p['entity_id']} ({p['entity_type']}) \"{p['label']}\"  relevance "
            f"{p['relevance']:.2f}  by {who}")


def describe_sampled(item: curate.MachineItem) -> str:
    """A sampled item: the proposal, and what the policy did and a decision would do."""
    then = {"pending": "a accepts it, r rejects it",
            "accepted": "a confirms the accept (the file stays), r prunes it",
            "rejected": "a adds it to the block, r confirms the rejection (the file stays)"}[item.policy]
    rule = f" ({item.rule})" if item.rule else " (left to a curator)"
    return f"{describe(item.id, item.proposal)}\n    policy: {item.policy}{rule}: {then}"


@handle_errors
def review(
    pattern: PatternOpt = None, run: RunOpt = None,
    min_confidence: Annotated[Optional[float], typer.Option("--min-confidence", help="Only proposals at or above this score.")] = None,
    sample: Annotated[Optional[int], typer.Option("--sample", min=1, help="A stratified random sample of N of the machine's items: pending, and those the policy accepted or rejected, across the whole confidence range (by kind and band of 0.1), none a curator decided.", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="The sample's seed (the same seed, the same sample). [default: a new one, shown]", show_default=False)] = None,
    proposer: Annotated[Optional[str], typer.Option("--proposer", help="Sample only this proposer's items (offline, llm).", show_default=False)] = None,
    interactive: Annotated[Optional[bool], typer.Option("--interactive/--list", help="Step through the proposals (default on a terminal) or only list them.", show_default=False)] = None,
    by: ByOption = None, garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False,
) -> None:
    """The pending proposals, by pattern, with the diff of the block as accepting them would
    leave it. On a terminal, step through them, one key each (no Enter): a accept, r reject
    (then a note and Enter), s skip, q quit. Each decision is recorded and written as it is
    made, so quitting or Ctrl-C keeps the decisions made so far.

    With --sample N: a sample of the machine's items across the whole confidence range, the
    policy's accepts and rejections too, so that curators' decisions measure the proposers
    (`garden calibrate`). Accepting what the policy rejected adds it, rejecting what it accepted
    prunes it (written at once); agreeing with the policy confirms it (a label; no write)."""
    if sample is None and (seed is not None or proposer):
        raise GardenError("--seed and --proposer go with --sample N")
    if sample is not None and (pattern or run or min_confidence is not None):
        raise GardenError("--sample draws from the whole garden; narrow it with --proposer, not --pattern, "
                          "--run or --min-confidence")
    app = open_app(garden, db)
    if sample is not None:
        _review_sample(app, sample, seed, proposer, interactive, by, json_out)
        return
    found = app.review(pattern, run, min_confidence)
    if json_out:
        print_json(found.to_json())
        return
    if not found.found:
        _print_merge_candidates(found.merges)
        if not found.merges:
            out.print("nothing pending")
        return
    if _on_a_terminal(interactive):
        _print_merge_candidates(found.merges)
        _review_on_terminal(app, found, by or curate.default_curator())
        return
    for slug, proposals in found.found.items():
        out.print(f"\n[bold]{slug}[/bold]: {len(proposals)} pending", markup=True)
        print_diff(found.diffs[slug])
        for pid, p in proposals.items():
            out.print(describe(pid, p), markup=False, highlight=False)
    _print_merge_candidates(found.merges)
    err.print(f"{found.count} pending in {len(found.found)} patterns; "
              "decide with `garden accept ID ...` / `garden reject ID ... --note TEXT`")


def _on_a_terminal(interactive: bool | None) -> bool:
    """Whether review steps through items one key at a time: as asked, or (not asked) when both
    stdin and stdout are a terminal; asked for without a terminal to read keys from is an error."""
    if interactive is None:
        return sys.stdin.isatty() and sys.stdout.isatty()
    if interactive and not sys.stdin.isatty():
        raise GardenError("--interactive reads keys from a terminal, and stdin is not one; decide with "
                          "`garden accept ID ...` / `garden reject ID ... --note TEXT`")
    return interactive


def _print_merge_candidates(merges: list[dict]) -> None:
    if not merges:
        return
    out.print(f"\n[bold]merge candidates[/bold]: {len(merges)} suspected duplicate pattern pair(s)", markup=True)
    for m in merges:
        (a, b), (ta, tb) = m["slugs"], m["titles"]
        who = m["proposer"] + (f"/{m['model']}" if m.get("model") else "")
        out.print(f"{m['id']}  {a} \"{escape_text(ta)}\" ~ {b} \"{escape_text(tb)}\"  confidence "
                  f"{m['confidence']:.2f}  by {who}\n    {escape_text(m['reason'])}", markup=False, highlight=False)
    err.print("decide a merge candidate with `garden accept ID` (the same idea: a confirmed duplicate) or "
              "`garden reject ID --note TEXT` (not the same idea); neither changes a file", markup=False)


def _review_sample(app: GardenApp, n: int, seed: int | None, proposer: str | None, interactive: bool | None,
                   by: str | None, json_out: bool) -> None:
    sample = app.sample(n, seed, proposer)
    items, patterns = sample.items, sample.patterns
    said = f"{len(items)} sampled (seed {sample.seed}) of {sample.total} items in {sample.strata} bands"
    if json_out:
        print_json(sample.to_json())
        err.print(said, markup=False)
        return
    if not items:
        out.print("nothing to sample" + (f" from {proposer}" if proposer else ""))
        return
    if _on_a_terminal(interactive):
        out.print(f"{said}; {KEYS_HELP}", markup=False)
        _on_terminal(lambda keys, tally: _step_through_sample(app, items, patterns, by or curate.default_curator(),
                                                              keys, tally))
        return
    for item in items:
        out.print(f"\n[bold]{item.slug}[/bold]", markup=True)
        print_diff(item.overruled_diff(patterns[item.slug]))
        out.print(describe_sampled(item), markup=False, highlight=False)
    err.print(f"{said}; decide with `garden accept ID ...` / `garden reject ID ... --note TEXT`", markup=False)


def _step_through_sample(app: GardenApp, items, patterns, who: str, keys: "_Keys", tally: dict) -> None:
    for item in items:
        out.print(f"\n[bold]{item.slug}[/bold]", markup=True)
        print_diff(item.overruled_diff(patterns[item.slug]))
        out.print(describe_sampled(item), markup=False, highlight=False)
        _decide_by_key(app, item.slug, item.id, who, keys, tally)


KEYS_HELP = ("one key each, no Enter: a accept, r reject (then a note and Enter), s skip, q quit; "
             "each decision is recorded and written at once (Ctrl-C keeps those made)")


class _Quit(Exception):
    pass


def _review_on_terminal(app: GardenApp, found: Review, who: str) -> None:
    """Step through the proposals; each decision is its own accept or reject, made at once."""
    out.print(f"{found.count} pending in {len(found.found)} patterns; {KEYS_HELP}", markup=False)
    _on_terminal(lambda keys, tally: _step_through(app, found, who, keys, tally))


def _on_terminal(step) -> None:
    """Run `step(keys, tally)` with the terminal in cbreak mode; q, Ctrl-C or Ctrl-D end it."""
    tally = {"accepted": 0, "rejected": 0, "skipped": 0}
    try:
        with _Keys() as keys:
            step(keys, tally)
    except (_Quit, KeyboardInterrupt, EOFError):
        out.print("")
    out.print(f"{tally['accepted']} accepted, {tally['rejected']} rejected, {tally['skipped']} skipped "
              "(each recorded as it was made)", markup=False)


def _step_through(app: GardenApp, found: Review, who: str, keys: "_Keys", tally: dict) -> None:
    """Each proposal in turn: show it, read a key, decide it at once."""
    for slug, proposals in found.found.items():
        out.print(f"\n[bold]{slug}[/bold]: {len(proposals)} pending", markup=True)
        print_diff(found.diffs[slug])
        for pid, p in proposals.items():
            out.print(describe(pid, p), markup=False, highlight=False)
            _decide_by_key(app, slug, pid, who, keys, tally)


def _decide_by_key(app: GardenApp, slug: str, pid: str, who: str, keys: "_Keys", tally: dict) -> None:
    """Read a key for one proposal and decide it at once (q raises _Quit)."""
    key = keys.key("  [a]ccept  [r]eject  [s]kip  [q]uit ? ", "arsq")
    if key == "q":
        raise _Quit
    if key == "s":
        tally["skipped"] += 1
        return
    note = keys.line("  note (why; Enter when done): ") if key == "r" else None
    try:
        decide = app.accept if key == "a" else app.reject
        result = decide([pid], by=who, note=note or None, on_finished=_print_finished)
    except GardenError as e:  # decided meanwhile, or the lock is held: say so, go on
        err.print(f"  error: {e}", markup=False)
        return
    verb = "accepted" if key == "a" else "rejected"
    tally[verb] += 1
    effect = next((f": {d['effect']}" for d in result.decided if d.get("effect")), "")
    written = f"; {slug} written" if result.written else ""
    out.print(f"  {verb} {pid} (run {result.run_id}){effect}{written}", markup=False)
    for line in result.errors:
        err.print(f"  error: {line}", markup=False)


class _Keys:
    """The terminal in cbreak mode for a whole review, so a key pressed before its prompt is
    shown is not held back as half a line; cooked again for a note, and at the end."""

    def __enter__(self) -> "_Keys":
        import termios
        import tty

        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        self.cbreak = lambda: tty.setcbreak(self.fd, termios.TCSANOW)
        self.cbreak()
        return self

    def __exit__(self, *exc) -> None:
        self.cooked()

    def cooked(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)

    def key(self, prompt: str, allowed: str) -> str:
        """One key, without Enter (Ctrl-C raises KeyboardInterrupt; Ctrl-D quits)."""
        out.print(prompt, end="", markup=False)
        out.file.flush()
        while True:
            key = os.read(self.fd, 1).decode("utf-8", "replace").lower()
            if key in ("", "\x04"):
                key = "q"
            if key in allowed:
                break
        out.print(key, markup=False)
        return key

    def line(self, prompt: str) -> str:
        self.cooked()
        try:
            out.print(prompt, end="", markup=False)
            out.file.flush()
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")
        finally:
            self.cbreak()


def _print_finished(finished: curate.Finished | None, console=out) -> None:
    if finished is None:
        return
    runs = ", ".join(f"{run_id} ({command})" for run_id, command in finished.runs.items())
    what = "an interrupted run" if len(finished.runs) == 1 else "interrupted runs"
    console.print(f"finished what {what} left unwritten ({runs}): {len(finished.written)} files "
                  f"written (as run {finished.run_id})", markup=False)
    for line in finished.errors:
        err.print(f"error: {line}", markup=False)


def _decide(accept: bool, ids, pattern, run, by, note, no_write, garden, db, json_out) -> None:
    app = open_app(garden, db)
    said = lambda finished: _print_finished(finished, err if json_out else out)  # noqa: E731
    if accept:
        result = app.accept(ids, pattern=pattern, run=run, by=by, note=note, write=not no_write, on_finished=said)
    else:
        result = app.reject(ids, pattern=pattern, run=run, by=by, note=note, on_finished=said)
    if json_out:
        print_json(result.to_dict())
    else:
        verb = "accepted" if accept else "rejected"
        for d in result.decided:
            effect = f": {d['effect']}" if d["effect"] else ""
            out.print(f"{verb} {d['id']} ({d['slug']}: {d['what']}, {d['score']:.2f}){effect}", markup=False)
        if any(d["changes_block"] for d in result.decided):
            out.print(f"{len(result.written)} files written" + (" (--no-write: at the next tend)" if no_write else ""))
        for line in result.errors:
            err.print(f"error: {line}", markup=False)
    if result.errors or (result.finished and result.finished.errors):
        raise typer.Exit(1)


IdsArg = Annotated[Optional[list[str]], typer.Argument(help="Proposal ids (from `garden review`).", show_default=False)]


@handle_errors
def accept(ids: IdsArg = None, pattern: PatternOpt = None, run: RunOpt = None, by: ByOption = None,
           note: NoteOption = None, no_write: NoWriteOption = False, garden: GardenOption = None,
           db: DbOption = None, json_out: JsonOption = False) -> None:
    """Accept proposals (by id, or all pending of a pattern or run) and write the changed blocks.

    An id already decided, superseded or unknown is reported and nothing changes."""
    _decide(True, ids, pattern, run, by, note, no_write, garden, db, json_out)


@handle_errors
def reject(ids: IdsArg = None, pattern: PatternOpt = None, run: RunOpt = None, by: ByOption = None,
           note: NoteOption = None, garden: GardenOption = None, db: DbOption = None,
           json_out: JsonOption = False) -> None:
    """Reject proposals. A rejected link or entity is not proposed again for the pattern until
    its text changes or `garden lift` lets it. Rejecting an item the policy accepted (a sampled
    review) prunes it and writes the block at once."""
    _decide(False, ids, pattern, run, by, note, False, garden, db, json_out)


@handle_errors
def lift(
    slug: Annotated[str, typer.Argument(help="The pattern.")],
    target: Annotated[Optional[str], typer.Option(help="The rejected link's target.")] = None,
    link_type: Annotated[Optional[str], typer.Option("--type", help="The rejected link's type.")] = None,
    entity: Annotated[Optional[str], typer.Option(help="The rejected entity id.")] = None,
    by: ByOption = None, note: NoteOption = None, garden: GardenOption = None, db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Let a rejected link (--target and --type) or entity (--entity) be proposed again."""
    lifted = open_app(garden, db).lift(slug, target=target, link_type=link_type, entity=entity, by=by, note=note)
    if json_out:
        print_json(lifted.to_dict())
        return
    _print_finished(lifted.finished)
    out.print(f"lifted (run {lifted.run_id}): it may be proposed again")


@handle_errors
def diff(
    run: Annotated[Optional[str], typer.Argument(help="The run (default: the last one).", show_default=False)] = None,
    garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False,
) -> None:
    """The unified diff of every block a run changed, rebuilt from the log, and per-rule counts."""
    changes = open_app(garden, db).diff(run)
    if json_out:
        print_json(changes.to_dict())
        return
    for lines in changes.diffs.values():
        print_diff(lines)
    summary = ", ".join(f"{k} {v}" for k, v in changes.counts.items()) or "no changes"
    out.print(f"run {changes.run_id}: {len(changes.diffs)} blocks changed; {summary}", markup=False)


@handle_errors
def revert(
    run: Annotated[str, typer.Argument(help="The run to undo (`garden runs` lists them).")],
    by: ByOption = None, note: NoteOption = None,
    force: Annotated[bool, typer.Option("--force", help="Restore even items later runs changed again.")] = False,
    no_write: NoWriteOption = False, garden: GardenOption = None, db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Undo a run: compensating events put back every block item it changed (its additions
    removed, its prunes restored), then the files are written. Reverting a revert restores the
    run. If later events changed the same items, lists the conflicts and stops, unless --force."""
    reverted = open_app(garden, db).revert(run, by=by, note=note, force=force, write=not no_write)
    plan, result = reverted.plan, reverted.result
    _print_finished(result.finished, err if json_out else out)
    if json_out:
        print_json(reverted.to_dict())
    elif plan.finishing:
        out.print(f"{plan.run_id} was reverted by {plan.finishing}; {len(result.written)} of its files "
                  f"were not yet as that revert left them (a failed or --no-write write) and are "
                  f"written now (as run {result.run_id})")
        for line in result.errors:
            err.print(f"error: {line}", markup=False)
    else:
        out.print(f"reverted {plan.run_id} (as run {result.run_id}): {len(plan.restores)} blocks restored, "
                  f"{len(plan.withdrawn)} pending proposals withdrawn, {len(plan.reopened)} decisions "
                  f"undone (pending again), {len(plan.redecided)} decisions made again, "
                  f"{len(result.written)} files written")
        for line in result.errors:
            err.print(f"error: {line}", markup=False)
    if result.errors and not no_write:
        err.print(f"the log holds the revert; put the files back (unedited) and run `garden revert "
                  f"{plan.run_id}` again to write them", markup=False)
    if result.errors:
        raise typer.Exit(1)
