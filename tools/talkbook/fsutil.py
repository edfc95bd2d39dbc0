"""Files of the workspace: regular files under its root only, and atomic writes.

Every read and write of a workspace file goes through `regular_file`: a symlink, at the file or
at any folder between the root and it, or a path resolving outside the root, is refused. Anyone
who can push may commit a symlink (`plan.md.age -> ~/.ssh/id_ed25519`); following it would read,
re-encrypt and commit a file from outside the workspace, or write outside it.

Writes: a reader sees the old bytes or the new ones, never half of either. A write killed
midway leaves at most a temp file `.NAME.tmp-PID-XXXXXXXX` beside its target (ciphertext or
settings, never plaintext), which `stale_temp_files` finds once PID is gone.

Crash tests: `checkpoint(name)` marks the steps of a write (journal written, temp file written,
file in place, before and after the commit); TALKBOOK_KILL_AT=name, or name#N for its Nth time,
kills this process right there with SIGKILL. Without that variable a checkpoint does nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from talkbook.errors import UnsafePath
from talkbook.i18n import _

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
TEMP_NAME = re.compile(r"\..+\.tmp-([0-9]+)-[0-9a-f]{8}")  # what atomic_write leaves if killed
_passed: Counter[str] = Counter()


def checkpoint(name: str) -> None:
    """A step of a write, for the kill harness: SIGKILL here when TALKBOOK_KILL_AT says so."""
    wanted = os.environ.get("TALKBOOK_KILL_AT")
    if not wanted:
        return
    target, _sep, nth = wanted.partition("#")
    if target != name:
        return
    _passed[name] += 1
    if _passed[name] == (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; no such pid at all
        return False
    except PermissionError:
        return True
    return True


def stale_temp_files(folder: Path) -> list[Path]:
    """atomic_write's temp files directly in `folder` whose writing process is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        match = TEMP_NAME.fullmatch(name)
        if match and not pid_alive(int(match.group(1))):
            found.append(folder / name)
    return sorted(found)


def inside(root: Path, path: Path) -> PurePosixPath | None:
    """`path` relative to `root`, by name (no symlink below the root followed), else None.

    A path spelled through a symlink above the root (`/tmp/ws` for `/private/tmp/ws`) counts as
    inside: only what lies below the root is the workspace's, and so its business.
    """
    absolute = Path(os.path.normpath(path.absolute()))
    root = Path(os.path.normpath(root.absolute()))
    try:
        return PurePosixPath(absolute.relative_to(root).as_posix())
    except ValueError:
        pass
    real_root = os.path.realpath(root)
    for prefix in reversed(absolute.parents):  # outermost first: a link below root is no alias
        if os.path.realpath(prefix) == real_root:
            return PurePosixPath(absolute.relative_to(prefix).as_posix())
    return None


def regular_file(root: Path, path: Path) -> Path:
    """The one gate: `path` as root/…, if it is a regular file inside `root` reached without
    following any symlink, or is not there yet (a write creates it). UnsafePath otherwise.

    Missing folders are fine (a write makes them); a folder that is a symlink is not.
    """
    rel = inside(root, path)
    if rel is None or rel.parts[:1] in (("..",), ()):
        raise UnsafePath(str(path), _("outside it"))
    current = root
    for index, part in enumerate(rel.parts):
        current = current / part
        try:
            info = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            break
        last = index == len(rel.parts) - 1
        if stat.S_ISLNK(info.st_mode):
            folder = PurePosixPath(*rel.parts[: index + 1])
            where = _("symlink") if last else _("{folder} is a symlink").format(folder=folder)
            raise UnsafePath(str(rel), where)
        if last and not stat.S_ISREG(info.st_mode):
            what = _("a folder") if stat.S_ISDIR(info.st_mode) else _("not a regular file")
            raise UnsafePath(str(rel), what)
    return root / rel


def read_regular(root: Path, path: Path) -> bytes:
    """The bytes of a workspace file, refused unless `regular_file` lets it through; opened
    folder by folder with O_NOFOLLOW, so a symlink swapped in after the check is refused too."""
    checked = regular_file(root, path)
    fd = _open_below(root, checked, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # FIFO: no hang
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise UnsafePath(str(inside(root, checked)), _("not a regular file"))
        return handle.read()


def read_below(root: str, rel: str, folders: Folders | None = None) -> bytes:
    """read_regular for a plain relative path ("talks/2026/T-…/plan.md.age"), without pathlib:
    what a cold index does 21,000 times. Each folder is opened with O_NOFOLLOW from the root's
    descriptor and the file with O_NOFOLLOW and O_NONBLOCK, so no symlink below the root is
    followed and no FIFO blocks; anything else (a symlink, a folder, a `..` part) is OSError,
    without read_regular's wording: callers read such a file again with read_regular, which
    says what is wrong with it. With `folders`, the folders it opened for the paths read before
    are used again (files read in path order share them)."""
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise OSError(f"{rel}: not a plain relative path")
    opened = Folders() if folders is None else folders
    try:
        folder_fd = opened.open(root, parts[:-1])
        file_fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder_fd)
    finally:
        if folders is None:
            opened.close()
    try:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{rel}: not a regular file")
        return _read_to_end(file_fd, info.st_size)
    finally:
        os.close(file_fd)


_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)


def _read_to_end(fd: int, size: int) -> bytes:
    """All the bytes of an open regular file, `size` long when looked at (no file object: it
    costs more than the reading). Read to its end whatever its size is by now."""
    first = os.read(fd, size + 1)
    more = os.read(fd, 1 << 16) if first else b""
    if not more:
        return first
    chunks = [first, more]
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


class Folders:
    """Descriptors of the folders of the last path `read_below` read with this: the root's,
    then one per folder below it, each opened from the one above with O_NOFOLLOW, as
    read_below opens them. Files read in path order share their folders, so each folder is
    opened once, not once per file (a cold index reads 21,000 files below four levels of
    folders). `close` when done; a forked worker's are closed when it exits."""

    __slots__ = ("root", "names", "fds")

    def __init__(self) -> None:
        self.root = ""
        self.names: list[str] = []  # the folders below the root, outermost first
        self.fds: list[int] = []  # the root's, then one per name

    def open(self, root: str, names: list[str]) -> int:
        """The descriptor of root/names…, the folders the last path shared with it kept."""
        if root != self.root or not self.fds:
            self.close()
            self.fds.append(os.open(root, os.O_RDONLY | _DIRECTORY))
            self.root = root
        kept = 0
        for mine, wanted in zip(self.names, names, strict=False):  # the shorter decides
            if mine != wanted:
                break
            kept += 1
        while len(self.names) > kept:
            self.names.pop()
            os.close(self.fds.pop())
        for name in names[kept:]:
            fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=self.fds[-1])
            self.fds.append(fd)
            self.names.append(name)
        return self.fds[-1]

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())
        self.names.clear()
        self.root = ""


def _open_folder(root: Path | None, folder: Path) -> int:
    """A descriptor of `folder`; below `root`, reached one folder at a time without following
    a symlink (ELOOP if one appeared after `regular_file` looked)."""
    if root is None:
        return os.open(folder, os.O_RDONLY | _DIRECTORY)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    rel = inside(root, folder)
    try:
        for part in rel.parts if rel is not None else ():
            step = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_below(root: Path, path: Path, flags: int) -> int:
    dir_fd = _open_folder(root, path.parent)
    try:
        return os.open(path.name, flags | _NOFOLLOW, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, root: Path | None = None) -> None:
    """Temp file in the same folder, fsync, rename over the target, fsync the folder.

    With `root` (every write of a workspace file), `regular_file` must let the path through,
    and the folder is reached without following a symlink. On any failure (disk full
    included) the temp file is removed and the target is untouched.
    """
    if root is not None:
        path = regular_file(root, path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    dir_fd = _open_folder(root, folder)
    try:
        tmp = f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), mode)  # the umask may have narrowed it
            if root is not None:
                checkpoint("tmp")
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if root is not None:
        checkpoint("written")


Snapshot = dict[Path, tuple[bytes, int] | None]


def snapshot(paths: list[Path], root: Path | None = None) -> Snapshot:
    """The bytes and mode of each file (None: not there), for `restore`. With `root`, each must
    be a regular file inside it (`regular_file`), or UnsafePath before anything is read."""
    saved: Snapshot = {}
    for path in paths:
        try:
            if root is None:
                saved[path] = (path.read_bytes(), path.stat().st_mode)
            else:
                saved[path] = (read_regular(root, path), os.lstat(path).st_mode)
        except FileNotFoundError:
            saved[path] = None
    return saved


def restore(saved: Snapshot) -> None:
    """Put the files back as `snapshot` found them (a file that was not there is removed)."""
    for path, before in saved.items():
        if before is None:
            path.unlink(missing_ok=True)
        elif not path.exists() or path.read_bytes() != before[0]:
            atomic_write(path, before[0], mode=before[1] & 0o777)


@contextlib.contextmanager
def rollback_on_error(paths: list[Path]) -> Iterator[None]:
    """Put these files back as they were if the block fails (a commit refused by git, say),
    so a change is either written and committed, or not there at all."""
    saved = snapshot(paths)
    try:
        yield
    except BaseException:
        restore(saved)
        raise
