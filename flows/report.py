"""A tend's summary as rows (for the terminal table) and as Markdown (for the Prefect UI)."""

from __future__ import annotations

from typing import Any

ROWS = (
    ("patterns", "patterns in the garden"),
    ("tended", "patterns tended"),
    ("proposed", "proposed"),
    ("rescored", "re-assessed"),
    ("accepted", "accepted"),
    ("pending", "pending (for a curator)"),
    ("rejected", "rejected"),
    ("files_written", "files written"),
    ("errors", "errors"),
    ("tokens", "tokens"),
)


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(label, str(result[key])) for key, label in ROWS[:7]]
    for rule, count in (result.get("pruned") or {}).items():
        rows.append((f"pruned: {rule}", str(count)))
    if not result.get("pruned"):
        rows.append(("pruned", "0"))
    rows += [(label, str(result[key])) for key, label in ROWS[7:]]
    if result.get("cost") is not None:
        rows.append(("cost", f"{result['cost']:.4f}"))
    return rows


def summary_markdown(result: dict[str, Any]) -> str:
    lines = [f"# graph-garden tend {result['run_id']}", "",
             f"Proposer `{result['proposer']}` / `{result.get('model') or '-'}`, date {result['today']}.", "",
             "| | count |", "| --- | ---: |"]
    lines += [f"| {label} | {value} |" for label, value in summary_rows(result)]
    errors = result.get("error_lines") or []
    if errors:
        lines += ["", "## Errors", ""] + [f"- `{line}`" for line in errors[:50]]
    lines += ["", "Review pending proposals with `garden review`; see what changed with `garden diff`."]
    return "\n".join(lines) + "\n"
