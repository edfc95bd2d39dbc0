"""The story of a file from git, and rekeying when readers change.

Rekey is a write like any other: under the workspace's write lock, journaled, one commit signed
by the custodian who runs it (see App.writing and App.changing).

Who could read a file when it was last written is derived, not stored: the talkbook.toml of the
commit that last wrote the file, applied to the file's own front matter. Storing recipient lists
in plaintext would tell everyone who talks to whom.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkbook import catalog, gittrail, trust
from talkbook.app import App
from talkbook.errors import NotFound
from talkbook.fsutil import checkpoint, regular_file
from talkbook.i18n import _
from talkbook.models import ID_PATTERNS, Document
from talkbook.workspace import CONFIG_NAME, Workspace


@dataclass(frozen=True)
class Step:
    when: str
    author: str
    message: str
    file: str
    changed: tuple[str, ...]  # field names; empty for the first version
    readable: bool
    signed_by: str | None = None  # the person whose key signed the commit, if any
    verified: bool = False  # signed by the very person the commit names as its author

    def as_dict(self) -> dict[str, Any]:
        return {
            "when": self.when,
            "author": self.author,
            "message": self.message,
            "file": self.file,
            "changed": list(self.changed),
            "readable": self.readable,
            "signed_by": self.signed_by,
            "verified": self.verified,
        }


def changed_fields(before: dict[str, Any], after: dict[str, Any], bodies: tuple[str, str]) -> list:
    keys = list(dict.fromkeys([*before, *after]))
    fields = [k for k in keys if before.get(k) != after.get(k)]
    if bodies[0].strip() != bodies[1].strip():
        fields.append("(body)")  # a field name, like the others: a code, not a message
    return fields


def story(app: App, ref: str) -> list[Step]:
    """Every commit that touched the file (for a talk: its plan and its record), oldest first."""
    ws = app.workspace
    if ID_PATTERNS["talk"].match(ref):
        folder = ws.talk_dir(ref)
        paths = [folder / "plan.md.age", folder / "record.md.age"]
    else:
        paths = [ws.resolve(ref)]
    steps: list[Step] = []
    for path in paths:
        rel = ws.relative(path)
        previous: tuple[dict[str, Any], str] | None = None
        revisions = gittrail.revisions(ws.root, rel)
        signers = trust.signers(ws.root, [rev.sha for rev in revisions])
        for rev in revisions:
            blob = gittrail.blob_at(ws.root, rev.sha, rel)
            current = _decrypt_blob(app, blob, rel) if blob is not None else None
            if current is None:
                changed: list[str] = []
            elif previous is None:
                changed = []
            else:
                changed = changed_fields(previous[0], current[0], (previous[1], current[1]))
            signer = signers.get(rev.sha)
            person = ws.people.get(signer) if signer else None
            verified = person is not None and person.address == rev.email
            readable = current is not None
            steps.append(
                Step(rev.when, rev.author, rev.message, rel, tuple(changed), readable, signer,
                     verified)
            )  # fmt: skip
            previous = current or previous
    if not steps:
        raise NotFound(_("no history for {ref}").format(ref=ref))
    return sorted(steps, key=lambda s: s.when)


def _decrypt_blob(app: App, blob: bytes, rel: str) -> tuple[dict[str, Any], str] | None:
    """A version's front matter and body, when it parses (a field of the wrong type is still
    part of the story); None when it cannot be read."""
    reading = catalog.read(app.keyring, rel, blob)
    if reading.doc is None:
        return None
    return reading.doc.meta, reading.doc.body


def introduced_by(
    app: App, rel: str, trail: str, entry: dict[str, Any]
) -> tuple[str | None, Document] | None:
    """Who signed the commit that first put `entry` into the `trail` list of the file
    (decisions, addenda) — None for no person's good signature — and the file as it was then;
    None when no version holds the entry."""
    ws = app.workspace
    for rev in gittrail.revisions(ws.root, rel):
        blob = gittrail.blob_at(ws.root, rev.sha, rel)
        current = _decrypt_blob(app, blob, rel) if blob is not None else None
        entries = current[0].get(trail) if current else None
        if current and isinstance(entries, list) and entry in entries:
            signer = trust.signers(ws.root, [rev.sha]).get(rev.sha)
            return signer, Document(current[0], current[1])
    return None


@dataclass(frozen=True)
class RekeyResult:
    rewritten: list[str]
    unreadable: list[str]
    commit: str | None


def rekey(app: App) -> RekeyResult:
    """Re-encrypt exactly the files whose readers changed since they were written; one signed
    commit, or nothing at all.

    Refused (UnsafePath), before anything is read or written, if any file is a symlink or lies
    in a symlinked folder: following one would encrypt a file from outside to the readers.
    Every file is decrypted and compared first; only then are the files to rewrite journaled
    (App.changing) and written, so a rekey killed halfway is rolled back whole by `doctor`.
    """
    with app.writing("talkbook rekey"):
        ws = app.workspace
        actor = app.require_role("custodian")
        last = gittrail.last_commits(ws.root)
        configs: dict[str, Workspace] = {}
        todo: list[tuple[Path, str, list[str]]] = []
        unreadable: list[str] = []
        files = [regular_file(ws.root, path) for path in ws.encrypted_files()]
        found = catalog.readings(app.keyring, list(catalog.working_tree(ws, files)))
        for reading in app.prompts.progress(found, len(found)):
            rel = reading.rel
            if reading.state in (catalog.UNREADABLE, catalog.BROKEN):
                unreadable.append(rel)
                continue
            if reading.doc is None or reading.text is None:
                raise reading.error()
            now = ws.recipients(reading.kind, reading.doc.meta)
            sha = last.get(rel)
            then = workspace_at(ws, sha, configs) if sha else None
            if then is None or then.recipients(reading.kind, reading.doc.meta) != now:
                todo.append((ws.root / rel, reading.text, now))
        sha = None
        if todo:
            paths = [path for path, _, _ in todo]
            message = f"rekey: {len(todo)} file{'s' if len(todo) != 1 else ''}"
            author, signer = app.author(actor), app.signer()
            with app.changing(paths):
                for path, text, now in todo:
                    app.vault.write(path, text, now, force=True)
                checkpoint("commit")
                sha = gittrail.commit(ws.root, paths, message, author, signer)
    return RekeyResult([ws.relative(path) for path, _, _ in todo], unreadable, sha)


def workspace_at(ws: Workspace, sha: str, cache: dict[str, Workspace]) -> Workspace:
    if sha not in cache:
        blob = gittrail.blob_at(ws.root, sha, CONFIG_NAME)
        cache[sha] = ws.with_config(tomllib.loads(blob.decode("utf-8")) if blob else {})
    return cache[sha]
