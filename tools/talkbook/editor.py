"""Private editing: the user's editor on a decrypted copy that lives only in memory.

Plaintext must never reach the workspace or a persistent disk, so the copy is written to a
0700 folder on a tmpfs and wiped on every way out of `edit_privately` (success, refusal,
error, Ctrl-C, SIGTERM/SIGHUP, editor killed). The text itself is never printed or logged.

The folder is named `talkbook-PID-XXXXXXXX` after the process that made it: a process killed
outright (SIGKILL, power cut of the session) cannot wipe it, so the next talkbook command of the
same user does (doctor.sweep_private), once PID is gone.

vim, nvim, nano and emacs also keep no history, undo, backup, swap, shada, auto-save, lock or
recent-file entries outside that folder (see `with_privacy_flags` and `private_env`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from talkbook.errors import EditAborted, TalkbookError
from talkbook.fsutil import checkpoint
from talkbook.i18n import _

_MEMORY_FS = frozenset({"tmpfs", "ramfs"})
_WIPE_CHUNK = 1 << 16


class EditInterrupted(EditAborted):
    """Our own process got SIGTERM/SIGHUP while the editor ran; the copy has been wiped.

    The exit code follows the shell convention for death by signal (128 + n) so scripts
    can tell an interrupted edit from a refused one.
    """

    def __init__(self, signum: int):
        super().__init__(
            _("interrupted by {signal}; nothing was changed").format(signal=_signal_name(signum))
        )
        self.signum = signum
        self.exit_code = 128 + signum


def private_dir_candidates() -> list[Path]:
    """Folders that are usually in-memory on Linux, best first; only those that exist."""
    raw: list[str] = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        raw.append(runtime)
    raw.append("/dev/shm")
    raw.append(f"/run/user/{os.getuid()}")
    found: list[Path] = []
    for entry in raw:
        path = Path(entry)
        if path.is_dir() and path not in found:
            found.append(path)
    return found


def _unescape_mount_field(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as 3-digit octal escapes.
    out: list[str] = []
    i = 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def is_tmpfs(path: Path) -> bool:
    """True when the mount covering `path` is a tmpfs or ramfs (False if that is unknowable)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.read().splitlines()
    except OSError:
        return False
    target = Path(os.path.realpath(path))
    best: Path | None = None
    best_type = ""
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = Path(_unescape_mount_field(fields[1]))
        if not target.is_relative_to(mount_point):
            continue
        # Later lines are mounted on top of earlier ones, so a tie goes to the later line.
        if best is None or len(mount_point.parts) >= len(best.parts):
            best, best_type = mount_point, fields[2]
    return best_type in _MEMORY_FS


def editor_command(env: Mapping[str, str] | None = None) -> list[str]:
    """$VISUAL, else $EDITOR, else vi; split like a shell would (e.g. "code --wait")."""
    env = os.environ if env is None else env
    for name in ("VISUAL", "EDITOR"):
        value = env.get(name, "")
        if not value.strip():
            continue
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise EditAborted(
                _("${name} is not a valid command line ({problem})").format(name=name, problem=exc)
            ) from None
        if words:
            return with_privacy_flags(words)
    return with_privacy_flags(["vi"])


# Editors keep what was typed, searched and yanked in files of their own (vim's viminfo, nvim's
# shada, nano's search_history, emacs's savehist/recentf/auto-save-list), plus undo, backup, swap,
# auto-save and lock files, beside the copy or in the home folder: all on a persistent disk. For
# the editors we know, `with_privacy_flags` starts them without user or site configuration (which
# could turn any of this back on) and with all of it off, and `private_env` points HOME, the XDG
# folders and TMPDIR into the private folder, so anything written after all lands there and is
# wiped with the copy. The user's own config is therefore not loaded: privacy comes first.
# Any other editor runs as given. emacsclient is refused: the running Emacs it talks to keeps its
# own backups, auto-saves and history, which nothing on our command line can turn off.
_VIM_FAMILY = {"vi", "vim", "gvim", "view", "vimdiff", "rvim", "ex"}
_VIM_OFF = "set noundofile nobackup nowritebackup noswapfile"
_NVIM_OFF = "set shada= noundofile nobackup nowritebackup noswapfile"
_EMACS_OFF = (
    "(setq make-backup-files nil backup-inhibited t auto-save-default nil"
    " auto-save-list-file-prefix nil create-lockfiles nil"
    " savehist-mode nil recentf-mode nil desktop-save-mode nil save-place-mode nil)"
)
# Options come before the user's own words, so flags the user wrote explicitly still win.
_PRIVATE_FLAGS = {
    # -i NONE: no viminfo; -n: no swap file even if a vimrc asks; --cmd before loading, -c after.
    "vim": ["-i", "NONE", "--cmd", _VIM_OFF, "--clean", "-n", "-c", _VIM_OFF],
    "nvim": ["-i", "NONE", "--cmd", _NVIM_OFF, "--clean", "-n", "-c", _NVIM_OFF],
    # Restricted mode: no rc files, no history or position log, no backups, no suspending. (The
    # flags are what protects here: nano run as root ignores $HOME and writes to root's home.)
    "nano": ["--restricted", "--ignorercfiles"],
    "emacs": ["-Q", "-nw", "--eval", _EMACS_OFF],
}


def _emacsclient_refused() -> str:
    return _(
        "emacsclient edits in a running Emacs that keeps its own backups, auto-saves and "
        "history; set $VISUAL to emacs (talkbook starts it keeping none), vim, nvim or nano"
    )


def _kind_of_name(name: str) -> str | None:
    base = name.split(".", 1)[0]  # vim.basic, vim.tiny
    if base in _VIM_FAMILY:
        return "vim"
    if base == "nvim":
        return "nvim"
    if base in {"nano", "rnano"}:
        return "nano"
    if base.startswith("emacsclient"):
        return "emacsclient"
    if base == "emacs" or base.startswith("emacs-") or base.startswith("emacs2"):
        return "emacs"  # emacs-nox, emacs-gtk, emacs29
    return None


def editor_kind(program: str) -> str | None:
    """vim, nvim, nano, emacs, emacsclient or None, from the executable's real name.

    `vi` and `editor` are often links (Debian alternatives) to vim, nvim or nano: the target
    decides. A program not on PATH is known by the name it was given.
    """
    found = shutil.which(program)
    if found is not None:
        real = Path(os.path.realpath(found)).name
        kind = _kind_of_name(real)
        if kind is not None:
            return kind
        if real != Path(found).name:
            return None  # a link to an editor we do not know (vi -> nvi) gets no foreign flags
    return _kind_of_name(Path(program).name)


def with_privacy_flags(words: list[str]) -> list[str]:
    kind = editor_kind(words[0])
    if kind == "emacsclient":
        raise EditAborted(_emacsclient_refused())
    if kind is None:
        return words
    return [words[0], *_PRIVATE_FLAGS[kind], *words[1:]]


def private_env(command: list[str], folder: Path) -> dict[str, str] | None:
    """For a known editor: the environment with home, XDG folders and TMPDIR inside `folder`."""
    kind = editor_kind(command[0])
    if kind is None:
        return None
    if kind == "emacsclient":
        raise EditAborted(_emacsclient_refused())
    home = folder / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    for name in ("VIMINIT", "EXINIT", "MYVIMRC", "NVIM_LOG_FILE", "EMACSLOADPATH"):
        env.pop(name, None)
    env["HOME"] = str(home)
    env["TMPDIR"] = str(home)
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        env[name] = str(home / sub)
    return env


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return _("signal {number}").format(number=signum)


def _zero_file(path: Path, size: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except PermissionError:
        # An editor may leave its file read-only; we own it, so make it writable to wipe it.
        os.chmod(path, 0o600)
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        zeros = bytes(min(size, _WIPE_CHUNK))
        left = size
        while left > 0:
            left -= os.write(fd, zeros[: min(left, len(zeros))])
        os.fsync(fd)
    finally:
        os.close(fd)


def _wipe_entry(path: Path) -> None:
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode):
        os.rmdir(path)
        return
    if stat.S_ISREG(info.st_mode) and info.st_size > 0:
        _zero_file(path, info.st_size)
    # Symlinks and other specials are only unlinked: their targets are not ours to touch.
    os.unlink(path)


def wipe_tree(folder: Path) -> None:
    """Zero-fill, fsync and unlink every file under `folder`, then remove the folders.

    Best effort on each entry so one failure does not leave the rest behind; if anything
    survives, raise naming only the folder (never the content).
    """
    folder = Path(folder)
    if not os.path.lexists(folder):
        return
    if os.path.islink(folder) or not folder.is_dir():
        _wipe_entry(folder)
        return
    failed = False
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in [*files, *dirs]:
            try:
                _wipe_entry(Path(root) / name)
            except FileNotFoundError:
                pass
            except OSError:
                failed = True
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        pass
    except OSError:
        failed = True
    if failed or os.path.lexists(folder):
        raise TalkbookError(
            _("could not wipe the private editing folder {folder}; remove it by hand").format(
                folder=folder
            )
        )


def private_prefix() -> str:
    """Private folders carry the pid of their process, so a dead one's can be told apart."""
    return f"talkbook-{os.getpid()}-"


def _make_private_dir(candidates: list[Path], allow_disk: Callable[[Path], bool]) -> Path:
    for candidate in candidates:
        if not (candidate.is_dir() and is_tmpfs(candidate)):
            continue
        if not os.access(candidate, os.W_OK | os.X_OK):
            continue
        try:
            folder = Path(tempfile.mkdtemp(prefix=private_prefix(), dir=candidate))
        except OSError:
            continue  # full or read-only despite access(): try the next one
        os.chmod(folder, 0o700)  # mkdtemp honours the umask, which could make it unusable
        return folder
    fallback = Path(tempfile.gettempdir())
    if not allow_disk(fallback):
        raise EditAborted(_("no private in-memory folder (tmpfs) to edit in; aborted"))
    folder = Path(tempfile.mkdtemp(prefix=private_prefix(), dir=fallback))
    os.chmod(folder, 0o700)
    return folder


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a strict umask must not leave the editor unable to save
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@contextmanager
def _trapped_signals(interrupts: list[int]) -> Iterator[None]:
    """While the editor runs: SIGTERM/SIGHUP raise (so `finally` wipes); SIGINT is noted.

    SIGINT goes to the whole foreground process group, so the editor gets it too; like git,
    we let the editor decide, and only give up if the editor died of it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    raised = False

    def fatal(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:  # a second signal must not cut short killing the editor and wiping
            raised = True
            raise EditInterrupted(signum)

    def note(signum: int, frame: FrameType | None) -> None:
        interrupts.append(signum)

    wanted = {signal.SIGTERM: fatal, signal.SIGINT: note}
    if hasattr(signal, "SIGHUP"):
        wanted[signal.SIGHUP] = fatal
    previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_editor(editor: list[str], path: Path, env: dict[str, str] | None = None) -> None:
    interrupts: list[int] = []
    with _trapped_signals(interrupts):
        # Caught (not ignored) handlers are reset to default by exec, so the editor gets
        # normal signal behaviour; stdin/stdout/stderr are inherited (the terminal).
        try:
            process = subprocess.Popen([*editor, str(path)], env=env)
        except FileNotFoundError:
            raise EditAborted(_("editor not found: {editor}").format(editor=editor[0])) from None
        except PermissionError:
            raise EditAborted(
                _("editor cannot be run: {editor}").format(editor=editor[0])
            ) from None
        try:
            status = process.wait()
        except BaseException:
            # The editor must be gone before the copy is wiped, or it could write it again.
            process.kill()
            process.wait()
            raise
    if status < 0:
        if signal.SIGINT in interrupts and -status == signal.SIGINT:
            raise KeyboardInterrupt
        raise EditAborted(
            _("editor was killed by signal {signal}; nothing was changed").format(
                signal=_signal_name(-status)
            )
        )
    if status > 0:
        raise EditAborted(
            _("editor exited with status {status}; nothing was changed").format(status=status)
        )


def _same_text(edited: str, initial: str) -> bool:
    # Many editors (vi, nano) silently add a final newline; that alone is not a change.
    return edited == initial or (
        not initial.endswith("\n") and edited.endswith("\n") and edited[:-1] == initial
    )


def edit_privately(
    initial: str,
    check: Callable[[str], str | None],
    *,
    ask_reopen: Callable[[str], bool],
    allow_disk: Callable[[Path], bool],
    suffix: str = ".md",
    editor: list[str] | None = None,
    candidates: list[Path] | None = None,
) -> str | None:
    """Let the user edit `initial` in their editor; return the accepted text.

    Returns None when the text was saved unchanged. `check` returns a one-line problem or
    None; on a problem `ask_reopen(problem)` chooses between editing again (edits kept) and
    aborting (EditAborted). The private copy is wiped whatever happens.
    """
    if os.sep in suffix or (os.altsep and os.altsep in suffix):
        raise ValueError("suffix must not contain a path separator")
    command = list(editor) if editor else editor_command()
    folder = _make_private_dir(
        private_dir_candidates() if candidates is None else list(candidates), allow_disk
    )
    try:
        path = folder / f"talkbook{suffix}"
        _write_private(path, initial)
        env = private_env(command, folder)
        checkpoint("editing")
        while True:
            _run_editor(command, path, env)
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raise EditAborted(_("the edited file was deleted; nothing was changed")) from None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problem = _("the file is not valid UTF-8")
            else:
                if _same_text(text, initial):
                    return None
                found = check(text)
                if found is None:
                    return text
                problem = found
            if not ask_reopen(problem):  # said, never silent: the edit is gone
                raise EditAborted(
                    _("aborted: {problem}; the edit was discarded and nothing was changed").format(
                        problem=problem
                    )
                )
    finally:
        wipe_tree(folder)
