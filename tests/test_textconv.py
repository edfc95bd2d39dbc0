"""The light diff driver (talkbook.textconv): what git shows per file version, that it starts
without the heavy imports, and the script `talkbook setup` writes for git to exec."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Setup, make_key, run
from talkbook import crypto, textconv
from talkbook.crypto.identity import identity_path

PLACEHOLDER = b"[talkbook: encrypted; not readable with your identity]\n"
LOCKED = b"[talkbook: encrypted; your key is locked: run `talkbook unlock`]\n"
PLAINTEXT = "---\nname: 张伟\nunit: 市发展和改革委员会\n---\n\n谈话时注意语气。\n".encode()
HEAVY = ("click", "jinja2", "git", "jsonschema", "yaml", "talkbook.crypto", "frontmatter")
# git hands a command holding any of these to `sh -c` (run-command.c, prepare_shell_cmd)
GIT_SHELL_CHARACTERS = set("|&;<>()$`\\\"' \t\n*?[#~=%")


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The driver script as `talkbook setup` writes it into a clone's .git."""
    git_dir = tmp_path_factory.mktemp("clone") / ".git"
    git_dir.mkdir()
    return Path(shlex.split(textconv.install_driver(str(git_dir)))[0])


def driver_env(identity: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TALKBOOK_IDENTITY"}
    if identity is not None:
        env["TALKBOOK_IDENTITY"] = str(identity)
    return env | extra


def driver(script: Path, path: Path, identity: Path | None, **extra: str):
    """Run the driver exactly as git does: the script exec'd, the file appended."""
    return subprocess.run([script, path], capture_output=True, env=driver_env(identity, **extra))


def imported(stderr: bytes) -> set[str]:
    """The modules -X importtime reported."""
    lines = stderr.decode().splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}


@pytest.fixture
def sealed(keydir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A file encrypted to one OpenSSH key: (file, key)."""
    key, public = make_key(keydir, "reader")
    path = tmp_path / "C-k3x9p2.md.age"
    path.write_bytes(crypto.encrypt(PLAINTEXT, [public]))
    return path, key


def test_key_holder_gets_plaintext_with_light_imports(
    script: Path, sealed: tuple[Path, Path]
) -> None:
    path, key = sealed
    shown = driver(script, path, key)
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, PLAINTEXT, b"")
    # the script's own `#!PYTHON -IS`, with -X importtime added
    python = [sys.executable, "-X", "importtime", "-I", "-S"]
    profiled = subprocess.run([*python, script, path], capture_output=True, env=driver_env(key))
    assert profiled.stdout == PLAINTEXT
    bare = subprocess.run([*python, "-c", "pass"], capture_output=True, env=driver_env(key))
    # beyond what the interpreter loads anyway: no os, no __future__, no binascii, no site
    added = imported(profiled.stderr) - imported(bare.stderr)
    assert added == {"talkbook", "talkbook.textconv", "pyrage", "pyrage.pyrage"}


def test_the_command_without_a_script_is_light_too(sealed: tuple[Path, Path]) -> None:
    path, key = sealed
    python, *rest = textconv.driver_argv()
    shown = subprocess.run(
        [python, "-X", "importtime", *rest, path], capture_output=True, env=driver_env(key)
    )
    assert shown.returncode == 0 and shown.stdout == PLAINTEXT
    loaded = imported(shown.stderr)
    assert "pyrage" in loaded and "talkbook.textconv" in loaded
    assert not {m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)}
    assert not loaded & {"site", "os", "__future__", "binascii"}


def test_not_a_recipient_prints_the_placeholder(
    script: Path, sealed: tuple[Path, Path], keydir: Path
) -> None:
    path, _key = sealed
    other, _public = make_key(keydir, "outsider")
    shown = driver(script, path, other)
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


def test_no_identity_prints_the_placeholder(script: Path, sealed: tuple[Path, Path]) -> None:
    path, _key = sealed
    shown = driver(script, path, None)
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


def test_protected_key_without_agent_says_locked(script: Path, tmp_path: Path) -> None:
    key = tmp_path / "protected.txt"
    public = crypto.generate_key_file(key, passphrase="口令")
    path = tmp_path / "x.md.age"
    path.write_bytes(crypto.encrypt(PLAINTEXT, [public]))
    shown = driver(script, path, key)  # TALKBOOK_AGENT=0 (conftest): no agent to ask
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, LOCKED, b"")


def test_openssh_public_matches_the_key_file(sealed: tuple[Path, Path], keydir: Path) -> None:
    _path, key = sealed
    public = crypto.Keyring.from_file(key).public_keys[0]
    assert textconv.openssh_public(key.read_bytes()) == (" ".join(public.split()[:2]), False)


def test_identity_found_as_the_cli_finds_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "配置") + "/")
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.setenv("HOME", str(tmp_path / "家") + "/")
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.delenv("HOME")  # then the password database's home
    assert textconv.identity_file() == str(identity_path())
    monkeypatch.setenv("TALKBOOK_IDENTITY", str(tmp_path / "王芳.txt"))
    assert textconv.identity_file() == str(identity_path())
    assert textconv.identity_file("x.txt") == str(identity_path(Path("x.txt")))


@pytest.mark.parametrize("where", ["XDG_CONFIG_HOME", "HOME"])
def test_the_driver_finds_the_default_identity_without_os(
    script: Path, sealed: tuple[Path, Path], tmp_path: Path, where: str
) -> None:
    path, key = sealed
    home = tmp_path / "家"
    config = tmp_path / "配置" if where == "XDG_CONFIG_HOME" else home / ".config"
    (config / "talkbook").mkdir(parents=True)
    shutil.copy(key, config / "talkbook" / "identity.txt")
    env = driver_env(None, HOME=str(home))
    if where == "XDG_CONFIG_HOME":
        env["XDG_CONFIG_HOME"] = str(config)
    else:
        env.pop("XDG_CONFIG_HOME", None)
    shown = subprocess.run([script, path], capture_output=True, env=env)
    assert (shown.returncode, shown.stdout) == (0, PLAINTEXT)


def test_an_identity_path_not_in_utf8(script: Path, sealed: tuple[Path, Path], tmp_path: Path):
    path, key = sealed
    odd = os.fsencode(tmp_path) + b"/\xff\xfe.txt"  # environment bytes decoded as os does
    shutil.copy(key, odd)
    env = {os.fsencode(k): os.fsencode(v) for k, v in driver_env(None).items()}
    shown = subprocess.run(
        [script, path], capture_output=True, env={**env, b"TALKBOOK_IDENTITY": odd}
    )
    assert (shown.returncode, shown.stdout) == (0, PLAINTEXT)


def test_unprotected_key_told_without_decoding(keydir: Path) -> None:
    plain, _ = make_key(keydir, "plain")
    protected = keydir / "protected.txt"
    crypto.generate_key_file(protected, passphrase="口令")
    for key in (plain, protected):
        data = key.read_bytes()
        assert textconv.unprotected_ssh(data) is not textconv.openssh_public(data)[1]
    damaged = textconv.SSH_BEGIN + b"\nAAAA\n" + textconv.SSH_END
    assert not textconv.unprotected_ssh(damaged)  # then openssh_public refuses it


def test_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert textconv.main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_run_exits_with_mains_code(script: Path, sealed: tuple[Path, Path]) -> None:
    usage = subprocess.run([script], capture_output=True)
    assert usage.returncode == 2 and usage.stdout == b"" and b"usage" in usage.stderr
    path, key = sealed
    read, write = os.pipe()
    os.close(read)  # git went away: the write fails
    try:
        gone = subprocess.run(
            [script, path], stdout=write, stderr=subprocess.PIPE, env=driver_env(key)
        )
    finally:
        os.close(write)
    assert (gone.returncode, gone.stderr) == (0, b"")  # no traceback


def test_script_names_this_interpreter(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"#!{sys.executable} -IS"
    assert "from talkbook.textconv import run" in text
    assert stat.S_IMODE(script.stat().st_mode) == 0o700


@pytest.mark.parametrize("python", ["/opt/my python/bin/python3", "/" + "p" * 130, "python3"])
def test_an_interpreter_a_shebang_cannot_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, python: str
) -> None:
    monkeypatch.setattr(sys, "executable", python)
    assert textconv.driver_script() is None
    assert textconv.install_driver(str(tmp_path / ".git")) == textconv.driver_command()
    assert not (tmp_path / ".git" / "talkbook" / "textconv").exists()


def committed_age_file(root: Path) -> Path:
    """A git repository at `root` holding one age file, committed twice, with the driver."""
    key, public = make_key(root.parent, "git-reader")
    subprocess.run(["git", "init", "-q", root], check=True)
    (root / ".gitattributes").write_text("*.age diff=talkbook\n", encoding="utf-8")
    sealed = root / "C-k3x9p2.md.age"
    for text in (PLAINTEXT, PLAINTEXT.replace("谈话".encode(), "约谈".encode())):
        sealed.write_bytes(crypto.encrypt(text, [public]))
        subprocess.run(["git", "-C", root, "add", "."], check=True)
        subprocess.run(["git", "-C", root, "commit", "-qm", "x"], check=True)
    return key


@pytest.mark.parametrize("name", ["clone", "工作 区", "it's $HOME"])
def test_git_runs_the_script(tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    key = committed_age_file(root)
    command = textconv.install_driver(str(root / ".git"))
    script = root / ".git" / "talkbook" / "textconv"
    assert shlex.split(command) == [str(script)]
    if name == "clone":
        assert not set(command) & GIT_SHELL_CHARACTERS  # git execs it: no shell between
    subprocess.run(["git", "-C", root, "config", "diff.talkbook.textconv", command], check=True)
    shown = subprocess.run(
        ["git", "-C", root, "log", "-p"], capture_output=True, env=driver_env(key), check=True
    ).stdout
    assert "-谈话时注意语气。\n+约谈时注意语气。".encode() in shown
    assert "+name: 张伟".encode() in shown


def test_setup_moves_an_old_clone_to_the_script(workspace: Setup, cadre: str) -> None:
    root = workspace.root
    for old in ("python3 -m talkbook textconv", textconv.driver_command()):
        subprocess.run(["git", "-C", root, "config", "diff.talkbook.textconv", old], check=True)
        assert run("-w", root, "-i", workspace.keys["P-01"], "setup").exit_code == 0
        config = subprocess.run(
            ["git", "-C", root, "config", "--get-regexp", r"^diff\.talkbook\."],
            capture_output=True,
            text=True,
        ).stdout
        script = root.resolve() / ".git" / "talkbook" / "textconv"
        assert f"diff.talkbook.textconv {script}\n" in config
        assert "cachetextconv" not in config
    env = driver_env(workspace.keys["P-01"])
    shown = subprocess.run(
        ["git", "-C", root, "log", "-p", "--", f"cadres/{cadre}.md.age"],
        capture_output=True,
        env=env,
        check=True,
    ).stdout
    assert "+name: 张伟".encode() in shown


def test_old_cli_command_still_answers(workspace: Setup, cadre: str) -> None:
    path = workspace.path(f"cadres/{cadre}.md.age")
    shown = run("-i", workspace.keys["P-01"], "textconv", path)
    assert shown.exit_code == 0 and "name: 张伟" in shown.stdout
    other = run("-i", workspace.keys["outsider"], "textconv", path)
    assert other.exit_code == 0 and other.stdout_bytes == PLACEHOLDER


def test_a_relative_identity_is_never_read_from_the_workspace(
    script: Path, sealed: tuple[Path, Path], tmp_path: Path
) -> None:
    """git runs the driver in the workspace's top folder: a pushed `identity.txt` there (the
    attacker's own key, beside files encrypted to it) must not be what a relative
    TALKBOOK_IDENTITY or XDG_CONFIG_HOME finds, or forged history would show as plaintext."""
    path, key = sealed
    workspace = tmp_path / "工作区"
    (workspace / "talkbook").mkdir(parents=True)
    shutil.copy(key, workspace / "identity.txt")  # as if pushed: readable, in the cwd
    shutil.copy(key, workspace / "talkbook" / "identity.txt")
    relative = driver_env(None, TALKBOOK_IDENTITY="identity.txt")
    shown = subprocess.run([script, path], capture_output=True, env=relative, cwd=workspace)
    assert (shown.returncode, shown.stdout) == (0, PLACEHOLDER)
    xdg = driver_env(None, XDG_CONFIG_HOME=".", HOME=str(tmp_path / "nobody"))
    shown = subprocess.run([script, path], capture_output=True, env=xdg, cwd=workspace)
    assert (shown.returncode, shown.stdout) == (0, PLACEHOLDER)
    absolute = driver_env(workspace / "identity.txt")  # the same key, named absolutely: read
    shown = subprocess.run([script, path], capture_output=True, env=absolute, cwd=workspace)
    assert (shown.returncode, shown.stdout) == (0, PLAINTEXT)
