"""Failures through the real command line: exit 2, one line on stderr, no traceback, no damage."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, Setup, git_log, run
from talkbook import crypto, fsutil

try:  # the vectors' parser lives with the library-level test of the same vectors
    import test_cctv
except pytest.skip.Exception:  # the vectors are missing (never in CI: test_cctv fails there)
    test_cctv = None

VECTORS = test_cctv.VECTORS if test_cctv else []
PROMPT = "Passphrase:"


def one_error(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith(PROMPT)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("talkbook: ") and "Traceback" not in result.stderr
    return lines[0]


def commits(root: Path) -> int:
    return len(git_log(root, "--format=%H").splitlines())


# -- identities -----------------------------------------------------------------------------
def test_wrong_identity(workspace: Setup, cadre: str) -> None:
    result = workspace.as_("outsider", "cat", cadre)
    message = one_error(result)
    assert message == (
        f"talkbook: {cadre}.md.age: cannot decrypt: none of your keys is a recipient of this file"
    )
    assert result.stdout == ""


def test_identity_that_is_a_folder(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    env = {"TALKBOOK_IDENTITY": str(tmp_path)}
    message = one_error(run("-w", workspace.root, "cat", cadre, env=env))
    assert message.startswith(f"talkbook: cannot read identity file {tmp_path}")
    usage = run("-w", workspace.root, "-i", tmp_path, "cat", cadre)  # click checks --identity
    assert usage.exit_code == 2 and "is a directory" in usage.stderr and usage.stdout == ""


def test_missing_identity_file(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    missing = tmp_path / "没有的密钥.txt"
    message = one_error(run("-w", workspace.root, "-i", missing, "cat", cadre))
    assert message.startswith(f"talkbook: no identity file at {missing}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_identity_file(workspace: Setup, cadre: str) -> None:
    key = workspace.keys["P-01"]
    key.chmod(0)
    try:
        message = one_error(workspace.as_("P-01", "cat", cadre))
    finally:
        key.chmod(0o600)
    assert message.startswith(f"talkbook: cannot read identity file {key}")


@pytest.mark.parametrize(
    "content",
    ["这不是密钥\n", "AGE-SECRET-KEY-1NOTBECH32\n", "", "-----BEGIN AGE ENCRYPTED FILE-----\n"],
)
def test_garbage_identity_file(workspace: Setup, cadre: str, tmp_path: Path, content: str) -> None:
    key = tmp_path / "identity.txt"
    key.write_text(content, encoding="utf-8")
    message = one_error(run("-w", workspace.root, "-i", key, "cat", cadre))
    assert str(key) in message
    assert "NOTBECH32" not in message


def test_wrong_passphrase(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    key = tmp_path / "protected.txt"
    crypto.generate_identity_file(key, "正确的口令")
    message = one_error(run("-w", workspace.root, "-i", key, "cat", cadre, input="错误的口令\n"))
    assert message == f"talkbook: wrong passphrase for identity file {key}"


# -- damaged files --------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["flip a payload byte", "flip a header byte", "truncate"])
def test_damaged_ciphertext(workspace: Setup, cadre: str, damage: str) -> None:
    path = workspace.path(f"cadres/{cadre}.md.age")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 20]
    elif damage == "flip a payload byte":
        data[-30] ^= 0x01
    else:
        data[data.index(b"-> ssh-ed25519 ") + 25] ^= 0x01
    path.write_bytes(bytes(data))
    result = workspace.as_("P-01", "cat", cadre)
    message = one_error(result)
    assert message.startswith(f"talkbook: {cadre}.md.age: ")
    assert "corrupt" in message or "none of your keys" in message
    assert result.stdout == ""


def test_plaintext_where_ciphertext_belongs(workspace: Setup, cadre: str) -> None:
    workspace.path(f"cadres/{cadre}.md.age").write_text(PROFILE_ZH, encoding="utf-8")
    result = workspace.as_("P-01", "cat", cadre)
    message = one_error(result)
    assert "张伟" not in message and result.stdout == ""


# -- no workspace ---------------------------------------------------------------------------
def test_no_workspace_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "空文件夹"
    empty.mkdir()
    monkeypatch.chdir(empty)
    key = tmp_path / "key.txt"
    crypto.generate_identity_file(key)
    for args in (("show", "C-k3x9p2"), ("cadre", "new", "--from", "-"), ("rekey",)):
        message = one_error(run("-i", key, *args, input=PROFILE_ZH))
        assert message.startswith("talkbook: no talkbook workspace here or above")
    message = one_error(run("-w", empty, "-i", key, "show", "C-k3x9p2"))
    assert message == f"talkbook: {empty}: not a talkbook workspace (no talkbook.toml)"
    message = one_error(run("-i", key, "show", "C-k3x9p2", env={"TALKBOOK_WORKSPACE": str(empty)}))
    assert "not a talkbook workspace" in message
    assert list(empty.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    def talkbook(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "talkbook", *args, "show", "C-k3x9p2"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    plain = talkbook()
    assert plain.returncode == 2
    assert plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    debug = talkbook("--debug")
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "WorkspaceNotFound" in debug.stderr


# -- disk full ------------------------------------------------------------------------------
class FullDisk(ModuleType):
    """`os` as fsutil sees it, with a disk that is full: fsync fails with ENOSPC."""

    def __init__(self) -> None:
        super().__init__("os")
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fsync(self, fd: int) -> None:
        self.calls += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    disk = FullDisk()
    monkeypatch.setattr(fsutil, "os", disk)
    return disk


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if ".git" not in p.parts)


def test_disk_full_on_cadre_new(workspace: Setup, cadre: str, full_disk: FullDisk) -> None:
    before, count = listing(workspace.root), commits(workspace.root)
    other = PROFILE_ZH.replace("张伟", "林小红")
    message = one_error(workspace.as_("P-01", "cadre", "new", "--from", "-", input=other))
    assert message == "talkbook: No space left on device; nothing was changed"
    assert full_disk.calls == 1
    assert listing(workspace.root) == before  # no temp file, no new profile
    assert commits(workspace.root) == count


def test_disk_full_on_edit(
    workspace: Setup, cadre: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\np = Path(sys.argv[1])\n"
        "p.write_text(p.read_text(encoding='utf-8').replace('副主任', '主任'), encoding='utf-8')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    path = workspace.path(f"cadres/{cadre}.md.age")
    before, files, count = path.read_bytes(), listing(workspace.root), commits(workspace.root)
    disk = FullDisk()
    monkeypatch.setattr(fsutil, "os", disk)
    shm = Path("/dev/shm")
    editing = set(shm.glob("talkbook-*"))
    message = one_error(workspace.as_("P-01", "edit", cadre))
    assert set(shm.glob("talkbook-*")) - editing == set()  # the decrypted copy is gone
    assert message == "talkbook: No space left on device; nothing was changed"
    assert disk.calls == 1
    assert path.read_bytes() == before
    assert listing(workspace.root) == files
    assert commits(workspace.root) == count
    monkeypatch.setattr(fsutil, "os", os)
    assert "post: 副主任" in workspace.as_("P-01", "cat", cadre).stdout


def test_disk_full_on_person_add(workspace: Setup, full_disk: FullDisk) -> None:
    config = workspace.path("talkbook.toml")
    before, count, files = config.read_bytes(), commits(workspace.root), listing(workspace.root)
    result = workspace.as_(
        "P-01", "person", "add", "P-08", "--name", "高峰", "--role", "speaker",
        "--key", workspace.public["outsider"],
    )  # fmt: skip
    assert one_error(result) == "talkbook: No space left on device; nothing was changed"
    assert config.read_bytes() == before
    assert commits(workspace.root) == count
    assert listing(workspace.root) == files


# -- the age conformance vectors, through `talkbook cat` ------------------------------------
@pytest.mark.skipif(test_cctv is None, reason="age test vectors not found")
def test_git_refusing_the_commit_leaves_nothing_behind(workspace: Setup, cadre: str) -> None:
    """Another process holds git's index lock: the change is undone, not left uncommitted."""
    profile = workspace.path(f"cadres/{cadre}.md.age")
    config = workspace.path("talkbook.toml")
    before = (profile.read_bytes(), config.read_bytes(), commits(workspace.root))
    lock = workspace.path(".git/index.lock")
    lock.write_text("", encoding="utf-8")
    try:
        event = workspace.as_("P-01", "event", cadre, "reward", "--date", "2026-11-01")
        assert one_error(event).startswith("talkbook: git commit failed: ")
        added = workspace.as_("P-01", "cadre", "new", "--from", "-", input=PROFILE_ZH)
        assert one_error(added).startswith("talkbook: git commit failed: ")
        key = workspace.public["outsider"]
        person = workspace.as_(
            "P-01", "person", "add", "P-09", "--name", "孙磊", "--role", "speaker", "--key", key
        )
        assert one_error(person).startswith("talkbook: git commit failed: ")
    finally:
        lock.unlink()
    assert (profile.read_bytes(), config.read_bytes(), commits(workspace.root)) == before
    assert listing(workspace.path("cadres")) == sorted(["README.md", f"{cadre}.md.age"])
    status = subprocess.run(
        ["git", "-C", str(workspace.root), "status", "--porcelain"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert status.stdout == ""


def test_vectors_are_there() -> None:
    assert len(VECTORS) > 100


@pytest.mark.parametrize("name", VECTORS)
def test_cctv_vector_through_cat(name: str, tmp_path: Path) -> None:
    assert test_cctv is not None
    vector = test_cctv.load(name)
    body = tmp_path / f"{name}.age"
    body.write_bytes(vector.body)
    key = tmp_path / "identity.txt"
    if vector.identities:
        key.write_text("".join(f"{line}\n" for line in vector.identities), encoding="utf-8")
    else:  # passphrase and empty-file vectors name no key: any identity reaches the decryption
        crypto.generate_identity_file(key)
    answer = f"{vector.passphrase}\n" if vector.passphrase is not None else None
    result = run("-i", key, "cat", body, input=answer)

    if vector.expect == "success":
        assert result.exit_code == 0, result.stderr
        assert hashlib.sha256(result.stdout_bytes).hexdigest() == vector.payload
        assert [line for line in result.stderr.splitlines() if not line.startswith(PROMPT)] == []
        return
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith(PROMPT)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("talkbook: ") and "Traceback" not in result.stderr
    assert result.stdout_bytes == b""


def test_an_unexpected_error_is_one_line_without_content(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a bug ends in one line naming only the exception type; --debug shows the rest."""
    from talkbook import views

    def broken(*args: object) -> str:
        raise KeyError("张伟")

    monkeypatch.setattr(views, "show_text", broken)
    message = one_error(workspace.as_("P-01", "show", cadre))
    assert message == "talkbook: unexpected KeyError; rerun with --debug"
    debug = workspace.as_("P-01", "--debug", "show", cadre)
    assert isinstance(debug.exception, KeyError)
