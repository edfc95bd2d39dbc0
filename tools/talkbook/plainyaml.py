"""The common front matter, read fast: a strict subset of block YAML, line by line.

`Reader(convert).load(front)` gives the front matter exactly as yamlguard's guarded loader
would, each scalar passed through `convert` (models.to_plain) and each key through `str` — the
same values, of the same types, in the same order — or None when the text holds anything outside
the subset: then the guarded loader reads it, and refuses what it refuses. Nearly every file
talkbook itself wrote is inside the subset (it is what yamlguard's dumper writes), and reading it
here costs a fraction of PyYAML composing and constructing it in Python, on every file a cold
index decrypts.

The subset: block mappings whose keys are plain words (a letter or _, then letters, digits, _
or -), block sequences (indented or not), `[]` and `{}`, and one-line scalars — plain, single-
quoted, or double-quoted without escapes. Plain scalars are typed by PyYAML's own resolver and
constructors (so `yes`, `0x1f`, `1:30` and `2026-03-01` mean what they mean there).

Security invariant: it only ever answers for text the guarded loader reads without refusal,
and then with the same value. It gives up (None) on anything that could carry what the guard
exists for, or that it does not fully understand: anchors, aliases and tags (`&`, `*`, `!` at
a node's start), merge keys, flow collections other than empty ones, block scalars, scalars
over several lines, comments, blank lines, tabs, characters outside YAML's printable set or
other line breaks, duplicate keys, keys longer than YAML's simple-key limit allows, and nesting
deeper than MAX_DEPTH. It is linear in the text and never recurses deeper than MAX_DEPTH; its
caches hold short scalars and keys only (each read once: then one object for every document),
and only so many of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

MAX_DEPTH = 16  # the guarded loader allows 32; anything deeper than this is left to it
CACHED_LENGTH = 64  # scalars up to this long are remembered, once typed
CACHE_SIZE = 4096

# Anything but a line feed and YAML's printable characters that break no line (no tab, \r, NEL,
# U+2028/9) and no byte order mark: such text is left to the guarded loader, which refuses it.
# Written as the characters it matches, not as the complement of what it lets through: the
# same set (checked over every code point), compiled in a millisecond instead of nine.
_OUTSIDE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# `key:` alone or `key: value`; YAML reads a simple key only up to 1024 characters
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,127}):(?: +(.*))?")
# A time to the minute, as talkbook writes `at`, `held_at`: the commonest typed-looking scalar,
# each one different (no cache helps), and always a string to PyYAML's resolver
_MINUTES = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_STR = Resolver.DEFAULT_SCALAR_TAG
_TYPED = {f"tag:yaml.org,2002:{k}" for k in ("bool", "int", "float", "null", "timestamp")}
# First characters PyYAML's resolver looks at further; any other plain scalar is a string.
_RESOLVED_FIRST = frozenset(k for k in Resolver.yaml_implicit_resolvers if k is not None)
_ANY_FIRST = None in Resolver.yaml_implicit_resolvers  # a resolver for every first character
_MISSING = object()
_TYPED_OR_INDICATOR = (
    _INDICATORS | _RESOLVED_FIRST if not _ANY_FIRST else frozenset(map(chr, range(0x110000)))
)

Row = tuple[int, str]  # (indentation, the rest of the line)


class GiveUp(Exception):
    """The text is outside the subset: the guarded loader must read it."""


class Reader:
    """Reads front matter of the subset; `convert` turns a typed scalar (a date, say) into
    the value the caller keeps."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert
        self.resolver = Resolver()
        self.constructor = SafeConstructor()
        self.cache: dict[str, Any] = {}
        # each key as kept, by the name written: typed once, and one string for all documents
        self.keys: dict[str, str] = {}

    def load(self, front: str) -> dict[str, Any] | None:
        """The front matter as a dict, or None: outside the subset."""
        lines = front.split("\n")
        # Every character _OUTSIDE matches is one isprintable refuses: a text whose lines are
        # printable (nearly all) needs no search, a tenth of the reading when made
        if not all(map(str.isprintable, lines)) and _OUTSIDE.search(front):
            return None
        rows = _rows(lines)
        if rows is None or not rows or rows[0][0] != 0:
            return None
        try:
            value, end = self._mapping(rows, 0, 0, 1)
        except GiveUp:
            return None
        return value if end == len(rows) else None

    # -- blocks: each takes rows from `pos` and answers (value, the first row not taken) -------
    def _block(self, rows: list[Row], pos: int, indent: int, depth: int) -> tuple[Any, int]:
        if _is_item(rows[pos][1]):
            return self._sequence(rows, pos, indent, depth)
        return self._mapping(rows, pos, indent, depth)

    def _mapping(
        self, rows: list[Row], pos: int, indent: int, depth: int
    ) -> tuple[dict[str, Any], int]:
        if depth > MAX_DEPTH:
            raise GiveUp
        out: dict[str, Any] = {}
        end = len(rows)
        while pos < end:
            column, content = rows[pos]
            if column < indent:
                break
            match = _KEY.fullmatch(content) if column == indent else None
            if match is None:
                raise GiveUp  # deeper (a scalar going on), or no `key:` where one belongs
            key = self.keys.get(match[1]) or self._new_key(match[1])
            if key in out:
                raise GiveUp  # the guarded loader keeps the last: let it say so
            rest = (match[2] or "").rstrip(" ")
            pos += 1
            if rest:
                out[key] = self.scalar(rest)
            elif pos < end and rows[pos][0] > indent:
                out[key], pos = self._block(rows, pos, rows[pos][0], depth + 1)
            elif pos < end and rows[pos][0] == indent and _is_item(rows[pos][1]):
                out[key], pos = self._sequence(rows, pos, indent, depth + 1)
            else:
                out[key] = None
        return out, pos

    def _sequence(
        self, rows: list[Row], pos: int, indent: int, depth: int
    ) -> tuple[list[Any], int]:
        if depth > MAX_DEPTH:
            raise GiveUp
        out: list[Any] = []
        end = len(rows)
        while pos < end:
            column, content = rows[pos]
            if column < indent or (column == indent and not content.startswith("- ")):
                break  # the mapping around an unindented sequence goes on, or an outer block
            if column > indent:
                raise GiveUp  # a scalar going on over lines, or a stray deeper line
            item = content[2:].lstrip(" ")
            if not item:
                raise GiveUp  # `-` then the item on the lines below
            inner = column + len(content) - len(item)  # the column the item starts at
            if _is_item(item) or _KEY.fullmatch(item):  # `- - x`, `- key: value`
                rows[pos] = (inner, item)
                value, pos = self._block(rows, pos, inner, depth + 1)
            else:
                value, pos = self.scalar(item.rstrip(" ")), pos + 1
            out.append(value)
        return out, pos

    # -- scalars -----------------------------------------------------------------------------
    def scalar(self, text: str) -> Any:
        """One scalar on one line, its spaces around taken off; GiveUp outside the subset.

        A short one is read once, then taken from the cache: the same value, and for a string
        the same object in every document (the index and the pipe from a worker keep it once)."""
        value = self.cache.get(text, _MISSING)
        if value is _MISSING:
            value = self._scalar(text)
            if len(text) <= CACHED_LENGTH and type(value) not in (list, dict):  # never shared
                if len(self.cache) >= CACHE_SIZE:
                    self.cache.clear()
                self.cache[text] = value
        return value

    def _scalar(self, text: str) -> Any:
        first = text[0]
        if first not in _TYPED_OR_INDICATOR:  # most values: a string, as it is
            if ": " in text or text[-1] == ":" or " #" in text:
                raise GiveUp  # a key, or a comment after the value
            return text
        if first == "'" or first == '"':
            return _quoted(text)
        if text == "[]":
            return []
        if text == "{}":
            return {}
        if first in _INDICATORS and not (first in "-?:" and len(text) > 1 and text[1] != " "):
            raise GiveUp  # a tag, anchor, alias, flow collection, block scalar, comment …
        if ": " in text or text[-1] == ":" or " #" in text:
            raise GiveUp  # a key, or a comment after the value
        return self._plain(text)

    def _new_key(self, name: str) -> str:
        key = self._key(name) if name[0] in _TYPED_OR_INDICATOR else name
        if len(self.keys) >= CACHE_SIZE:
            self.keys.clear()
        self.keys[name] = key
        return key

    def _key(self, name: str) -> str:
        """A key as models.to_plain writes it: `str` of its value (`yes` is True: "True")."""
        if not _ANY_FIRST and name[0] not in _RESOLVED_FIRST:
            return name
        value = self._plain(name)
        if value is not None and type(value) not in (str, bool):
            raise GiveUp  # a key typed as a date or a number: to_plain's str of it differs
        return str(value)

    def _plain(self, text: str) -> Any:
        if not _ANY_FIRST and text[0] not in _RESOLVED_FIRST:
            return text
        if _MINUTES.fullmatch(text):
            return text  # no YAML timestamp (no seconds), no number: a string (tested)
        return self._typed(text)

    def _typed(self, text: str) -> Any:
        """A plain scalar as PyYAML's resolver types it and its SafeConstructor builds it."""
        tag = self.resolver.resolve(ScalarNode, text, (True, False))
        if tag == _STR:
            return text
        if tag not in _TYPED:
            raise GiveUp  # a merge key or `=`: the guarded loader says what it makes of them
        construct = SafeConstructor.yaml_constructors[tag]
        try:
            value = construct(self.constructor, ScalarNode(tag, text))
        except Exception:  # e.g. 2026-13-45: the guarded loader refuses it in its own words
            raise GiveUp from None
        return self.convert(value)


def _rows(lines: list[str]) -> list[Row] | None:
    """(indentation, rest) of each line; None for a blank line (or one of spaces only)."""
    if lines[-1] == "":
        lines.pop()
    rows: list[Row] = []
    for line in lines:
        content = line.lstrip(" ")
        if not content:
            return None
        rows.append((len(line) - len(content), content))
    return rows


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _quoted(text: str) -> str:
    """A quoted scalar that opens and closes on this line: single-quoted with '' for a quote,
    or double-quoted without escapes."""
    quote, inner = text[0], text[1:-1]
    if len(text) < 2 or text[-1] != quote:
        raise GiveUp
    if quote == "'":
        if "'" in inner.replace("''", ""):
            raise GiveUp
        return inner.replace("''", "'")
    if '"' in inner or "\\" in inner:
        raise GiveUp
    return inner
