"""The light diff driver (talkbook.textconv): what git shows per file version, and that it
starts without the heavy imports."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Setup, make_key, run
from talkbook import crypto, textconv
from talkbook.crypto.identity import identity_path

PLACEHOLDER = b"[talkbook: encrypted; not readable with your identity]\n"
LOCKED = b"[talkbook: encrypted; your key is locked: run `talkbook unlock`]\n"
PLAINTEXT = "---\nname: 张伟\nunit: 市发展和改革委员会\n---\n\n谈话时注意语气。\n".encode()
HEAVY = ("click", "jinja2", "git", "jsonschema", "yaml", "talkbook.crypto", "frontmatter")


def driver(path: Path, identity: Path | None, *python_options: str) -> subprocess.CompletedProcess:
    """Run the driver exactly as git does: the configured command, the file appended."""
    env = {k: v for k, v in os.environ.items() if k != "TALKBOOK_IDENTITY"}
    if identity is not None:
        env["TALKBOOK_IDENTITY"] = str(identity)
    python, *rest = textconv.driver_argv()
    return subprocess.run([python, *python_options, *rest, str(path)], capture_output=True, env=env)


@pytest.fixture
def sealed(keydir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A file encrypted to one OpenSSH key: (file, key)."""
    key, public = make_key(keydir, "reader")
    path = tmp_path / "C-k3x9p2.md.age"
    path.write_bytes(crypto.encrypt(PLAINTEXT, [public]))
    return path, key


def test_key_holder_gets_plaintext_with_light_imports(sealed: tuple[Path, Path]) -> None:
    path, key = sealed
    shown = driver(path, key, "-X", "importtime")
    assert shown.returncode == 0
    assert shown.stdout == PLAINTEXT
    loaded = {
        line.split("|")[-1].strip()
        for line in shown.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "pyrage" in loaded and "talkbook.textconv" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []
    assert "site" not in loaded  # started with -S


def test_not_a_recipient_prints_the_placeholder(sealed: tuple[Path, Path], keydir: Path) -> None:
    path, _key = sealed
    other, _public = make_key(keydir, "outsider")
    shown = driver(path, other)
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, PLACEHOLDER, b"")


@pytest.mark.parametrize(
    "content", [b"", b"not an age file", b"age-encryption.org/v1\n-> X25519 \xff\n", b"\0" * 64]
)
def test_damaged_file_prints_the_placeholder(
    sealed: tuple[Path, Path], tmp_path: Path, content: bytes
) -> None:
    _path, key = sealed
    broken = tmp_path / "broken.md.age"
    broken.write_bytes(content)
    assert textconv.convert(str(broken), str(key)) == PLACEHOLDER


def test_truncated_file_prints_the_placeholder(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    path, key = sealed
    cut = tmp_path / "cut.md.age"
    cut.write_bytes(path.read_bytes()[:-20])
    assert textconv.convert(str(cut), str(key)) == PLACEHOLDER


def test_no_identity_prints_the_placeholder(sealed: tuple[Path, Path]) -> None:
    path, _key = sealed
    shown = driver(path, None)
    assert (shown.returncode, shown.stdout) == (0, PLACEHOLDER)


def test_symlink_is_not_followed(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    path, key = sealed
    link = tmp_path / "link.md.age"
    link.symlink_to(path)
    assert textconv.convert(str(link), str(key)) == PLACEHOLDER
    fifo = tmp_path / "fifo.md.age"
    os.mkfifo(fifo)
    assert textconv.convert(str(fifo), str(key)) == PLACEHOLDER  # and no hang


def test_identity_may_be_a_symlink(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    path, key = sealed
    link = tmp_path / "identity.txt"
    link.symlink_to(key)  # say, ~/.config/talkbook/identity.txt → ~/.ssh/id_ed25519
    assert textconv.convert(str(path), str(link)) == PLAINTEXT


def test_age_x25519_identity_and_armor(tmp_path: Path) -> None:
    identity = tmp_path / "age-identity.txt"
    public = crypto.generate_identity_file(identity)
    age = shutil.which("age")
    armored = (
        subprocess.run([age, "-a", "-r", public], input=PLAINTEXT, capture_output=True).stdout
        if age
        else None
    )
    path = tmp_path / "x.md.age"
    path.write_bytes(crypto.encrypt(PLAINTEXT, [public]))
    assert textconv.convert(str(path), str(identity)) == PLAINTEXT
    if armored is not None:  # the age CLI is there: armor, with the whitespace the spec allows
        path.write_bytes(b"\n\n" + armored + b"\n  \n")
        assert textconv.convert(str(path), str(identity)) == PLAINTEXT


def test_passphrase_protected_identity_file_goes_the_full_way(tmp_path: Path) -> None:
    identity = tmp_path / "protected-age.txt"
    public = crypto.generate_identity_file(identity, passphrase="口令")
    path = tmp_path / "x.md.age"
    path.write_bytes(crypto.encrypt(PLAINTEXT, [public]))
    assert textconv.convert(str(path), str(identity)) == PLACEHOLDER  # never asks


def test_protected_key_without_agent_says_locked(tmp_path: Path) -> None:
    key = tmp_path / "protected.txt"
    public = crypto.generate_key_file(key, passphrase="口令")
    path = tmp_path / "x.md.age"
    path.write_bytes(crypto.encrypt(PLAINTEXT, [public]))
    shown = driver(path, key)  # TALKBOOK_AGENT=0 (conftest): no agent to ask
    assert (shown.returncode, shown.stdout) == (0, LOCKED)


def test_openssh_public_matches_the_key_file(sealed: tuple[Path, Path], keydir: Path) -> None:
    _path, key = sealed
    public = crypto.Keyring.from_file(key).public_keys[0]
    assert textconv.openssh_public(key.read_bytes()) == (" ".join(public.split()[:2]), False)


def test_identity_found_as_the_cli_finds_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "配置"))
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.setenv("TALKBOOK_IDENTITY", str(tmp_path / "王芳.txt"))
    assert textconv.identity_file() == str(identity_path())
    assert textconv.identity_file("x.txt") == str(identity_path(Path("x.txt")))


def test_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert textconv.main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_setup_moves_an_old_clone_to_the_light_driver(workspace: Setup, cadre: str) -> None:
    root = workspace.root
    old = "python3 -m talkbook textconv"
    subprocess.run(["git", "-C", root, "config", "diff.talkbook.textconv", old], check=True)
    assert run("-w", root, "-i", workspace.keys["P-01"], "setup").exit_code == 0
    config = subprocess.run(
        ["git", "-C", root, "config", "--get-regexp", r"^diff\.talkbook\."],
        capture_output=True,
        text=True,
    ).stdout
    assert textconv.driver_command() in config
    assert "cachetextconv" not in config


def test_old_cli_command_still_answers(workspace: Setup, cadre: str) -> None:
    path = workspace.path(f"cadres/{cadre}.md.age")
    shown = run("-i", workspace.keys["P-01"], "textconv", path)
    assert shown.exit_code == 0 and "name: 张伟" in shown.stdout
    other = run("-i", workspace.keys["outsider"], "textconv", path)
    assert other.exit_code == 0 and other.stdout_bytes == PLACEHOLDER
