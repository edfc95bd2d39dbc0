"""The talkbook agent's wire: where its socket lives, and one request over it.

Light on purpose (os, stat, struct and the C socket module; json only when a header is not
the plain kind; nothing of talkbook.crypto): the textconv driver imports it once per file
version, and the agent itself (crypto/agent.py) speaks through it. The plain headers (string
values without quotes or backslashes, and the agent's {"ok": true}) are written and recognized
without the json module, whose import (it loads `re`) would double the driver's start-up.

Protocol: a message is two frames, each a 4-byte big-endian length and that many bytes: a JSON
object (the header), then a body of raw bytes (often empty). The client sends a request, the
agent answers with one message; a connection may carry many. Requests name an `op` and the
public key (`key`, "ssh-ed25519 AAAA…") the client expects the agent to hold:

    hello     → {"ok": true, "key": public line, "path": key file}
    decrypt   body: an age file → {"ok": true}, body: its plaintext
    derive    body: a label → {"ok": true}, body: HMAC-SHA256(label, the opened key)
    signing   → {"ok": true, "socket": SSH_AUTH_SOCK of an ssh-agent holding the key}
    stop      → {"ok": true}; the agent forgets the key and exits

A refusal is {"ok": false, "error": code, "message": one line}; codes: "other-key" (the agent
holds another key), "not-recipient", "undecryptable", "no-signing", "bad-request".

Security invariant: the socket lives in a folder that is the user's own and 0700 (else it is not
used), the socket itself is 0600, and both ends check the peer's uid (SO_PEERCRED): a client
talks only to an agent of its own uid, the agent answers only clients of its uid. Frames are
bounded (MAX_FRAME), so a peer cannot make the other end allocate without limit.
"""

from __future__ import annotations

import _socket
import os
import stat
import struct

ENABLE_ENV = "TALKBOOK_AGENT"  # "0": never ask nor start an agent (scripts, tests)
SOCKET_NAME = "agent.sock"
MAX_FRAME = 256 * 1024 * 1024  # a workspace file is kilobytes; this only bounds a hostile peer
_LENGTH = struct.Struct(">I")
_UCRED = struct.Struct("3i")  # pid, uid, gid
# _socket.socket: the C type, which socket.socket extends; the socket module loads enum too.
_OK = b'{"ok": true}'  # json.dumps({"ok": True}): the agent's usual answer


class WireError(Exception):
    """The peer closed, sent a malformed frame, or is not of this uid."""


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "1").strip() != "0"


def folder() -> str:
    """$XDG_RUNTIME_DIR/talkbook (a per-user tmpfs), else /tmp/talkbook-UID."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and os.path.isdir(runtime):
        path = os.path.join(runtime, "talkbook")
        if len(path) + len(SOCKET_NAME) < 100:  # sun_path holds 108 bytes
            return path
    return f"/tmp/talkbook-{os.getuid()}"


def socket_path() -> str:
    return os.path.join(folder(), SOCKET_NAME)


def private_folder(create: bool = False) -> str | None:
    """The agent's folder if it exists and is safe (a real folder, ours, 0700); None if it
    does not exist. Raises WireError for a folder someone else could reach or planted."""
    path = folder()
    if create:
        try:  # noqa: SIM105 (contextlib costs the driver's start-up)
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise WireError(f"{path} is not a private folder of this user")
    return path


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process at the other end of a connected unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED.size)
    return _UCRED.unpack(creds)[1]


def same_user(sock: _socket.socket) -> bool:
    try:
        return peer_uid(sock) == os.getuid()
    except (OSError, AttributeError):  # no SO_PEERCRED (not Linux): nobody is trusted
        return False


def pack(header: dict, body: bytes = b"") -> bytes:
    """One message as bytes: the header frame, then the body frame."""
    head = _encode(header)
    return _LENGTH.pack(len(head)) + head + _LENGTH.pack(len(body)) + body


def unpack(data: bytes) -> tuple[dict, bytes]:
    """The one message `data` holds (as `pack` wrote it); WireError otherwise."""
    frames = []
    for _ in range(2):
        if len(data) < _LENGTH.size:
            raise WireError("the message ends too early")
        (size,) = _LENGTH.unpack(data[: _LENGTH.size])
        frames.append(data[_LENGTH.size : _LENGTH.size + size])
        data = data[_LENGTH.size + size :]
        if len(frames[-1]) != size:
            raise WireError("the message ends too early")
    return _header(frames[0]), frames[1]


def _plain(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isprintable()
        and ('"' not in value and "\\" not in value)
    )


def _encode(header: dict) -> bytes:
    """JSON of the header; by hand for plain strings (the same bytes json.dumps would give)."""
    if all(_plain(key) and _plain(value) for key, value in header.items()):
        fields = ", ".join(f'"{key}": "{value}"' for key, value in header.items())
        return ("{" + fields + "}").encode("ascii")
    import json

    return json.dumps(header, ensure_ascii=True).encode("ascii")


def _header(frame: bytes) -> dict:
    if frame == _OK:
        return {"ok": True}
    import json

    try:
        header = json.loads(frame)
    except (UnicodeDecodeError, ValueError):
        raise WireError("the header is not JSON") from None
    if not isinstance(header, dict):
        raise WireError("the header is not a JSON object")
    return header


def send(sock: _socket.socket, header: dict, body: bytes = b"") -> None:
    sock.sendall(pack(header, body))


def _exactly(sock: _socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:], size - got)
        if count == 0:
            raise WireError("the peer closed the connection")
        got += count
    return bytes(buffer)


def _frame(sock: _socket.socket) -> bytes:
    (size,) = _LENGTH.unpack(_exactly(sock, _LENGTH.size))
    if size > MAX_FRAME:
        raise WireError("frame too large")
    return _exactly(sock, size)


def receive(sock: _socket.socket) -> tuple[dict, bytes]:
    """One message: (header, body). WireError for anything malformed."""
    header = _header(_frame(sock))
    return header, _frame(sock)


def remove_stale(path: str) -> None:
    """A socket nobody answers on (the agent was killed): ours, so remove it."""
    try:
        info = os.lstat(path)
        if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid():
            os.unlink(path)
    except OSError:
        pass


def connect(timeout: float = 30.0) -> _socket.socket | None:
    """A connection to this user's running agent; None if there is none (a stale socket is
    removed on the way). Raises WireError if the folder is unsafe."""
    if private_folder() is None:
        return None
    path = socket_path()
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        remove_stale(path)
        return None
    except OSError:
        sock.close()
        return None
    if not same_user(sock):
        sock.close()
        raise WireError(f"{path} is served by another user")
    return sock


def request(sock: _socket.socket, header: dict, body: bytes = b"") -> tuple[dict, bytes]:
    try:
        send(sock, header, body)
        return receive(sock)
    except OSError as exc:
        raise WireError(
            f"the agent did not answer ({exc.strerror or type(exc).__name__})"
        ) from None
