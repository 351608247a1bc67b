"""The domain values: a pattern, its curated relationships and its machine-written block.

The `graph_garden` block is typed strictly enough for the pipeline (links have a target, a type,
a confidence, a reason) and loosely enough to hold what real files carry: a field the spec does
not name is kept in the item's extras and written back after the known ones, never dropped.
`None` for a confidence or relevance means "the file did not say" (legacy items), which the
policy treats as unknown rather than as zero.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The seven relationship types of the pattern spec (v7.1), in the spec's order.
LINK_TYPES: tuple[str, ...] = (
    "generalizes_from",
    "specializes_to",
    "enables",
    "requires",
    "alternatives",
    "complementary",
    "tools",
)

#: Spellings seen in real blocks that plainly mean one of the seven types.
LINK_TYPE_ALIASES: dict[str, str] = {
    "generalizes": "generalizes_from",
    "generalises_from": "generalizes_from",
    "generalization": "generalizes_from",
    "specializes": "specializes_to",
    "specialises_to": "specializes_to",
    "specialization": "specializes_to",
    "enabler": "enables",
    "enable": "enables",
    "enabled_by": "requires",
    "require": "requires",
    "requirement": "requires",
    "depends_on": "requires",
    "alternative": "alternatives",
    "complements": "complementary",
    "complement": "complementary",
    "complementary_to": "complementary",
    "tool": "tools",
}


class Item(BaseModel):
    """Base of the block's list items: unknown keys are kept, in order, as extras."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def extras(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class Entity(Item):
    id: str
    type: str | None = None
    label: str | None = None
    relevance: float | None = None


class Community(Item):
    id: str
    label: str | None = None
    source: str | None = None
    confidence: float | None = None


class InferredLink(Item):
    target: str
    type: str | None = None
    confidence: float | None = None
    reason: str | None = None


class GardenBlock(BaseModel):
    """The `graph_garden:` block of one pattern."""

    model_config = ConfigDict(frozen=True)

    last_pruned: dt.date | None = None
    entities: tuple[Entity, ...] = ()
    communities: tuple[Community, ...] = ()
    inferred_links: tuple[InferredLink, ...] = ()


def as_block(data: dict | GardenBlock | None) -> GardenBlock | None:
    """A block as the log and the state hold it (JSON data, or None for no block) as a model.

    The one way from data to a block: the projection, replay, writing, review and revert all
    read a stored block through it."""
    if data is None or isinstance(data, GardenBlock):
        return data
    return GardenBlock.model_validate(data)


def block_for_file(projected: GardenBlock | None, file_has_block: bool) -> GardenBlock | None:
    """The block a file holds by the log's account: the log's block, except that a block with no
    items is not put into a file that has none (it stays without one). A tend's write, a
    revert's, a replay and `garden verify` all go by this."""
    if projected is not None and not file_has_block and not (
            projected.entities or projected.communities or projected.inferred_links):
        return None
    return projected


class CuratedId(BaseModel):
    """A curated relationship given by a pattern's `id:` (`pat_...`) rather than its slug, as
    legacy files hold them: where it sits, so the garden can resolve it or say it names nothing."""

    model_config = ConfigDict(frozen=True)

    kind: str  # the link type it counts as
    field: str  # the key that holds it, as written ("related", "relationships.complementary")
    id: str
    line: int = 1
    col: int = 1


class Pattern(BaseModel):
    """One pattern file as the pipeline sees it.

    `frontmatter` holds the whole parsed frontmatter but the block (every key, typed or not), so
    nothing a later stage might want is lost; the typed fields are the ones the pipeline uses.
    """

    model_config = ConfigDict(frozen=True)

    slug: str
    slug_line: int = 1
    path: str
    format: Literal["v7.1", "legacy"]
    title: str = ""
    summary: str = ""
    keywords: tuple[str, ...] = ()
    domain: str | None = None
    relationships: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: The references of `relationships` given as pattern ids. A file read alone keeps the ids
    #: in `relationships`; `load_garden` replaces them by the slugs they name (see garden.catalog).
    curated_ids: tuple[CuratedId, ...] = ()
    block: GardenBlock | None = None
    #: The block's exact text in the file (None without a block).
    block_text: str | None = None
    #: The Markdown body as UTF-8: half the memory of a str that holds one em dash (a str then
    #: takes 2 bytes a character), which counts at 20,000 patterns. None: not kept in memory
    #: (a tend's garden), and `body` reads it from the file again when asked.
    body_utf8: bytes | None = b""
    content_hash: str
    #: Hash of the file without its block: changes when a person edits the pattern itself.
    text_hash: str = ""
    #: Where the frontmatter and the block sit in the file's text (see garden.document), so a
    #: write can splice without parsing the file again when its bytes are unchanged.
    layout: tuple[int, int, int | None, int | None] = (0, 0, None, None)
    #: The parse showed the block's place between two top-level entries (`Document.block_alone`):
    #: a write there is checked by parsing the new block alone.
    block_alone: bool = False
    frontmatter: dict[Any, Any] = Field(default_factory=dict)  # YAML keys need not be strings

    @property
    def body(self) -> str:
        from garden.document import stored_body

        return stored_body(self.body_utf8, self.path, self.content_hash, self.layout)

    def curated_targets(self) -> set[str]:
        """Every slug the human-curated graph already links this pattern to."""
        return {slug for targets in self.relationships.values() for slug in targets}
