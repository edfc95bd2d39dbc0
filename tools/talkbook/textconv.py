"""git's diff driver for *.age files: the decrypted text for a key holder, one placeholder line
for anyone else. `git log -p` starts it once per file version, so it starts light.

`talkbook setup` writes a small executable script per clone, .git/talkbook/textconv
(`install_driver`), and points diff.talkbook.textconv at it: a `#!PYTHON -IS` line (no site, no
environment tweaks), the folders of talkbook and pyrage (-S does not find them), then `run()`
here. A command without spaces or quotes is exec'd by git directly, with no shell between; where
the interpreter's path cannot stand in a `#!` line, the command is `python -I -S -c '…'` as
before (`driver_command`), which git runs through the shell. At start this module imports only
sys and posix (both built into the interpreter); pyrage when a file is decrypted; binascii,
talkbook.agentwire and talkbook.crypto only on the rarer paths below; no click, yaml, jinja2,
GitPython, jsonschema. `run` leaves through posix._exit once stdout is flushed: the
interpreter's teardown would cost more than the decryption. An unprotected OpenSSH key or an
age X25519 identity file is read here; a passphrase-protected key is used through the talkbook
agent (talkbook.agentwire; never asked for: git runs this under a pager); any other identity
file goes the full way (talkbook.crypto). The identity is found as crypto.identity.identity_path
finds it: --identity FILE, else TALKBOOK_IDENTITY, else $XDG_CONFIG_HOME/talkbook/identity.txt.

Security invariant: plaintext goes to stdout only, for git to show (`cachetextconv` is never set,
so it never lands in .git); a run writes nothing anywhere; a file this identity cannot read, and
anything that goes wrong, is one placeholder line and exit 0, so `git log -p` never stops
halfway and never prints a traceback or a key. The driver script lives under .git, which no
push carries, and names only this interpreter and these folders.
"""

# No `from __future__` and no `os`: each costs the start-up of every run (posix and sys are
# built in; annotations like `str | None` need no future import on Python 3.11).
import posix
import sys

SSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
SSH_END = b"-----END OPENSSH PRIVATE KEY-----"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
OPENSSH_MAGIC = b"openssh-key-v1\0"
# The base64 of OPENSSH_MAGIC, the cipher name "none" (length-prefixed) and the next byte: an
# unprotected key starts so, and telling that needs no base64 decoder (binascii is a shared
# library to load, for the rarer protected key only).
CLEAR_KEY_PREFIX = b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUA"
MAX_KEY_FILE = 1 << 20
S_IFMT, S_IFREG = 0o170000, 0o100000  # stat's constants, without importing stat
DRIVER_NAME = "textconv"  # .git/talkbook/textconv
MAX_SHEBANG = 127  # older kernels read 128 bytes of a `#!` line


class Locked(Exception):
    """The key is passphrase-protected and no agent holds it."""


def _env(name: str) -> str | None:
    """os.environ[name], without importing os in the driver: there posix.environ (bytes, the
    environment at start) is decoded as os.environ does. Where os is loaded (the CLI, tests),
    its os.environ, which may have changed since the start, is the answer."""
    if (os_module := sys.modules.get("os")) is not None:
        return os_module.environ.get(name)
    value = posix.environ.get(name.encode())
    if value is None:
        return None
    return value.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def _join(folder: str, name: str) -> str:
    """os.path.join for a relative `name`."""
    return name if not folder else folder + name if folder.endswith("/") else f"{folder}/{name}"


def _home() -> str:
    """os.path.expanduser("~"): HOME, else the password database's entry."""
    home = _env("HOME")
    if home is None:
        try:
            import pwd

            home = pwd.getpwuid(posix.getuid()).pw_dir
        except (ImportError, KeyError):
            return "~"
    return home.rstrip("/") or "/"


def identity_file(explicit: str | None = None) -> str:
    """Where the identity is: the same answer as crypto.identity.identity_path, except that a
    relative path from the environment is refused (ValueError): git runs this driver in the
    workspace's top folder, where anyone who can push could place an `identity.txt` of their
    own and have their forged history shown. A relative XDG_CONFIG_HOME is ignored, as the XDG
    spec says."""
    if explicit:  # given on a command line by whoever typed it, in their own folder
        return explicit
    found = _env("TALKBOOK_IDENTITY")
    if not found:
        base = _env("XDG_CONFIG_HOME") or ""
        if not base.startswith("/"):
            base = _join(_home(), ".config")
        found = _join(base, "talkbook/identity.txt")
    if not found.startswith("/"):
        raise ValueError("a relative identity path")
    return found


def _read_regular(path: str, limit: int | None = None, follow: bool = False) -> bytes:
    """A regular file's bytes; a FIFO or device is refused (OSError), and a symlink too unless
    `follow` (the identity may be a link to ~/.ssh/…, as the CLI allows)."""
    flags = posix.O_RDONLY | posix.O_NONBLOCK | (0 if follow else posix.O_NOFOLLOW)
    fd = posix.open(path, flags)
    with open(fd, "rb") as handle:  # closes fd
        if posix.fstat(fd).st_mode & S_IFMT != S_IFREG:
            raise OSError(f"{path}: not a regular file")
        return handle.read() if limit is None else handle.read(limit)


def _string(blob: bytes, pos: int) -> tuple[bytes, int]:
    end = pos + 4 + int.from_bytes(blob[pos : pos + 4], "big")
    if pos + 4 > len(blob) or end > len(blob):
        raise ValueError("truncated")
    return blob[pos + 4 : end], end


def _ssh_body(key: bytes) -> bytes:
    """The base64 text of an OpenSSH private key file, whitespace removed."""
    inner = key.split(SSH_BEGIN, 1)[1].split(SSH_END, 1)[0]
    return b"".join(inner.split())


def openssh_public(key: bytes) -> tuple[str, bool]:
    """(public key "ssh-ed25519 AAAA…", passphrase-protected?) of an OpenSSH private key file:
    both are stored in the clear in its container."""
    import binascii

    blob = binascii.a2b_base64(_ssh_body(key))
    if not blob.startswith(OPENSSH_MAGIC):
        raise ValueError("not an openssh-key-v1 container")
    cipher, pos = _string(blob, len(OPENSSH_MAGIC))
    _kdf, pos = _string(blob, pos)
    _options, pos = _string(blob, pos)
    public_blob, _ = _string(blob, pos + 4)  # after the number of keys
    key_type, _ = _string(public_blob, 0)
    encoded = binascii.b2a_base64(public_blob, newline=False).decode("ascii")
    return f"{key_type.decode('ascii')} {encoded}", cipher != b"none"


def unprotected_ssh(key: bytes) -> bool:
    """Whether an OpenSSH private key file says cipher "none" (the same answer as
    openssh_public's second, for a well-formed key), read from its base64 as it stands."""
    return _ssh_body(key).startswith(CLEAR_KEY_PREFIX)


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
        if not unprotected_ssh(key):
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


def run() -> None:
    """The driver script's entry: `main`, then out at once. Everything is flushed by then, and
    posix._exit skips the interpreter's teardown (a few ms: garbage collection, freeing every
    module), which nothing here needs."""
    try:
        code = main()
        sys.stderr.flush()
    except OSError:  # git closed the pipe: nothing more to say, and no traceback
        code = 0
    posix._exit(code)


# -- the command git runs (`talkbook setup`; never on the driver's own path) -------------------
def _folders() -> list[str]:
    """Where talkbook and pyrage are imported from: -S does not find them by itself."""
    import os

    import pyrage

    folders: list[str] = []
    for module_file in (__file__, pyrage.__file__):
        folder = os.path.dirname(os.path.dirname(os.path.abspath(module_file)))
        if folder not in folders:
            folders.append(folder)
    return folders


def driver_argv() -> list[str]:
    """The command without a script (FILE appended): this module through `python -I -S -c`.

    `-c` rather than this file's path: a script is compiled at every start, a module comes
    from its cached bytecode. Move the venv and rerun setup.
    """
    stub = f"import sys;sys.path[:0]={_folders()!r};from talkbook.textconv import run;run()"
    return [sys.executable, "-I", "-S", "-c", stub]


def driver_command() -> str:
    """diff.talkbook.textconv without a script (git runs it through the shell)."""
    import shlex

    return " ".join(shlex.quote(part) for part in driver_argv())


def _shebang(python: str) -> bytes | None:
    """`#!PYTHON -IS` (the kernel passes "-IS" as one argument, and Python reads it as -I -S),
    or None where the kernel would split the line (whitespace) or cut it (too long)."""
    if not python.startswith("/") or any(c.isspace() for c in python):
        return None
    try:
        line = f"#!{python} -IS\n".encode()  # a path not in UTF-8 (surrogates) raises
    except UnicodeEncodeError:
        return None
    return line if len(line) <= MAX_SHEBANG else None


def driver_script() -> bytes | None:
    """The driver script's text; None where this interpreter cannot be named in a `#!` line."""
    shebang = _shebang(sys.executable)
    if shebang is None:
        return None
    body = (
        "# talkbook's diff driver for *.age files (talkbook/textconv.py), by `talkbook setup`\n"
        "import sys\n"
        f"sys.path[:0] = {_folders()!r}\n"
        "from talkbook.textconv import run\n"
        "run()\n"
    )
    return shebang + body.encode("utf-8")


GIT_SHELL_METACHARACTERS = "|&;<>()$`\\\"' \t\n*?[#~=%"


def install_driver(git_dir: str) -> str:
    """Write the driver script to GIT_DIR/talkbook/textconv (owner-only, replaced atomically)
    and return diff.talkbook.textconv for it: its absolute path, quoted only if it holds a
    character git would hand to the shell. Without a script, the `python -I -S -c` command."""
    import shlex
    from pathlib import Path

    from talkbook.fsutil import atomic_write
    from talkbook.lock import state_dir

    text = driver_script()
    if text is None:
        return driver_command()
    script = state_dir(Path(git_dir).absolute()) / DRIVER_NAME
    atomic_write(script, text, mode=0o700)
    path = str(script)
    # git execs a command holding none of its shell metacharacters (run-command.c) without a
    # shell; a CJK folder name is no reason to pay for one, so quote only when git would not
    return shlex.quote(path) if any(c in GIT_SHELL_METACHARACTERS for c in path) else path
