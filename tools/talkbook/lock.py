"""One writer at a time, and the journal of what that writer is doing.

Contract:

- **The write lock.** Every command that writes holds `.git/talkbook/write.lock` (an exclusive
  `fcntl.flock`) from before it reads what it will change until after its commit, so a
  read-modify-write (five `talkbook event` on one profile at once) never loses an update. Who
  holds it is written into the file (pid, command, person id, since when); a command that finds
  it taken polls for up to TALKBOOK_LOCK_WAIT seconds (10 by default), then fails with one line
  naming the holder. The kernel drops the lock when its process ends, however it ends: a killed
  command never leaves the workspace locked. The file itself stays (removing a lock file others
  may be waiting on would let two writers in). Reads never take the lock and never wait.
- **The journal.** Before a write touches the working tree it records its intent in
  `.git/talkbook/journal.json` (operation, pid, person, start time, the HEAD it started from, and
  each path's blob id at that HEAD or "absent"), written atomically and fsynced; it is removed
  once the commit is made or the change rolled back. A journal found by the next writer (who
  holds the lock, so its writer is gone) means work was left half-done: every write refuses,
  naming it, until `talkbook doctor` (doctor.py) has finished or rolled it back. Refusing rather
  than repairing silently keeps the user in charge of a workspace that git alone also edits.

Security invariant: the lock file and the journal hold only pids, command names, person ids,
opaque workspace paths, commit and blob ids, and times: never a name, a field or any plaintext.
Both are 0600 and live under `.git/`, which git never commits.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkbook.errors import TalkbookError
from talkbook.fsutil import atomic_write
from talkbook.i18n import _

LOCK_NAME = "write.lock"
JOURNAL_NAME = "journal.json"
DEFAULT_WAIT = 10.0  # seconds
POLL = 0.05


class WorkspaceBusy(TalkbookError):
    """Another command holds the write lock and did not let go in time."""


class InterruptedWork(TalkbookError):
    """A write was killed halfway: `talkbook doctor` first."""


def state_dir(git_dir: Path) -> Path:
    folder = git_dir / "talkbook"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def lock_wait() -> float:
    try:
        return max(0.0, float(os.environ.get("TALKBOOK_LOCK_WAIT", DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


@dataclass
class WriteLock:
    """The held lock: an open descriptor with flock taken; `release` (or exit) lets go."""

    fd: int
    command: str
    person: str | None = None
    since: dt.datetime = field(default_factory=lambda: dt.datetime.now().replace(microsecond=0))
    owner: int = field(default_factory=os.getpid)  # a forked child shares the open file

    @classmethod
    def acquire(cls, git_dir: Path, command: str, wait: float | None = None) -> WriteLock:
        path = state_dir(git_dir) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        deadline = time.monotonic() + (lock_wait() if wait is None else wait)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WorkspaceBusy(busy_message(_holder(fd))) from None
                    time.sleep(POLL)
        except BaseException:
            os.close(fd)
            raise
        held = cls(fd, command)
        held._describe()
        return held

    def note_person(self, person: str) -> None:
        """The acting person, once known (the key is loaded after the lock is taken)."""
        if self.person != person:
            self.person = person
            self._describe()

    def _describe(self) -> None:
        info = {
            "pid": os.getpid(),
            "command": self.command,
            "person": self.person,
            "since": self.since.isoformat(),
        }
        data = json.dumps(info).encode("utf-8")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Let go; in a forked child nothing (flock belongs to the open file, which the child
        shares: its LOCK_UN would let a second writer in while the command still writes)."""
        if self.fd < 0 or os.getpid() != self.owner:
            return
        try:
            os.ftruncate(self.fd, 0)  # nobody holds it: no stale "who" for the next reader
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def _holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def busy_message(holder: dict[str, Any]) -> str:
    """`workspace busy: `talkbook event` by P-01 (pid 1234) since 14:02; try again`."""
    command = holder.get("command")
    what = f"`{command}`" if isinstance(command, str) and command.isprintable() else _("a command")
    person = holder.get("person")
    by = (
        _(" by {person}").format(person=person)
        if isinstance(person, str) and person.isprintable()
        else ""
    )
    pid = holder.get("pid")
    process = f" (pid {pid})" if isinstance(pid, int) else ""
    return _("workspace busy: {what}{by}{process}{since}; try again").format(
        what=what, by=by, process=process, since=_since(holder.get("since"))
    )


def _since(value: Any) -> str:
    time = _clock(value)
    return _(" since {time}").format(time=time) if time else ""


def _clock(value: Any) -> str:
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    return f"{when:%H:%M}" if when.date() == dt.date.today() else f"{when:%Y-%m-%d %H:%M}"


# -- the journal ---------------------------------------------------------------------------------
ABSENT = "absent"


@dataclass(frozen=True)
class Journal:
    operation: str
    pid: int
    person: str | None
    started: str
    head: str | None
    paths: dict[str, str]  # workspace-relative path -> blob id at `head`, or ABSENT

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "pid": self.pid,
            "person": self.person,
            "started": self.started,
            "head": self.head,
            "paths": self.paths,
        }

    def describe(self) -> str:
        """`talkbook edit` (pid 1234, P-01, 14:02): how doctor and the refusal name it."""
        details = [f"pid {self.pid}", *([self.person] if self.person else [])]
        details.append(_clock(self.started))
        return f"`{self.operation}` ({', '.join(d for d in details if d)})"


def journal_path(git_dir: Path) -> Path:
    return git_dir / "talkbook" / JOURNAL_NAME


def begin(git_dir: Path, journal: Journal) -> None:
    """Record the intent, durably, before the working tree is touched."""
    data = json.dumps(journal.as_dict(), indent=1).encode("utf-8")
    atomic_write(state_dir(git_dir) / JOURNAL_NAME, data, mode=0o600)


def read(git_dir: Path) -> Journal | None:
    """The journal left by an unfinished write, or None. A journal that cannot be parsed (cut
    short by a crash of the disk rather than of the command) still counts: its paths are
    unknown, so doctor restores nothing it cannot name."""
    path = journal_path(git_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        data = {}
    listed = data.get("paths")
    paths: dict[Any, Any] = listed if isinstance(listed, dict) else {}
    pid = data.get("pid")
    return Journal(
        operation=str(data.get("operation") or "talkbook"),
        pid=pid if isinstance(pid, int) else 0,
        person=str(data["person"]) if data.get("person") else None,
        started=str(data.get("started") or ""),
        head=str(data["head"]) if data.get("head") else None,
        paths={str(k): str(v) for k, v in paths.items()},
    )


def clear(git_dir: Path) -> None:
    """The operation is committed or rolled back: forget it, durably."""
    path = journal_path(git_dir)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refuse_if_interrupted(git_dir: Path) -> None:
    """Called by every writer once it holds the lock: a journal now is a dead writer's."""
    if (journal := read(git_dir)) is not None:
        raise InterruptedWork(
            _("an interrupted `{operation}` left work half-done; run `talkbook doctor`").format(
                operation=journal.operation
            )
        )
