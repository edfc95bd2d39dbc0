"""Documents: Markdown with YAML front matter, the one shape of every profile, plan and record.

Dates are kept as ISO strings inside the model (YAML's own date objects are converted on load and
restored on dump), so schemas, comparisons and JSON output all see the same values.

Every document may come from a hostile hand (anyone who can push, or a `--from` file). `parse`
refuses what plain YAML would let through: anchors and aliases (a few lines can expand to
gigabytes), tags other than the plain ones, nesting deeper than MAX_DEPTH, and documents or front
matter larger than the caps below. Refusals are InvalidDocument with a line and a reason that
never quotes a value. The YAML work (python-frontmatter's split, the guarded loader, plainyaml's
fast path, the dumper) is yamlguard's, imported on first use: this module itself loads no YAML
library, so a command that parses no text (a warm listing reads the index) never does either.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, Final

from talkbook.errors import InvalidDocument as InvalidDocument  # what parse refuses with
from talkbook.i18n import N_

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
    import secrets  # here: it loads random and hmac, and only a command that creates needs it

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


def parse_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


class Document:
    """One file's content. `meta` is the front matter, `body` the Markdown under it; `source`
    names where it came from, for messages, and is no part of its value (not compared).

    Never changed once made (`Final`; with_meta makes another). A plain class rather than a
    frozen dataclass: every command defines it at import, and this costs a hundredth of that.
    """

    __slots__ = ("meta", "body", "source")

    def __init__(self, meta: dict[str, Any], body: str = "", source: str = "<input>") -> None:
        self.meta: Final[dict[str, Any]] = meta
        self.body: Final[str] = body
        self.source: Final[str] = source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return (self.meta, self.body) == (other.meta, other.body)

    def __repr__(self) -> str:
        return f"Document(meta={self.meta!r}, body={self.body!r}, source={self.source!r})"

    @property
    def id(self) -> str | None:
        return self.meta.get("id")

    def text(self) -> str:
        from talkbook.yamlguard import dump

        front = dump(self.meta)
        body = self.body.strip("\n")
        return f"{DELIMITER}\n{front}{DELIMITER}\n" + (f"\n{body}\n" if body else "")

    def with_meta(self, **changes: Any) -> Document:
        return Document({**self.meta, **changes}, self.body, self.source)


def larger_than(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes as UTF-8 (encoded only when it might)."""
    return len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit


# What needs PyYAML lives in yamlguard, imported on first use: a command that parses no text
# (a warm listing reads front matter from the index) does not pay for PyYAML and
# python-frontmatter. yamlguard imports this module, so it is never imported here at the top.
def parse(text: str, source: str = "<input>") -> Document:
    """Split front matter from body; malformed YAML is refused with its line number.

    Line numbers count in the whole file: the front matter starts on line 2. Refusals are
    InvalidDocument whose reason never quotes a value.
    """
    from talkbook import yamlguard

    return yamlguard.parse(text, source)


def split(text: str) -> tuple[str, str] | None:
    """(front matter, body) of a document, or None when it has no closed front matter."""
    from talkbook import yamlguard

    return yamlguard.split(text)


def field_lines(text: str) -> dict[str, int]:
    """Line (1-based, in the whole file) of every front-matter field, as dotted paths.

    `follow_ups.0.due` → the line of that value; used to report findings like a compiler.
    """
    from talkbook import yamlguard

    return yamlguard.field_lines(text)


def _load_yaml(front: str) -> Any:
    """The guarded loader's value for this front matter (YAML's own types)."""
    from talkbook import yamlguard

    return yamlguard.load_yaml(front)


def line_of(lines: dict[str, int], path: str) -> int:
    """The line of a field, or of its nearest parent that has one; 1 when nothing matches."""
    while path:
        if path in lines:
            return lines[path]
        path = path.rpartition(".")[0]
    return 1
