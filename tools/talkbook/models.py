"""Documents: Markdown with YAML front matter, the one shape of every profile, plan and record.

Dates are kept as ISO strings inside the model (YAML's own date objects are converted on load and
restored on dump), so schemas, comparisons and JSON output all see the same values.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import yaml

from talkbook.errors import InvalidDocument

KINDS = ("profile", "plan", "record")
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # no i, l, o, u: easy to read aloud and type
ID_PATTERNS = {
    "profile": re.compile(r"^C-[0-9a-z]{6}$"),
    "talk": re.compile(r"^T-[0-9a-z]{6}$"),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
DELIMITER = "---"


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


# libyaml's loader when PyYAML has it: several times faster on a workspace of thousands of files
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def split(text: str) -> tuple[str, str] | None:
    """(front matter, body) of a document, or None when it has no closed front matter."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != DELIMITER:
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == DELIMITER:
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    return None


def parse(text: str, source: str = "<input>") -> Document:
    """Split front matter from body; malformed YAML is refused with its line number.

    Line numbers count in the whole file: the front matter starts on line 2.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")

    def refuse(line: int, reason: str) -> InvalidDocument:
        return InvalidDocument(f"{source}:{line}: {reason}", line=line, reason=reason)

    if not text.startswith(DELIMITER):
        raise refuse(1, "no YAML front matter (the file must start with ---)")
    parts = split(text)
    if parts is None:
        raise refuse(1, "the front matter is never closed (no second --- line)")
    front, body = parts
    try:
        meta = yaml.load(front, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise refuse(
            mark.line + 2 if mark else 1, f"malformed YAML: {exc.problem or 'syntax error'}"
        ) from None
    except (yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:
        # PyYAML raises plain Python errors for some bad scalars (a date like 2026-13-45)
        raise refuse(1, f"malformed YAML: {type(exc).__name__}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise refuse(2, "front matter must be a mapping of fields")
    return Document(to_plain(meta), body.lstrip("\n"), source)


def field_lines(text: str) -> dict[str, int]:
    """Line (1-based, in the whole file) of every front-matter field, as dotted paths.

    `follow_ups.0.due` → the line of that value; used to report findings like a compiler.
    """
    lines: dict[str, int] = {}
    parts = split(text.removeprefix("\ufeff"))
    if parts is None:
        return lines
    try:
        root = yaml.compose(parts[0], Loader=_Loader)
    except yaml.YAMLError:
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
