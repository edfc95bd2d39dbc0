"""`talkbook doctor`: finish or roll back a write that was killed halfway, and sweep what dead
talkbook processes left behind.

Contract:

- `recover(root)` runs under the write lock (lock.py), so the writer it cleans up after is gone.
  With no journal there is nothing to undo. If HEAD has moved past the journal's start by a
  commit that changed the journaled paths, the write was done (the commit is its last step, and
  git makes it atomically): only the journal is cleared. Otherwise each journaled path goes back
  to HEAD, index entry and working file (a file HEAD does not have is removed), and the journal
  is cleared. Either way the repository is exactly as before the write or exactly as after it.
  Temp files of dead writers (`.NAME.tmp-PID-…`, see fsutil) are removed. Every step is said in
  a line; running it again is harmless (the journal goes last).
- A git command that the killed writer started may outlive it (SIGKILL kills talkbook, not its
  children): `recover` waits a few seconds for `.git/index.lock` to go before it looks at HEAD,
  and removes that lock file only when it stays and a journal says a write of ours was in git's
  hands.
- `sweep_private()` runs before every command: private editing folders (`talkbook-PID-…`, made
  by editor.py) and signing-agent folders (`talkbook-agent-PID-…`, made by crypto/signing.py) of
  this user in the tmpfs candidates and the temp folders, whose process PID is gone, are wiped
  (files zero-filled, then removed) and such an agent is stopped. A folder of a live process,
  of another user, or not named with a pid is never touched.

Security invariant: decrypted text exists only in private folders of live processes; anything a
dead one left is wiped by the next command. Doctor itself never decrypts and needs no identity:
it moves ciphertext and settings back to what HEAD holds, only for paths its journal names.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from talkbook.errors import TalkbookError
from talkbook.fsutil import pid_alive, stale_temp_files
from talkbook.i18n import _

if TYPE_CHECKING:
    from talkbook import lock

GIT_SETTLE = 5.0  # seconds to let an orphaned git command finish
EDIT_FOLDER = re.compile(r"talkbook-([0-9]+)-[^/]+")
AGENT_FOLDER = re.compile(r"talkbook-agent-([0-9]+)-[^/]+")


def recover(root: Path, git_dir: Path) -> list[str]:
    """Finish or roll back the journaled write; what was done, a line each."""
    # Imported here, not at the top: sweep_private runs before every command and needs neither.
    from talkbook import lock

    said: list[str] = []
    journal = lock.read(git_dir)
    said += _settle_git(git_dir, journal is not None)
    if journal is not None:
        said.append(_finish_or_roll_back(root, journal))
    removed = _remove_stale_temp_files(root, git_dir)
    if removed:
        said.append(
            _("removed {count} temp file(s) a killed write left: {removed}").format(
                count=len(removed), removed=" ".join(removed)
            )
        )
    if journal is not None:
        lock.clear(git_dir)
    return said or [_("nothing to recover: no write was left half-done")]


def _finish_or_roll_back(root: Path, journal: lock.Journal) -> str:
    from talkbook import gittrail

    rels = sorted(journal.paths)
    what = _("the interrupted {operation}").format(operation=journal.describe())
    current = gittrail.head(root)
    done = (
        gittrail.touched_since(root, journal.head, rels)
        if journal.head and current != journal.head and rels
        else []
    )
    if done:
        return _("{what} had committed {commit}; nothing to undo").format(
            what=what, commit=done[0][:12]
        )
    if journal.head and current != journal.head:
        # HEAD moved without these paths: someone's git commit since; ours never happened
        what += _(" (HEAD moved to {commit} since)").format(commit=str(current)[:12])
    changed = gittrail.restore_to_head(root, rels)
    if not changed:
        return _("rolled back {what}: it had changed nothing yet").format(what=what)
    return _("rolled back {what}: {files} as HEAD has it").format(
        what=what, files=", ".join(changed)
    )


def _settle_git(git_dir: Path, ours: bool) -> list[str]:
    """Let a git command the killed writer started finish; a stale lock of ours goes."""
    index_lock = git_dir / "index.lock"
    deadline = time.monotonic() + GIT_SETTLE
    while index_lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not index_lock.exists():
        return []
    if not ours:
        raise TalkbookError(
            _(
                "git's index.lock is there: another git command is running, or one "
                "died; remove .git/index.lock once none runs"
            )
        )
    index_lock.unlink(missing_ok=True)
    return [_("removed git's index.lock, left by the interrupted write")]


def _remove_stale_temp_files(root: Path, git_dir: Path) -> list[str]:
    removed = []
    for folder in [*_folders(root), git_dir / "talkbook"]:
        for path in stale_temp_files(folder):
            path.unlink(missing_ok=True)
            removed.append(os.path.relpath(path, root))
    return removed


def _folders(root: Path) -> Iterator[Path]:
    """The workspace's folders, not following symlinks, without .git."""
    for current, dirs, _files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git" and not os.path.islink(os.path.join(current, d))]
        yield Path(current)


# -- what dead processes left in memory ----------------------------------------------------------
def private_parents() -> list[Path]:
    """Every folder editor.py and signing.py may make theirs in, that exists: editor's tmpfs
    candidates and wherever tempfile.gettempdir() may point (any of its candidates, so whichever
    one a dead process picked). Listed here, not asked of editor and tempfile: their imports
    would cost every command several milliseconds (tests/test_imports.py checks they agree)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    temp = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    names = [runtime, "/dev/shm", f"/run/user/{os.getuid()}", *temp, "/tmp", "/var/tmp", "/usr/tmp"]
    found: list[Path] = []
    for name in names:
        if name and (path := Path(name)) not in found and path.is_dir():
            found.append(path)
    return found


def stale_private_folders(parents: list[Path] | None = None) -> list[Path]:
    """Folders named with the pid of a talkbook process that is gone, owned by this user."""
    uid = os.getuid()
    found = []
    for parent in private_parents() if parents is None else parents:
        try:
            names = [n for n in os.listdir(parent) if n.startswith("talkbook-")]
        except OSError:
            continue
        for name in names:
            match = AGENT_FOLDER.fullmatch(name) or EDIT_FOLDER.fullmatch(name)
            if match is None or pid_alive(int(match.group(1))):
                continue
            try:
                info = os.lstat(parent / name)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
                found.append(parent / name)
    return found


def sweep_private(parents: list[Path] | None = None) -> list[Path]:
    """Wipe what dead talkbook processes of this user left in private folders; what went."""
    swept = []
    for folder in stale_private_folders(parents):
        from talkbook.editor import wipe_tree  # here: nearly always there is nothing to wipe

        if AGENT_FOLDER.fullmatch(folder.name):
            _stop_agents(folder)
        try:
            wipe_tree(folder)
        except TalkbookError:
            continue  # the next command tries again; never stop a command for this
        swept.append(folder)
    return swept


def _stop_agents(folder: Path) -> None:
    """The ssh-agent serving a socket in `folder` (its talkbook parent died): stop it."""
    sockets = {str(path).encode() for path in folder.iterdir()} if folder.is_dir() else set()
    if not sockets or not os.path.isdir("/proc"):
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != os.getuid():
                continue
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if sockets & set(argv) and os.path.basename(argv[0]) == b"ssh-agent":
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGTERM)
