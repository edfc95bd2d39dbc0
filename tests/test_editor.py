"""Private editing: fake editors (Python scripts) on a copy that must always be wiped."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from talkbook import editor as editor_mod
from talkbook.editor import (
    EditInterrupted,
    edit_privately,
    editor_command,
    is_tmpfs,
    private_dir_candidates,
    wipe_tree,
)
from talkbook.errors import EditAborted, TalkbookError

INITIAL = "---\nid: C-0001\nname: 张三\n---\n\n# 谈心谈话记录\n\n待填写。\n"
EDITED = "---\nid: C-0001\nname: 张三\n---\n\n# 谈心谈话记录\n\n工作积极，注意身体。\n"


def _never(_: object) -> bool:
    raise AssertionError("should not have been asked")


def _accept(_: str) -> str | None:
    return None


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob("talkbook-*"))


@pytest.fixture
def shm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A candidate folder that the module believes is a tmpfs."""
    folder = tmp_path / "shm"
    folder.mkdir()
    monkeypatch.setattr(editor_mod, "is_tmpfs", lambda p: Path(p) == folder)
    yield folder
    assert _leftovers(folder) == [], "a private editing folder was left behind"


@pytest.fixture
def make_editor(tmp_path: Path) -> Callable[..., list[str]]:
    """Write a fake editor; its body sees `path` (the file to edit) and `log` (a log folder)."""
    log = tmp_path / "log"
    log.mkdir()
    counter = iter(range(1000))

    def make(*parts: str) -> list[str]:
        script = tmp_path / f"fake_editor_{next(counter)}.py"
        header = (
            "import os, signal, stat, sys, time\n"
            "from pathlib import Path\n"
            "path = Path(sys.argv[1])\n"
            f"log = Path({str(log)!r})\n"
        )
        body = "".join(textwrap.dedent(part) for part in parts)
        script.write_text(header + body, encoding="utf-8")
        return [sys.executable, str(script)]

    return make


def _write_edited() -> str:
    return f"path.write_text({EDITED!r}, encoding='utf-8')\n"


def test_accepts_cjk_edit(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    seen: list[str] = []
    editor = make_editor(_write_edited())

    def check(text: str) -> str | None:
        seen.append(text)
        return None

    result = edit_privately(
        INITIAL, check, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
    )
    assert result == EDITED
    assert seen == [EDITED]


def test_editor_sees_initial_text_in_a_private_copy(
    shm: Path, tmp_path: Path, make_editor: Callable[..., list[str]]
) -> None:
    editor = make_editor(
        """
        (log / "seen.txt").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        (log / "file_mode").write_text(oct(stat.S_IMODE(path.stat().st_mode)))
        (log / "dir_mode").write_text(oct(stat.S_IMODE(path.parent.stat().st_mode)))
        (log / "where").write_text(str(path))
        """
    )
    old_umask = os.umask(0o022)
    try:
        result = edit_privately(
            INITIAL, _accept, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )
    finally:
        os.umask(old_umask)
    log = tmp_path / "log"
    assert result is None
    assert (log / "seen.txt").read_text(encoding="utf-8") == INITIAL
    assert (log / "file_mode").read_text() == "0o600"
    assert (log / "dir_mode").read_text() == "0o700"
    where = Path((log / "where").read_text())
    assert where.parent.parent == shm
    assert where.parent.name.startswith("talkbook-")
    assert where.suffix == ".md"
    assert not where.parent.exists()


def test_unchanged_returns_none(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    editor = make_editor("pass\n")
    assert (
        edit_privately(
            INITIAL, _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )
        is None
    )


def test_added_final_newline_counts_as_unchanged(
    shm: Path, make_editor: Callable[..., list[str]]
) -> None:
    editor = make_editor("path.write_text(path.read_text(encoding='utf-8') + '\\n', 'utf-8')\n")
    result = edit_privately(
        "无换行", _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
    )
    assert result is None


def test_editor_exit_status_aborts(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    editor = make_editor(_write_edited(), "sys.exit(1)\n")
    with pytest.raises(EditAborted, match="editor exited with status 1; nothing was changed"):
        edit_privately(
            INITIAL, _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )


def test_editor_killed_by_signal_aborts(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    editor = make_editor(_write_edited(), "os.kill(os.getpid(), signal.SIGKILL)\n")
    with pytest.raises(EditAborted, match="editor was killed by signal SIGKILL") as info:
        edit_privately(
            INITIAL, _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )
    assert "张三" not in str(info.value)


def test_failed_check_then_reopen_keeps_edits(
    shm: Path, tmp_path: Path, make_editor: Callable[..., list[str]]
) -> None:
    # First round writes a broken record; the second sees that text and fixes it.
    editor = make_editor(
        f"""
        text = path.read_text(encoding="utf-8")
        rounds = len(list(log.glob("round-*")))
        (log / f"round-{{rounds}}").write_text(text, encoding="utf-8")
        if rounds == 0:
            path.write_text(text.replace("待填写。", "缺少日期"), encoding="utf-8")
        else:
            path.write_text({EDITED!r}, encoding="utf-8")
        """
    )
    asked: list[str] = []

    def check(text: str) -> str | None:
        return "missing field: date" if "缺少日期" in text else None

    def ask(problem: str) -> bool:
        asked.append(problem)
        return True

    result = edit_privately(
        INITIAL, check, ask_reopen=ask, allow_disk=_never, editor=editor, candidates=[shm]
    )
    assert result == EDITED
    assert asked == ["missing field: date"]
    assert "缺少日期" in (tmp_path / "log" / "round-1").read_text(encoding="utf-8")


def test_failed_check_then_abort(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    editor = make_editor(_write_edited())
    with pytest.raises(EditAborted, match=r"^aborted: schema violation; the edit was discarded"):
        edit_privately(
            INITIAL,
            lambda text: "schema violation",
            ask_reopen=lambda problem: False,
            allow_disk=_never,
            editor=editor,
            candidates=[shm],
        )


def test_invalid_utf8_is_a_problem(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    editor = make_editor("path.write_bytes(b'\\xff\\xfe bad')\n")
    problems: list[str] = []

    def ask(problem: str) -> bool:
        problems.append(problem)
        return False

    with pytest.raises(EditAborted):
        edit_privately(
            INITIAL, _never, ask_reopen=ask, allow_disk=_never, editor=editor, candidates=[shm]
        )
    assert problems == ["the file is not valid UTF-8"]


def test_keyboard_interrupt_in_check_wipes(
    shm: Path, make_editor: Callable[..., list[str]]
) -> None:
    editor = make_editor(_write_edited())

    def check(text: str) -> str | None:
        assert len(_leftovers(shm)) == 1  # the copy exists while checking...
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        edit_privately(
            INITIAL, check, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )
    # ...and the fixture asserts it is gone afterwards.


def test_sigterm_while_editing_wipes_and_restores_handlers(
    shm: Path, tmp_path: Path, make_editor: Callable[..., list[str]]
) -> None:
    editor = make_editor(
        _write_edited(),
        """
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(30)
        (log / "survived").write_text("yes")
        """,
    )
    before_term = signal.getsignal(signal.SIGTERM)
    before_hup = signal.getsignal(signal.SIGHUP)
    with pytest.raises(EditInterrupted, match="interrupted by SIGTERM") as info:
        edit_privately(
            INITIAL, _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )
    assert info.value.exit_code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before_term
    assert signal.getsignal(signal.SIGHUP) == before_hup
    assert not (tmp_path / "log" / "survived").exists()  # the editor was killed too


def test_sighup_while_editing_wipes(shm: Path, make_editor: Callable[..., list[str]]) -> None:
    editor = make_editor("os.kill(os.getppid(), signal.SIGHUP)\ntime.sleep(30)\n")
    with pytest.raises(EditInterrupted, match="SIGHUP"):
        edit_privately(
            INITIAL, _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )


def test_ctrl_c_that_kills_the_editor_raises_keyboard_interrupt(
    shm: Path, make_editor: Callable[..., list[str]]
) -> None:
    # A terminal Ctrl-C reaches both processes; we wait to see whether the editor survives.
    editor = make_editor(
        "os.kill(os.getppid(), signal.SIGINT)\n"
        "time.sleep(0.2)\n"
        "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
    )
    with pytest.raises(KeyboardInterrupt):
        edit_privately(
            INITIAL, _never, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
        )


def test_ctrl_c_that_the_editor_survives_is_ignored(
    shm: Path, make_editor: Callable[..., list[str]]
) -> None:
    editor = make_editor(
        "os.kill(os.getppid(), signal.SIGINT)\ntime.sleep(0.2)\n" + _write_edited()
    )
    result = edit_privately(
        INITIAL, _accept, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
    )
    assert result == EDITED


def test_swap_and_backup_files_are_wiped(
    shm: Path, tmp_path: Path, make_editor: Callable[..., list[str]]
) -> None:
    editor = make_editor(
        _write_edited(),
        """
        (path.parent / ".talkbook.md.swp").write_bytes(b"swap " * 100)
        (path.parent / "talkbook.md~").write_text("备份", encoding="utf-8")
        sub = path.parent / "backup"
        sub.mkdir()
        (sub / "old.md").write_text("旧", encoding="utf-8")
        (sub / "old.md").chmod(0o400)
        """,
    )
    edit_privately(
        INITIAL, _accept, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
    )


def test_no_tmpfs_asks_allow_disk_and_aborts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_editor: Callable[..., list[str]]
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    monkeypatch.setattr(editor_mod, "is_tmpfs", lambda p: False)
    monkeypatch.setattr(editor_mod.tempfile, "gettempdir", lambda: str(disk))
    asked: list[Path] = []

    def allow(folder: Path) -> bool:
        asked.append(Path(folder))
        return False

    with pytest.raises(EditAborted, match="no private in-memory folder"):
        edit_privately(
            INITIAL,
            _never,
            ask_reopen=_never,
            allow_disk=allow,
            editor=make_editor("raise SystemExit('must not run')\n"),
            candidates=[disk],
        )
    assert asked == [disk]
    assert _leftovers(disk) == []


def test_no_tmpfs_allow_disk_true_edits_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_editor: Callable[..., list[str]]
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    monkeypatch.setattr(editor_mod, "is_tmpfs", lambda p: False)
    monkeypatch.setattr(editor_mod.tempfile, "gettempdir", lambda: str(disk))
    result = edit_privately(
        INITIAL,
        _accept,
        ask_reopen=_never,
        allow_disk=lambda folder: True,
        editor=make_editor(_write_edited()),
        candidates=[],
    )
    assert result == EDITED
    assert _leftovers(disk) == []


def test_first_usable_tmpfs_candidate_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_editor: Callable[..., list[str]]
) -> None:
    on_disk, missing, memory = tmp_path / "disk", tmp_path / "missing", tmp_path / "memory"
    on_disk.mkdir()
    memory.mkdir()
    monkeypatch.setattr(editor_mod, "is_tmpfs", lambda p: Path(p) in (memory, missing))
    editor = make_editor("(log / 'where').write_text(str(path))\n")
    edit_privately(
        INITIAL,
        _never,
        ask_reopen=_never,
        allow_disk=_never,
        editor=editor,
        candidates=[on_disk, missing, memory],
    )
    assert Path((tmp_path / "log" / "where").read_text()).parent.parent == memory
    assert _leftovers(memory) == [] and _leftovers(on_disk) == []


def test_editor_not_found(shm: Path) -> None:
    with pytest.raises(EditAborted, match="editor not found: no-such-editor-talkbook"):
        edit_privately(
            INITIAL,
            _never,
            ask_reopen=_never,
            allow_disk=_never,
            editor=["no-such-editor-talkbook", "--wait"],
            candidates=[shm],
        )


@pytest.mark.skipif(not is_tmpfs(Path("/dev/shm")), reason="/dev/shm is not a tmpfs here")
def test_real_dev_shm(tmp_path: Path, make_editor: Callable[..., list[str]]) -> None:
    shm = Path("/dev/shm")
    before = set(_leftovers(shm))
    editor = make_editor("(log / 'where').write_text(str(path))\n" + _write_edited())
    result = edit_privately(
        INITIAL, _accept, ask_reopen=_never, allow_disk=_never, editor=editor, candidates=[shm]
    )
    assert result == EDITED
    where = Path((tmp_path / "log" / "where").read_text())
    assert where.parent.parent == shm
    assert not where.parent.exists()
    assert set(_leftovers(shm)) == before


def test_editor_command_prefers_visual() -> None:
    env = {"VISUAL": "code --wait", "EDITOR": "nano"}
    assert editor_command(env) == ["code", "--wait"]
    assert editor_command({"EDITOR": "'/opt/my editor/ed' -x"}) == ["/opt/my editor/ed", "-x"]
    assert editor_command({"VISUAL": "  ", "EDITOR": "nano"})[0] == "nano"
    assert editor_command({})[0] == "vi"


def test_vim_keeps_no_traces_on_disk() -> None:
    """No viminfo (yanks, searches), undo, backup or swap files for the decrypted copy."""
    command = editor_command({"EDITOR": "/usr/bin/vim -u NONE"})
    assert command[:3] == ["/usr/bin/vim", "-i", "NONE"]
    assert "noundofile" in command[4] and command[-2:] == ["-u", "NONE"]
    assert "--restricted" in editor_command({"EDITOR": "nano"})  # tests/test_editors_no_leak.py


def test_editor_command_unbalanced_quote() -> None:
    with pytest.raises(EditAborted, match=r"\$VISUAL is not a valid command line"):
        editor_command({"VISUAL": "vim 'oops"})


def test_is_tmpfs_reads_mounts() -> None:
    assert is_tmpfs(Path("/proc")) is False
    assert is_tmpfs(Path("/proc/self")) is False


def test_private_dir_candidates_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    found = private_dir_candidates()
    assert found[0] == tmp_path
    assert all(path.is_dir() for path in found)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "absent"))
    assert tmp_path / "absent" not in private_dir_candidates()


def test_wipe_tree_zeroes_before_unlinking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "talkbook-x"
    (folder / "sub").mkdir(parents=True)
    secret = folder / "a.md"
    secret.write_text("机密内容" * 1000, encoding="utf-8")
    (folder / "sub" / "b").write_text("更多", encoding="utf-8")
    os.symlink(tmp_path / "outside", folder / "link")
    outside = tmp_path / "outside"
    outside.write_text("keep", encoding="utf-8")
    seen: dict[str, bytes] = {}
    real_unlink = os.unlink

    def spy(path: os.PathLike[str] | str, *args: object, **kwargs: object) -> None:
        if not os.path.islink(path):
            seen[os.path.basename(path)] = Path(path).read_bytes()
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(editor_mod.os, "unlink", spy)
    wipe_tree(folder)
    monkeypatch.undo()
    assert not folder.exists()
    assert seen["a.md"] == bytes(len("机密内容".encode()) * 1000)
    assert seen["b"] == bytes(len("更多".encode()))
    assert outside.read_text(encoding="utf-8") == "keep"
    wipe_tree(folder)  # already gone: nothing to do


def test_wipe_tree_failure_names_only_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "talkbook-y"
    folder.mkdir()
    (folder / "a.md").write_text("机密", encoding="utf-8")

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError("nope")

    monkeypatch.setattr(editor_mod.os, "unlink", refuse)
    with pytest.raises(TalkbookError, match="could not wipe the private editing folder") as info:
        wipe_tree(folder)
    monkeypatch.undo()
    assert "机密" not in str(info.value)
    wipe_tree(folder)
    assert not folder.exists()
