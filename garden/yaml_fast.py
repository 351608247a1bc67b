"""YAML read exactly as PyYAML's C safe loader reads it, in less time.

`yaml.load(text, Loader=yaml.CSafeLoader)` spends most of its time in Python, not in libyaml:
the C parser calls the Python `resolve` for every node, and the constructor visits every node
through the generic `construct_object` (generators, state stacks, a table of constructors).
This module keeps libyaml's parser and composer, so the nodes, and every parse error with its
message, are PyYAML's own, and changes three things:

- `resolve` is memoised (`functools.lru_cache`, C code: a hit costs no Python frame). Its answer
  depends only on its arguments, since the safe resolver has no path resolvers; most scalars of
  a pattern file are keys and enum values that repeat from file to file. The two resolver hooks
  the C parser also calls for every node, which do nothing without path resolvers, are builtins.
- Documents made only of the plain tags (str, int, float, bool, null, timestamp, map, seq) are
  built by one direct recursion over the nodes, which calls PyYAML's own constructor functions
  for the scalars it does not read itself. Anything else (another tag, a merge key `<<`, a
  possible anchor, a value that does not construct) is handed to PyYAML's constructor on the
  same nodes: the result, or the error, is then PyYAML's by construction.
- The cyclic garbage collector waits while a document is parsed (`_collector_paused`).

`tests/test_yaml_fast.py` checks the sameness: values, types, key order, shared objects, errors.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import operator
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = Resolver()

_AMPERSAND = re.compile(r"&(?!\s)")  # an anchor's name follows its & at once

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


@functools.lru_cache(maxsize=8192)
def _resolve(kind: type, value: str | None, implicit: Any) -> str:
    return _RESOLVER.resolve(kind, value, implicit)


class FastLoader(_BASE):
    """The C safe loader with a memoised `resolve` (same tags, same nodes, same errors)."""

    resolve = staticmethod(_resolve)

    if not _BASE.yaml_path_resolvers:
        # Without path resolvers these two do nothing, and the C parser calls them for every
        # node: builtins that take the same arguments and do nothing cost no Python frame.
        descend_resolver = staticmethod(operator.is_)  # (parent, index)
        ascend_resolver = staticmethod(tuple)  # ()


class _Unusual(Exception):
    """The document is not one the direct construction reads; PyYAML's constructor will."""


def load_yaml(text: str) -> Any:
    """What `yaml.load(text, Loader=yaml.CSafeLoader)` returns (or raises), faster."""
    return load_with_nodes(text)[0]


def load_with_nodes(text: str) -> tuple[Any, Node | None]:
    """`load_yaml(text)`, and the composed nodes it was constructed from (None when empty)."""
    loader = FastLoader(text)
    try:
        with _collector_paused():
            root = loader.get_single_node()
            return (None if root is None else construct_node(loader, root, text)), root
    finally:
        loader.dispose()


def compose_yaml(text: str) -> Node | None:
    """What `yaml.compose(text, Loader=yaml.CSafeLoader)` returns (or raises), faster."""
    loader = FastLoader(text)
    try:
        with _collector_paused():
            return loader.get_single_node()
    finally:
        loader.dispose()


@contextlib.contextmanager
def _collector_paused():
    """No cyclic garbage collection while a document is parsed.

    A parse makes a few hundred objects the collector tracks (nodes, then the values), and
    makes no reference cycles but through aliases (which a later collection still finds).
    Collections triggered in between would only walk, again and again, the heap the caller
    keeps (a garden of thousands of patterns): about a third of the time of parsing a garden.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def construct_node(loader: yaml.constructor.SafeConstructor, node: Node, text: str) -> Any:
    """The value of `node` (composed from `text`), as PyYAML's safe constructor makes it.

    `loader` must be fresh (nothing constructed with it yet): it constructs what the direct
    recursion does not."""
    if not _may_have_anchor(text):
        try:
            return _build(loader, node)
        except Exception:  # _Unusual, or a value that does not construct: PyYAML says what
            pass
    return loader.construct_document(node)


def _may_have_anchor(text: str) -> bool:
    """Whether an `&` in `text` could start an anchor: not one inside a word, such as R&D.
    Aliases share objects and may make cycles: PyYAML's constructor handles those documents."""
    for found in _AMPERSAND.finditer(text):
        before = text[found.start() - 1 : found.start()]
        if not (before.isalnum() or before == "_"):
            return True
    return False


def _build(loader, node: Node) -> Any:
    kind = node.__class__
    tag = node.tag
    if kind is ScalarNode:
        if tag == _STR:
            return node.value
        make = _SCALARS.get(tag)
        if make is None:
            raise _Unusual(tag)
        return make(loader, node)
    if kind is MappingNode and tag == _MAP:
        data = {}
        for key_node, value_node in node.value:  # a merge key's tag is not in _SCALARS
            # (strings, the most common nodes by far, without a call)
            key = key_node.value if key_node.tag == _STR and key_node.__class__ is ScalarNode \
                else _build(loader, key_node)
            data[key] = value_node.value if value_node.tag == _STR and value_node.__class__ is ScalarNode \
                else _build(loader, value_node)
        return data
    if kind is SequenceNode and tag == _SEQ:
        return [item.value if item.tag == _STR and item.__class__ is ScalarNode else _build(loader, item)
                for item in node.value]
    raise _Unusual(tag)


def _int(loader, node: ScalarNode) -> int:
    value = node.value
    if value.isdigit() and value.isascii() and value[0] != "0":  # decimal, no sign, _ or base
        return int(value)
    return loader.construct_yaml_int(node)


def _float(loader, node: ScalarNode) -> float:
    value = node.value
    if value.replace(".", "", 1).isdigit() and value.isascii():  # 3.5, 3., .5: no sign, _, e or :
        return float(value)
    return loader.construct_yaml_float(node)


_SCALARS = {
    "tag:yaml.org,2002:null": lambda loader, node: None,
    "tag:yaml.org,2002:bool": lambda loader, node: loader.bool_values[node.value.lower()],
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
    "tag:yaml.org,2002:timestamp": lambda loader, node: loader.construct_yaml_timestamp(node),
}
