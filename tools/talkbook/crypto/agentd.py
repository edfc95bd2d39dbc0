"""The agent process (`python -m talkbook.crypto.agentd`, started by agent.start): it holds one
opened key in memory and answers its user's commands over agentwire, until idle, stopped or
signalled (see crypto/agent.py for the whole design, its lifetime and its security invariant).

Kept apart from agent.py, the client side, so that every command that only looks for an agent
does not import the server machinery (socketserver, signal handling, hmac).

Security invariant: the key arrives on stdin and lives only in this process's memory (and its
ssh-agent's); no core dump, no ptrace; only peers of the same uid are answered, and only about
the one key it was started with. A failure to start says one word on stdout, never the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time

from talkbook import agentwire
from talkbook.crypto.agent import POLL, peer_allowed
from talkbook.errors import NotRecipient, TalkbookError


class Agent:
    """The process that holds one opened key and answers its user's commands."""

    def __init__(self, path: str, public: str, unprotected: bytes, timeout: float) -> None:
        import pyrage

        from talkbook.crypto import Keyring
        from talkbook.crypto.ssh import public_core

        self.path, self.public, self.key = path, public, public_core(public)
        self._secret = unprotected
        self.keyring = Keyring([pyrage.ssh.Identity.from_buffer(unprotected)], [public])
        self.timeout = timeout
        self.last = time.monotonic()
        self.done = threading.Event()
        self._ssh_lock = threading.Lock()
        self._open = 0  # connections of running commands: an editor may stay open for long
        self._open_lock = threading.Lock()

    def connected(self, change: int) -> None:
        with self._open_lock:
            self._open += change
            self.last = time.monotonic()

    def answer(self, header: dict, body: bytes) -> tuple[dict, bytes]:
        self.last = time.monotonic()
        op = header.get("op")
        if op == "stop":
            self.done.set()
            return {"ok": True}, b""
        if header.get("key") != self.key:
            return _refusal("other-key", "the agent holds another key"), b""
        if op == "hello":
            return {"ok": True, "key": self.public, "path": self.path, "pid": os.getpid()}, b""
        if op == "decrypt":
            return self._decrypt(body)
        if op == "derive":
            return {"ok": True}, hmac.new(body, self._secret, hashlib.sha256).digest()
        if op == "signing":
            return self._signing()
        return _refusal("bad-request", "unknown request"), b""

    def _decrypt(self, data: bytes) -> tuple[dict, bytes]:
        from talkbook.crypto import decrypt

        try:
            return {"ok": True}, decrypt(data, self.keyring)
        except NotRecipient as exc:
            return _refusal("not-recipient", str(exc)), b""
        except TalkbookError as exc:
            return _refusal("undecryptable", str(exc)), b""

    def _signing(self) -> tuple[dict, bytes]:
        socket_path = os.environ.get("SSH_AUTH_SOCK")
        if not socket_path or not self.add_to_ssh_agent():
            reason = "signing needs ssh-agent and ssh-add (Debian: apt-get install openssh-client)"
            return _refusal("no-signing", reason), b""
        return {"ok": True, "socket": socket_path}, b""

    def add_to_ssh_agent(self) -> bool:
        """(Re)add the key to our ssh-agent, with a lifetime: a fresh one at each request."""
        add = shutil.which("ssh-add")
        if not add or not os.environ.get("SSH_AUTH_SOCK"):
            return False
        lifetime = str(max(60, int(self.timeout) + 60))
        with self._ssh_lock:
            done = subprocess.run(
                [add, "-q", "-t", lifetime, "-"], input=self._secret, capture_output=True
            )
        return done.returncode == 0

    def idle(self) -> bool:
        """Nobody connected, and no request nor connection for `timeout` seconds."""
        with self._open_lock:
            return self._open == 0 and time.monotonic() - self.last > self.timeout


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        agent: Agent = self.server.agent  # type: ignore[attr-defined]
        agent.connected(+1)
        try:
            self._serve(agent)
        finally:
            agent.connected(-1)

    def _serve(self, agent: Agent) -> None:
        while not agent.done.is_set():
            try:
                header, body = agentwire.receive(self.request)
            except (agentwire.WireError, OSError):
                return
            reply, out = agent.answer(header, body)
            try:
                agentwire.send(self.request, reply, out)
            except OSError:
                return


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    timeout = POLL

    def verify_request(self, request, client_address) -> bool:
        return peer_allowed(request)


def _harden() -> None:
    """No core dump and no ptrace of this process: the key is in its memory."""
    import ctypes
    import resource

    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def _bind(agent: Agent) -> _Server:
    """Our socket, 0600 from birth; a live agent already there wins, a stale socket goes."""
    agentwire.private_folder(create=True)
    path = agentwire.socket_path()
    live = agentwire.connect(timeout=2.0)
    if live is not None:
        live.close()
        raise agentwire.WireError("another agent is running")
    old = os.umask(0o177)
    try:
        server = _Server(path, _Handler)
    finally:
        os.umask(old)
    server.agent = agent  # type: ignore[attr-defined]
    return server


def _serve(server: _Server, agent: Agent) -> None:
    path = agentwire.socket_path()
    inode = os.stat(path).st_ino
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda *_: agent.done.set())
    try:  # a removed socket (rm -r of the folder, logout) means nobody can reach us: go
        while not agent.done.is_set() and not agent.idle() and _still_there(path, inode):
            server.handle_request()
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        server.server_close()
        _stop_ssh_agent()


def _still_there(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _stop_ssh_agent() -> None:
    """Our ssh-agent is our child (ssh-agent forked it off before running us): stop, reap."""
    try:
        pid = int(os.environ.get("SSH_AGENT_PID", ""))
        os.kill(pid, signal.SIGTERM)
    except (ValueError, OSError):
        return
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)


def main() -> int:
    """The agent process: read the key from stdin, say "ready" on stdout, serve until idle."""
    _harden()
    try:
        header, secret = agentwire.unpack(sys.stdin.buffer.read(agentwire.MAX_FRAME))
        agent = Agent(str(header["path"]), str(header["public"]), secret, float(header["timeout"]))
        agent.add_to_ssh_agent()
        server = _bind(agent)
    except Exception as exc:  # one word back to the starting command, never the key
        print(f"error: {type(exc).__name__}", flush=True)
        return 1
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    _serve(server, agent)
    return 0


def _refusal(code: str, message: str) -> dict:
    return {"ok": False, "error": code, "message": message}


if __name__ == "__main__":
    sys.exit(main())
