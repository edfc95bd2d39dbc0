"""The passphrase agent, in the manner of ssh-agent: a passphrase-protected key is opened once
per working session and held by a small background process, not asked again by every command.

How it is used (`keyring_for`): a command that needs a protected OpenSSH key first asks this
user's running agent; if none holds that key, it asks the passphrase once (Prompts.passphrase),
opens the key in memory, and starts the agent with it (`python -m talkbook.crypto.agentd`, the
opened key handed over a pipe; the agent process is that module, so a command that only looks
for an agent imports none of its server machinery). Later commands and the textconv driver send
age files to the agent and get plaintext back. A wrong passphrase fails before anything is started.

Signing: the agent runs under a real `ssh-agent` (`ssh-agent -a SOCK python -m …`): ssh-agent
exits when the agent does (it watches its parent), the key is added with a lifetime
(`ssh-add -t`) refreshed at each signing request, and commands sign through its SSH_AUTH_SOCK
(git's `key::` signing key). git's signing program speaks to ssh-agent already, so talkbook
needs no signing protocol of its own.

Lifetime: the agent exits after TALKBOOK_AGENT_TIMEOUT seconds without use (default 900; a
command still connected, say one waiting for its editor, is use), on `talkbook lock` (op
"stop"), on SIGTERM/SIGINT/SIGHUP, or when its socket is gone (nobody could reach it); it
removes its socket and stops its ssh-agent on the way out. TALKBOOK_AGENT=0 turns the agent
off (every command asks again). The wire protocol is documented in talkbook.agentwire.

Security invariant: the opened key lives only in the agent's memory (and its ssh-agent's); it
never reaches a file, an argument or an environment variable, and no client receives it. The
agent refuses core dumps and ptrace (PR_SET_DUMPABLE 0), answers only peers of its own uid,
and is bound to one key file: a request naming another public key is refused.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from talkbook import agentwire
from talkbook.errors import DecryptionError, IdentityError, NotRecipient, TalkbookError
from talkbook.i18n import _

if TYPE_CHECKING:
    from talkbook.crypto import Keyring

TIMEOUT_ENV = "TALKBOOK_AGENT_TIMEOUT"
DEFAULT_TIMEOUT = 900.0
START_WAIT = 30.0  # seconds a command waits for a new agent to say it is ready
POLL = 0.2  # how often the agent looks at its idle clock and at a stop request


def idle_timeout() -> float:
    """Seconds of idleness after which the agent forgets the key (TALKBOOK_AGENT_TIMEOUT)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 10**7:
        raise IdentityError(
            _("{name}={value!r} is not a number of seconds").format(name=TIMEOUT_ENV, value=raw)
        )
    return value


def protected_public_key(path: Path) -> str | None:
    """The public line of a passphrase-protected OpenSSH key file (stored in the clear in the
    file); None for any other identity file, which the agent does not hold."""
    from talkbook.crypto import SSH_PRIVATE_BEGIN, _ssh_public_key
    from talkbook.crypto.ssh import is_protected

    try:
        text = path.read_bytes()[:65536].decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if SSH_PRIVATE_BEGIN not in text or not is_protected(text):
        return None
    try:
        return _ssh_public_key(path, text)
    except IdentityError:
        return None


# -- the client -----------------------------------------------------------------------------------
class AgentClient:
    """A command's connection to the agent holding its key."""

    def __init__(self, path: Path, public: str) -> None:
        from talkbook.crypto.ssh import public_core

        self.path, self.public, self.key = path, public, public_core(public)
        self._sock = None
        self._pid = -1
        self._lock = threading.Lock()

    @classmethod
    def reach(cls, path: Path, public: str) -> AgentClient | None:
        """The running agent if it holds this key; None otherwise (none running, another key,
        or an unsafe folder)."""
        client = cls(path, public)
        try:
            client.ask("hello")
        except (IdentityError, agentwire.WireError):
            client.close()
            return None
        return client

    def _connection(self):
        if self._sock is None or self._pid != os.getpid():  # a forked child has its own
            self._sock = agentwire.connect()
            self._pid = os.getpid()
            if self._sock is None:
                raise IdentityError(_("the talkbook agent is not running (run the command again)"))
        return self._sock

    def ask(self, op: str, body: bytes = b"") -> tuple[dict, bytes]:
        with self._lock:
            try:
                header, out = agentwire.request(
                    self._connection(), {"op": op, "key": self.key}, body
                )
            except agentwire.WireError:
                self.close()
                raise IdentityError(
                    _("the talkbook agent stopped answering (run the command again)")
                ) from None
        if header.get("ok") is True:
            return header, out
        code, message = header.get("error"), " ".join(str(header.get("message", "")).split())
        if code == "not-recipient":
            raise NotRecipient(message[:200])
        if code == "undecryptable":
            raise DecryptionError(message[:200])
        reason = _refusal_reason(code) or message[:200]
        raise IdentityError(_("the talkbook agent refused: {reason}").format(reason=reason))

    def decrypt(self, data: bytes) -> bytes:
        return self.ask("decrypt", data)[1]

    def derive(self, label: bytes) -> bytes:
        """HMAC-SHA256(label, the opened key): a secret only this key's owner can compute."""
        return self.ask("derive", label)[1]

    def signing_socket(self) -> str:
        socket_path = self.ask("signing")[0].get("socket")
        if not isinstance(socket_path, str):
            raise IdentityError(_("the talkbook agent cannot sign"))
        return socket_path

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def keyring(self) -> Keyring:
        """A keyring that decrypts and signs through the agent; it holds no secret."""
        from talkbook.crypto import Keyring
        from talkbook.crypto.ssh import SshKey

        keyring = Keyring([], [self.public])
        keyring.agent = self
        keyring.signing_key = SshKey(
            self.path.absolute(), self.public, b"", True, signing_socket=self.signing_socket
        )
        return keyring


def keyring_for(path: Path, passphrase_prompt) -> Keyring:
    """The keyring of an identity file; a protected OpenSSH key through the agent: the running
    one, else a new one started after asking the passphrase once."""
    from talkbook.crypto import Keyring

    public = protected_public_key(path) if agentwire.enabled() else None
    if public is None:
        return Keyring.from_file(path, passphrase_prompt)
    client = AgentClient.reach(path, public)
    if client is not None:
        return client.keyring()
    idle_timeout()  # a bad TALKBOOK_AGENT_TIMEOUT is said before the passphrase is asked
    keyring = Keyring.from_file(path, passphrase_prompt)  # asks; a wrong passphrase raises here
    try:
        return start(path, keyring).keyring()
    except TalkbookError:
        return keyring  # no agent (no safe folder, no socket): this command still works


def unlock(path: Path, passphrase_prompt) -> str:
    """`talkbook unlock`: "already", "not-protected" or "started"; a failure is an error here,
    not a quiet fall-back."""
    from talkbook.crypto import Keyring

    if not agentwire.enabled():
        raise IdentityError(
            _("the talkbook agent is turned off ({name}=0)").format(name="TALKBOOK_AGENT")
        )
    if not path.exists():
        raise IdentityError(_("no identity file at {path}").format(path=path))
    public = protected_public_key(path)
    if public is None:
        return "not-protected"
    if AgentClient.reach(path, public) is not None:
        return "already"
    idle_timeout()
    start(path, Keyring.from_file(path, passphrase_prompt)).close()
    return "started"


def start(path: Path, keyring: Keyring) -> AgentClient:
    """Start an agent holding this opened key (stopping one that holds another)."""
    key = keyring.signing_key
    if key is None or not key.unprotected:
        raise IdentityError(_("only an opened OpenSSH key can be held by the agent"))
    timeout = idle_timeout()
    if (running := AgentClient.reach(path, key.public)) is not None:
        return running  # another command of the same key started it meanwhile
    stop()  # one holding another key
    try:
        folder = agentwire.private_folder(create=True)
    except (agentwire.WireError, OSError) as exc:
        # agentwire stays light (no gettext): its one refusal here is said in our words
        reason = (
            _("{path} is not a private folder of this user").format(path=agentwire.folder())
            if isinstance(exc, agentwire.WireError)
            else str(exc)
        )
        message = _("the talkbook agent cannot start: {reason}").format(reason=reason)
        raise IdentityError(message) from None
    import shutil  # here: with its compression modules, only for a command that starts one

    command = [sys.executable, "-m", "talkbook.crypto.agentd"]
    ssh_agent, ssh_add = shutil.which("ssh-agent"), shutil.which("ssh-add")
    if ssh_agent and ssh_add and folder:
        ssh_socket = os.path.join(folder, f"ssh-agent.{os.getpid()}.{time.monotonic_ns()}")
        command = [ssh_agent, "-a", ssh_socket, *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_A")}
    env[agentwire.ENABLE_ENV] = "0"  # the agent itself never looks for an agent
    handover = agentwire.pack(
        {"path": str(path.absolute()), "public": key.public, "timeout": timeout}, key.unprotected
    )
    _spawn(command, env, handover)
    client = AgentClient.reach(path, key.public)
    if client is None:
        raise IdentityError(_("the talkbook agent started but does not answer"))
    return client


def _spawn(command: list[str], env: dict[str, str], handover: bytes) -> None:
    """Run the agent in its own session; hand it the key on stdin; wait for "ready"."""
    import subprocess  # here: a command that only reaches a running agent starts no process

    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd="/",
        start_new_session=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(handover)
        process.stdin.close()
    except OSError:
        pass
    ready, _w, _x = select.select([process.stdout], [], [], START_WAIT)
    line = process.stdout.readline().strip() if ready else b""
    process.stdout.close()
    if line != b"ready":
        with contextlib.suppress(OSError):
            process.kill()
        reason = line.decode("ascii", "replace")[:120] or _("no answer")
        raise IdentityError(_("the talkbook agent did not start: {reason}").format(reason=reason))


def stop(wait: float = 5.0) -> bool:
    """Stop this user's agent, whatever key it holds; True if one was running."""
    try:
        sock = agentwire.connect(timeout=wait)
    except agentwire.WireError:
        return False
    if sock is None:
        return False
    with contextlib.closing(sock), contextlib.suppress(agentwire.WireError):
        agentwire.request(sock, {"op": "stop"})
    deadline = time.monotonic() + wait
    while os.path.exists(agentwire.socket_path()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def peer_allowed(sock) -> bool:
    """Whether a connection comes from a process of this agent's own uid."""
    return agentwire.same_user(sock)


def _refusal_reason(code: object) -> str | None:
    """A refusal the client knows, in the reader's language (the agent answers in English)."""
    reasons = {
        "other-key": _("the agent holds another key"),
        "bad-request": _("unknown request"),
        "no-signing": _(
            "signing needs ssh-agent and ssh-add (Debian: apt-get install openssh-client)"
        ),
    }
    return reasons.get(code) if isinstance(code, str) else None
