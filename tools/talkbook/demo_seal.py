"""The bulk demo's heavy lifting: plans built and documents sealed, many at a time.

Plans are built (builders.plan_document: suggestions, the brief rendered from the locale's
template) and documents serialized and encrypted in forked processes, one per core: pyrage and
the template engine hold the GIL, so threads would not help. What is the same from one version
to the next is worked out once per process: a document's recipients (by its kind and the fields
the access rules name) and the YAML of a front-matter field whose value was dumped before.
A file's last version is written to a temp file in its own folder and renamed over the target,
so no reader ever sees half a file (earlier versions go to git history only); the per-file
fsync of fsutil.atomic_write is left out (a demo that fails is built again, not repaired) and
the build ends with one `os.sync()`. Every version's ciphertext goes into one pack through
`git fast-import`; demo_history makes the trees and the signed commits.

Security invariant: plaintext exists only in memory and in the pipe to the forked processes;
files are written only encrypted, each to exactly the readers Workspace.recipients names."""

from __future__ import annotations

import marshal
import multiprocessing
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from talkbook import builders
from talkbook.errors import TalkbookError
from talkbook.i18n import _
from talkbook.models import DELIMITER, Document, _to_yaml

# Set before the pool forks, read in the forked processes: the workspace and the App whose
# builders render templates (trusted once, before the fork).
_SHARED: dict[str, Any] = {}
# Each process's parsed recipients, by a document's kind and the fields the access rules name.
_READERS: dict[tuple[str, ...], list[Any]] = {}
# Each process's YAML of top-level fields, by name and value (see front_matter).
_FRAGMENTS: dict[tuple[Any, bytes], str] = {}
FRAGMENTS_KEPT = 100_000  # past this many the cache starts afresh: its memory stays bounded
# libyaml's emitter writes the very text models.Document.text() does (tests/test_demo.py
# compares them), four times faster; without libyaml, Document.text() itself.
_DUMPER = getattr(yaml, "CSafeDumper", None)

# (path in the workspace, kind, front matter, body, whether it is the file's last version)
Job = tuple[str, str, dict[str, Any], str, bool]


def document_text(doc: Document) -> str:
    """Document.text(), through libyaml when it is there."""
    if _DUMPER is None:
        return doc.text()
    body = doc.body.strip("\n")
    return f"{DELIMITER}\n{front_matter(doc.meta)}{DELIMITER}\n" + (f"\n{body}\n" if body else "")


def _dump(meta: dict[Any, Any]) -> str:
    return yaml.dump(_to_yaml(meta), Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=100)


def front_matter(meta: dict[Any, Any]) -> str:
    """The front matter's YAML as Document.text() writes it, one top-level field at a time.

    The fields of a block mapping are written independently of each other (no anchor links
    them: _to_yaml copies every container), so the whole is its fields' texts joined. A field
    met before with an equal value (a status, a decision trail that did not change, a profile's
    work history) is taken from the cache, keyed by the value's marshal bytes: equal bytes are
    an equal value of the same types. A value marshal does not take is dumped each time; a
    field whose text would end its document ('...') makes the whole front matter dumped at once.
    """
    parts = []
    for name, value in meta.items():
        try:
            key = (name, marshal.dumps(value))
        except ValueError:  # a type marshal does not write (a date object…): not cached
            parts.append(_dump({name: value}))
            continue
        text = _FRAGMENTS.get(key)
        if text is None:
            if len(_FRAGMENTS) >= FRAGMENTS_KEPT:
                _FRAGMENTS.clear()
            text = _FRAGMENTS[key] = _dump({name: value})
        parts.append(text)
    if not parts or any(part.endswith("\n...\n") for part in parts):
        return _dump(meta)  # empty ('{}'), or a field that closes the document: all at once
    return "".join(parts)


def rule_fields(config: dict[str, Any]) -> tuple[str, ...]:
    """The front-matter fields the access rules name (`field:speaker`…), sorted."""
    access = config.get("access") or {}
    rules = [r for r in access.values() if isinstance(r, list)] if isinstance(access, dict) else []
    tokens = [str(token) for rule in rules for token in rule]
    return tuple(sorted({t.partition(":")[2] for t in tokens if t.startswith("field:")}))


def recipients(kind: str, meta: dict[str, Any]) -> list[Any]:
    """The parsed recipients of a document, found once per kind and per value of the fields the
    access rules name: the only part of a document Workspace.readers looks at."""
    from talkbook.crypto import parse_recipient

    ws = _SHARED["ws"]
    if "fields" not in _SHARED:
        _SHARED["fields"] = rule_fields(ws.config)
    key = (kind, *(str(meta.get(name)) for name in _SHARED["fields"]))
    if key not in _READERS:
        _READERS[key] = [parse_recipient(k) for k in ws.recipients(kind, meta)]
    return _READERS[key]


def seal(job: Job) -> tuple[str, bytes]:
    """Serialize and encrypt to the access rule's readers; the file's last version is also
    written (atomically). Returns the git blob id and the ciphertext, for the pack."""
    import hashlib

    import pyrage

    rel, kind, meta, body, final = job
    text = document_text(Document(meta, body)).encode("utf-8")
    data = pyrage.encrypt(text, recipients(kind, meta))
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    if final:
        _write(_SHARED["ws"].root / rel, data)
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
        _READERS.clear()
        _SHARED.update(ws=app.workspace, app=app)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.pool = None
        if cores > 1 and "fork" in multiprocessing.get_all_start_methods():
            self.pool = multiprocessing.get_context("fork").Pool(cores)

    def map(self, work: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        if self.pool is None or len(jobs) < 8:
            return [work(job) for job in jobs]
        return self.pool.map(work, jobs, chunksize=max(1, min(64, len(jobs) // 32)))

    def stream(self, work: Callable[[Any], Any], jobs: list[Any]) -> Iterator[Any]:
        """The results in order, each as soon as it and those before it are done."""
        if self.pool is None or len(jobs) < 8:
            return map(work, jobs)
        return self.pool.imap(work, jobs, chunksize=max(1, min(64, len(jobs) // 32)))

    def close(self) -> None:
        _FRAGMENTS.clear()  # plaintext kept no longer than the build (this process's, when alone)
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


class Packer:
    """Every version's ciphertext into one pack with `git fast-import` (one process, no loose
    object per version: writing tens of thousands of those is what would take the time).

    Ciphertext neither compresses nor deltas: each blob is stored as it is (compression level
    0), and "big" (streamed, no delta tried against the blob before) from 1 KiB on, which
    more than halves what fast-import costs; `git gc` may compress the pack later."""

    def __init__(self, root: Path) -> None:
        command = ["git", "-c", "pack.compression=0", "fast-import", "--quiet", "--done"]
        command.append("--big-file-threshold=1k")
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


def quiet_git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
