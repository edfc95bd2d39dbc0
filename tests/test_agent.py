"""The passphrase agent (crypto/agent.py, agentwire.py): a protected key is asked for once per
working session, used by commands and by git's diff driver, and forgotten on lock or idleness."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from conftest import PROFILE_ZH, Setup, run
from talkbook import agentwire, crypto
from talkbook.crypto import agent

PASSPHRASE = "谈话口令-2026"
LOCKED = "[talkbook: encrypted; your key is locked: run `talkbook unlock`]"


def wait_for(condition, seconds: float = 20.0) -> bool:
    """Poll a condition, bounded: no timing is asserted, only that it happens at all."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The agent on, its socket in a fresh short folder; every agent stopped afterwards."""
    base = Path(tempfile.mkdtemp(prefix="tb-run-", dir="/tmp"))
    base.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    monkeypatch.setenv("TALKBOOK_AGENT", "1")
    monkeypatch.delenv("TALKBOOK_AGENT_TIMEOUT", raising=False)
    yield base / "talkbook"
    for folder in (base, base / "talkbook"):  # a test may have opened them up
        if folder.is_dir():
            folder.chmod(0o700)
    agent.stop()
    shutil.rmtree(base, ignore_errors=True)  # and an agent whose socket is gone exits too


@dataclass
class Asked:
    """Counts passphrase prompts; answers with `answer`."""

    answer: str = PASSPHRASE
    count: int = 0


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Asked:
    counter = Asked()

    def prompt(*args, **kwargs) -> str:
        counter.count += 1
        return counter.answer

    monkeypatch.setattr(click, "prompt", prompt)
    return counter


@pytest.fixture(scope="module")
def sealed_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """One protected key for the whole module: making one costs a key derivation."""
    path = tmp_path_factory.mktemp("protected") / "key.txt"
    public = crypto.generate_key_file(path, passphrase=PASSPHRASE)
    return path.read_bytes(), public


@dataclass
class Protected:
    key: Path
    public: str
    sealed: Path  # a file encrypted to the key, outside any workspace
    root: Path | None = None

    def run(self, *args: str):
        where = ("-w", self.root) if self.root else ()
        return run(*where, "-i", self.key, *args)


@pytest.fixture
def protected(sealed_key: tuple[bytes, str], tmp_path: Path) -> Protected:
    key = tmp_path / "P-05.txt"
    key.write_bytes(sealed_key[0])
    key.chmod(0o600)
    sealed = tmp_path / "C-k3x9p2.md.age"
    sealed.write_bytes(crypto.encrypt(PROFILE_ZH.encode(), [sealed_key[1]]))
    return Protected(key, sealed_key[1], sealed)


@pytest.fixture
def member(protected: Protected, workspace: Setup) -> Protected:
    """The protected key's owner as P-05, a custodian of the test workspace."""
    added = workspace.as_(
        "P-01", "person", "add", "P-05", "--name", "孙敏", "--role", "custodian",
        "--key", protected.public,
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    protected.root = workspace.root
    return protected


def new_cadre(who: Protected, tmp_path: Path) -> str:
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH, encoding="utf-8")
    created = who.run("cadre", "new", "--from", source)
    assert created.exit_code == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def git_log_p(who: Protected) -> str:
    env = {**os.environ, "TALKBOOK_IDENTITY": str(who.key)}
    shown = subprocess.run(
        ["git", "-C", str(who.root), "log", "-p"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def reads(who: Protected) -> bool:
    shown = who.run("cat", who.sealed)
    return shown.exit_code == 0 and "name: 张伟" in shown.stdout


# -- once per session -------------------------------------------------------------------------
def test_once_per_session_in_a_workspace(
    runtime: Path, asked: Asked, member: Protected, tmp_path: Path
) -> None:
    cadre = new_cadre(member, tmp_path)  # reads, encrypts, signs: asks once
    assert asked.count == 1
    shown = member.run("cat", cadre)
    assert shown.exit_code == 0 and "name: 张伟" in shown.stdout
    event = member.run(
        "event", cadre, "post_change", "--date", "2026-02-01", "--note", "调任市财政局副局长"
    )
    assert event.exit_code == 0, event.stderr
    assert asked.count == 1  # the next commands asked nothing
    signed = subprocess.run(
        ["git", "-C", member.root, "log", "-2", "--format=%G?"], capture_output=True, text=True
    ).stdout.split()
    assert signed and all(mark in ("G", "U") for mark in signed)  # signed via the agent

    log = git_log_p(member)  # the diff driver asks the agent
    assert "+name: 张伟" in log and "+  note: 调任市财政局副局长" in log
    assert LOCKED not in log
    assert run("lock").exit_code == 0
    locked = git_log_p(member)
    assert f"+{LOCKED}" in locked and "张伟" not in locked
    assert asked.count == 1  # git never asks


def test_lock_forgets_the_key(runtime: Path, asked: Asked, protected: Protected) -> None:
    assert reads(protected) and reads(protected)
    assert asked.count == 1
    assert (runtime / agentwire.SOCKET_NAME).exists()
    locked = run("lock")
    assert locked.exit_code == 0 and locked.stdout.startswith("locked")
    assert not (runtime / agentwire.SOCKET_NAME).exists()
    assert wait_for(lambda: not [p for p in runtime.iterdir() if p.is_socket()])  # ssh-agent too
    assert reads(protected)
    assert asked.count == 2  # asked again
    assert run("lock").exit_code == 0
    again = run("lock")
    assert again.exit_code == 0 and again.stdout.startswith("no agent")


def test_unlock_then_commands_ask_nothing(
    runtime: Path, asked: Asked, protected: Protected
) -> None:
    unlocked = protected.run("unlock")
    assert unlocked.exit_code == 0 and unlocked.stdout.startswith("unlocked")
    assert asked.count == 1
    assert protected.run("unlock").stdout.startswith("already")
    assert reads(protected)
    assert asked.count == 1
    held = agent.keyring_for(protected.key, None)  # what a command holds: no secret at all
    assert held.agent is not None and held.identities == [] and held.hybrid_identities == []
    assert held.signing_key is not None and held.signing_key.unprotected == b""
    assert crypto.decrypt(protected.sealed.read_bytes(), held) == PROFILE_ZH.encode()
    held.agent.close()


def test_idle_timeout(
    runtime: Path, asked: Asked, protected: Protected, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKBOOK_AGENT_TIMEOUT", "0.5")
    assert protected.run("unlock").exit_code == 0
    assert wait_for(lambda: not (runtime / agentwire.SOCKET_NAME).exists())
    assert wait_for(lambda: not [p for p in runtime.iterdir() if p.is_socket()])
    assert protected.run("unlock").exit_code == 0
    assert asked.count == 2


@pytest.mark.parametrize("value", ["soon", "0", "1e99"])
def test_bad_timeout_is_one_line(
    runtime: Path, asked: Asked, protected: Protected, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TALKBOOK_AGENT_TIMEOUT", value)
    result = protected.run("unlock")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"talkbook: TALKBOOK_AGENT_TIMEOUT='{value}' is not a number of seconds"
    ]


# -- refusals ---------------------------------------------------------------------------------
def test_wrong_passphrase_starts_no_agent(
    runtime: Path, asked: Asked, protected: Protected
) -> None:
    asked.answer = "错误的口令"
    result = protected.run("cat", protected.sealed)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"talkbook: wrong passphrase for identity file {protected.key}"
    ]
    assert not (runtime / agentwire.SOCKET_NAME).exists()
    assert agent.stop() is False


def test_agent_off_asks_every_time(
    runtime: Path, asked: Asked, protected: Protected, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKBOOK_AGENT", "0")
    assert reads(protected) and reads(protected)
    assert asked.count == 2
    assert not runtime.exists()


def test_unprotected_key_needs_no_agent(runtime: Path, tmp_path: Path) -> None:
    key = tmp_path / "plain.txt"
    crypto.generate_key_file(key)
    result = run("-i", key, "unlock")
    assert result.exit_code == 0 and "nothing to unlock" in result.stdout
    assert not runtime.exists()


def test_socket_and_folder_are_private(runtime: Path, asked: Asked, protected: Protected) -> None:
    assert protected.run("unlock").exit_code == 0
    folder = runtime.stat()
    assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.getuid()
    for sock in [p for p in runtime.iterdir() if p.is_socket()]:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600, sock.name


def test_key_not_in_arguments_environment_or_files(
    runtime: Path, asked: Asked, protected: Protected
) -> None:
    assert protected.run("unlock").exit_code == 0
    client = agent.AgentClient.reach(protected.key, protected.public)
    assert client is not None
    pid = client.ask("hello")[0]["pid"]
    client.close()
    for name in ("cmdline", "environ"):
        try:
            seen = Path(f"/proc/{pid}/{name}").read_bytes()
        except PermissionError:  # not dumpable: even its own user cannot read these
            continue
        assert b"PRIVATE KEY" not in seen and PASSPHRASE.encode() not in seen
    for path in runtime.rglob("*"):
        assert path.is_socket(), path  # nothing but sockets in the folder


def test_unsafe_folder_is_not_used(runtime: Path, asked: Asked, protected: Protected) -> None:
    runtime.mkdir(mode=0o755)
    runtime.chmod(0o755)  # reachable by others: the agent will not live there
    assert reads(protected) and reads(protected)
    assert asked.count == 2  # still works, asking each time
    assert not (runtime / agentwire.SOCKET_NAME).exists()
    unlocked = protected.run("unlock")
    assert unlocked.exit_code == 2 and "not a private folder" in unlocked.stderr


def test_stale_socket_is_cleaned(runtime: Path, asked: Asked, protected: Protected) -> None:
    runtime.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(runtime / agentwire.SOCKET_NAME))  # bound, never listening: a killed agent
    dead.close()
    assert protected.run("unlock").exit_code == 0
    assert reads(protected)
    assert asked.count == 1


def test_agent_is_bound_to_one_key(runtime: Path, asked: Asked, protected: Protected) -> None:
    assert protected.run("unlock").exit_code == 0
    other = crypto.generate_key_file(protected.key.with_name("other.txt"))
    sock = agentwire.connect()
    assert sock is not None
    with contextlib.closing(sock):
        header, body = agentwire.request(sock, {"op": "decrypt", "key": other}, b"x")
    assert header["ok"] is False and header["error"] == "other-key" and body == b""
    assert agent.AgentClient.reach(protected.key, other) is None


def test_hostile_frames_are_refused(runtime: Path, asked: Asked, protected: Protected) -> None:
    assert protected.run("unlock").exit_code == 0
    for junk in (b"\xff\xff\xff\xff", b"\0\0\0\x03[1]\0\0\0\0", b"\0\0\0\x02{}\0\0\0\0"):
        sock = agentwire.connect()
        assert sock is not None
        with contextlib.closing(sock):
            try:
                sock.sendall(junk)
                sock.shutdown(socket.SHUT_WR)
                reply = sock.recv(4096)
            except (BrokenPipeError, ConnectionResetError):
                reply = b""  # the agent hung up: the right answer to junk
        assert b"PRIVATE" not in reply
    assert agent.AgentClient.reach(protected.key, protected.public) is not None  # still serving


def test_peer_check() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert agentwire.peer_uid(left) == os.getuid()
        assert agent.peer_allowed(left)


def test_peer_of_another_uid_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 4242)
    with left, right:
        assert not agent.peer_allowed(left)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another uid")
def test_another_uid_gets_no_answer(runtime: Path, asked: Asked, protected: Protected) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for the other user")
    assert protected.run("unlock").exit_code == 0
    path = runtime / agentwire.SOCKET_NAME
    for folder in (runtime.parent, runtime):  # as if they had been opened up by mistake
        os.chmod(folder, 0o755)
    os.chmod(path, 0o666)
    hello = agentwire.pack({"op": "hello", "key": protected.public})
    probe = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        f"s.connect({str(path)!r})\n"
        "s.settimeout(10)\n"
        "try:\n"
        f"    s.sendall({hello!r})\n"
        "    sys.stdout.write(repr(s.recv(4096)))\n"
        "except (BrokenPipeError, ConnectionResetError):\n"
        "    sys.stdout.write('refused')\n"
    )
    seen = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, user=65534)
    assert seen.stdout in ("b''", "refused"), seen.stderr  # connection closed, nothing said
    for folder in (runtime.parent, runtime):
        os.chmod(folder, 0o700)
    assert reads(protected) and asked.count == 1  # and the agent serves its own user still


def test_driver_through_the_agent_stays_light(
    runtime: Path, asked: Asked, protected: Protected
) -> None:
    from talkbook import textconv

    assert protected.run("unlock").exit_code == 0
    python, *rest = textconv.driver_argv()
    env = {**os.environ, "TALKBOOK_IDENTITY": str(protected.key)}
    shown = subprocess.run(
        [python, "-X", "importtime", *rest, str(protected.sealed)], capture_output=True, env=env
    )
    assert shown.returncode == 0 and "name: 张伟".encode() in shown.stdout
    loaded = {
        line.split("|")[-1].strip()
        for line in shown.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "talkbook.agentwire" in loaded
    assert not loaded & {"json", "socket", "re", "click", "yaml", "git", "talkbook.crypto"}

    other = crypto.generate_key_file(protected.key.with_name("other.txt"))
    foreign = protected.sealed.with_name("foreign.md.age")
    foreign.write_bytes(crypto.encrypt("别人的谈话".encode(), [other]))
    refused = subprocess.run([*textconv.driver_argv(), str(foreign)], capture_output=True, env=env)
    assert refused.returncode == 0
    assert refused.stdout == b"[talkbook: encrypted; not readable with your identity]\n"


@pytest.mark.parametrize(
    "header",
    [
        {"op": "decrypt", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPE+/="},
        {"ok": True},
        {"ok": False, "error": "other-key", "message": 'a "quoted" \\ line 谈话'},
        {"path": "/tmp/密钥.txt", "timeout": 0.5},
    ],
)
def test_headers_are_json(header: dict) -> None:
    import json

    framed = agentwire.pack(header, "正文".encode())
    assert agentwire.unpack(framed) == (header, "正文".encode())
    head = framed[4 : 4 + int.from_bytes(framed[:4], "big")]
    assert json.loads(head) == header


def test_a_connected_command_keeps_the_key(
    runtime: Path, asked: Asked, protected: Protected, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command waiting for its editor longer than the timeout can still sign afterwards."""
    monkeypatch.setenv("TALKBOOK_AGENT_TIMEOUT", "0.3")
    assert protected.run("unlock").exit_code == 0
    client = agent.AgentClient.reach(protected.key, protected.public)
    assert client is not None
    time.sleep(1.5)  # five timeouts, connected all along
    assert client.decrypt(protected.sealed.read_bytes()) == PROFILE_ZH.encode()
    client.close()
    assert wait_for(lambda: not (runtime / agentwire.SOCKET_NAME).exists())


def test_another_key_replaces_the_agent(runtime: Path, asked: Asked, protected: Protected) -> None:
    assert protected.run("unlock").exit_code == 0
    second = protected.key.with_name("P-06.txt")
    public = crypto.generate_key_file(second, passphrase=PASSPHRASE)
    replaced = run("-i", second, "unlock")
    assert replaced.exit_code == 0 and replaced.stdout.startswith("unlocked")
    assert asked.count == 2
    assert agent.AgentClient.reach(protected.key, protected.public) is None
    assert agent.AgentClient.reach(second, public) is not None
