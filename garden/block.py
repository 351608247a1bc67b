"""Reading a raw `graph_garden` mapping into a `GardenBlock`, and emitting a block as text.

Reading normalises the legacy variants found in real libraries (plain-string entities and
communities, `strength:` links, quoted dates, type aliases) and reports each as a `Finding`;
a block of the wrong shape is an error and yields no block at all.

Emitting writes the seeds' style exactly (2-space indent, `- id:` items, double-quoted labels and
reasons, plain dates and numbers), so that an unchanged seed block comes back byte for byte. It
is a small emitter of our own rather than ruamel.yaml's: ruamel emits YAML 1.2 and would leave
`yes` or `on` unquoted, which the YAML 1.1 loaders that read these files turn into booleans. The
property tests check every emitted block against both PyYAML and ruamel.yaml.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from garden.model import (
    LINK_TYPE_ALIASES,
    LINK_TYPES,
    Community,
    Entity,
    GardenBlock,
    InferredLink,
)

LISTS = ("entities", "communities", "inferred_links")
ITEM_MODELS = {"entities": Entity, "communities": Community, "inferred_links": InferredLink}
ITEM_KEYS = {name: tuple(model.model_fields) for name, model in ITEM_MODELS.items()}
#: Fields always written double-quoted, as in the seeds.
QUOTED_FIELDS = frozenset({"label", "reason"})
DEFAULT_LINK_TYPE = "complementary"  # what a link with no `type:` (a legacy `strength:` link) is read as


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem inside a block; `where` is a path into it, e.g. ("inferred_links", 3, "type")."""

    level: str
    code: str
    message: str
    where: tuple = ()


def to_kebab(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- reading -------------------------------------------------------------------------------


def read_block(raw: Any) -> tuple[GardenBlock | None, list[Finding]]:
    """Normalise a raw `graph_garden` value; `None` block when its shape is wrong."""
    findings: list[Finding] = []
    if raw is None:
        return GardenBlock(), findings
    if not isinstance(raw, dict):
        findings.append(
            Finding("error", "block-shape", f"graph_garden must be a mapping, found {_kind(raw)}")
        )
        return None, findings

    last_pruned = _read_date(raw.get("last_pruned"), findings)
    lists: dict[str, tuple] = {}
    for name in LISTS:
        value = raw.get(name)
        if value is None:
            lists[name] = ()
            continue
        if not isinstance(value, list):
            findings.append(
                Finding(
                    "error",
                    "block-shape",
                    f"graph_garden.{name} must be a list, found {_kind(value)}",
                    (name,),
                )
            )
            continue
        reader = _ITEM_READERS[name]
        items = []
        first_at: dict[tuple, int] = {}
        for index, item in enumerate(value):
            read = reader(item, (name, index), findings)
            if read is not None:
                items.append(read)
                _note_duplicate(name, index, read, first_at, findings)
        lists[name] = tuple(items)

    unknown = [key for key in raw if key not in ("last_pruned", *LISTS)]
    for key in unknown:
        findings.append(
            Finding(
                "error",
                "block-shape",
                f"graph_garden has an unknown key {key!r}; graph-garden would not keep it",
                (key,),
            )
        )
    if any(f.level == "error" for f in findings):
        return None, findings
    return GardenBlock(last_pruned=last_pruned, **lists), findings


def _note_duplicate(name: str, index: int, item, first_at: dict[tuple, int],
                    findings: list[Finding]) -> None:
    """Two items of one list with one identity (a link's target and type, an entity's or a
    community's id): graph-garden treats them as one item, so say so."""
    key = (item.target, item.type) if name == "inferred_links" else (item.id,)
    if key not in first_at:
        first_at[key] = index
        return
    what = "link to {} ({})".format(*key) if name == "inferred_links" else f"id {key[0]!r}"
    findings.append(
        Finding("warning", "duplicate-item",
                f"{name}[{index}] repeats the {what} of {name}[{first_at[key]}]; keep one of them",
                (name, index))
    )


def _kind(value: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}
    return names.get(type(value), f"a {type(value).__name__}")


def _read_date(value: Any, findings: list[Finding]) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            parsed = dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            findings.append(
                Finding(
                    "warning",
                    "legacy-date",
                    f"last_pruned is a quoted date {value!r}; read as {parsed.isoformat()}",
                    ("last_pruned",),
                )
            )
            return parsed
    findings.append(
        Finding(
            "error", "block-shape", f"last_pruned must be a date, found {value!r}", ("last_pruned",)
        )
    )
    return None


def _read_score(item: dict, key: str, where: tuple, findings: list[Finding]) -> None:
    value = item.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        findings.append(
            Finding("error", "block-shape", f"{key} must be a number, found {value!r}", (*where, key))
        )
    elif not 0.0 <= value <= 1.0:
        findings.append(
            Finding("warning", "out-of-range", f"{key} {value} is outside [0, 1]", (*where, key))
        )


def _check_strings(item: dict, keys: tuple[str, ...], where: tuple, findings: list[Finding]) -> bool:
    ok = True
    for key in keys:
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            findings.append(
                Finding(
                    "error",
                    "block-shape",
                    f"{key} must be a string, found {_kind(value)}",
                    (*where, key),
                )
            )
            ok = False
    return ok


def _read_entity(item: Any, where: tuple, findings: list[Finding]) -> Entity | None:
    if isinstance(item, str):
        entity_id = to_kebab(item) or item
        findings.append(
            Finding(
                "warning",
                "legacy-entity",
                f"entity given as a plain string {item!r}; read as id {entity_id!r}, "
                "with no type or relevance",
                where,
            )
        )
        return Entity(id=entity_id, label=item)
    return _read_mapping(item, "entity", "id", where, findings, Entity, ("relevance",))


def _read_community(item: Any, where: tuple, findings: list[Finding]) -> Community | None:
    if isinstance(item, str):
        community_id = to_kebab(item) or item
        label = None if community_id == item else item
        findings.append(
            Finding(
                "warning",
                "legacy-community",
                f"community given as a plain string {item!r}; read as id {community_id!r}, "
                "with no source or confidence",
                where,
            )
        )
        return Community(id=community_id, label=label)
    return _read_mapping(item, "community", "id", where, findings, Community, ("confidence",))


def _read_link(item: Any, where: tuple, findings: list[Finding]) -> InferredLink | None:
    link = _read_mapping(item, "link", "target", where, findings, InferredLink, ("confidence",))
    if link is None:
        return None
    kind = link.type
    if kind is None:
        if "strength" in item and link.confidence is None:
            findings.append(
                Finding(
                    "warning",
                    "legacy-link",
                    f"link to {link.target!r} has strength: {item['strength']!r} and no "
                    "type or confidence; read as type 'complementary' with unknown confidence",
                    where,
                )
            )
        else:
            findings.append(
                Finding(
                    "warning",
                    "legacy-link",
                    f"link to {link.target!r} has no type; read as 'complementary'",
                    where,
                )
            )
        return link.model_copy(update={"type": DEFAULT_LINK_TYPE})
    if kind in LINK_TYPES:
        return link
    alias = LINK_TYPE_ALIASES.get(kind.strip().lower().replace("-", "_").replace(" ", "_"))
    if alias:
        findings.append(
            Finding(
                "warning",
                "type-alias",
                f"link type {kind!r} is not in the vocabulary; read as {alias!r}",
                (*where, "type"),
            )
        )
        return link.model_copy(update={"type": alias})
    findings.append(
        Finding(
            "warning",
            "unknown-type",
            f"link type {kind!r} is not one of {', '.join(LINK_TYPES)}; kept as written",
            (*where, "type"),
        )
    )
    return link


def _read_mapping(item, what, key, where, findings, model, scores):
    if not isinstance(item, dict):
        findings.append(
            Finding("error", "block-shape", f"{what} must be a mapping, found {_kind(item)}", where)
        )
        return None
    if not isinstance(item.get(key), str) or not item[key].strip():
        findings.append(
            Finding("error", "block-shape", f"{what} has no {key}", where)
        )
        return None
    known = tuple(model.model_fields)
    strings = tuple(k for k in known if k not in scores)
    before = len(findings)
    ok = _check_strings(item, strings, where, findings)
    for score in scores:
        _read_score(item, score, where, findings)
    if not ok or any(f.level == "error" for f in findings[before:]):
        return None
    if any(not isinstance(k, str) for k in item):
        findings.append(Finding("error", "block-shape", f"{what} has a non-string key", where))
        return None
    values = {k: (float(v) if k in scores and v is not None else v) for k, v in item.items()}
    return model(**values)


_ITEM_READERS = {
    "entities": _read_entity,
    "communities": _read_community,
    "inferred_links": _read_link,
}


# --- emitting ------------------------------------------------------------------------------

# Characters PyYAML refuses in a stream, plus the YAML line breaks other than \n.
_MUST_ESCAPE = re.compile("[^\x09\x0a\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+/-]*")
_NUMBERISH = re.compile(
    r"[-+]?(\.inf|\.nan|0o[0-7_]+|0x[0-9a-f_]+|0b[01_]+|[0-9][0-9_:]*(\.[0-9_]*)?(e[-+]?[0-9]+)?)",
    re.IGNORECASE,
)


def quote(text: str) -> str:
    """A YAML double-quoted scalar that any YAML loader reads back as exactly `text`."""
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _MUST_ESCAPE.match(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@lru_cache(maxsize=65536)
def _plain_ok(text: str) -> bool:
    if not _PLAIN.fullmatch(text) or _NUMBERISH.fullmatch(text):
        return False
    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
    return tag == "tag:yaml.org,2002:str"


def scalar(value: Any, quoted: bool = False) -> str:
    """One scalar in the seeds' style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return _float(value)
    if isinstance(value, dt.datetime):
        return quote(value.isoformat())
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if not quoted and _plain_ok(value) else quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(str(k))}: {scalar(v)}" for k, v in value.items()) + "}"
    return quote(str(value))


def _float(value: float) -> str:
    """repr, made readable as a float by YAML 1.1 too (it needs a dot and a signed exponent)."""
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}"


def emit_block(block: GardenBlock, *, indentless: bool = False) -> str:
    """The block as YAML text (with `\\n` line ends), starting with `graph_garden:`."""
    lines = ["graph_garden:"]
    if block.last_pruned is not None:
        lines.append(f"  last_pruned: {scalar(block.last_pruned)}")
    dash = "  - " if indentless else "    - "
    cont = "    " if indentless else "      "
    for name in LISTS:
        items = getattr(block, name)
        if not items:
            lines.append(f"  {name}: []")
            continue
        lines.append(f"  {name}:")
        for item in items:
            lines.extend(emit_item(name, item, dash, cont))
    return "\n".join(lines) + "\n"


def emit_item(name: str, item, dash: str, cont: str) -> list[str]:
    """One item of the list `name` as lines: `dash` before its first field, `cont` before the
    others (`garden.block_text` emits a changed item alone, at its block's indentation)."""
    known = [(k, getattr(item, k)) for k in ITEM_KEYS[name]]
    fields = [(k, v) for k, v in known if v is not None] + list(item.extras().items())
    return [f"{dash if i == 0 else cont}{scalar(key)}: {scalar(value, key in QUOTED_FIELDS)}"
            for i, (key, value) in enumerate(fields)]
