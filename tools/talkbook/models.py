"""Documents: Markdown with YAML front matter, the one shape of every profile, plan and record.

Dates are kept as ISO strings inside the model (YAML's own date objects are converted on load and
restored on dump), so schemas, comparisons and JSON output all see the same values.

Every document may come from a hostile hand (anyone who can push, or a `--from` file). The front
matter is split with python-frontmatter and read by a YAML loader that refuses what plain YAML
would let through: anchors and aliases (a few lines can expand to gigabytes), tags other than the
plain ones, nesting deeper than MAX_DEPTH (checked as events arrive, never by recursing first),
and documents or front matter larger than the caps below. Refusals are InvalidDocument with a line
and a reason that never quotes a value. Front matter of the plain shape talkbook itself writes is
read first by plainyaml, line by line (a third of the time, on every file a cold index decrypts);
it answers only where its answer is the guarded loader's, and leaves all else to the guarded loader.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import frontmatter
import yaml
from frontmatter.default_handlers import YAMLHandler
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from talkbook import plainyaml
from talkbook.errors import InvalidDocument
from talkbook.i18n import N_, _

KINDS = ("profile", "plan", "record")
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # no i, l, o, u: easy to read aloud and type
# \A…\Z: the whole text or nothing (`$` would let a trailing newline through, even with match)
ID_PATTERNS = {
    "profile": re.compile(r"\AC-[0-9a-z]{6}\Z"),
    "talk": re.compile(r"\AT-[0-9a-z]{6}\Z"),
    "person": re.compile(r"\A[A-Za-z][A-Za-z0-9_-]{0,31}\Z"),
}
ID_FORMS = {
    "profile": N_("C- and 6 lowercase letters or digits"),
    "talk": N_("T- and 6 lowercase letters or digits"),
    "person": N_("a letter, then up to 31 letters, digits, - or _"),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
DELIMITER = "---"
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024  # a whole decrypted document
MAX_FRONT_MATTER_BYTES = 256 * 1024
MAX_DEPTH = 32  # nested lists and mappings in the front matter


def one_line(text: str) -> bool:
    """No control, format or line-separator characters: safe in a message, a commit's author
    line or a TOML key."""
    return not any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text)


def shown(text: str, limit: int = 100) -> str:
    """The text itself for a message when it is one short line; else a placeholder (messages
    are one line, and never carry what a hostile hand typed into an id)."""
    return text if one_line(text) and len(text) <= limit else "(not shown: control characters)"


def is_id(kind: str, value: object) -> bool:
    """Whether `value` is an id of this kind (profile, talk, person), whole."""
    return isinstance(value, str) and ID_PATTERNS[kind].fullmatch(value) is not None


def new_id(prefix: str, taken: set[str] | None = None) -> str:
    """A random id: unlikely to collide between clones, checked against what this clone holds."""
    taken = taken or set()
    while True:
        candidate = f"{prefix}-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(6))
        if candidate not in taken:
            return candidate


def to_plain(value: Any) -> Any:
    """YAML values → JSON-like values, with dates as ISO strings (minutes precision kept)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def _to_yaml(value: Any) -> Any:
    """ISO strings back to dates so the dumped YAML reads `2026-03-01`, not `'2026-03-01'`."""
    if isinstance(value, str):
        try:
            if _DATE.match(value):
                return dt.date.fromisoformat(value)
            if _DATETIME.match(value) and value.count(":") == 2:
                return dt.datetime.fromisoformat(value)
        except ValueError:
            return value  # `2026-02-30` is no date: kept as text (the dumper quotes it)
        return value  # `2026-03-01T09:30` is no YAML timestamp: it dumps unquoted as it is
    if isinstance(value, dict):
        return {k: _to_yaml(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_yaml(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    pass


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


def _load_yaml(front: str) -> Any:
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


def parse_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


@dataclass(frozen=True)
class Document:
    """One file's content. `meta` is the front matter, `body` the Markdown under it."""

    meta: dict[str, Any]
    body: str = ""
    source: str = field(default="<input>", compare=False)

    @property
    def id(self) -> str | None:
        return self.meta.get("id")

    def text(self) -> str:
        front = yaml.dump(
            _to_yaml(self.meta), Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100
        )
        body = self.body.strip("\n")
        return f"{DELIMITER}\n{front}{DELIMITER}\n" + (f"\n{body}\n" if body else "")

    def with_meta(self, **changes: Any) -> Document:
        return Document({**self.meta, **changes}, self.body, self.source)


def _larger_than(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes as UTF-8 (encoded only when it might)."""
    return len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit


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
        closing = _BOUNDARY.search(text, opening.end()) if opening else None
        if opening is None or closing is None:
            raise _Refusal(_("the front matter is never closed (no second --- line)"), -1)
        self.body_start = closing.end()
        return text[opening.end() + 1 : closing.start()], text[closing.end() :]

    def load(self, fm: str, **kwargs: object) -> Any:
        if _larger_than(fm, MAX_FRONT_MATTER_BYTES):
            raise _Refusal(
                _("the front matter is larger than {size} KiB").format(
                    size=MAX_FRONT_MATTER_BYTES // 1024
                ),
                0,
            )
        meta = _PLAIN.load(fm)  # the common shape, read fast; None: the guarded loader reads it
        if meta is not None:
            return meta
        meta = _load_yaml(fm)
        if meta is None:
            return {}
        if not isinstance(meta, dict):
            raise _Refusal(_("front matter must be a mapping of fields"), 0)
        return to_plain(meta)


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
    """Split front matter from body; malformed YAML is refused with its line number.

    Line numbers count in the whole file: the front matter starts on line 2. The split is
    python-frontmatter's (`frontmatter.parse`, not `loads`: its Post takes the fields as keyword
    arguments, so a field named `content` or `handler` would break it).
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")

    def refuse(line: int, reason: str) -> InvalidDocument:
        return InvalidDocument(f"{source}:{line}: {reason}", line=line, reason=reason)

    if _larger_than(text, MAX_DOCUMENT_BYTES):
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
        meta, _content = frontmatter.parse(text, handler=handler)
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
    """Line (1-based, in the whole file) of every front-matter field, as dotted paths.

    `follow_ups.0.due` → the line of that value; used to report findings like a compiler.
    """
    lines: dict[str, int] = {}
    parts = split(text.removeprefix("\ufeff").replace("\r\n", "\n"))
    if parts is None or _larger_than(parts[0], MAX_FRONT_MATTER_BYTES):
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


def line_of(lines: dict[str, int], path: str) -> int:
    """The line of a field, or of its nearest parent that has one; 1 when nothing matches."""
    while path:
        if path in lines:
            return lines[path]
        path = path.rpartition(".")[0]
    return 1
