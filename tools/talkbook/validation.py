"""Problems in user data are values: Findings, each with a file, a line, a field and a message.

A document is checked by a list of small validator functions. Schema checks come from the JSON
Schemas under schemas/ (data, not if-chains); rules that span files live in crosscheck.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkbook.models import ID_PATTERNS, Document, field_lines, line_of
from talkbook.workspace import id_of_rel

if TYPE_CHECKING:
    from talkbook.workspace import Workspace

SCHEMA_DIR = Path(__file__).parent / "schemas"


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class Subject:
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


@cache
def _validator(kind: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(kind))


def check_schema(subject: Subject, workspace: Workspace | None = None) -> Iterator[Finding]:
    for error in sorted(_validator(subject.kind).iter_errors(subject.doc.meta), key=str):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = next((m for m in error.validator_value if m not in error.instance), "")
            field = f"{path}.{missing}" if path else missing
            yield Finding(
                subject.rel, line_of(subject.lines, path), field, "required field is missing"
            )
            continue
        message = _message(error)
        yield Finding(subject.rel, line_of(subject.lines, path), path or "(front matter)", message)


def _message(error) -> str:
    """What is wrong, without quoting the value: values are confidential, messages are not."""
    expected = error.validator_value
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "must be " + " or ".join(k for k in kinds if k != "null")
    if error.validator == "enum":
        return "must be one of " + ", ".join(str(v) for v in expected if v is not None)
    if error.validator == "pattern":
        return "is not in the expected form"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator in ("anyOf", "oneOf"):
        return "is not of an accepted shape"
    return f"is not valid ({error.validator})"


def check_id_matches_path(
    subject: Subject, workspace: Workspace | None = None
) -> Iterator[Finding]:
    doc_id = subject.doc.meta.get("id")
    if not isinstance(doc_id, str):
        return
    pattern = ID_PATTERNS["profile" if subject.kind == "profile" else "talk"]
    if not pattern.match(doc_id):
        yield subject.finding("id", "is not a valid id (C- or T- and 6 letters or digits)")
    elif subject.rel.endswith(".md.age") and doc_id != id_of_rel(subject.rel):
        yield subject.finding("id", f"{doc_id} does not match the file's path")


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
            yield subject.finding(field, f"{pid} is not a person in talkbook.toml")
        elif field == "recorder" and pid == subject.doc.meta.get("speaker"):
            continue  # a speaker may record their own talk (talks.write_record allows it)
        elif not people[pid].has_role(role):
            yield subject.finding(field, f"{pid} is not a {role}")


Validator = Callable[[Subject, "Workspace | None"], Iterator[Finding]]
DOCUMENT_VALIDATORS: list[Validator] = [check_schema, check_id_matches_path, check_people]


def check_document(subject: Subject, workspace: Workspace | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for validator in DOCUMENT_VALIDATORS:
        findings.extend(validator(subject, workspace))
        if findings and validator is check_schema:
            break  # later checks assume the shape the schema guarantees
    return sorted(findings)


def summary(findings: list[Finding]) -> str:
    """One line for an error message: the first finding, and how many more there are."""
    first = str(findings[0])
    return first + (f" (and {len(findings) - 1} more)" if len(findings) > 1 else "")
