"""Problems in user data are values: Findings, each with a file, a line, a field and a message.

A document is checked by a list of small validator functions. Schema checks come from the JSON
Schemas under schemas/ (data, not if-chains); rules that span files live in crosscheck.py.
Whether a document passes its schema is answered by jsonschema-rs (`fast_validator`, as the
catalog answers it); only a document it refuses is walked by jsonschema, which words the
findings, so a valid document never imports jsonschema and an invalid one reads the same.

Security invariant: a finding names a path, a line, a field and what is wrong, never a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from talkbook.i18n import _, label
from talkbook.models import ID_PATTERNS, Document, field_lines, line_of
from talkbook.workspace import id_of_rel

if TYPE_CHECKING:
    from talkbook.workspace import Workspace

SCHEMA_DIR = Path(__file__).parent / "schemas"


# Findings and subjects are NamedTuples, not dataclasses: every command defines them at import,
# and a NamedTuple is built in a fifth of a frozen dataclass's time (same fields, same order
# and equality between findings, same repr).
class Finding(NamedTuple):
    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "field": self.field, "message": self.message}


class Subject(NamedTuple):
    """What a validator looks at: one decrypted document and where it came from."""

    kind: str
    rel: str  # path relative to the workspace, as findings print it
    doc: Document
    text: str

    def finding(self, field: str, message: str) -> Finding:
        return Finding(self.rel, line_of(self.lines, field), field.split(".")[0], message)

    @property
    def lines(self) -> dict[str, int]:
        return _lines(self.text)


@lru_cache(maxsize=64)
def _lines(text: str) -> dict[str, int]:
    return field_lines(text)


@cache
def schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))


def _whole(pattern: str) -> str:
    """A JSON Schema pattern as ECMA-262 reads it: `$` ends the text. (Python's `$` also
    matches before a final newline, which let `T-abcdef\\n` pass `^T-[0-9a-z]{6}$`.)"""
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
    return "".join(out)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_whole(pattern))


def _pattern(validator, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(_("is not in the expected form"))  # never the value


@cache
def inlined_schema(kind: str) -> dict[str, Any]:
    """The kind's schema with its `$ref`s written out: what both validators below check."""
    whole = schema(kind)
    return _inlined(whole, whole.get("$defs", {}))


@cache
def validator_for(kind: str):
    """The JSON Schema validator of a kind (profile, plan, record, config), with patterns
    matched whole: it words the findings."""
    from jsonschema import Draft202012Validator, validators

    strict = validators.extend(Draft202012Validator, {"pattern": _pattern})
    return strict(inlined_schema(kind))


@cache
def fast_validator(kind: str) -> Any:
    """The kind's schema compiled by jsonschema-rs, in Rust: it answers "valid?" tens of times
    faster than jsonschema walking it in Python, and without importing jsonschema (a tenth of
    a second). Its patterns are ECMA-262's, where `$` ends the text, as `_whole` makes them."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(inlined_schema(kind))


def passes_schema(kind: str, meta: Any) -> bool:
    """Whether jsonschema-rs finds the front matter valid; False (walk it, then) for a value it
    cannot take."""
    try:
        return bool(fast_validator(kind).is_valid(meta))
    except (ValueError, TypeError, OverflowError):
        return False


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with its local `$ref`s to `$defs` written out: the same checks, about twice
    as fast (jsonschema resolves a reference on every use), and every document is checked on
    every read."""
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    rest = {k: _inlined(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
    if not (isinstance(ref, str) and ref.startswith("#/$defs/")):
        return {**rest, **({"$ref": ref} if ref is not None else {})}
    target = _inlined(defs[ref.removeprefix("#/$defs/")], defs)
    if (set(rest) - {"description", "title"}) & set(target):
        return {**rest, "allOf": [target]}  # both apply, as `$ref` beside a keyword does
    return {**target, **rest}


def check_schema(subject: Subject, workspace: Workspace | None = None) -> Iterator[Finding]:
    """The schema's findings: none for what jsonschema-rs passes, else jsonschema's, worded."""
    if passes_schema(subject.kind, subject.doc.meta):
        return
    for error in sorted(validator_for(subject.kind).iter_errors(subject.doc.meta), key=str):
        path = field_path(error)
        if error.validator == "required":
            missing = next((m for m in error.validator_value if m not in error.instance), "")
            field = f"{path}.{missing}" if path else missing
            yield Finding(
                subject.rel, line_of(subject.lines, path), field, _("required field is missing")
            )
            continue
        message = schema_message(error)
        yield Finding(subject.rel, line_of(subject.lines, path), path or "(front matter)", message)


def field_path(error) -> str:
    """Where a schema error is, as a dotted path; a key nobody could have meant as a field
    name (control characters, very long) is not repeated."""
    return ".".join(
        str(p) if str(p).isprintable() and len(str(p)) <= 64 else "(a key)"
        for p in error.absolute_path
    )


def schema_message(error) -> str:
    """What is wrong, without quoting the value: values are confidential, messages are not."""
    expected = error.validator_value
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return _("must be {types}").format(types=" or ".join(k for k in kinds if k != "null"))
    if error.validator == "enum":
        values = ", ".join(str(v) for v in expected if v is not None)
        return _("must be one of {values}").format(values=values)
    if error.validator == "pattern":
        return _("is not in the expected form")
    if error.validator == "minLength":
        return _("must not be empty")
    if error.validator in ("anyOf", "oneOf"):
        return _("is not of an accepted shape")
    return _("is not valid ({rule})").format(rule=error.validator)


def check_id_matches_path(
    subject: Subject, workspace: Workspace | None = None
) -> Iterator[Finding]:
    doc_id = subject.doc.meta.get("id")
    if not isinstance(doc_id, str):
        return
    pattern = ID_PATTERNS["profile" if subject.kind == "profile" else "talk"]
    if not pattern.fullmatch(doc_id):
        yield subject.finding("id", _("is not a valid id (C- or T- and 6 letters or digits)"))
    elif subject.rel.endswith(".md.age") and doc_id != id_of_rel(subject.rel):
        yield subject.finding("id", _("{id} does not match the file's path").format(id=doc_id))


def check_people(subject: Subject, workspace: Workspace | None = None) -> Iterator[Finding]:
    """Person fields name people of talkbook.toml who hold the role the field needs."""
    if workspace is None:
        return
    people = workspace.people
    needs = {"speaker": "speaker", "recorder": "recorder"}
    for field, role in needs.items():
        pid = subject.doc.meta.get(field)
        if not isinstance(pid, str) or subject.kind == "profile":
            continue
        if pid not in people:
            yield subject.finding(
                field, _("{person} is not a person in talkbook.toml").format(person=pid)
            )
        elif field == "recorder" and pid == subject.doc.meta.get("speaker"):
            continue  # a speaker may record their own talk (talks.write_record allows it)
        elif not people[pid].has_role(role):
            yield subject.finding(
                field, _("{person} is not a {role}").format(person=pid, role=label("role", role))
            )


Validator = Callable[[Subject, "Workspace | None"], Iterator[Finding]]
DOCUMENT_VALIDATORS: list[Validator] = [check_schema, check_id_matches_path, check_people]


def schema_findings(subject: Subject) -> list[Finding]:
    """The document against its kind's JSON Schema: before any other logic reads a field, so
    a wrong type is a finding, never a crash."""
    return sorted(check_schema(subject))


def check_document(subject: Subject, workspace: Workspace | None = None) -> list[Finding]:
    return schema_findings(subject) or rule_findings(subject, workspace)


def rule_findings(subject: Subject, workspace: Workspace | None = None) -> list[Finding]:
    """The checks after the schema, which assume the shape it guarantees."""
    findings: list[Finding] = []
    for validator in DOCUMENT_VALIDATORS:
        if validator is not check_schema:
            findings.extend(validator(subject, workspace))
    return sorted(findings)


def summary(findings: list[Finding]) -> str:
    """One line for an error message: the first finding, and how many more there are."""
    first = str(findings[0])
    more = _(" (and {count} more)").format(count=len(findings) - 1)
    return first + (more if len(findings) > 1 else "")
