"""A tend's summary as rows (for the terminal table) and as Markdown (for the Prefect UI)."""

from __future__ import annotations

import html
from typing import Any

from events.heads import SHOWN_PREFIX

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
    verb = "would prune" if result.get("dry_run") else "pruned"
    for rule, count in (result.get("pruned") or {}).items():
        rows.append((f"{verb}: {rule}", str(count)))
    if not result.get("pruned"):
        rows.append((verb, "0"))
    for rule, count in (result.get("prunes_deferred") or {}).items():
        rows.append((f"prunes left for later runs (max_prunes_per_run): {rule}", str(count)))
    if result.get("prunes_proposed"):
        rows.append(("prunes proposed to a curator", str(result["prunes_proposed"])))
    rows += [(label, str(result[key])) for key, label in ROWS[7:]]
    if result.get("cost") is not None:
        rows.append(("cost", f"{result['cost']:.4f}"))
    if result.get("head"):
        rows.append(("log head", _short_head(result["head"])))
    return rows


def _short_head(head: dict[str, Any]) -> str:
    return f"#{head['seq']} {head['hash'][:SHOWN_PREFIX]}"


def summary_markdown(result: dict[str, Any]) -> str:
    lines = [f"# graph-garden tend {result['run_id']}", "",
             f"Proposer `{result['proposer']}` / `{result.get('model') or '-'}`, date {result['today']}.", "",
             "| | count |", "| --- | ---: |"]
    lines += [f"| {label} | {value} |" for label, value in summary_rows(result)]
    errors = result.get("error_lines") or []
    if errors:
        lines += ["", "## Errors", ""] + [f"- `{line}`" for line in errors[:50]]
    head = result.get("head")
    if head:
        lines += ["", f"Log head #{head['seq']} `{head['hash']}`, published in {head['file']}; keep it "
                  "elsewhere too and check the log against it with `garden verify --head "
                  f"{head['seq']}:{head['hash'][:SHOWN_PREFIX]}`."]
    lines += ["", "Review pending proposals with `garden review`; see what changed with `garden diff`."]
    return "\n".join(lines) + "\n"


# --- the HTML page a curator reads ---------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .2rem .7rem; border-bottom: 1px solid #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: .6rem; overflow-x: auto; font-size: 13px; }
.add { color: #0a6b1f; background: #e6f6ea; display: block; } .del { color: #a11; background: #fbe9e9; display: block; }
.hunk { color: #0a5b8a; display: block; } .muted { color: #777; }
"""


def _diff_html(lines: list[str]) -> str:
    out = []
    for line in lines:
        text = html.escape(line)
        if line.startswith("+") and not line.startswith("+++"):
            out.append(f'<span class="add">{text}</span>')
        elif line.startswith("-") and not line.startswith("---"):
            out.append(f'<span class="del">{text}</span>')
        elif line.startswith("@@"):
            out.append(f'<span class="hunk">{text}</span>')
        else:
            out.append(text + "\n")
    return "<pre>" + "".join(out) + "</pre>"


def html_report(run_id: str, counts: dict[str, Any], diffs: dict[str, list[str]],
                pending: dict[str, dict[str, dict]], pending_diffs: dict[str, list[str]],
                which: str | None = None, measured: dict | None = None) -> str:
    """One self-contained page: the run's summary, its diffs, and what waits for a curator.
    `which`: a line saying which run this is and why (the last tend, by default); `measured`:
    the precision per band from curator labels (`garden.precision.measured`)."""
    e = html.escape
    rows = "".join(f"<tr><td>{e(str(k))}</td><td class=n>{e(str(v))}</td></tr>" for k, v in counts.items())
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>graph-garden run {e(run_id)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>graph-garden run <code>{e(run_id)}</code></h1>",
             f'<p class="which">{e(which)}</p>' if which else "",
             f"<h2 id=summary>Summary</h2><table>{rows or '<tr><td>no changes</td></tr>'}</table>",
             f"<h2 id=changes>Blocks changed ({len(diffs)})</h2>"]
    if not diffs:
        parts.append('<p class="muted">This run changed no block.</p>')
    for slug, lines in diffs.items():
        parts.append(f"<h3>{e(slug)}</h3>{_diff_html(lines)}")
    total = sum(len(p) for p in pending.values())
    parts.append(f"<h2 id=pending>Pending proposals ({total})</h2>")
    if not pending:
        parts.append('<p class="muted">Nothing waits for a curator.</p>')
    for slug, proposals in pending.items():
        parts.append(f"<h3>{e(slug)}</h3><table><tr><th>id</th><th>proposal</th><th>score</th>"
                     "<th>reason / label</th><th>proposer</th></tr>")
        for pid, p in proposals.items():
            if p["kind"] == "prune":
                target = (f"link → {p['target']} ({p['link_type']})" if p["item"] == "link"
                          else f"entity {p['entity_id']}")
                what, score = f"prune {target}", p.get("score") or 0.0
                detail = f"{p['rule']}: accept prunes it, reject keeps it"
            else:
                what = (f"link → {p['target']} ({p['link_type']})" if p["kind"] == "link"
                        else f"entity {p['entity_id']} ({p['entity_type']})")
                score = p.get("confidence", p.get("relevance"))
                detail = p.get("reason") or p.get("label") or ""
            who = p.get("proposer", "") + (f"/{p['model']}" if p.get("model") else "")
            parts.append(f"<tr><td><code>{e(pid)}</code></td><td>{e(what)}</td><td class=n>{score:.2f}</td>"
                         f"<td>{e(detail)}</td><td>{e(who)}</td></tr>")
        parts.append("</table>")
        parts.append(_diff_html(pending_diffs.get(slug, [])))
    if measured is not None:
        parts.append(_precision_html(measured))
    parts.append('<p class="muted">Decide with <code>garden accept ID</code> or '
                 '<code>garden reject ID --note TEXT</code>.</p></body></html>')
    return "\n".join(parts) + "\n"


def _precision_html(measured: dict) -> str:
    """The measured precision per band beside the policy's thresholds, with the labels behind it."""
    e = html.escape
    head = f"<h2 id=precision>Measured precision ({measured['labels']} curator labels)</h2>"
    if not measured["labels"]:
        return head + ('<p class="muted">No curator decisions yet: each accept or reject is a label; '
                       '<code>garden review --sample N</code> draws items across the whole confidence range.</p>')
    t = measured["thresholds"]
    policy = (f"<p>Policy: links accepted at {t['link']['auto_accept']} or more, rejected below "
              f"{t['link']['review_floor']}; entities accepted at {t['entity']['auto_accept']} or more, rejected "
              f"below {t['entity']['review_floor']}.</p>")
    rows = "".join(
        f"<tr><td>{e(r['proposer'])}/{e(r['model'] or '-')}</td><td>{e(r['kind'])}</td>"
        f"<td>{r['low']:.1f}-{r['high']:.1f}</td><td class=n>{r['n']}</td><td class=n>{r['precision']:.0%}</td>"
        f"<td>{r['precision_low']:.0%}-{r['precision_high']:.0%}</td><td>{e(r['policy'])}</td></tr>"
        for r in measured["bands"])
    return (head + policy + "<table><tr><th>proposer</th><th>kind</th><th>confidence</th><th>labels</th>"
            f"<th>kept</th><th>95% interval</th><th>the policy</th></tr>{rows}</table>")
