"""Real editors under tmux: a search and an edit of a decrypted profile leave no trace on disk.

For each editor installed (nano, vim, nvim, emacs), `talkbook edit` runs in a tmux pane against
the throwaway HOME of the test; the editor searches for a distinctive word, inserts a marker,
saves and quits. The word must then be in no file written during the test under that HOME, /tmp,
/dev/shm or $XDG_RUNTIME_DIR (history, shada, undo, swap, backup, auto-save, lock, recent files),
and the marker must be in the saved profile. The word never exists in plaintext on disk otherwise:
the profile is given to `cadre new` on stdin. An editor that is not installed is skipped; in CI
(.ci/run installs tmux and nano) a missing tmux or nano is a failure. To see the check fail,
set TALKBOOK_TEST_VISUAL to a wrapper script that runs nano (unknown, so not hardened) as root
with /etc/nanorc's `set historylog`: the word lands in ~root/.local/share/nano (remove it after).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PROFILE_ZH, Setup, last_line, ok

WORD = "翡翠巷廉租房"  # nowhere else in the project: a hit can only be a leak
MARKER = "已核实"
PROFILE = PROFILE_ZH.replace("不宜追问家庭细节。", f"不宜追问家庭细节。\n\n住房：{WORD}申请中。")

# Keys sent after the editor shows the file: search the word, insert the marker, save, quit.
# Each inner list is one `tmux send-keys` call; ("literal", text) sends text as typed.
SCRIPTS: dict[str, list[list[str] | tuple[str, str]]] = {
    "nano": [["C-w"], ("literal", WORD), ["Enter"], ("literal", MARKER), ["C-s"], ["C-x"]],
    "vim": [
        ("literal", f"/{WORD}"),
        ["Enter"],
        ("literal", f"i{MARKER}"),
        ["Escape"],
        ("literal", ":wq"),
        ["Enter"],
    ],  # fmt: skip
    "emacs": [
        ["C-s"],
        ("literal", WORD),
        ["Enter"],
        ("literal", MARKER),
        ["C-x", "C-s"],
        ["C-x", "C-c"],
    ],  # fmt: skip
}
SCRIPTS["nvim"] = SCRIPTS["vim"]

# A user configuration that turns on every trace it can: the hardened editor must ignore it.
_VIMRC = (
    "set undofile undodir=~/undo backup writebackup backupdir=~/backup swapfile directory=~/swap\n"
)
HOSTILE_CONFIG = {
    "nano": {".nanorc": "set historylog\nset positionlog\nset backup\nset locking\n"},
    "vim": {".vimrc": _VIMRC + "set viminfo='100,/100,:100\n"},
    "nvim": {".config/nvim/init.vim": _VIMRC + "set shada='100,/100,:100\n"},
    "emacs": {
        ".emacs": "(savehist-mode 1) (recentf-mode 1) (desktop-save-mode 1)\n"
        "(setq make-backup-files t auto-save-default t create-lockfiles t)\n"
        '(setq backup-directory-alist \'(("." . "~/backup")))\n'
    },
}
CI_NEEDS = {"tmux", "nano"}


def _need(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        if os.environ.get("CI") and program in CI_NEEDS:
            pytest.fail(f"{program} is missing in CI (.ci/run installs it)")
        pytest.skip(f"{program} not installed")
    return found


class Pane:
    """One detached tmux session on its own server, with a UTF-8 terminal."""

    def __init__(self, tmux: str, env: dict[str, str]) -> None:
        self.tmux = tmux
        self.socket = f"talkbook-test-{uuid.uuid4().hex[:12]}"
        self.env = env

    def _tmux(self, *args: str, check: bool = True) -> str:
        command = [self.tmux, "-u", "-L", self.socket, "-f", "/dev/null", *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=check)
        return done.stdout

    def start(self, shell_command: str) -> None:
        self._tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "t", shell_command)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t", check=False)

    def send(self, step: list[str] | tuple[str, str]) -> None:
        if isinstance(step, tuple):
            self._tmux("send-keys", "-t", "t", "-l", step[1])
        else:
            self._tmux("send-keys", "-t", "t", *step)

    def kill(self) -> None:
        self._tmux("kill-server", check=False)


def _wait_for(condition: object, timeout: float, what: str, pane: Pane) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    screen = pane.screen().replace(WORD, "<WORD>")
    pytest.fail(f"timed out waiting for {what}; screen:\n{screen}")


def _real_home_places() -> tuple[list[Path], list[Path]]:
    """The account's real home: where editors run as root write whatever $HOME says (nano).

    Returns (folders walked, folders whose files only are looked at): the whole home is too big.
    """
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    subs = [".local", ".cache", ".config", ".emacs.d", ".vim", ".nano", ".var"]
    return [home / sub for sub in subs if (home / sub).is_dir()], [home]


def _files_written_since(start: float, roots: list[Path], flat: list[Path]) -> Iterator[Path]:
    walks = [(folder, files) for root in roots for folder, _, files in os.walk(root)]
    walks += [(str(folder), os.listdir(folder)) for folder in flat if folder.is_dir()]
    for folder, files in walks:
        for name in files:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if info.st_mtime >= start or info.st_ctime >= start:
                yield path


def _leaks(start: float, roots: list[Path], flat: list[Path], word: bytes) -> list[Path]:
    found = []
    for path in _files_written_since(start, roots, flat):
        try:
            if path.is_symlink():
                data = os.readlink(path).encode()
            elif path.is_file():
                data = path.read_bytes()
            else:
                continue
        except OSError:
            continue
        if word in data:
            found.append(path)
    return found


@pytest.mark.parametrize("editor", ["nano", "vim", "nvim", "emacs"])
def test_editor_leaves_no_trace(
    editor: str, workspace: Setup, isolated_home: Path, tmp_path: Path
) -> None:
    tmux = _need("tmux")
    program = _need(editor)
    for rel, text in HOSTILE_CONFIG[editor].items():
        (isolated_home / rel).parent.mkdir(parents=True, exist_ok=True)
        (isolated_home / rel).write_text(text, encoding="utf-8")
    for sub in ("undo", "backup", "swap", ".local/share", ".local/state", ".cache"):
        (isolated_home / sub).mkdir(parents=True, exist_ok=True)
    start = time.time() - 1
    cadre = last_line(workspace.as_("P-01", "cadre", "new", "--from", "-", input=PROFILE))

    status = tmp_path / "status"
    env = dict(os.environ)
    env.update(
        HOME=str(isolated_home),
        VISUAL=os.environ.get("TALKBOOK_TEST_VISUAL", program),
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        TERM="xterm-256color",
        TMUX_TMPDIR=str(tmp_path),
    )
    env.pop("EDITOR", None)
    env.pop("TMUX", None)
    talkbook = [sys.executable, "-m", "talkbook", "-w", str(workspace.root)]
    talkbook += ["-i", str(workspace.keys["P-01"]), "edit", cadre]
    shell = " ".join(f"'{word}'" for word in talkbook)
    pane = Pane(tmux, env)
    pane.start(f"{shell} 2>{tmp_path / 'stderr'}; echo $? > {status}")
    try:
        _wait_for(lambda: "谈话时注意语气" in pane.screen(), 20, f"{editor} to show the file", pane)
        for step in SCRIPTS[editor]:
            pane.send(step)
            time.sleep(0.4)
        _wait_for(status.exists, 20, f"{editor} to save and quit", pane)
    finally:
        pane.kill()

    stderr = (tmp_path / "stderr").read_text(encoding="utf-8")
    assert status.read_text().strip() == "0", stderr
    assert stderr.strip().endswith(f"{cadre}: saved")
    shown = ok(workspace.as_("P-01", "cat", cadre)).stdout
    assert MARKER in shown and WORD in shown

    roots = [isolated_home, Path("/tmp"), Path("/dev/shm")]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        roots.append(Path(runtime))
    walked, flat = _real_home_places()
    roots = [root for root in roots + walked if root.is_dir()]
    leaks = _leaks(start, roots, flat, WORD.encode("utf-8"))
    assert leaks == [], f"{editor} left the searched word on disk"
