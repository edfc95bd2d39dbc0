"""OpenSSH ed25519 keys: one key per person that both reads (age's ssh-ed25519 recipient) and
signs (git's `gpg.format=ssh`).

A passphrase-protected key is opened once, in memory, with the `cryptography` package; the
unprotected form is handed to pyrage and to a per-command ssh-agent, never written to disk.
Messages name the key file, never its secret.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from talkbook.errors import IdentityError
from talkbook.i18n import _

PUBLIC_TYPE = "ssh-ed25519"


class SshKey(NamedTuple):  # not a frozen dataclass: defined at every import, in a fifth of the time
    """An opened private key: where it lives, its public line, its unprotected OpenSSH text."""

    path: Path
    public: str
    unprotected: bytes  # empty when the talkbook agent holds the key (crypto/agent.py)
    protected: bool  # True when the file itself is passphrase-protected
    # With the agent: the SSH_AUTH_SOCK of the ssh-agent that signs with this key.
    signing_socket: Callable[[], str] | None = None


def fingerprint(public_line: str) -> str:
    """`SHA256:…` as ssh-keygen -l and git's %GK print it."""
    parts = public_line.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, ValueError):
        return ""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def public_core(public_line: str) -> str:
    """`ssh-ed25519 AAAA… comment` → `ssh-ed25519 AAAA…` (the comment is not the key)."""
    return " ".join(public_line.split()[:2])


def generate(passphrase: str | None = None) -> tuple[bytes, str]:
    """A new ed25519 key: (OpenSSH private key file bytes, public line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode("ascii")


def is_protected(text: str) -> bool:
    """Whether an OpenSSH private key file is passphrase-protected (its cipher is not none)."""
    from talkbook.crypto import SSH_PRIVATE_BEGIN, SSH_PRIVATE_END

    try:
        inner = text.split(SSH_PRIVATE_BEGIN, 1)[1].split(SSH_PRIVATE_END, 1)[0]
        blob = base64.b64decode("".join(inner.split()), validate=True)
    except (IndexError, ValueError):
        return False
    return blob[19:23] != b"none"  # magic (15) + length (4), then the cipher name


def open_protected(path: Path, text: str, ask: Callable[[], str] | None) -> bytes:
    """Unlock a passphrase-protected OpenSSH key: its unprotected OpenSSH text, in memory."""
    from cryptography.hazmat.primitives import serialization

    if ask is None:
        raise IdentityError(
            _("identity file {path} needs a passphrase and none can be asked").format(path=path)
        )
    try:
        key = serialization.load_ssh_private_key(text.encode("utf-8"), ask().encode("utf-8"))
    except ValueError:
        raise IdentityError(
            _("wrong passphrase for identity file {path}").format(path=path)
        ) from None
    except Exception:  # unsupported cipher or KDF: still one line
        raise IdentityError(
            _("identity file {path} is not a usable SSH key").format(path=path)
        ) from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
