"""The workspace through the real command line: init, setup, keygen, identities, people."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, STAFF, Setup, git_log, make_key, run
from talkbook import crypto
from talkbook.crypto import ssh
from test_crypto import run_with_tty

PASSPHRASE = "谈心谈话 口令 2026"
PROMPTS = ("Passphrase:", "Repeat for confirmation:")


def messages(result: Result) -> list[str]:
    """stderr lines, without the passphrase prompts click writes there."""
    return [line for line in result.stderr.splitlines() if not line.startswith(PROMPTS)]


def one_error(result: Result, code: int = 2) -> str:
    """The command failed with `code` and exactly one clean line on stderr."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = messages(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("talkbook: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def commit_count(root: Path) -> int:
    return int(git(root, "rev-list", "--count", "HEAD"))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a folder, .git included, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- init and setup -------------------------------------------------------------------------
def test_init_layout(tmp_path: Path) -> None:
    root = tmp_path / "谈话档案"
    result = run("init", root, "--org", "市委组织部")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert str(root) in result.stdout

    config = tomllib.loads((root / "talkbook.toml").read_text(encoding="utf-8"))
    assert config["organization"] == "市委组织部"
    assert config["locale"] == "zh-CN"
    for folder in ("cadres", "talks"):
        assert (root / folder).is_dir()
        assert [p.name for p in (root / folder).iterdir()] == ["README.md"]
    for locale in ("zh-CN", "en"):
        names = {p.name for p in (root / "templates" / locale).iterdir()}
        assert {"profile.md.j2", "plan.md.j2", "record.md.j2"} <= names

    ignored = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "build/" in ignored and ".talkbook/" in ignored
    attributes = (root / ".gitattributes").read_text(encoding="utf-8")
    assert "*.age diff=talkbook" in attributes
    textconv = git(root, "config", "--get", "diff.talkbook.textconv").strip()
    assert textconv.endswith("/.git/talkbook/textconv")  # the light driver, run without a shell
    hook = root / ".git" / "hooks" / "pre-commit"
    assert hook.stat().st_mode & stat.S_IXUSR
    assert "validate --staged" in hook.read_text(encoding="utf-8")

    assert git_log(root, "--format=%s%x09%an").splitlines() == ["workspace: initialized\ttalkbook"]
    assert git(root, "status", "--porcelain") == ""  # everything written is committed
    assert git(root, "branch", "--show-current").strip() == "main"


def test_init_english_locale(tmp_path: Path) -> None:
    result = run("init", tmp_path / "records", "--locale", "en", "--org", "县委组织部")
    assert result.exit_code == 0, result.stderr
    config = tomllib.loads((tmp_path / "records" / "talkbook.toml").read_text(encoding="utf-8"))
    assert config["locale"] == "en"


def test_init_refuses_to_clobber(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert run("init", root, "--org", "市委组织部").exit_code == 0
    (root / "talkbook.toml").write_text(
        (root / "talkbook.toml").read_text(encoding="utf-8") + "# 本地修改\n", encoding="utf-8"
    )
    before = snapshot(root)
    for args in ((), ("--locale", "en", "--org", "另一个组织")):
        message = one_error(run("init", root, *args))
        assert "already a talkbook workspace" in message
        assert snapshot(root) == before
    assert commit_count(root) == 1


def test_init_bad_locale_is_usage_error(tmp_path: Path) -> None:
    result = run("init", tmp_path / "ws", "--locale", "fr")
    assert result.exit_code == 2
    assert not (tmp_path / "ws").exists()


def test_setup_in_a_fresh_clone(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", str(workspace.root), str(clone)], check=True, capture_output=True
    )
    hook = clone / ".git" / "hooks" / "pre-commit"
    assert not hook.exists()
    missing = subprocess.run(
        ["git", "-C", str(clone), "config", "--get", "diff.talkbook.textconv"], capture_output=True
    )
    assert missing.returncode == 1

    result = run("-w", clone, "setup")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "configured diff.talkbook.textconv",
        "configured merge.talkbook.driver",
        "configured hooks/pre-commit",
        "configured gpg.ssh.allowedSignersFile",
    ]
    assert lines[4].startswith("root of trust: ") and len(lines) == 5
    driver = git(clone, "config", "--get", "diff.talkbook.textconv").strip()
    assert driver.endswith("/.git/talkbook/textconv")
    assert hook.stat().st_mode & stat.S_IXUSR
    assert "validate --staged" in hook.read_text(encoding="utf-8")
    assert run("-w", clone, "setup").exit_code == 0  # safe to run again

    # The clone now shows decrypted text to a key holder.
    env = {**os.environ, "TALKBOOK_IDENTITY": str(workspace.keys["P-01"])}
    shown = subprocess.run(
        ["git", "-C", str(clone), "log", "-p", "-1", "--", f"cadres/{cadre}.md.age"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "name: 张伟" in shown


def test_setup_outside_a_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "no talkbook workspace" in one_error(run("setup"))


# -- keygen ---------------------------------------------------------------------------------
def test_keygen_writes_private_identity(tmp_path: Path) -> None:
    out = tmp_path / "密钥" / "王芳.txt"
    result = run("keygen", "--out", out)
    assert result.exit_code == 0, result.stderr
    public = result.stdout.splitlines()[-1]
    assert public.startswith("ssh-ed25519 AAAA")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    keyring = crypto.Keyring.from_file(out)
    assert keyring.public_keys == [public] and keyring.signing_key is not None
    assert "PRIVATE KEY" not in result.stdout + result.stderr

    before = out.read_bytes()
    assert "refusing to overwrite" in one_error(run("keygen", "--out", out))
    assert out.read_bytes() == before


def test_keygen_default_location_is_the_config_folder(isolated_home: Path) -> None:
    result = run("keygen")
    assert result.exit_code == 0, result.stderr
    target = isolated_home / ".config" / "talkbook" / "identity.txt"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert crypto.Keyring.from_file(target).public_keys == [result.stdout.splitlines()[-1]]


def test_keygen_passphrase(tmp_path: Path) -> None:
    age = shutil.which("age")
    if age is None and os.environ.get("CI"):
        pytest.fail("the age command-line tool is missing in CI")
    out = tmp_path / "keys" / "protected.txt"
    result = run("keygen", "--out", out, "--passphrase", input=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert result.exit_code == 0, result.stderr
    public = result.stdout.splitlines()[-1]
    content = out.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert content.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert ssh.is_protected(content.decode("ascii"))
    assert PASSPHRASE not in result.stdout + result.stderr  # never echoed

    plaintext = "谈话记录：思想稳定。\n".encode()
    ciphertext = tmp_path / "record.md.age"
    ciphertext.write_bytes(crypto.encrypt(plaintext, [public]))
    if age is not None:  # age itself opens the identity file with the passphrase
        decrypted = tmp_path / "out.md"
        code, _ = run_with_tty(
            [age, "-d", "-i", str(out), "-o", str(decrypted), str(ciphertext)], PASSPHRASE
        )
        assert code == 0
        assert decrypted.read_bytes() == plaintext

    # talkbook uses it as --identity when the passphrase is typed at the prompt.
    opened = run("-i", out, "cat", ciphertext, input=f"{PASSPHRASE}\n")
    assert opened.exit_code == 0, opened.stderr
    assert opened.stdout_bytes == plaintext
    message = one_error(run("-i", out, "cat", ciphertext, input="错误的口令\n"))
    assert message == f"talkbook: wrong passphrase for identity file {out}"


def test_passphrase_identity_acts_in_a_workspace(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert run("init", root).exit_code == 0
    key = tmp_path / "protected.txt"
    made = run("keygen", "--out", key, "--passphrase", input="口令\n口令\n")
    public = made.stdout.splitlines()[-1]
    answer = {"input": "口令\n"}
    added = run("-w", root, "-i", key, "person", "add", "P-01", "--name", "王芳",
                "--role", "custodian", "--key", public, **answer)  # fmt: skip
    assert added.exit_code == 0, added.stderr
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH, encoding="utf-8")
    created = run("-w", root, "-i", key, "cadre", "new", "--from", source, **answer)
    assert created.exit_code == 0, created.stderr
    assert created.stderr.count("Passphrase") == 1  # once per command: to read and to sign
    signed = subprocess.run(["git", "-C", root, "log", "-1", "--format=%G?"], capture_output=True)
    assert signed.stdout.decode().strip() in ("G", "U")
    cadre_id = created.stdout.splitlines()[-1]
    shown = run("-w", root, "-i", key, "cat", cadre_id, **answer)
    assert shown.exit_code == 0 and "name: 张伟" in shown.stdout
    assert "wrong passphrase" in one_error(run("-w", root, "-i", key, "cat", cadre_id, input="x\n"))


# -- where the identity comes from ----------------------------------------------------------
def test_identity_sources(workspace: Setup, cadre: str, isolated_home: Path) -> None:
    root = workspace.root

    def cat(*args: str, env: dict | None = None) -> Result:
        return run("-w", root, *args, "cat", cadre, env=env)

    by_env = cat(env={"TALKBOOK_IDENTITY": str(workspace.keys["P-01"])})
    assert by_env.exit_code == 0 and "name: 张伟" in by_env.stdout
    # --identity wins over TALKBOOK_IDENTITY
    assert "none of your keys" in one_error(cat("-i", workspace.keys["outsider"]))
    overridden = cat(
        "-i", workspace.keys["outsider"], env={"TALKBOOK_IDENTITY": str(workspace.keys["P-01"])}
    )
    assert "none of your keys" in one_error(overridden)

    default = isolated_home / ".config" / "talkbook" / "identity.txt"
    assert "no identity file at" in one_error(cat())
    default.parent.mkdir(parents=True)
    shutil.copy(workspace.keys["P-01"], default)
    by_config = cat()
    assert by_config.exit_code == 0 and "name: 张伟" in by_config.stdout
    # TALKBOOK_IDENTITY wins over the config folder
    assert "none of your keys" in one_error(
        cat(env={"TALKBOOK_IDENTITY": str(workspace.keys["outsider"])})
    )


def ssh_keypair(tmp_path: Path) -> tuple[Path, str]:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        if os.environ.get("CI"):
            pytest.fail("ssh-keygen is missing in CI (apt-get install openssh-client)")
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path / "id_ed25519"
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "刘洋@组织部", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path, path.with_suffix(".pub").read_text(encoding="utf-8").strip()


def test_ssh_key_as_identity_and_recipient(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    key, public_line = ssh_keypair(tmp_path)
    assert public_line.startswith("ssh-ed25519 ") and public_line.endswith("刘洋@组织部")
    added = workspace.as_(
        "P-01", "person", "add", "P-05", "--name", "刘洋", "--role", "custodian",
        "--key", public_line,
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    workspace.keys["P-05"] = key

    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH.replace("张伟", "孙丽华"), encoding="utf-8")
    created = workspace.as_("P-05", "cadre", "new", "--from", source)
    assert created.exit_code == 0, created.stderr
    new_id = created.stdout.splitlines()[-1]
    assert git_log(workspace.root, "-1", "--format=%an|%s") == f"刘洋|cadre {new_id}: created\n"
    for reader in ("P-05", "P-01"):
        shown = workspace.as_(reader, "cat", new_id)
        assert shown.exit_code == 0 and "name: 孙丽华" in shown.stdout
    # Before a rekey the new custodian cannot read the older profile; after it, they can.
    assert "none of your keys" in one_error(workspace.as_("P-05", "cat", cadre))
    assert workspace.as_("P-01", "rekey").exit_code == 0
    assert "name: 张伟" in workspace.as_("P-05", "cat", cadre).stdout


# -- people ---------------------------------------------------------------------------------
def test_first_person_is_the_founding_custodian_then_custodians_only(
    tmp_path: Path, keydir: Path
) -> None:
    root = tmp_path / "ws"
    assert run("init", root, "--org", "市委组织部").exit_code == 0
    keys = {pid: make_key(keydir, pid) for pid in ("P-01", "P-02", "P-09", "stranger")}

    def add(actor: str, pid: str, role: str) -> Result:
        return run("-w", root, "-i", keys[actor][0], "person", "add", pid,
                   "--name", STAFF.get(pid, ("周杰", []))[0], "--role", role,
                   "--key", keys[pid][1])  # fmt: skip

    # The first person is whoever founds the workspace, as a custodian with their own key: their
    # signed commit is the root of trust. Adding someone else, or a non-custodian, is refused.
    assert "must be you, as a custodian" in one_error(add("stranger", "P-01", "custodian"))
    assert "must be you, as a custodian" in one_error(add("P-01", "P-01", "approver"))
    first = add("P-01", "P-01", "custodian")
    assert first.exit_code == 0, first.stderr
    assert git_log(root, "-1", "--format=%G?") in ("G\n", "U\n")
    assert first.stdout.splitlines()[-1] == "P-01"
    assert (
        git_log(root, "-1", "--format=%an|%ae|%s")
        == "王芳|p-01@talkbook.invalid|person P-01: added\n"
    )
    config = tomllib.loads((root / "talkbook.toml").read_text(encoding="utf-8"))
    assert config["people"]["P-01"] == {
        "name": "王芳", "roles": ["custodian"], "keys": [keys["P-01"][1]],
    }  # fmt: skip

    second = add("P-01", "P-02", "approver")
    assert second.exit_code == 0, second.stderr
    assert git_log(root, "-1", "--format=%an|%s") == "王芳|person P-02: added\n"

    before, count = (root / "talkbook.toml").read_bytes(), commit_count(root)
    assert one_error(add("P-02", "P-09", "speaker")) == "talkbook: P-02 is not a custodian"
    unknown = one_error(add("stranger", "P-09", "speaker"))
    assert "is not a person of this workspace" in unknown and "ask a custodian" in unknown
    assert (root / "talkbook.toml").read_bytes() == before
    assert commit_count(root) == count


@pytest.mark.parametrize("bad", ["age1notakey", "ssh-ed25519 AAAA", "王芳的公钥", ""])
def test_person_add_bad_key(workspace: Setup, bad: str) -> None:
    before = workspace.path("talkbook.toml").read_bytes()
    count = commit_count(workspace.root)
    result = workspace.as_(
        "P-01", "person", "add", "P-07", "--name", "吴敏", "--role", "speaker", "--key", bad
    )
    assert one_error(result).startswith("talkbook: not a valid public key")
    assert workspace.path("talkbook.toml").read_bytes() == before
    assert commit_count(workspace.root) == count


def test_unknown_identity_is_told_to_ask_a_custodian(workspace: Setup, cadre: str) -> None:
    source = workspace.root.parent / "profile.md"
    message = one_error(workspace.as_("outsider", "cadre", "new", "--from", source))
    assert workspace.public["outsider"][:40] in message
    assert "ask a custodian" in message


def test_person_list(workspace: Setup) -> None:
    result = workspace.as_("P-02", "person", "list")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [(pid, name) for pid, (name, _) in STAFF.items()]
