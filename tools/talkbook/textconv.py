"""git's diff driver for *.age files: the decrypted text for a key holder, one placeholder line
for anyone else. `git log -p` starts it once per file version, so it starts light.

`talkbook setup` writes `driver_command()` into diff.talkbook.textconv: this module run by the
workspace's interpreter as `python -I -S -c '…from talkbook.textconv import main…' FILE` (no
site, no environment tweaks), importing only os, sys, binascii and pyrage: no click, yaml,
jinja2, GitPython, jsonschema, nor talkbook.crypto. An unprotected OpenSSH key or an age X25519
identity file is read here; a passphrase-protected key is used through the talkbook agent
(talkbook.agentwire; never asked for: git runs this under a pager); any other identity file
goes the full way (talkbook.crypto). The identity is found as crypto.identity.identity_path
finds it: --identity FILE, else TALKBOOK_IDENTITY, else $XDG_CONFIG_HOME/talkbook/identity.txt.

Security invariant: plaintext goes to stdout only, for git to show (`cachetextconv` is never set,
so it never lands in .git); nothing is written anywhere; a file this identity cannot read, and
anything that goes wrong, is one placeholder line and exit 0, so `git log -p` never stops
halfway and never prints a traceback or a key.
"""

from __future__ import annotations

import os
import sys

SSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
SSH_END = b"-----END OPENSSH PRIVATE KEY-----"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
OPENSSH_MAGIC = b"openssh-key-v1\0"
MAX_KEY_FILE = 1 << 20


class Locked(Exception):
    """The key is passphrase-protected and no agent holds it."""


def identity_file(explicit: str | None = None) -> str:
    """Where the identity is: the same answer as crypto.identity.identity_path."""
    if explicit:
        return explicit
    if env := os.environ.get("TALKBOOK_IDENTITY"):
        return env
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "talkbook", "identity.txt")


def driver_argv() -> list[str]:
    """The command git runs per file version (FILE appended): what the bench times.

    `-c` rather than this file's path: a script is compiled at every start, a module comes
    from its cached bytecode. The folders of talkbook and pyrage are written in, since -S
    (no site, a third of the start-up) does not find them; move the venv and rerun setup.
    """
    import json

    import pyrage

    folders: list[str] = []
    for module_file in (__file__, pyrage.__file__):
        folder = os.path.dirname(os.path.dirname(os.path.abspath(module_file)))
        if folder not in folders:
            folders.append(folder)
    listed = json.dumps(folders)  # a JSON list of strings is a Python list literal too
    stub = f"import sys;sys.path[:0]={listed};from talkbook.textconv import main;sys.exit(main())"
    return [sys.executable, "-I", "-S", "-c", stub]


def driver_command() -> str:
    """diff.talkbook.textconv as `talkbook setup` writes it (git runs it through the shell)."""
    import shlex

    return " ".join(shlex.quote(part) for part in driver_argv())


def _read_regular(path: str, limit: int | None = None, follow: bool = False) -> bytes:
    """A regular file's bytes; a FIFO or device is refused (OSError), and a symlink too unless
    `follow` (the identity may be a link to ~/.ssh/…, as the CLI allows)."""
    import stat

    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return handle.read() if limit is None else handle.read(limit)


def _string(blob: bytes, pos: int) -> tuple[bytes, int]:
    end = pos + 4 + int.from_bytes(blob[pos : pos + 4], "big")
    if pos + 4 > len(blob) or end > len(blob):
        raise ValueError("truncated")
    return blob[pos + 4 : end], end


def openssh_public(key: bytes) -> tuple[str, bool]:
    """(public key "ssh-ed25519 AAAA…", passphrase-protected?) of an OpenSSH private key file:
    both are stored in the clear in its container."""
    import binascii

    inner = key.split(SSH_BEGIN, 1)[1].split(SSH_END, 1)[0]
    blob = binascii.a2b_base64(b"".join(inner.split()))
    if not blob.startswith(OPENSSH_MAGIC):
        raise ValueError("not an openssh-key-v1 container")
    cipher, pos = _string(blob, len(OPENSSH_MAGIC))
    _kdf, pos = _string(blob, pos)
    _options, pos = _string(blob, pos)
    public_blob, _ = _string(blob, pos + 4)  # after the number of keys
    key_type, _ = _string(public_blob, 0)
    encoded = binascii.b2a_base64(public_blob, newline=False).decode("ascii")
    return f"{key_type.decode('ascii')} {encoded}", cipher != b"none"


def _x25519_lines(key: bytes) -> list[str] | None:
    """The secret keys of a plain age identity file; None if it holds anything else."""
    try:
        lines = [line.strip() for line in key.decode("ascii").splitlines()]
    except UnicodeDecodeError:
        return None
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys or not all(k.upper().startswith("AGE-SECRET-KEY-1") for k in keys):
        return None  # post-quantum keys and age-encrypted identity files go the full way
    return keys


def _through_agent(data: bytes, public: str) -> bytes:
    from talkbook import agentwire

    if not agentwire.enabled():
        raise Locked
    try:
        sock = agentwire.connect()
        if sock is None:
            raise Locked
        try:
            key = " ".join(public.split()[:2])
            header, plaintext = agentwire.request(sock, {"op": "decrypt", "key": key}, data)
        finally:
            sock.close()
    except agentwire.WireError:
        raise Locked from None
    if header.get("ok") is True:
        return plaintext
    if header.get("error") == "other-key":
        raise Locked
    raise ValueError("not readable")


def _full_way(data: bytes, keyfile: str) -> bytes:
    from pathlib import Path

    from talkbook.crypto import decrypt
    from talkbook.crypto.identity import load_keyring

    return decrypt(data, load_keyring(Path(keyfile), None))


def decrypt_with(data: bytes, keyfile: str) -> bytes:
    """The plaintext of an age file for the identity in `keyfile`; raises on anything else."""
    key = _read_regular(keyfile, MAX_KEY_FILE, follow=True)
    if SSH_BEGIN in key:
        public, protected = openssh_public(key)
        if protected:
            return _through_agent(data, public)
        import pyrage

        identities = [pyrage.ssh.Identity.from_buffer(key)]
    elif (lines := _x25519_lines(key)) is not None:
        import pyrage

        identities = [pyrage.x25519.Identity.from_str(line) for line in lines]
    else:
        return _full_way(data, keyfile)
    stripped = data.strip()
    return pyrage.decrypt(stripped if stripped.startswith(ARMOR_BEGIN) else data, identities)


def placeholder(locked: bool = False) -> bytes:
    """One line in the reader's language (only now is i18n imported: the rare path)."""
    import contextlib

    from talkbook import i18n
    from talkbook.i18n import _

    # git runs the driver at the top of the work tree: the workspace's locale is there
    with contextlib.suppress(Exception):  # else English
        i18n.use(i18n.choose())
    if locked:
        text = _("[talkbook: encrypted; your key is locked: run `talkbook unlock`]")
    else:
        text = _("[talkbook: encrypted; not readable with your identity]")
    return (text + "\n").encode("utf-8")


def convert(path: str, explicit_identity: str | None = None) -> bytes:
    """What git shows for one file version: its plaintext, or one placeholder line."""
    try:
        return decrypt_with(_read_regular(path), identity_file(explicit_identity))
    except Locked:
        return placeholder(locked=True)
    except Exception:  # not a recipient, damaged, no identity: git shows the placeholder
        return placeholder()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    explicit = None
    if len(args) == 3 and args[0] in ("-i", "--identity"):
        explicit, args = args[1], args[2:]
    if len(args) != 1:
        sys.stderr.write("usage: textconv.py [--identity FILE] FILE\n")
        return 2
    out = sys.stdout.buffer
    out.write(convert(args[0], explicit))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
