"""The bulk demo's heavy lifting: plans built, documents sealed and committed, many at a time.

Plans are built (builders.plan_document: suggestions, the brief rendered from the locale's
template) and documents serialized and encrypted in forked processes, one per core: pyrage and
the template engine hold the GIL, so threads would not help. A file's last version is written to
a temp file in its own folder and renamed over the target, so no reader ever sees half a file
(earlier versions go to git history only); the per-file
fsync of fsutil.atomic_write is left out (a demo that fails is built again, not repaired) and
the build ends with one `os.sync()`. Every version's ciphertext goes into one pack through
`git fast-import`; then each group of versions becomes one commit: the index takes their blob
ids, `git commit -S` signs it with the acting person's key, without the hook (the documents come
from the builders, and `validate` checks the result), as gittrail.commit does.

Security invariant: plaintext exists only in memory and in the pipe to the forked processes;
files are written only encrypted; commit messages carry counts, never a name or content.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from talkbook import builders, gittrail
from talkbook.errors import TalkbookError
from talkbook.i18n import _
from talkbook.models import DELIMITER, Document, _to_yaml

# Set before the pool forks, read in the forked processes: the workspace and the App whose
# builders render templates (trusted once, before the fork).
_SHARED: dict[str, Any] = {}
_PARSED: dict[tuple[str, ...], list[Any]] = {}  # each process's parsed recipients
# libyaml's emitter writes the very text models.Document.text() does (tests/test_demo.py
# compares them), four times faster; without libyaml, Document.text() itself.
_DUMPER = getattr(yaml, "CSafeDumper", None)

# (path in the workspace, kind, front matter, body, whether it is the file's last version)
Job = tuple[str, str, dict[str, Any], str, bool]


def document_text(doc: Document) -> str:
    """Document.text(), through libyaml when it is there."""
    if _DUMPER is None:
        return doc.text()
    front = yaml.dump(
        _to_yaml(doc.meta), Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=100
    )
    body = doc.body.strip("\n")
    return f"{DELIMITER}\n{front}{DELIMITER}\n" + (f"\n{body}\n" if body else "")


def seal(job: Job) -> tuple[str, bytes]:
    """Serialize and encrypt to the access rule's readers; the file's last version is also
    written (atomically). Returns the git blob id and the ciphertext, for the pack."""
    import hashlib

    import pyrage

    from talkbook.crypto import parse_recipient

    rel, kind, meta, body, final = job
    ws = _SHARED["ws"]
    keys = tuple(ws.recipients(kind, meta))
    if keys not in _PARSED:
        _PARSED[keys] = [parse_recipient(k) for k in keys]
    data = pyrage.encrypt(document_text(Document(meta, body)).encode("utf-8"), _PARSED[keys])
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    if final:
        _write(ws.root / rel, data)
    return blob, data


def _write(path: Path, data: bytes) -> None:
    """Atomically: a temp file in the same folder, renamed over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def draft(job: tuple[dict[str, Any], dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """A new plan from the profile as it stood when it was drafted: `talkbook plan`'s builder."""
    profile, inputs = job
    doc = builders.plan_document(_SHARED["app"], profile, **inputs)
    return doc.meta, doc.body


class Pool:
    """Forked processes, one per core (or this process alone when there is one core)."""

    def __init__(self, app: Any) -> None:
        app.ensure_trust()  # once, here: the forked processes inherit a trusted App
        _SHARED.clear()
        _SHARED.update(ws=app.workspace, app=app)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.pool = None
        if cores > 1 and "fork" in multiprocessing.get_all_start_methods():
            self.pool = multiprocessing.get_context("fork").Pool(cores)

    def map(self, work: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        if self.pool is None or len(jobs) < 8:
            return [work(job) for job in jobs]
        return self.pool.map(work, jobs, chunksize=max(1, min(64, len(jobs) // 32)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


class Packer:
    """Every version's ciphertext into one pack with `git fast-import` (one process, no loose
    object per version: writing tens of thousands of those is what would take the time)."""

    def __init__(self, root: Path) -> None:
        command = ["git", "fast-import", "--quiet", "--done"]
        self.process = subprocess.Popen(command, cwd=root, stdin=subprocess.PIPE)

    def add(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"blob\ndata %d\n" % len(data) + data + b"\n")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"done\n")
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise TalkbookError(_("git fast-import failed; the demo is incomplete"))


def commit(root: Path, entries: list[tuple[str, str]], message: str, app: Any, who: str) -> None:
    """Put these (path, blob) in the index and commit it, signed by `who` (whose App this is):
    as `git add` then `git commit -S`, the hook left out as gittrail.commit leaves it out."""
    author = app.author(app.workspace.person(who))
    options, env = app.signer().git_options()
    env = {**os.environ, **env, **gittrail._identity_env(author)}
    listed = "".join(f"100644 {blob}\t{rel}\n" for rel, blob in entries).encode("utf-8")
    for args, given in (
        (["update-index", "--add", "--index-info"], listed),
        ([*options, "commit", "-S", "--no-verify", "--quiet", "-m", message], b""),
    ):
        done = subprocess.run(["git", *args], cwd=root, input=given, env=env, capture_output=True)
        if done.returncode != 0:
            last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
            raise TalkbookError(_("git {command} failed: {why}").format(command=args[0], why=last))


def quiet_git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
