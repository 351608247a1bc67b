"""One pattern file as text: where its frontmatter and `graph_garden` block sit, byte for byte.

A `Document` keeps the file's exact text and the character span of its block, so that writing a
new block is a splice: every character outside the span is the file's own (comments, quoting,
flow style, key order, blank lines, CRLF, a BOM, the body). The frontmatter reads as
python-frontmatter's YAML handler reads it (libyaml's safe loader), through `garden.yaml_fast`;
the span itself is found by scanning lines, since no YAML loader reports where a value ends.
Every splice is checked by parsing again: the new block must read back as intended and every
other key exactly as before, or nothing is written. Where the parse showed the block's place
between two top-level entries (`Document.block_alone`), the new block's text parsed alone proves
that; else the frontmatter is composed again, or the whole file parsed again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from garden import yaml_fast
from garden.block import emit_block, read_block
from garden.block_text import emit_block_over
from garden.errors import PatternError, Problem
from garden.model import GardenBlock

_DELIMITER = re.compile(r"---[ \t]*\r?\n?")
_BLOCK_KEY = re.compile(r"graph_garden[ \t]*:(?:[ \t]|\r?\n|$)")
_INDENTLESS = re.compile(r"^([ \t]*)[^\s#-][^\n]*:[ \t]*\r?\n\1- ", re.MULTILINE)
_BOM = "\ufeff"


def hash_bytes(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed pattern file. Offsets index `text` (the decoded file without its BOM)."""

    path: Path
    display: str
    raw: bytes
    text: str
    bom: bool
    newline: str
    fm_start: int  # first character of the YAML
    fm_end: int  # first character of the closing delimiter line
    data: dict
    block_span: tuple[int, int] | None  # the `graph_garden:` lines, ending after a newline
    #: The block's place (its lines, or where `replace_block` would put one) lies between two
    #: top-level entries, as the parse showed: a write there can be checked by parsing the new
    #: block alone (`_block_alone_reads_right`). False when not known.
    block_alone: bool = False

    @property
    def content_hash(self) -> str:
        return hash_bytes(self.raw)

    @property
    def text_hash(self) -> str:
        """Hash of the text outside the block (what a person writes, not what we write)."""
        if self.block_span is None:
            return hash_bytes(self.text.encode("utf-8"))
        start, end = self.block_span
        return hash_bytes((self.text[:start] + self.text[end:]).encode("utf-8"))

    @property
    def frontmatter(self) -> str:
        return self.text[self.fm_start : self.fm_end]

    @property
    def body(self) -> str:
        end = _DELIMITER.match(self.text, self.fm_end)
        return self.text[end.end() if end else self.fm_end :]

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def problem(self, level: str, message: str, code: str, line: int = 1, col: int = 1) -> Problem:
        return Problem(self.display, line, col, level, message, code)

    @property
    def block_text(self) -> str | None:
        if self.block_span is None:
            return None
        return self.text[self.block_span[0] : self.block_span[1]]


class NotAPatternError(PatternError):
    """The file has no frontmatter: it is not a pattern and is skipped."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class DocumentError(PatternError):
    """The file cannot be read as a pattern; `problem` says where and why."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def parse_document(path: Path, raw: bytes, display: str | None = None) -> Document:
    """Split and parse one file; raises `DocumentError` or `NotAPatternError` with a position."""
    display = display or str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DocumentError(
            Problem(display, line, col, "error",
                    f"not valid UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8",
                    "encoding")
        ) from e
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    opening = _DELIMITER.match(text)
    if not opening or not opening.group().endswith("\n"):
        raise NotAPatternError(
            Problem(display, 1, 1, "warning",
                    "no YAML frontmatter (the file does not start with ---); not a pattern, skipped",
                    "no-frontmatter")
        )
    newline = "\r\n" if opening.group().endswith("\r\n") else "\n"
    fm_start = opening.end()
    fm_end = _find_closing(text, fm_start)
    if fm_end is None:
        raise DocumentError(
            Problem(display, 1, 1, "error",
                    "frontmatter opened with --- is never closed; add a --- line after it",
                    "unclosed-frontmatter")
        )
    try:
        data, root = yaml_fast.load_with_nodes(text[fm_start:fm_end])
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = (mark.line + 2) if mark else 1
        col = (mark.column + 1) if mark else 1
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        context = getattr(e, "context", None)
        message = f"broken YAML: {what}" + (f" ({context})" if context else "")
        raise DocumentError(Problem(display, line, col, "error", message, "yaml")) from e
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError) as e:
        # The loader reads `2026-02-30` as a date and fails on it, without a position (and
        # `!!timestamp abc` ends in an AttributeError inside it, `!!bool maybe` in a KeyError).
        where = _impossible_date(text, fm_start, fm_end)
        if where is None:  # e.g. `!!int abc`: the loader says what, not where
            raise DocumentError(
                Problem(display, 2, 1, "error",
                        f"a value in the frontmatter cannot be read ({e}); look for a tagged value "
                        "such as !!int, !!float or !!bool", "bad-value")
            ) from e
        raise DocumentError(
            Problem(display, *where, "error",
                    f"a value YAML reads as a date is not a real date ({e}); correct it, or quote it "
                    "to keep it as text", "bad-date")
        ) from e
    if not isinstance(data, dict):
        raise DocumentError(
            Problem(display, 2, 1, "error",
                    f"frontmatter must be a mapping of keys, found {type(data).__name__}",
                    "frontmatter-shape")
        )
    span = _find_block(text, fm_start, fm_end) if "graph_garden" in data else None
    doc = Document(path, display, raw, text, bom, newline, fm_start, fm_end, data, span)
    if "graph_garden" in data and span is None:
        raise DocumentError(
            doc.problem("error",
                        "cannot find the graph_garden: key at the start of a line; "
                        "write it as a top-level key", "block-position")
        )
    place = span or (_insertion_point(doc)[0],) * 2
    return replace(doc, block_alone=_stands_alone(root, doc.frontmatter, place[0] - fm_start, place[1] - fm_start))


_DOCUMENT_MARKS = re.compile(r"^(?:%|---|\.\.\.)", re.M)


def _stands_alone(root, fm: str, start: int, end: int) -> bool:
    """Whether `fm[start:end]` (the block's lines, or the empty place for one) lies between
    top-level entries: the frontmatter is one block mapping whose keys are plain strings at
    column 0 (no merge key, no directive or document marker), every entry before the place ends
    before it, and the place holds nothing but the one graph_garden entry, which ends in it.

    libyaml reads such a place from the state "top-level mapping, expecting a key at column 0",
    whatever came before, and leaves the same state behind when what is there is one entry whose
    later lines are all indented: that is what lets the write check parse a new block alone."""
    if not isinstance(root, yaml.MappingNode) or root.flow_style or _DOCUMENT_MARKS.search(fm):
        return False
    inside = 0
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str" \
                or key.start_mark.column != 0:
            return False
        at = key.start_mark.index
        if key.value == "graph_garden" or start <= at < end:
            inside += 1
            if at != start or key.value != "graph_garden" or _content_end(value) > end:
                return False
        elif at < start and _content_end(value) > start:
            return False
    return inside == (start != end)


_DATE_LIKE = re.compile(  # a date, or a date and time, as YAML 1.1 timestamps are written
    r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(\d{1,2}):(\d{2}):(\d{2})(?:\.\d*)?(?:[ \t]*(?:Z|[-+](\d{1,2})(?::?(\d{2}))?))?)?"
    r"(?![\w.:-])")


def _impossible_date(text: str, fm_start: int, fm_end: int) -> tuple[int, int] | None:
    """Line and column of the first date-shaped value that is no date (e.g. 2026-02-30)."""
    for found in _DATE_LIKE.finditer(text, fm_start, fm_end):
        *when, zone_hours, zone_minutes = found.groups()
        try:
            dt.datetime(*(int(part) for part in when if part is not None))
            if int(zone_hours or 0) > 23 or int(zone_minutes or 0) > 59:
                raise ValueError("time zone offset out of range")
        except ValueError:
            line = text.count("\n", 0, found.start()) + 1
            return line, found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return None


_CLOSING = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)


def rebuild_document(path: Path, raw: bytes, data: dict, layout: tuple, display: str | None = None,
                     block_alone: bool = False) -> Document:
    """A Document from bytes already parsed once (same hash), without parsing the YAML again."""
    text = raw.decode("utf-8")
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    fm_start, fm_end, block_start, block_end = layout
    newline = "\r\n" if text[:fm_start].endswith("\r\n") else "\n"
    span = None if block_start is None else (block_start, block_end)
    return Document(path, display or str(path), raw, text, bom, newline, fm_start, fm_end, data, span,
                    block_alone)


def read_body(path: str, content_hash: str, layout: tuple) -> str:
    """A pattern's body read from its file again (a tend does not keep 20,000 bodies in memory).

    The file as it was read splices at the known place; a file changed since is parsed again,
    and its new body is what there is to read (the change itself is observed by the next run).
    A file gone or broken since gives an empty body: nothing is written to it this run anyway,
    since every write checks the file's hash first.
    """
    try:
        raw = Path(path).read_bytes()
        if hash_bytes(raw) == content_hash:
            return rebuild_document(Path(path), raw, {}, layout).body
        return parse_document(Path(path), raw).body
    except (OSError, PatternError):
        return ""


def stored_body(body_utf8: bytes | None, path: str, content_hash: str, layout: tuple) -> str:
    """A pattern's body (`Pattern.body`): its UTF-8 when kept in memory, else read from its file
    again (`read_body`)."""
    return body_utf8.decode("utf-8") if body_utf8 is not None else read_body(path, content_hash, layout)


def block_layout(text: str, fm_start: int) -> tuple[int, tuple[int, int] | None] | None:
    """Where the frontmatter opened at `fm_start` ends and where its block sits, by the same line
    scans `parse_document` uses (no YAML): (fm_end, block span or None), or None unclosed."""
    fm_end = _find_closing(text, fm_start)
    if fm_end is None:
        return None
    return fm_end, _find_block(text, fm_start, fm_end)


def _find_closing(text: str, start: int) -> int | None:
    found = _line_starts(text, start, len(text), "---", _CLOSING)
    return found[0] if found else None


_BLOCK_LINE = re.compile(r"graph_garden[ \t]*:")


def _line_starts(text: str, start: int, end: int, head: str, pattern: re.Pattern) -> list[int]:
    """Where `pattern` matches at the start of a line of `text` (the lines that begin with `head`,
    from `start` on, the match ending by `end`): what a search with `^` and re.MULTILINE finds,
    found by str.find rather than by trying the pattern at every character."""
    candidates = [start] if (start == 0 or text[start - 1] == "\n") and text.startswith(head, start) else []
    at = text.find("\n" + head, start, end)
    while at >= 0:
        candidates.append(at + 1)
        at = text.find("\n" + head, at + 1, end)
    return [at for at in candidates if pattern.match(text, at, end)]


def _find_block(text: str, fm_start: int, fm_end: int) -> tuple[int, int] | None:
    """The `graph_garden:` key line and the indented (or blank) lines under it.

    Trailing blank lines stay outside the span. Two top-level graph_garden keys is ambiguous
    (YAML loaders keep the last silently), so it finds none.
    """
    starts = _line_starts(text, fm_start, fm_end, "graph_garden", _BLOCK_LINE)
    if len(starts) != 1:
        return None
    start = starts[0]
    pos = text.find("\n", start, fm_end)
    if pos < 0:
        return start, fm_end
    pos += 1
    end = pos
    while pos < fm_end:
        nl = text.find("\n", pos, fm_end)
        line_end = fm_end if nl < 0 else nl + 1
        line = text[pos:line_end]
        if line[:1] in (" ", "\t"):
            if line.strip():
                end = line_end
        elif line.strip("\r\n"):
            break
        pos = line_end
    return start, end


def read_document_block(doc: Document) -> tuple[GardenBlock | None, list[Problem]]:
    """The document's block, read and normalised, with each finding placed at its line."""
    if doc.block_span is None:
        return None, []
    block, findings = read_block(doc.data.get("graph_garden"))
    if not findings:
        return block, []
    positions = _positions(doc.block_text)
    first = doc.line_of(doc.block_span[0])
    problems = []
    for finding in findings:
        located = _locate(positions, finding.where)
        line, col = (first + located[0], located[1] + 1) if located else (first, 1)
        problems.append(doc.problem(finding.level, finding.message, finding.code, line, col))
    return block, problems


def _positions(block_text: str):
    """The block loaded by ruamel.yaml, whose nodes know their line and column.

    Only used when there is something to report, so the slower loader costs nothing on the
    common path; `None` when it cannot load the block (a position is a nicety).
    """
    from ruamel.yaml import YAML

    try:
        return YAML(typ="rt", pure=True).load(block_text)["graph_garden"]
    except Exception:
        return None


def _locate(node, where: tuple) -> tuple[int, int] | None:
    """Line offset and column of a path inside the block, e.g. ("inferred_links", 3, "type")."""
    found = None
    for step in where:
        try:
            if isinstance(step, int):
                found = node.lc.item(step)
            elif step in node:
                found = node.lc.key(step)
            node = node[step]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
    return found


def is_indentless(doc: Document) -> bool:
    """Whether list items sit at their key's indentation (`key:\n- item`), as the block or,
    when it has no items, the rest of the file writes them."""
    if doc.block_text:
        item = re.search(r"^( +)- ", doc.block_text, re.M)
        if item:
            return len(item.group(1)) <= 2
    return bool(_INDENTLESS.search(doc.frontmatter))


def replace_block(doc: Document, block: GardenBlock, current: GardenBlock | None = None) -> bytes:
    """The file's bytes with `block` in place of its own; every other byte as it was.

    Over an existing block (which reads as `current`, read from `doc` when not given), each item
    whose value did not change keeps its exact lines (`garden.block_text`); when that text
    cannot be made or does not read back as `block`, the whole block is emitted afresh.
    A file with no block gets one where the spec puts it: after the relationships group and
    before the provenance group (`contributors:`), with the GROUP 6 banner when the file uses
    banners.
    """
    indentless = is_indentless(doc)
    if doc.block_span is not None:
        if current is None:
            current = read_block(doc.data.get("graph_garden"))[0]
        old_text = doc.block_text
        if doc.newline == "\r\n":
            old_text = old_text.replace("\r\n", "\n")
        kept = None if current is None else emit_block_over(old_text, current, block, indentless=indentless)
        if kept is not None:
            try:
                return _splice(doc, _with_newline(kept, doc.newline), block)
            except PatternError:
                pass  # not provably the same block: the fresh emission below
        return _splice(doc, _with_newline(emit_block(block, indentless=indentless), doc.newline), block)
    text = _with_newline(emit_block(block, indentless=indentless), doc.newline)
    at, prefix = _insertion_point(doc)
    inserted = _with_newline(prefix, doc.newline) + text
    new_text = doc.text[:at] + inserted + doc.text[at:]
    _verify(doc, new_text, block, (at, at + len(inserted)))
    return ((_BOM if doc.bom else "") + new_text).encode("utf-8")


def adds_banner(doc: Document) -> bool:
    """Whether `replace_block` puts a GROUP 6 banner in with the block (the file has no block,
    no banner of its own, and uses banners)."""
    return doc.block_span is None and "GROUP 6" in _insertion_point(doc)[1]


def put_block_text(doc: Document, block_text: str | None, block: GardenBlock | None,
                   drop_banner: bool = False) -> bytes:
    """The file's bytes with its block replaced by exact text (or removed, when None).

    Used to put back a block as it was once written, style and all; `block` is what the text
    must read as, checked like every splice. With `drop_banner`, a block removed takes the
    GROUP 6 banner just above it along: the banner `replace_block` put in with it, so a file
    that had neither gets back exactly its old bytes.
    """
    if block_text is not None:  # in the file's newline style, whatever the file had then
        block_text = _with_newline(block_text.replace("\r\n", "\n"), doc.newline)
    if doc.block_span is None:
        if block_text is None:
            return doc.raw
        at, _ = _insertion_point(doc)
        new_text = doc.text[:at] + block_text + doc.text[at:]
        _verify(doc, new_text, block, (at, at + len(block_text)))
        return ((_BOM if doc.bom else "") + new_text).encode("utf-8")
    if block_text is None and drop_banner:
        start, end = doc.block_span
        banner = _OWN_BANNER_ABOVE.search(doc.text[:start])
        if banner:
            new_text = doc.text[: banner.start()] + doc.text[end:]
            _verify(doc, new_text, None)
            return ((_BOM if doc.bom else "") + new_text).encode("utf-8")
    return _splice(doc, block_text or "", block)


def _spliced_alone_reads_right(doc: Document, new_text: str, block: GardenBlock | None,
                               region: tuple[int, int]) -> bool:
    """Whether the spliced text provably reads as `doc` with `block` as its block, from the
    composed nodes, without constructing anything but the block: the frontmatter still ends
    where it did (so the body is the same text), its top-level keys are the old ones in the same
    order with graph_garden where the splice put it, and every other key, key and value, lies
    wholly outside the splice (the same text in the same place reads the same; an alias that
    could reach into the block makes it unprovable). False means "parse it all to know"."""
    if _block_alone_reads_right(doc, new_text, block, region):
        return True
    start, end = region
    delta = len(new_text) - len(doc.text)
    if not doc.fm_start <= start <= end <= doc.fm_end + delta:
        return False
    if _find_closing(new_text, doc.fm_start) != doc.fm_end + delta:
        return False
    spliced = new_text[start:end]
    outside = new_text[doc.fm_start:start] + new_text[end:doc.fm_end + delta]
    if "&" in spliced and "*" in outside:  # an anchor in the block, perhaps an alias to it
        return False
    fm = new_text[doc.fm_start:doc.fm_end + delta]
    try:
        root = yaml_fast.compose_yaml(fm)
    except yaml.YAMLError:
        return False
    if not isinstance(root, yaml.MappingNode):
        return False
    start, end = start - doc.fm_start, end - doc.fm_start
    keys, found = [], None
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
            return False
        until = _content_end(value)
        if key.value == "graph_garden":
            if not start <= key.start_mark.index <= until <= end or found is not None:
                return False
            found = value
        elif not (until <= start or key.start_mark.index >= end):
            return False
        else:
            keys.append(key.value)
    if keys != [k for k in doc.data if k != "graph_garden"]:
        return False
    if found is None:
        return block is None
    loader = yaml_fast.FastLoader("")
    try:
        data = yaml_fast.construct_node(loader, found, fm)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, AttributeError):
        return False
    finally:
        loader.dispose()
    return block is not None and read_block(data)[0] == block


#: What a write puts in a block's place: comment lines (a banner), the graph_garden line, and
#: lines that are indented or empty, each ended by a newline.
_PLACED = re.compile(r"(?:#[^\n]*\n)*graph_garden[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n|\r?\n)*")
_OTHER_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")  # line breaks to libyaml too


def _block_alone_reads_right(doc: Document, new_text: str, block: GardenBlock | None,
                             region: tuple[int, int]) -> bool:
    """Whether the spliced text provably reads as `doc` with `block` as its block, from the new
    block's text parsed alone: `doc`'s parse showed its block's place between two top-level
    entries (`Document.block_alone`), the splice changed that place only, and the new text there
    is one top-level graph_garden entry whose later lines are all indented (`_stands_alone`
    says why libyaml then reads the rest of the file as before). An anchor in the old or new
    block with an alias outside it, or an alias in the block to an anchor outside, is left to
    the longer checks. False means "not proven"."""
    if not doc.block_alone:
        return False
    place = doc.block_span or (_insertion_point(doc)[0],) * 2
    start, end = region
    if start != place[0] or len(new_text) - end != len(doc.text) - place[1] \
            or not new_text.startswith(doc.text[:start]) or not new_text.endswith(doc.text[place[1]:]):
        return False
    spliced = new_text[start:end]
    delta = len(new_text) - len(doc.text)
    anchors = "&" in spliced or "&" in doc.text[place[0]:place[1]]
    aliases = new_text.find("*", doc.fm_start, start) >= 0 or new_text.find("*", end, doc.fm_end + delta) >= 0
    if anchors and aliases:
        return False
    if not spliced:
        return block is None
    if not _PLACED.fullmatch(spliced) or _OTHER_BREAKS.search(spliced):
        return False
    try:
        data, root = yaml_fast.load_with_nodes(spliced)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, AttributeError):
        return False
    if not isinstance(root, yaml.MappingNode) or root.flow_style or len(root.value) != 1:
        return False
    key, value = root.value[0]
    if key.tag != "tag:yaml.org,2002:str" or key.value != "graph_garden" or key.start_mark.column != 0 \
            or _content_end(value) > len(spliced):
        return False
    return block is not None and read_block(data["graph_garden"])[0] == block


def block_alone_after_write(doc: Document, new_text: str, span: tuple[int, int] | None) -> bool | None:
    """`Document.block_alone` of `new_text`, which a checked write of `doc`'s block made (it
    changed the block's place only; the block now lies at `span`), without parsing it; None when
    that takes a parse. Known when the old place stood alone and the new block is one entry whose
    later lines are all indented (what stood before and after the place still does), or the block
    went and a new one would go where it was (the place is the old one, emptied)."""
    if not doc.block_alone:
        return None
    if span is not None:
        return True if _PLACED.fullmatch(new_text, *span) and not _OTHER_BREAKS.search(new_text, *span) else None
    if doc.block_span is None:
        return None
    emptied = replace(doc, text=new_text, fm_end=doc.fm_end + len(new_text) - len(doc.text), block_span=None)
    return True if _insertion_point(emptied)[0] == doc.block_span[0] else None


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends: its last scalar's end (a collection's end mark lies at the
    next token, past any comment lines that follow it)."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node.end_mark.index


_OWN_BANNER_ABOVE = re.compile(
    r"^#[ \t]*[═=─-]{3,}[^\n]*\n#[ \t]*GROUP 6\b[^\n]*\n#[ \t]*[═=─-]{3,}[^\n]*\r?\n\Z", re.M)


def put_block(doc: Document, block: GardenBlock | None, text: str | None = None, drop_banner: bool = False,
              current: GardenBlock | None = None) -> tuple[bytes, bool]:
    """The file's bytes with `block` in it, and whether a GROUP 6 banner went in with it.

    The one rule for writing a block back, for a tend, a curator's command, a revert and a
    replay alike: the exact `text` the block once had in the file, when the log knows it
    (`events.replay.projected_block`), else the block emitted over the file's own
    (`replace_block`, keeping the lines of unchanged items). `block` None removes the block
    (and, with `drop_banner`, the banner a write put in with it)."""
    if text is not None or block is None:
        return put_block_text(doc, text, block, drop_banner), False
    return replace_block(doc, block, current), adds_banner(doc)


def _splice(doc: Document, block_text: str, block: GardenBlock | None) -> bytes:
    start, end = doc.block_span
    new_text = doc.text[:start] + block_text + doc.text[end:]
    _verify(doc, new_text, block, (start, start + len(block_text)))
    return ((_BOM if doc.bom else "") + new_text).encode("utf-8")


def _with_newline(text: str, newline: str) -> str:
    return text if newline == "\n" else text.replace("\n", newline)


def _insertion_point(doc: Document) -> tuple[int, str]:
    fm = doc.frontmatter
    own = re.search(r"^#[ \t]*GROUP 6\b[^\n]*\n#[ \t]*[═=─-]{3,}[^\n]*\n", fm, re.M)
    if own:  # the file already has the group's banner (its block was taken out): fill it in
        return doc.fm_start + own.end(), ""
    banner = re.search(r"^(#[ \t]*[═=─-]{3,}[^\n]*)\r?\n#[ \t]*GROUP 7\b", fm, re.M)
    if banner:
        rule = banner.group(1).rstrip("\r")
        title = "# GROUP 6: GRAPH GARDEN (Machine-Written Graph)"
        return doc.fm_start + banner.start(), f"{rule}\n{title}\n{rule}\n"
    provenance = re.search(r"^contributors[ \t]*:", fm, re.M)
    if provenance:
        return doc.fm_start + provenance.start(), ""
    # No provenance group: the end of the frontmatter, after a final newline if it lacks one.
    if fm and not fm.endswith("\n"):
        return doc.fm_end, "\n"
    return doc.fm_end, ""


def _verify(doc: Document, new_text: str, block: GardenBlock | None,
            region: tuple[int, int] | None = None) -> None:
    """Parse the spliced text again: the block must read as `block`, every other key and the
    body as before. Catches a block whose extent the line scan misread (say, a comment at
    column 0 inside it): the file is then left as it is.

    Given the `region` of `new_text` the splice put in, the YAML is composed (libyaml's nodes
    with their positions) and only the block is constructed, when that settles it
    (`_spliced_alone_reads_right`); the whole file is parsed again otherwise."""
    if region is not None and _spliced_alone_reads_right(doc, new_text, block, region):
        return
    problem = "it did not parse"
    try:
        new_doc = parse_document(doc.path, new_text.encode("utf-8"), doc.display)
    except PatternError:
        new_doc = None
    if new_doc is not None:
        read = read_block(new_doc.data.get("graph_garden"))[0] if new_doc.block_span else None
        others = {k: v for k, v in new_doc.data.items() if k != "graph_garden"}
        if read != block:
            problem = "the block reads back differently"
        elif others != {k: v for k, v in doc.data.items() if k != "graph_garden"}:
            problem = "other keys would change"
        elif new_doc.body != doc.body:
            problem = "the body would change"
        else:
            return
    raise PatternError(
        f"{doc.display}: error: the new graph_garden block would not read back as written "
        f"({problem}); the file was left unchanged (please report this with the file)"
    )
