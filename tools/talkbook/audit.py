"""`talkbook audit`: the history itself, commit by commit.

`validate` checks files as they are; an audit checks how they came to be: no plaintext ever
committed where ciphertext belongs, every change to the records made by a person of the
workspace, and every decision or addendum committed by the very person it names — so a decision
typed into a file by someone else shows up, however valid the file looks now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from talkbook import gittrail
from talkbook.app import App
from talkbook.crosscheck import plaintext_findings
from talkbook.errors import DecryptionError, InvalidDocument, NotRecipient
from talkbook.history import workspace_at
from talkbook.models import parse
from talkbook.workspace import CONFIG_NAME, Person, Workspace

GUARDED = ("cadres/", "talks/", CONFIG_NAME)
# What each kind of file keeps as an attributed, append-only trail.
TRAILS = {"plan.md.age": "decisions", "record.md.age": "addenda"}


@dataclass(frozen=True)
class AuditFinding:
    sha: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.sha[:7]} {self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"commit": self.sha, "path": self.path, "message": self.message}


@dataclass
class AuditReport:
    findings: list[AuditFinding] = field(default_factory=list)
    commits: int = 0
    unreadable: int = 0


def audit(app: App) -> AuditReport:
    ws = app.workspace
    report = AuditReport()
    configs: dict[str, Workspace] = {}
    previous: dict[str, dict[str, Any] | None] = {}  # path → front matter at its last revision
    for commit in gittrail.commits_with_changes(ws.root):
        report.commits += 1
        people = workspace_at(ws, commit.sha, configs).people.values()
        author = next((p for p in people if p.address == commit.email), None)
        for status, path in commit.changes:
            if status == "D" or not path.startswith(GUARDED):
                previous.pop(path, None)
                continue
            if author is None and commit.message != "workspace: initialized":
                report.findings.append(
                    AuditFinding(commit.sha, path, f"changed by {commit.email}, not a person")
                )
            blob = gittrail.blob_at(ws.root, commit.sha, path) or b""
            if problems := plaintext_findings(path, blob):
                report.findings += [AuditFinding(commit.sha, path, p.message) for p in problems]
                continue
            trail = TRAILS.get(path.rsplit("/", 1)[-1])
            if trail is None:
                continue
            meta = _meta(app, blob, path)
            if meta is None:
                report.unreadable += 1
                previous[path] = None
                continue
            before = previous.get(path)
            previous[path] = meta
            report.findings += _trail_findings(commit, path, trail, before, meta, author)
    return report


def _trail_findings(
    commit: gittrail.Commit,
    path: str,
    trail: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    author: Person | None,
) -> list[AuditFinding]:
    old = list((before or {}).get(trail) or [])
    new = list(after.get(trail) or [])
    if new[: len(old)] != old:
        return [AuditFinding(commit.sha, path, f"{trail}: earlier entries were rewritten")]
    found = []
    for entry in new[len(old) :]:
        named = entry.get("by") if isinstance(entry, dict) else None
        if author is None or named != author.id:
            what = entry.get("decision", "addendum") if isinstance(entry, dict) else "entry"
            found.append(
                AuditFinding(
                    commit.sha,
                    path,
                    f"{trail}: {what} by {named} was committed by {commit.email}",
                )
            )
    return found


def _meta(app: App, blob: bytes, path: str) -> dict[str, Any] | None:
    from talkbook.crypto import decrypt

    try:
        return parse(decrypt(blob, app.keyring).decode("utf-8"), path).meta
    except NotRecipient:
        return None
    except (DecryptionError, InvalidDocument, UnicodeDecodeError):
        return {}  # validate reports a broken file; the trail starts again from nothing
