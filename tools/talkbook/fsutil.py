"""Atomic file writes: a reader sees the old bytes or the new ones, never half of either."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Temp file in the same folder, fsync, rename over the target, fsync the folder.

    On any failure (disk full included) the temp file is removed and the target is untouched.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def rollback_on_error(paths: list[Path]) -> Iterator[None]:
    """Put these files back as they were if the block fails (a commit refused by git, say),
    so a change is either written and committed, or not there at all."""
    saved = {
        path: (path.read_bytes(), path.stat().st_mode) if path.exists() else None for path in paths
    }
    try:
        yield
    except BaseException:
        for path, before in saved.items():
            if before is None:
                path.unlink(missing_ok=True)
            elif not path.exists() or path.read_bytes() != before[0]:
                atomic_write(path, before[0], mode=before[1] & 0o777)
        raise
