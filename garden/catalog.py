"""Loading a garden: every pattern file in a folder, catalogued by slug, with its problems.

A bad file never stops the rest from loading: it is reported (a `Problem` with its line and
column) and left out of `patterns`, so it is never ranked, proposed as a link target, or written.
A file without frontmatter is not a pattern and is skipped with a warning. Two files with one
slug are both left out (which one is meant cannot be known), but the slug still counts as
present in the garden. A slug must follow `SLUG` (no path separators, spaces or control
characters): it names a file, a link target and a line of output.

A symlinked pattern file is read through its link. One whose target is inside the garden's
folder is tended like any file: writes go to the target and the link stays a link. One that
points outside the garden is read (it is observed, ranked and linked to) but never written:
`read_only` holds it, nothing in a tend changes its block, and `check` warns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from garden.block import to_kebab
from garden.collector import full_collections_paused
from garden.document import (
    Document,
    DocumentError,
    NotAPatternError,
    hash_bytes,
    parse_document,
    read_document_block,
    rebuild_document,
)
from garden.errors import Problem, UnknownPatternError, display_path, forget_folders, real_path
from garden.model import LINK_TYPES, CuratedId, Pattern
from garden.proposal import entity_type_counts

#: A file as read: the pattern (or None) and its problems.
Parsed = tuple[Pattern | None, list[Problem]]


class ParsedFiles(Protocol):
    """A cache of parsed files by their bytes (`events.parse_cache.ParseCache` keeps one beside
    the log): a file read before, unchanged, is not parsed again. It holds patterns without
    their bodies. `load_garden` saves it when it has read the garden."""

    def key(self, content_hash: str, path: Path, shown: str) -> str: ...

    def get(self, key: str) -> Parsed | None: ...

    def put(self, key: str, value: Parsed) -> None: ...

    def save(self) -> None: ...

#: Top-level keys of the older format that hold curated links, and the type each means.
LEGACY_RELATIONSHIPS = {
    "generalizes_from": "generalizes_from",
    "specializes_to": "specializes_to",
    "enables": "enables",
    "requires": "requires",
    "alternatives": "alternatives",
    "related": "complementary",
    "complementary": "complementary",
    "tools": "tools",
}


#: What a slug may be: letters, digits, "-", "_" and ".", starting with a letter or digit.
SLUG = re.compile(r"[^\W_][\w.-]*")


def is_valid_slug(slug: object) -> bool:
    return isinstance(slug, str) and SLUG.fullmatch(slug) is not None


@dataclass
class Garden:
    root: Path
    patterns: dict[str, Pattern] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    skipped: int = 0
    #: Every slug some file claims, including the ones left out for errors.
    known_slugs: set[str] = field(default_factory=set)
    #: Patterns read through a symlink that points outside the garden: slug -> "path: why it
    #: is never written" (the warning `check` prints).
    read_only: dict[str, str] = field(default_factory=dict)
    #: Curated references of the patterns given as pattern ids (`pat_...`), and how many of them
    #: name a pattern (see `resolve_curated_ids`).
    id_references: int = 0
    id_references_resolved: int = 0
    #: Every file is exactly as the log last saw or wrote it (see `garden_as_logged`): there is
    #: nothing to observe, and patterns are read on demand.
    as_logged: bool = False
    _entity_types: tuple[tuple[str, int], ...] | None = field(default=None, repr=False, compare=False)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def failed_files(self) -> set[str]:
        return {p.path for p in self.errors}

    def entity_types(self) -> tuple[tuple[str, int], ...]:
        """How many entities of the files' blocks have each type, most used first (counted once:
        every proposal request of a tend carries them)."""
        if self._entity_types is None:
            self._entity_types = entity_type_counts(p.block for p in self.patterns.values())
        return self._entity_types

    def require(self, slugs: Iterable[str]) -> None:
        """Raise UnknownPatternError for the first of `slugs` that names no pattern here."""
        for slug in slugs:
            if slug not in self.patterns:
                raise UnknownPatternError(slug, "garden")

    def summary(self) -> dict[str, int]:
        """The counts `garden check` reports."""
        patterns = list(self.patterns.values())
        return {
            "files": self.files,
            "patterns": len(patterns),
            "v7_1": sum(p.format == "v7.1" for p in patterns),
            "legacy": sum(p.format == "legacy" for p in patterns),
            "with_block": sum(p.block is not None for p in patterns),
            "skipped": self.skipped,
            "files_with_errors": len(self.failed_files()),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


def pattern_files(root: Path) -> list[Path]:
    """The Markdown files under `root`, in a stable order (as paths sort), skipping hidden files
    and folders; a symlink to a file counts, one to a folder is not followed (as `rglob`)."""
    found = []
    for folder, folders, names in os.walk(root):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            if name.endswith(".md") and not name.startswith(".") and os.path.isfile(os.path.join(folder, name)):
                found.append(Path(folder, name))
    return sorted(found)


def read_pattern(doc: Document) -> tuple[Pattern | None, list[Problem]]:
    """The pattern a parsed document holds, or `None` with the errors that stop it."""
    data = doc.data
    problems: list[Problem] = []
    slug = data.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        problems.append(
            doc.problem("error", "missing slug: add `slug: <file-name>` to the frontmatter",
                        "missing-slug", *_key_position(doc, "slug"))
        )
        return None, problems
    if not is_valid_slug(slug):
        stem = doc.path.stem
        hint = f' (such as the file name, "{stem}")' if is_valid_slug(stem) else ""
        problems.append(
            doc.problem("error", f'slug "{slug}" is not a valid slug: use letters, digits, '
                        f"'-', '_' and '.' only, starting with a letter or digit{hint}",
                        "invalid-slug", *_key_position(doc, "slug"))
        )
        return None, problems
    expected = doc.path.stem
    if slug != expected:
        problems.append(
            doc.problem("error", f'slug "{slug}" differs from the file name "{doc.path.name}"; '
                        f"rename the file to {slug}.md or fix the slug",
                        "slug-mismatch", *_key_position(doc, "slug"))
        )
    block, block_problems = read_document_block(doc)
    problems.extend(block_problems)
    if doc.block_span is not None and block is None:
        return None, problems
    ontology = data.get("ontology") if isinstance(data.get("ontology"), dict) else {}
    hints = ontology.get("search_hints") if isinstance(ontology.get("search_hints"), dict) else {}
    legacy_class = data.get("classification") if isinstance(data.get("classification"), dict) else {}
    relationships, curated_ids = _relationships(doc)
    is_v71 = "relationships" in data  # a block graph-garden added does not make a file v7.1
    pattern = Pattern(
        slug=slug,
        slug_line=_key_position(doc, "slug")[0],
        path=str(doc.path),
        format="v7.1" if is_v71 else "legacy",
        title=_text(data.get("title")),
        summary=_text(data.get("summary") or data.get("description")),
        keywords=tuple(k for k in _list(hints.get("vector_keywords")) if isinstance(k, str)),
        domain=_text(ontology.get("domain") or legacy_class.get("domain")) or None,
        relationships=relationships,
        curated_ids=curated_ids,
        block=block,
        block_text=doc.block_text,
        body_utf8=doc.body.encode("utf-8"),
        content_hash=doc.content_hash,
        text_hash=doc.text_hash,
        layout=(doc.fm_start, doc.fm_end, *(doc.block_span or (None, None))),
        block_alone=doc.block_alone,
        # The block is kept once, as `block` (and `block_text`), not a third time here.
        frontmatter={k: v for k, v in data.items() if k != "graph_garden"},
    )
    return pattern, problems


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


#: What a pattern's `id:` looks like; a curated reference of this shape may name a pattern by id.
PATTERN_ID = re.compile(r"pat_[0-9A-Za-z]+")


def _relationships(doc: Document) -> tuple[dict[str, tuple[str, ...]], tuple[CuratedId, ...]]:
    """The curated graph as type -> targets, from either format, and the targets given as pattern
    ids with where they sit; odd items are skipped, not fatal. The ids stay in the targets: only
    the whole garden knows what they name (`resolve_curated_ids`)."""
    data = doc.data
    if isinstance(data.get("relationships"), dict):
        groups = [(k, f"relationships.{k}", v) for k, v in data["relationships"].items() if k in LINK_TYPES]
    else:
        groups = [(kind, key, data[key]) for key, kind in LEGACY_RELATIONSHIPS.items() if key in data]
    out: dict[str, tuple[str, ...]] = {}
    ids: list[CuratedId] = []
    for kind, key, items in groups:
        targets = []
        cursor = None
        for item in _list(items):
            target = item
            if isinstance(item, dict):
                target = item.get("slug") or item.get("id") or item.get("target")
            if not isinstance(target, str):
                continue
            targets.append(target)
            if PATTERN_ID.fullmatch(target):
                cursor = _field_start(doc, key) if cursor is None else cursor
                line, col, cursor = _value_position(doc, target, cursor)
                ids.append(CuratedId(kind=kind, field=key, id=target, line=line, col=col))
        out[kind] = out.get(kind, ()) + tuple(targets)
    return out, tuple(ids)


def _field_start(doc: Document, key: str) -> int:
    """Offset in the frontmatter of a relationship field ("related", "relationships.enables")."""
    offset = 0
    for depth, part in enumerate(key.split(".")):
        indent = "" if depth == 0 else r"[ \t]+"
        found = re.compile(rf"^{indent}{re.escape(part)}[ \t]*:", re.M).search(doc.frontmatter, offset)
        if found is None:
            return offset
        offset = found.end()
    return offset


def _value_position(doc: Document, value: str, start: int) -> tuple[int, int, int]:
    """Line and column of `value`'s first whole occurrence from `start` in the frontmatter, and
    the offset after it (where the next reference of the field is looked for)."""
    found = re.compile(rf"(?<![\w.-]){re.escape(value)}(?![\w.-])").search(doc.frontmatter, start)
    if found is None:
        return doc.line_of(doc.fm_start + start), 1, start
    col = found.start() - (doc.frontmatter.rfind("\n", 0, found.start()) + 1) + 1
    return doc.line_of(doc.fm_start + found.start()), col, found.end()


def resolve_curated_ids(garden: Garden, ids: dict[str, set[str]]) -> None:
    """Replace the curated references given as pattern ids by the slugs they name (`ids`: each
    `id:` of the garden -> the slugs of the files that hold it). A reference that names no
    pattern, or two, is a warning and is left out; one that is a slug of the garden stays.

    Made on every load, after the files are read (from the parse cache or not): what an id
    names depends on the other files, so it is never cached with one file's parse."""
    for slug, pattern in list(garden.patterns.items()):
        if not pattern.curated_ids:
            continue
        named: dict[str, str | None] = {}
        shown = None
        for ref in pattern.curated_ids:
            garden.id_references += 1
            owners = ids.get(ref.id, set())
            if len(owners) == 1:
                named[ref.id] = next(iter(owners))
                garden.id_references_resolved += 1
                continue
            if ref.id in garden.known_slugs:
                continue
            named[ref.id] = None
            if owners:
                message = (f'{ref.field}: the id "{ref.id}" is held by more than one pattern '
                           f"({', '.join(sorted(owners))}); this curated reference is ignored "
                           "(give the target's slug)")
                code = "ambiguous-curated-id"
            else:
                message = (f'{ref.field}: no pattern in the garden has the id "{ref.id}"; this '
                           "curated reference is ignored (give the target's slug, or add the "
                           "pattern whose id it is)")
                code = "unknown-curated-id"
            shown = shown or display_path(Path(pattern.path))
            garden.problems.append(Problem(shown, ref.line, ref.col, "warning", message, code))
        relationships = {
            kind: tuple(dict.fromkeys(named.get(t, t) for t in targets if named.get(t, t) is not None))
            for kind, targets in pattern.relationships.items()
        }
        garden.patterns[slug] = pattern.model_copy(update={"relationships": relationships})


def _key_position(doc: Document, key: str) -> tuple[int, int]:
    """Line and column of a top-level key (or of the frontmatter's first line when absent)."""
    found = re.search(rf"^{re.escape(key)}[ \t]*:", doc.frontmatter, re.M)
    return doc.line_of(doc.fm_start + (found.start() if found else 0)), 1


def read_files(root: Path, paths: Iterable[Path], cache: ParsedFiles | None = None,
               keep_bodies: bool = True) -> Iterator[tuple[Path, Pattern | None, list[Problem]]]:
    """Read each file; yields (path, pattern or None, problems). Never raises for a bad file.

    Without `keep_bodies`, patterns come without their body. With a `cache`, a file whose bytes
    were parsed before is not parsed again."""
    for path in paths:
        shown = display_path(path)
        try:
            raw = path.read_bytes()
        except OSError as e:
            yield path, None, [Problem(shown, 1, 1, "error", f"cannot read: {e.strerror}", "io")]
            continue
        key = cache and cache.key(hash_bytes(raw), path, shown)
        found = cache.get(key) if cache else None
        if found is not None:
            pattern, problems = found
            if pattern is not None and keep_bodies:  # cached without its body, which is in `raw`
                body = rebuild_document(path, raw, {}, pattern.layout, shown).body
                pattern = pattern.model_copy(update={"body_utf8": body.encode("utf-8")})
            yield path, pattern, problems
            continue
        try:
            doc = parse_document(path, raw, shown)
        except (DocumentError, NotAPatternError) as e:
            if cache:
                cache.put(key, (None, [e.problem]))
            yield path, None, [e.problem]
            continue
        pattern, problems = read_pattern(doc)
        slim = pattern.model_copy(update={"body_utf8": None}) if pattern and (cache or not keep_bodies) else None
        if cache:
            cache.put(key, (slim, problems))
        yield path, pattern if keep_bodies else slim, problems


class _OnDemand(Mapping):
    """Patterns by slug, each read from its file (through the parse cache) when first asked for."""

    def __init__(self, root: Path, paths: dict[str, Path], cache: ParsedFiles | None):
        self._root, self._paths, self._cache, self._read = root, paths, cache, {}

    def __getitem__(self, slug: str) -> Pattern:
        if slug not in self._read:
            path = self._paths[slug]  # KeyError: no such pattern
            _, pattern, _ = next(read_files(self._root, [path], self._cache, keep_bodies=False))
            if pattern is None or pattern.slug != slug:  # changed under us: not the file the log knows
                raise KeyError(slug)
            self._read[slug] = pattern
        return self._read[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, slug: object) -> bool:
        return slug in self._paths


def garden_as_logged(root: Path, known: Mapping[str, tuple[str, str]],
                     cache: ParsedFiles | None = None) -> Garden | None:
    """The garden without parsing it, when every file is exactly as the log last saw or wrote it.

    `known` maps each slug the log knows to its file's path (as recorded, perhaps from another
    working directory or before the garden was moved) and content hash. When the folder holds
    exactly those files (a pattern's file is named after its slug), none a symlink or under one,
    each with that hash, the garden is what the log says: nothing to observe, the same patterns
    (no errors, duplicates or read-only links: files with those are never in the log). Patterns are
    then read on demand (without bodies; curated `pat_` ids not resolved), for a command that
    observes and writes a few blocks (an accept, a revert) over a big garden. None otherwise:
    read it with `load_garden`."""
    root = Path(root)
    paths = pattern_files(root)
    if len(paths) != len(known):
        return None
    real_root = os.path.realpath(root)
    name = os.path.basename(real_root)
    for folder in {p.parent for p in paths}:
        if os.path.realpath(folder) != os.path.normpath(os.path.join(real_root, folder.relative_to(root))):
            return None
    slugs: dict[str, Path] = {}
    for path in paths:
        found = known.get(path.stem)
        # The recorded path is this file's: the same, or the same below a folder of the garden's
        # name (the log written from another working directory, or before the garden was copied).
        tail = f"/{name}/{path.relative_to(root).as_posix()}"
        if found is None or path.stem in slugs or path.is_symlink() \
                or not (found[0] == str(path) or f"/{found[0]}".endswith(tail)):
            return None
        try:
            if hash_bytes(path.read_bytes()) != found[1]:
                return None
        except OSError:
            return None
        slugs[path.stem] = path
    if slugs.keys() != known.keys():
        return None
    return Garden(root=root, patterns=_OnDemand(root, slugs, cache), files=len(paths),  # type: ignore[arg-type]
                  known_slugs=set(slugs), as_logged=True)


@full_collections_paused()
def load_garden(root: Path, progress=None, keep_bodies: bool = True, cache: ParsedFiles | None = None) -> Garden:
    """Read every pattern under `root`. `progress(done, total)` is called as files are read.

    Without `keep_bodies`, a pattern's body is read from its file when asked for (a tend of
    20,000 patterns then holds about 20 KB less per pattern). `cache`: a parse cache
    (`ParsedFiles`, e.g. `events.parse_cache.open_parse_cache(settings)`); files parsed before
    with the same bytes are not parsed again. It is saved when the garden has been read."""
    root = Path(root)
    if isinstance(cache, Path):  # the parse cache's file was passed before it moved to events/
        raise TypeError("load_garden(cache=...) takes a ParsedFiles, such as "
                        "events.parse_cache.open_parse_cache(settings), not a path")
    forget_folders()
    garden = Garden(root=root)
    paths = pattern_files(root)
    claims: dict[str, list[tuple[Pattern, Path]]] = {}
    failed: set[Path] = set()  # files read with an error (a slug that is not the file's name)
    try:
        for done, (path, pattern, problems) in enumerate(read_files(root, paths, cache, keep_bodies), 1):
            garden.files += 1
            garden.problems.extend(problems)
            if pattern is None:
                if any(p.code == "no-frontmatter" for p in problems):
                    garden.skipped += 1
                continue
            claims.setdefault(pattern.slug, []).append((pattern, path))
            if any(p.level == "error" for p in problems):
                failed.add(path)
            if progress:
                progress(done, len(paths))
    finally:
        if cache is not None:
            cache.save()
    real_root = Path(os.path.realpath(root))
    ids: dict[str, set[str]] = {}
    for slug, owners in claims.items():
        for pattern, _ in owners:
            if isinstance(pattern.frontmatter.get("id"), str):
                ids.setdefault(pattern.frontmatter["id"], set()).add(slug)
    for slug, owners in claims.items():
        garden.known_slugs.add(slug)
        if len(owners) == 1:
            if owners[0][1] not in failed:
                garden.patterns[slug] = owners[0][0]
                outside = _link_outside(real_root, owners[0][1])
                if outside is not None:
                    garden.read_only[slug] = f"{outside.path}: {outside.message}"
                    garden.problems.append(outside)
            continue
        shown = [display_path(path) for _, path in owners]
        for pattern, path in owners:
            others = ", ".join(s for s in shown if s != display_path(path))
            garden.problems.append(
                Problem(display_path(path), pattern.slug_line, 1, "error",
                        f'duplicate slug "{slug}" (also in {others}); neither file is tended '
                        "until one is renamed", "duplicate-slug")
            )
    resolve_curated_ids(garden, ids)
    garden.problems.sort(key=lambda p: (p.path, p.line, p.col))
    return garden


def _link_outside(real_root: Path, path: Path) -> Problem | None:
    """The warning for a file the garden (whose folder resolves to `real_root`) reaches through
    a symlink to outside its folder."""
    real = real_path(path)
    if real.is_relative_to(real_root):
        return None
    shown = str(Path(display_path(path.parent)) / path.name)  # the link's name, not its target's
    return Problem(shown, 1, 1, "warning",
                   f"a symlink to {real}, outside the garden: read, never written (its block is "
                   "left as it is; put the file itself in the garden to have it tended)", "symlink-outside")


__all__ = ["Garden", "Parsed", "ParsedFiles", "load_garden", "pattern_files", "read_pattern", "read_files", "to_kebab"]
