"""Cadre profiles through the real command line: cadre new, cat, show, edit in a fake editor."""

from __future__ import annotations

import re
import shlex
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, Setup, git_log, run
from talkbook.editor import is_tmpfs

ID = re.compile(r"^C-[0-9a-z]{6}$")
SHM = Path("/dev/shm")


def one_error(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("talkbook: ") and "Traceback" not in result.stderr
    return lines[0]


def commits(root: Path) -> int:
    return len(git_log(root, "--format=%H").splitlines())


def cadre_files(root: Path) -> list[str]:
    """Everything in cadres/, hidden temp files included."""
    return sorted(p.name for p in (root / "cadres").iterdir())


def status(root: Path) -> str:
    import subprocess

    out = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--ignored"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the encrypted index of front matter (index.py) is the one thing kept beside the files
    return "".join(line for line in out.splitlines(keepends=True) if line != "!! .talkbook/\n")


# -- cadre new ------------------------------------------------------------------------------
def test_cadre_new_from_file(workspace: Setup, tmp_path: Path) -> None:
    source = tmp_path / "张伟.md"
    source.write_text(PROFILE_ZH, encoding="utf-8")
    before = commits(workspace.root)
    result = workspace.as_("P-01", "cadre", "new", "--from", source)
    assert result.exit_code == 0, result.stderr
    cadre_id = result.stdout.splitlines()[-1]
    assert ID.match(cadre_id)
    assert cadre_files(workspace.root) == sorted(["README.md", f"{cadre_id}.md.age"])
    assert commits(workspace.root) == before + 1
    last = git_log(workspace.root, "-1", "--format=%an|%ae|%s|%b")
    assert last == f"王芳|p-01@talkbook.invalid|cadre {cadre_id}: created|\n"
    assert git_log(workspace.root, "-1", "--name-only", "--format=") == (
        f"cadres/{cadre_id}.md.age\n"
    )
    assert status(workspace.root) == ""

    shown = workspace.as_("P-01", "cat", cadre_id)
    assert shown.exit_code == 0, shown.stderr
    # the id goes last in the front matter: the lines the user wrote keep their numbers
    assert shown.stdout.startswith("---\nname: 张伟\n")
    assert f"private: 曾因家庭矛盾情绪低落\nid: {cadre_id}\n---\n" in shown.stdout
    assert "谈话时注意语气，不宜追问家庭细节。" in shown.stdout
    assert "family: 爱人在市人民医院住院治疗" in shown.stdout


def test_cadre_new_from_stdin(workspace: Setup) -> None:
    text = PROFILE_ZH.replace("张伟", "刘建华").replace("副主任", "主任")
    result = workspace.as_("P-01", "cadre", "new", "--from", "-", input=text)
    assert result.exit_code == 0, result.stderr
    cadre_id = result.stdout.splitlines()[-1]
    assert ID.match(cadre_id)
    assert git_log(workspace.root, "-1", "--format=%an|%s") == f"王芳|cadre {cadre_id}: created\n"
    shown = workspace.as_("P-01", "cat", cadre_id).stdout
    assert "name: 刘建华" in shown and "post: 主任" in shown


def test_cadre_new_empty_body_gets_the_template(workspace: Setup) -> None:
    text = "---\nname: 马晓东\nunit: 市财政局\n---\n"
    result = workspace.as_("P-01", "cadre", "new", "--from", "-", input=text)
    assert result.exit_code == 0, result.stderr
    shown = workspace.as_("P-01", "cat", result.stdout.splitlines()[-1]).stdout
    assert "# 干部档案备注（马晓东）" in shown


def test_given_id_is_kept_and_never_reused(workspace: Setup) -> None:
    text = PROFILE_ZH.replace("---\nname:", "---\nid: C-k3x9p2\nname:", 1)
    result = workspace.as_("P-01", "cadre", "new", "--from", "-", input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "C-k3x9p2"
    path = workspace.path("cadres/C-k3x9p2.md.age")
    before, count = path.read_bytes(), commits(workspace.root)

    again = text.replace("张伟", "另一个人")
    message = one_error(workspace.as_("P-01", "cadre", "new", "--from", "-", input=again))
    assert "C-k3x9p2 exists already" in message
    assert "另一个人" not in message
    assert path.read_bytes() == before
    assert commits(workspace.root) == count
    assert "name: 张伟" in workspace.as_("P-01", "cat", "C-k3x9p2").stdout


REFUSED = {
    "missing name": (
        "---\ngender: 女\nunit: 市教育局\n---\n\n正文。\n",
        r"^talkbook: (\S*profile\.md|<stdin>):\d+: name: required field is missing$",
    ),
    "malformed YAML": (
        "---\nname: 张伟\nunit: 市委: 组织部\npost: 副主任\n---\n\n正文。\n",
        r"^talkbook: \S*:3: malformed YAML: .+$",
    ),
    "unclosed list": (
        "---\nname: 张伟\nstrengths: [业务扎实\n---\n\n正文。\n",
        r"^talkbook: \S*:\d+: malformed YAML: .+$",
    ),
    "no front matter": (
        "姓名：张伟\n单位：市委组织部\n",
        r"^talkbook: \S*:1: no YAML front matter",
    ),
    "bad personality": (
        "---\nname: 张伟\npersonality: 内向\n---\n",
        # the file the user wrote, at the line they wrote it
        r"^talkbook: (\S*profile\.md|<stdin>):3: personality: must be one of ",
    ),
    "bad id": ("---\nid: 张伟的档案\nname: 张伟\n---\n", r"^talkbook: id: must look like C-"),
    "id climbing out": ("---\nid: ../../C-k3x9p2\nname: 张伟\n---\n", r"^talkbook: id: "),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_cadre_new_refused(workspace: Setup, tmp_path: Path, case: str, how: str) -> None:
    text, expected = REFUSED[case]
    count = commits(workspace.root)
    if how == "file":
        source = tmp_path / "profile.md"
        source.write_text(text, encoding="utf-8")
        result = workspace.as_("P-01", "cadre", "new", "--from", source)
    else:
        result = workspace.as_("P-01", "cadre", "new", "--from", "-", input=text)
    message = one_error(result)
    assert re.match(expected, message), message
    assert "张伟" not in message and "内向" not in message  # values are never quoted
    assert result.stdout == ""
    assert cadre_files(workspace.root) == ["README.md"]
    assert commits(workspace.root) == count
    assert status(workspace.root) == ""


def test_cadre_new_needs_a_custodian(workspace: Setup) -> None:
    result = workspace.as_("P-03", "cadre", "new", "--from", "-", input=PROFILE_ZH)
    assert one_error(result) == "talkbook: P-03 is not a custodian"
    assert cadre_files(workspace.root) == ["README.md"]


def test_cadre_new_unreadable_source(workspace: Setup, tmp_path: Path) -> None:
    message = one_error(workspace.as_("P-01", "cadre", "new", "--from", tmp_path / "无此文件.md"))
    assert "cannot read" in message
    gbk = tmp_path / "gbk.md"
    gbk.write_bytes(PROFILE_ZH.encode("gbk"))
    assert "not UTF-8" in one_error(workspace.as_("P-01", "cadre", "new", "--from", gbk))


# -- cat and show ---------------------------------------------------------------------------
def test_cat_by_id_and_by_path(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_id = workspace.as_("P-01", "cat", cadre)
    assert by_id.exit_code == 0, by_id.stderr
    absolute = workspace.as_("P-01", "cat", workspace.path(f"cadres/{cadre}.md.age"))
    assert absolute.stdout_bytes == by_id.stdout_bytes
    monkeypatch.chdir(workspace.root / "cadres")
    relative = run("-i", workspace.keys["P-01"], "cat", f"{cadre}.md.age")
    assert relative.exit_code == 0, relative.stderr
    assert relative.stdout_bytes == by_id.stdout_bytes
    text = by_id.stdout_bytes.decode("utf-8")
    assert text.startswith("---\nname: 张伟\n") and f"\nid: {cadre}\n---\n" in text


def test_show(workspace: Setup, cadre: str) -> None:
    result = workspace.as_("P-01", "show", cadre)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{cadre}  张伟"
    assert "  unit: 市发展和改革委员会" in lines
    assert "  post: 副主任" in lines
    assert "events (0):" in lines


@pytest.mark.parametrize("command", ["cat", "show", "edit"])
def test_unknown_id(workspace: Setup, cadre: str, command: str) -> None:
    message = one_error(workspace.as_("P-01", command, "C-zzzzzz"))
    assert message.startswith("talkbook: unknown id")
    assert "C-zzzzzz" in message


# -- edit through a fake editor -------------------------------------------------------------
@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private XDG_RUNTIME_DIR on the real tmpfs, so leftovers are ours to see."""
    if not SHM.is_dir() or not is_tmpfs(SHM):
        pytest.skip("no tmpfs at /dev/shm to edit in")
    folder = Path(tempfile.mkdtemp(prefix="tbtest-", dir=SHM))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        leftovers = list(folder.iterdir())
        for path in leftovers:  # do not leave plaintext behind even when the test failed
            if path.is_dir():
                for inner in path.iterdir():
                    inner.unlink()
                path.rmdir()
            else:
                path.unlink()
        folder.rmdir()
        assert leftovers == [], "a private editing folder was left behind"


def talkbook_dirs(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("talkbook-*")} if folder.is_dir() else set()


@pytest.fixture
def fake_editor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path
) -> Callable[[str], Path]:
    """Install $EDITOR = a Python script doing `action` on `path`; returns its log file.

    The log gets the path the editor was given and the modes of that file and its folder.
    """
    log = tmp_path / "editor.log"

    def install(action: str) -> Path:
        script = tmp_path / "fake_editor.py"
        script.write_text(
            "import os, signal, stat, sys\n"
            "from pathlib import Path\n"
            "path = Path(sys.argv[1])\n"
            f"log = Path({str(log)!r})\n"
            "mode = lambda p: oct(stat.S_IMODE(p.stat().st_mode))\n"
            "log.write_text(f'{path}\\n{mode(path)}\\n{mode(path.parent)}\\n', encoding='utf-8')\n"
            "text = path.read_text(encoding='utf-8')\n" + textwrap.dedent(action),
            encoding="utf-8",
        )
        editor = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
        monkeypatch.setenv("EDITOR", editor)
        return log

    return install


def edited_copy(log: Path) -> Path:
    path, file_mode, dir_mode = log.read_text(encoding="utf-8").splitlines()
    assert (file_mode, dir_mode) == ("0o600", "0o700")
    return Path(path)


def assert_wiped(log: Path, runtime_dir: Path, shm_before: set[str]) -> None:
    copy = edited_copy(log)
    assert copy.is_relative_to(runtime_dir)  # the private folder was on the tmpfs
    assert not copy.parent.exists()
    assert talkbook_dirs(runtime_dir) == set()
    assert talkbook_dirs(SHM) - shm_before == set()


def save(expression: str) -> str:
    """A fake editor's action: write `expression` (of the text it was given) back."""
    return f"path.write_text({expression}, encoding='utf-8')\n"


EDITS = {
    "save a change": save("text.replace('与基层沟通偏少', '已经常下基层调研')"),
    "save unchanged": save("text"),
    "break the YAML": save("text.replace('name: 张伟', 'name: [张伟')"),
    "drop the name": save("text.replace('name: 张伟\\n', '')"),
    "change the id": "import re\n" + save("re.sub('id: C-.{6}', 'id: C-k3x9p2', text, count=1)"),
    "exit non-zero": save("'半途而废'") + "sys.exit(3)\n",
    "killed": save("'半途而废'") + "os.kill(os.getpid(), signal.SIGKILL)\n",
    "delete the file": "path.unlink()\n",
}
OUTCOMES = {
    "save a change": (0, "saved"),
    "save unchanged": (0, "unchanged"),
    "break the YAML": (2, r"aborted: .*:\d+: malformed YAML"),
    "drop the name": (2, r"aborted: .*name: required field is missing"),
    "change the id": (2, r"aborted: .*id: C-k3x9p2 does not match the file's path"),
    "exit non-zero": (2, r"editor exited with status 3; nothing was changed"),
    "killed": (2, r"editor was killed by signal SIGKILL; nothing was changed"),
    "delete the file": (2, r"deleted; nothing was changed"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_edit(
    workspace: Setup,
    cadre: str,
    fake_editor: Callable[[str], Path],
    runtime_dir: Path,
    case: str,
) -> None:
    path = workspace.path(f"cadres/{cadre}.md.age")
    before, count = path.read_bytes(), commits(workspace.root)
    shm_before = talkbook_dirs(SHM)
    log = fake_editor(EDITS[case])

    result = workspace.as_("P-01", "edit", cadre)
    code, expected = OUTCOMES[case]
    assert_wiped(log, runtime_dir, shm_before)
    assert cadre_files(workspace.root) == sorted(["README.md", f"{cadre}.md.age"])  # no temps
    assert status(workspace.root) == ""
    if code == 0:
        assert result.exit_code == 0, result.stderr
        assert result.stderr == f"{cadre}: {expected}\n"
    else:
        message = one_error(result)
        assert re.search(expected, message), message
        assert "张伟" not in message
    if expected == "saved":
        assert commits(workspace.root) == count + 1
        last = git_log(workspace.root, "-1", "--format=%an|%s")
        assert last == f"王芳|cadre {cadre}: edited\n"
        shown = workspace.as_("P-01", "cat", cadre).stdout
        assert "已经常下基层调研" in shown and "与基层沟通偏少" not in shown
    else:
        assert path.read_bytes() == before
        assert commits(workspace.root) == count


def test_edit_by_someone_who_cannot_read(
    workspace: Setup, cadre: str, fake_editor: Callable[[str], Path], runtime_dir: Path
) -> None:
    log = fake_editor("path.write_text('不应打开', encoding='utf-8')\n")
    path = workspace.path(f"cadres/{cadre}.md.age")
    before = path.read_bytes()
    message = one_error(workspace.as_("P-03", "edit", cadre))
    assert "none of your keys" in message
    assert not log.exists()  # the editor never opened
    assert path.read_bytes() == before


def test_edit_with_no_editor_found(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path
) -> None:
    monkeypatch.setenv("EDITOR", "没有这个编辑器")
    path = workspace.path(f"cadres/{cadre}.md.age")
    before = path.read_bytes()
    assert "editor not found" in one_error(workspace.as_("P-01", "edit", cadre))
    assert path.read_bytes() == before
    assert talkbook_dirs(runtime_dir) == set()


def test_edit_copy_is_private(workspace: Setup, cadre: str, fake_editor, runtime_dir) -> None:
    log = fake_editor("")
    assert workspace.as_("P-01", "edit", cadre).exit_code == 0
    copy = edited_copy(log)
    assert copy.name.startswith("talkbook") and copy.suffix == ".md"
    assert copy.parent.parent == runtime_dir
