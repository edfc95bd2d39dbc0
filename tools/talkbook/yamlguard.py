"""The YAML side of documents: front matter split, read by the guarded loader, and dumped.

models.py holds what documents are (ids, Document, the caps) and calls in here, lazily, for
what needs PyYAML, python-frontmatter and plainyaml: `parse`, `split`, `field_lines`, `dump`.
A command that never parses text (a warm listing reads front matter from the index) thus never
imports them. This module imports models, never the other way round at module level.

Every document may come from a hostile hand (anyone who can push, or a `--from` file). The front
matter is split by a python-frontmatter handler and read by a YAML loader that refuses what plain
YAML would let through: anchors and aliases (a few lines can expand to gigabytes), tags other than
the plain ones, nesting deeper than models.MAX_DEPTH (checked as events arrive, never by recursing
first), and documents or front matter larger than models' caps. Refusals are InvalidDocument with
a line and a reason that never quotes a value. Front matter of the plain shape talkbook itself
writes is read first by plainyaml, line by line (a third of the time, on every file a cold index
decrypts); it answers only where its answer is the guarded loader's, and leaves all else to the
guarded loader.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from talkbook import plainyaml
from talkbook.errors import InvalidDocument
from talkbook.i18n import _
from talkbook.models import (
    DELIMITER,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_FRONT_MATTER_BYTES,
    Document,
    _to_yaml,
    larger_than,
    to_plain,
)


class _Dumper(yaml.SafeDumper):
    pass


def dump(meta: dict[str, Any]) -> str:
    """The front matter as block YAML, dates unquoted, in the order given."""
    return yaml.dump(_to_yaml(meta), Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


class _Refusal(yaml.YAMLError):
    """What the guarded loader refuses: a reason of our own words, and where (0-based line in
    the front matter)."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


try:  # libyaml's parser when PyYAML has it: events come from C, several times faster
    from yaml._yaml import CParser as _Events

    def _start_events(loader: Any, stream: str) -> None:
        _Events.__init__(loader, stream)

    _EVENT_BASES: tuple[type, ...] = (_Events,)
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    def _start_events(loader: Any, stream: str) -> None:
        Reader.__init__(loader, stream)
        Scanner.__init__(loader)
        Parser.__init__(loader)

    _EVENT_BASES = (Reader, Scanner, Parser)

# Explicit tags a person may write (`!!str 2026`): the plain kinds safe_load builds anyway.
_PLAIN_TAGS = {"!"} | {f"tag:yaml.org,2002:{k}" for k in ("str", "int", "float", "bool", "null")}
_PLAIN_TAGS |= {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


class _GuardedLoader(*_EVENT_BASES, Composer, SafeConstructor, Resolver):  # type: ignore[misc]
    """PyYAML's safe loader with its nodes composed here, one event at a time: libyaml's own
    composer follows aliases (a few lines expand to gigabytes) and recurses as deep as the text
    nests, and what it builds is then walked recursively again. Each event is looked at before
    it is composed, so nothing is built past a refusal."""

    # Composer's Python methods, not the C parser's composer (which has no hooks)
    check_node = Composer.check_node
    get_node = Composer.get_node
    get_single_node = Composer.get_single_node

    def __init__(self, stream: str) -> None:
        _start_events(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Composer.compose_node with the checks first (no path resolvers: SafeLoader has none)."""
        event = self.peek_event()
        kind = type(event)
        if kind is AliasEvent or event.anchor is not None:
            raise _Refusal(_("YAML anchors and aliases (& and *) are not allowed"), _line(event))
        tag = event.tag
        if tag is not None and tag not in _PLAIN_TAGS:
            raise _Refusal(
                _("YAML tags (!…) other than the plain ones are not allowed"), _line(event)
            )
        if kind is ScalarEvent:
            self.get_event()
            if tag is None or tag == "!":
                tag = self.resolve(ScalarNode, event.value, event.implicit)
            return ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        if self.depth >= MAX_DEPTH:
            raise _Refusal(
                _("nested deeper than {depth} levels").format(depth=MAX_DEPTH), _line(event)
            )
        self.depth += 1
        no_anchor: Any = None  # (PyYAML's stubs type the argument as the anchors table)
        try:
            if kind is SequenceStartEvent:
                return self.compose_sequence_node(no_anchor)
            return self.compose_mapping_node(no_anchor)
        finally:
            self.depth -= 1


def _line(event: yaml.Event) -> int:
    return event.start_mark.line if event.start_mark is not None else 0


def load_yaml(front: str) -> Any:
    """The front matter's value as the guarded loader builds it (YAML's own types)."""
    loader = _GuardedLoader(front)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _compose_yaml(front: str) -> yaml.Node | None:
    loader = _GuardedLoader(front)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


_PLAIN = plainyaml.Reader(to_plain)
_BOUNDARY = re.compile(r"^---[^\S\n]*$", re.MULTILINE)  # a line of ---, trailing blanks allowed


class _FrontMatter(YAMLHandler):
    """python-frontmatter's YAML handler on talkbook's rules: the first line is `---`, the
    next `---` line closes the front matter, and the YAML is read by the guarded loader.

    One instance per document: it keeps the body exactly as written (python-frontmatter would
    strip it) and where it starts.
    """

    FM_BOUNDARY = _BOUNDARY

    def __init__(self) -> None:
        super().__init__()
        self.body_start = 0

    def detect(self, text: str) -> bool:
        return _BOUNDARY.match(text) is not None

    def split(self, text: str) -> tuple[str, str]:
        opening = _BOUNDARY.match(text)
        closing = _closing(text, opening.end()) if opening else None
        if opening is None or closing is None:
            raise _Refusal(_("the front matter is never closed (no second --- line)"), -1)
        self.body_start = closing.end()
        if self.body_start > closing.start() + len(DELIMITER):
            # `---` and blanks closing it: where the body starts in the stripped text that
            # frontmatter.parse splits (parse calls this without it)
            self.body_start = min(self.body_start, len(text.rstrip()))
        return text[opening.end() + 1 : closing.start()], text[closing.end() :]

    def load(self, fm: str, **kwargs: object) -> Any:
        if larger_than(fm, MAX_FRONT_MATTER_BYTES):
            raise _Refusal(
                _("the front matter is larger than {size} KiB").format(
                    size=MAX_FRONT_MATTER_BYTES // 1024
                ),
                0,
            )
        meta = _PLAIN.load(fm)  # the common shape, read fast; None: the guarded loader reads it
        if meta is not None:
            return meta
        meta = load_yaml(fm)
        if meta is None:
            return {}
        if not isinstance(meta, dict):
            raise _Refusal(_("front matter must be a mapping of fields"), 0)
        return to_plain(meta)


def _closing(text: str, start: int) -> re.Match[str] | None:
    """_BOUNDARY.search(text, start) for start > 0, found by str.find: the regex engine would
    try every character of the front matter (a tenth of a cold index's parse) where find
    skips to the next line that begins with ---."""
    at = start - 1
    while (at := text.find("\n---", at)) >= 0:
        at += 1  # the line's start
        if boundary := _BOUNDARY.match(text, at):
            return boundary
    return None


def split(text: str) -> tuple[str, str] | None:
    """(front matter, body) of a document, or None when it has no closed front matter."""
    try:
        return _FrontMatter().split(text)
    except _Refusal:
        return None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|#x[0-9a-fA-F]+")


def _problem(exc: yaml.MarkedYAMLError) -> str:
    """The YAML library's reason, with anything it quotes from the text taken out."""
    problem = _QUOTED.sub("…", exc.problem or "syntax error")
    return " ".join(problem.split())[:120]


def parse(text: str, source: str = "<input>") -> Document:
    """models.parse: split front matter from body; malformed YAML is refused with its line.

    Line numbers count in the whole file: the front matter starts on line 2. The split and the
    load are the handler's, called as `frontmatter.parse(text, handler=handler)` called them
    (not `loads`: its Post takes the fields as keyword arguments, so a field named `content` or
    `handler` would break it), without the copies it made around them (the text and the body
    stripped, the front matter copied): the same split, the same front matter or refusal.
    """
    written = text.removeprefix("\ufeff")
    text = written.replace("\r\n", "\n")
    # frontmatter.parse made line ends \n once more ("\r\r\n") before it split: as it did
    once_more = text.replace("\r\n", "\n") if len(text) < len(written) else text

    def refuse(line: int, reason: str) -> InvalidDocument:
        return InvalidDocument(f"{source}:{line}: {reason}", line=line, reason=reason)

    if larger_than(text, MAX_DOCUMENT_BYTES):
        raise refuse(
            1,
            _("the document is larger than {size} MiB").format(
                size=MAX_DOCUMENT_BYTES // (1024 * 1024)
            ),
        )
    if not text.startswith(DELIMITER):
        raise refuse(1, _("no YAML front matter (the file must start with ---)"))
    handler = _FrontMatter()
    try:
        meta = handler.load(handler.split(once_more)[0])
    except _Refusal as exc:
        raise refuse(exc.line + 2 if exc.line >= 0 else 1, exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise refuse(
            mark.line + 2 if mark else 1,
            _("malformed YAML: {problem}").format(problem=_problem(exc)),
        ) from None
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        # PyYAML raises plain Python errors for some bad scalars (a date like 2026-13-45)
        raise refuse(1, _("malformed YAML: {error}").format(error=type(exc).__name__)) from None
    body = text[handler.body_start :]
    return Document(meta, body.lstrip("\n"), source)


def field_lines(text: str) -> dict[str, int]:
    """models.field_lines: the line (1-based, in the whole file) of every front-matter field."""
    lines: dict[str, int] = {}
    parts = split(text.removeprefix("\ufeff").replace("\r\n", "\n"))
    if parts is None or larger_than(parts[0], MAX_FRONT_MATTER_BYTES):
        return lines
    try:
        root = _compose_yaml(parts[0])
    except (yaml.YAMLError, ValueError):
        return lines

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = f"{prefix}{key.value}"
                lines[path] = key.start_mark.line + 2
                walk(value, path + ".")
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                path = f"{prefix}{index}"
                lines[path] = item.start_mark.line + 2
                walk(item, path + ".")

    if root is not None:
        walk(root, "")
    return lines
