"""Encryption and decryption behind a small interface, chosen from the age header.

Messages never carry plaintext or secret keys; a public key may be shown to say which one is wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrage

from talkbook.crypto import agefile
from talkbook.errors import DecryptionError, IdentityError, NotRecipient, TalkbookError
from talkbook.i18n import _

if TYPE_CHECKING:
    from talkbook.crypto.agent import AgentClient
    from talkbook.crypto.agepq import HybridIdentity
    from talkbook.crypto.ssh import SshKey

NO_MATCH = "cannot decrypt: none of your keys is a recipient of this file"
WRONG_PASSPHRASE = "cannot decrypt: wrong passphrase for this file"

SECRET_KEY_PREFIX = "AGE-SECRET-KEY-1"
PQ_SECRET_KEY_PREFIX = "AGE-SECRET-KEY-PQ-1"
SSH_PRIVATE_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
SSH_PRIVATE_END = "-----END OPENSSH PRIVATE KEY-----"
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
OPENSSH_MAGIC = b"openssh-key-v1\0"

# rage's error texts are terse or multi-line; these read better on one line.
_REASONS = {
    "decryption error": "the payload failed authentication",
    "failed to fill whole buffer": "the file ends too early",
    "age file is truncated": "the file ends too early",
    "last chunk has been processed": "there is data after the end of the payload",
    "header mac is invalid": "the header MAC does not match",
    "header is invalid": "the header is invalid",
    "unknown age format.": "unknown age format",
    "last stream chunk is empty.": "the last payload chunk is empty",
}

Identity = Any  # pyrage.x25519.Identity | pyrage.ssh.Identity; pyrage ships no type stubs
Recipient = Any


def _shorten(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_recipient(text: str) -> Recipient:
    """Turn a public key as written in talkbook.toml into a pyrage recipient."""
    key = text.strip()
    try:
        if key.startswith("age1pq1"):
            raise IdentityError(
                _("post-quantum (ML-KEM hybrid) age recipients are not supported yet")
            )
        if key.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(key)
        if key.split(" ", 1)[0] in SSH_KEY_TYPES:
            return pyrage.ssh.Recipient.from_str(key)
    except pyrage.RecipientError:
        pass
    raise IdentityError(
        _("not a valid public key: {value}").format(value=_shorten(key) or "(empty)")
    )


class Keyring:
    """What a user decrypts with: identities, their public keys, and maybe a passphrase."""

    def __init__(
        self,
        identities: list[Identity],
        public_keys: list[str],
        passphrase_prompt: Callable[[], str] | None = None,
        hybrid_identities: list[HybridIdentity] | None = None,
    ) -> None:
        self.identities = identities
        self.public_keys = public_keys
        self.passphrase_prompt = passphrase_prompt
        # pyrage cannot read post-quantum identities; agepq decrypts with these instead.
        self.hybrid_identities = hybrid_identities or []
        # The OpenSSH key that also signs commits; age X25519 identities only read.
        self.signing_key: SshKey | None = None
        # A protected key held by the talkbook agent: it decrypts there (crypto/agent.py).
        self.agent: AgentClient | None = None

    @classmethod
    def from_secret_lines(cls, text: str) -> Keyring:
        """Read an age identity file's text: one AGE-SECRET-KEY-(PQ-)1… per line, # comments."""
        identities: list[Identity] = []
        hybrid: list[HybridIdentity] = []
        public_keys: list[str] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.upper().startswith(PQ_SECRET_KEY_PREFIX):
                from talkbook.crypto import agepq  # loads cryptography: only for post-quantum keys

                try:
                    hybrid_identity = agepq.HybridIdentity.from_str(line)
                except IdentityError:
                    raise IdentityError(
                        _("line {number} is not a valid age secret key").format(number=number)
                    ) from None
                hybrid.append(hybrid_identity)
                public_keys.append(hybrid_identity.recipient)
                continue
            if not line.upper().startswith(SECRET_KEY_PREFIX):
                raise IdentityError(
                    _("line {number} is not an age secret key").format(number=number)
                )
            try:
                identity = pyrage.x25519.Identity.from_str(line)
            except pyrage.IdentityError:
                raise IdentityError(
                    _("line {number} is not a valid age secret key").format(number=number)
                ) from None
            identities.append(identity)
            public_keys.append(str(identity.to_public()))
        if not identities and not hybrid:
            raise IdentityError(_("no age secret key found"))
        return cls(identities, public_keys, hybrid_identities=hybrid)

    @classmethod
    def with_passphrase(cls, passphrase: str) -> Keyring:
        """A keyring that only decrypts passphrase (scrypt) files."""
        return cls([], [], passphrase_prompt=lambda: passphrase)

    @classmethod
    def from_file(cls, path: Path, passphrase_prompt: Callable[[], str] | None = None) -> Keyring:
        """Load an age identity file (maybe passphrase-protected) or an OpenSSH private key."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise IdentityError(
                _("cannot read identity file {path}: {reason}").format(path=path, reason=reason)
            ) from None
        if not data.strip():
            raise IdentityError(_("identity file {path} is empty").format(path=path))
        normalized = agefile.normalize(data)
        if normalized.startswith((agefile.ARMOR_BEGIN, agefile.VERSION_PREFIX)):
            text = _unlock_identity_file(path, normalized, passphrase_prompt)
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise IdentityError(
                    _("identity file {path} is not a text key file").format(path=path)
                ) from None
        if SSH_PRIVATE_BEGIN in text:
            identity, key = _load_ssh_key(path, text, passphrase_prompt)
            keyring = cls([identity], [key.public], passphrase_prompt)
            keyring.signing_key = key
            return keyring
        try:
            keyring = cls.from_secret_lines(text)
        except IdentityError as exc:
            raise IdentityError(
                _("identity file {path}: {error}").format(path=path, error=exc)
            ) from None
        keyring.passphrase_prompt = passphrase_prompt
        return keyring


def _unlock_identity_file(
    path: Path, data: bytes, passphrase_prompt: Callable[[], str] | None
) -> str:
    """Decrypt an identity file written by `age -p` (or by generate_identity_file)."""
    try:
        header = agefile.parse_header(data)
    except DecryptionError:
        raise IdentityError(
            _("identity file {path} is a damaged age file").format(path=path)
        ) from None
    if not header.is_passphrase:
        raise IdentityError(
            _("identity file {path} is encrypted, but not with a passphrase").format(path=path)
        )
    if passphrase_prompt is None:
        raise IdentityError(
            _("identity file {path} needs a passphrase and none can be asked").format(path=path)
        )
    try:
        plaintext = pyrage.passphrase.decrypt(data, passphrase_prompt())
    except pyrage.DecryptError:
        raise IdentityError(
            _("wrong passphrase for identity file {path}").format(path=path)
        ) from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise IdentityError(
            _("identity file {path} does not hold age secret keys").format(path=path)
        ) from None


def _read_string(blob: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[pos : pos + 4])
    end = pos + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[pos + 4 : end], end


def _ssh_public_key(path: Path, text: str) -> str:
    """Find the public key in an openssh-key-v1 container; it is stored unencrypted."""
    try:
        inner = text.split(SSH_PRIVATE_BEGIN, 1)[1].split(SSH_PRIVATE_END, 1)[0]
        blob = base64.b64decode("".join(inner.split()), validate=True)
        if not blob.startswith(OPENSSH_MAGIC):
            raise ValueError("bad magic")
        _cipher, pos = _read_string(blob, len(OPENSSH_MAGIC))
        _kdf, pos = _read_string(blob, pos)
        _kdf_options, pos = _read_string(blob, pos)
        pos += 4  # number of keys; a key file written by ssh-keygen holds exactly one
        public_blob, _end = _read_string(blob, pos)
        key_type, _end = _read_string(public_blob, 0)
    except (IndexError, ValueError, binascii.Error, struct.error):
        raise IdentityError(
            _("identity file {path} is not a readable OpenSSH private key").format(path=path)
        ) from None
    name = key_type.decode("ascii", errors="replace")
    if name not in SSH_KEY_TYPES:
        raise IdentityError(
            _("unsupported SSH key type {detail} in {path}").format(
                detail=_shorten(name, 40), path=path
            )
        )
    return f"{name} {base64.b64encode(public_blob).decode('ascii')}"


def _load_ssh_key(
    path: Path, text: str, passphrase_prompt: Callable[[], str] | None
) -> tuple[Identity, SshKey]:
    """An OpenSSH key reads (pyrage) and signs (git); a protected one is opened in memory."""
    from talkbook.crypto import ssh

    public_key = _ssh_public_key(path, text)
    protected = ssh.is_protected(text)
    unprotected = (
        ssh.open_protected(path, text, passphrase_prompt) if protected else text.encode("utf-8")
    )
    try:
        identity = pyrage.ssh.Identity.from_buffer(unprotected)
    except pyrage.IdentityError:
        raise IdentityError(
            _("identity file {path} is not a usable SSH key").format(path=path)
        ) from None
    return identity, ssh.SshKey(path.absolute(), public_key, unprotected, protected)


def encrypt(plaintext: bytes, recipients: list[str]) -> bytes:
    """Encrypt to the given public keys ("age1…", "ssh-ed25519 …", "ssh-rsa …")."""
    if not recipients:
        raise TalkbookError(_("cannot encrypt: no recipients"))
    parsed = [parse_recipient(key) for key in recipients]
    try:
        return pyrage.encrypt(plaintext, parsed)
    except pyrage.EncryptError as exc:
        raise TalkbookError(
            _("encryption failed: {detail}").format(detail=_shorten(str(exc)))
        ) from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else type(exc).__name__
    for known, reason in _REASONS.items():
        if first.lower().startswith(known):
            return reason
    if first.startswith("DecodeError"):
        return "the armor is not valid base64"
    return _shorten(first).rstrip(".")


def decrypt(data: bytes, keyring: Keyring) -> bytes:
    """Decrypt a binary or armored age file; all or nothing."""
    data = agefile.normalize(data)
    header = agefile.parse_header(data)
    try:
        if header.is_passphrase:
            if keyring.passphrase_prompt is None:
                raise IdentityError(
                    _("this file is passphrase-encrypted; no passphrase can be asked")
                )
            return pyrage.passphrase.decrypt(data, keyring.passphrase_prompt())
        if keyring.agent is not None:
            return keyring.agent.decrypt(data)
        if keyring.hybrid_identities and header.is_hybrid:
            from talkbook.crypto import agepq

            try:
                return agepq.decrypt(data, keyring.hybrid_identities)
            except NotRecipient:
                if not keyring.identities:
                    raise NotRecipient(NO_MATCH) from None
            # Not for a hybrid key: an X25519 or SSH stanza of the same file may still fit.
        if not keyring.identities:
            raise NotRecipient(NO_MATCH)
        return pyrage.decrypt(data, keyring.identities)
    except TalkbookError:
        raise
    except Exception as exc:  # pyrage raises DecryptError, and may surface others from Rust
        first = str(exc).strip()
        if header.is_passphrase and first == "Decryption failed":
            raise DecryptionError(WRONG_PASSPHRASE) from None
        if first == "No matching keys found":
            raise NotRecipient(NO_MATCH) from None
        raise DecryptionError(
            _("corrupt or truncated age file: {reason}").format(reason=_reason(exc))
        ) from None


def generate_identity_file(out: Path, passphrase: str | None = None) -> str:
    """Write a new X25519 identity file (age-keygen layout), maybe passphrase-protected."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise TalkbookError(_("{out} exists; refusing to overwrite").format(out=out))
    identity = pyrage.x25519.Identity.generate()
    public_key = str(identity.to_public())
    created = datetime.now().astimezone().isoformat(timespec="seconds")
    text = f"# created: {created}\n# public key: {public_key}\n{identity}\n"
    content = text.encode("ascii")
    if passphrase is not None:
        content = pyrage.passphrase.encrypt(content, passphrase, armored=True)
    if not out.parent.exists():
        out.parent.mkdir(mode=0o700, parents=True)
    _write_private(out, content)
    return public_key


def generate_key_file(out: Path, passphrase: str | None = None) -> str:
    """Write a new OpenSSH ed25519 key (0600), maybe passphrase-protected; its public line.

    The one key a person needs: age encrypts to it, and git signs their commits with it.
    """
    from talkbook.crypto import ssh

    out = Path(out)
    if out.exists() or out.is_symlink():
        raise TalkbookError(_("{out} exists; refusing to overwrite").format(out=out))
    private, public = ssh.generate(passphrase)
    if not out.parent.exists():
        out.parent.mkdir(mode=0o700, parents=True)
    _write_private(out, private)
    return public


def _write_private(out: Path, content: bytes) -> None:
    """Atomically write a 0600 file: temp file in the same folder, fsync, rename."""
    import secrets  # here: only keygen writes a key, and secrets loads random with it

    tmp = out.with_name(f".{out.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise TalkbookError(
            _("cannot write {out}: {reason}").format(out=out, reason=exc.strerror)
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TalkbookError(
            _("cannot write {out}: {reason}").format(out=out, reason=exc.strerror)
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
