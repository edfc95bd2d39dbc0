"""How git signs the acting person's commits: `gpg.format=ssh` with their OpenSSH key.

An unprotected key file is given to git as it is (`user.signingkey=PATH`). A passphrase-protected
key held by the talkbook agent signs through the ssh-agent that agent keeps (crypto/agent.py;
asked per commit, which renews the key's lifetime there). One opened in memory for this command
only (TALKBOOK_AGENT=0) goes into a private ssh-agent that lives as long as the command (its
socket in a 0700 folder, the key added with a lifetime so a killed command leaves nothing
usable behind). Either way git signs through an agent (`key::` plus SSH_AUTH_SOCK), and the key
never touches the disk unprotected.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from talkbook.crypto.ssh import SshKey
from talkbook.errors import IdentityError
from talkbook.i18n import _

AGENT_KEY_LIFETIME = "600"  # seconds: the key leaves the agent even if the command was killed


class Signer:
    """Git options and environment that make a commit signed with one key."""

    def __init__(self, key: SshKey) -> None:
        self.key = key
        self._socket: str | None = None

    @property
    def public(self) -> str:
        return self.key.public

    def git_options(self) -> tuple[list[str], dict[str, str]]:
        """(`-c` options for git, extra environment) for `git commit -S`."""
        options = ["-c", "gpg.format=ssh", "-c", "commit.gpgsign=true"]
        if not self.key.protected:
            return [*options, "-c", f"user.signingkey={self.key.path}"], {}
        socket = self._socket or self._agent_socket()
        return [*options, "-c", f"user.signingkey=key::{self.key.public}"], {
            "SSH_AUTH_SOCK": socket
        }

    def _agent_socket(self) -> str:
        """The talkbook agent's ssh-agent when it holds the key, else one for this command."""
        if self.key.signing_socket is not None:  # asked per commit: renews the key's lifetime
            return self.key.signing_socket()
        return self._start_agent()

    def _start_agent(self) -> str:
        agent, add = shutil.which("ssh-agent"), shutil.which("ssh-add")
        if not agent or not add:
            raise IdentityError(
                _(
                    "signing with a passphrase-protected key needs ssh-agent and ssh-add "
                    "(Debian: apt-get install openssh-client)"
                )
            )
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        folder = tempfile.mkdtemp(prefix=f"talkbook-agent-{os.getpid()}-", dir=base)
        socket = os.path.join(folder, "agent.sock")
        process = subprocess.Popen(
            [agent, "-D", "-a", socket],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(_stop_agent, process, folder, os.getpid())
        for _attempt in range(200):
            if os.path.exists(socket) or process.poll() is not None:
                break
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": socket}
        added = subprocess.run(
            [add, "-q", "-t", AGENT_KEY_LIFETIME, "-"],
            input=self.key.unprotected,
            env=env,
            capture_output=True,
        )
        if added.returncode != 0:
            raise IdentityError(
                _("cannot prepare {path} for signing (ssh-add failed)").format(path=self.key.path)
            )
        self._socket = socket
        return socket


def _stop_agent(process: subprocess.Popen, folder: str, owner: int) -> None:
    if os.getpid() != owner:  # a forked child's exit handlers: not its agent
        return
    with contextlib.suppress(OSError):
        process.terminate()
        process.wait(timeout=2)
    shutil.rmtree(folder, ignore_errors=True)


def signer_for(key: SshKey | None, source: Path | None = None) -> Signer:
    """The signer of an identity; an identity that only reads says what to do instead."""
    if key is None:
        where = f" ({source})" if source else ""
        raise IdentityError(
            _(
                "your identity{where} cannot sign: acting needs an OpenSSH key; run "
                "`talkbook keygen` and ask a custodian to add its public line to your "
                "entry"
            ).format(where=where)
        )
    return Signer(key)
