"""Strict reading of the age header, without any cryptography.

rage accepts a few malformed headers that the age specification rejects, and the tool needs the
header anyway to choose between identity and passphrase decryption and to count recipients. The
grammar checked here is the one of https://age-encryption.org/v1 (section "Header").
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

from talkbook.errors import DecryptionError
from talkbook.i18n import _

ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
VERSION_LINE = b"age-encryption.org/v1"
VERSION_PREFIX = b"age-encryption.org/"

PASSPHRASE_TYPE = "scrypt"
HYBRID_TYPE = "mlkem768x25519"  # post-quantum: read by agepq, not pyrage
RECIPIENT_TYPES = frozenset({"X25519", "ssh-ed25519", "ssh-rsa", HYBRID_TYPE})

# age refuses scrypt work factors above 22: anything higher is a denial of service, not a file.
MAX_SCRYPT_WORK_FACTOR = 22
BODY_COLUMNS = 64
MAC_COLUMNS = 43

_ARG = re.compile(rb"[\x21-\x7e]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")

# The usual header, matched in C: the grammar below, nothing looser (`parse_header` reads the
# rest, and words every refusal). Base64 is canonical and unpadded as `_decode_b64` checks it: a
# last group of 2 (3) characters leaves 4 (2) bits unused, which must be zero, so its last
# character is one of those whose low bits are zero (_CANONICAL_LAST, by the group's length).
_B64 = rb"[A-Za-z0-9+/]"
_LAST_OF_2, _LAST_OF_3 = b"AQgw", b"AEIMQUYcgkosw048"
_CANONICAL_LAST = {2: _LAST_OF_2, 3: _LAST_OF_3}
_USUAL_START = VERSION_LINE + b"\n"
# A stanza: `-> ` and its arguments, its full body lines, then its short last line (may be empty;
# its length and last character are checked in Python: a regex of groups of four costs more).
_USUAL_STANZA = re.compile(
    rb"-> ([\x21-\x7e]+(?: [\x21-\x7e]+)*)\n((?:" + _B64 + rb"{64}\n)*)(" + _B64 + rb"{0,63})\n"
)
_USUAL_MAC = re.compile(rb"--- " + _B64 + rb"{42}[" + _LAST_OF_3 + rb"]\n")  # 32 bytes: 43 chars


# NamedTuples, not frozen dataclasses: every command defines them at import, and a NamedTuple is
# built in a fifth of the time.
class Stanza(NamedTuple):
    type: str
    args: tuple[str, ...]
    body: bytes


class Header(NamedTuple):
    stanzas: tuple[Stanza, ...]

    @property
    def recipient_stanzas(self) -> tuple[Stanza, ...]:
        # rage writes a random "grease" stanza into every file; it is not a recipient.
        return tuple(s for s in self.stanzas if s.type in RECIPIENT_TYPES)

    @property
    def is_passphrase(self) -> bool:
        return any(s.type == PASSPHRASE_TYPE for s in self.stanzas)

    @property
    def is_hybrid(self) -> bool:
        """Has a post-quantum (ML-KEM-768 + X25519) stanza: pyrage cannot read it, agepq can."""
        return any(s.type == HYBRID_TYPE for s in self.stanzas)


def normalize(data: bytes) -> bytes:
    """Strip whitespace around an armored file (the spec allows it, rage does not)."""
    if data.startswith(VERSION_PREFIX):
        return data  # binary, as nearly every file is: nothing to strip, no copy made
    stripped = data.strip()
    if stripped.startswith(ARMOR_BEGIN):
        return stripped
    return data


def _malformed(reason: str) -> DecryptionError:
    return DecryptionError(
        _("corrupt age file: header is malformed ({reason})").format(reason=reason)
    )


def _dearmor(data: bytes) -> bytes:
    """Decode the armor just enough to read the header; rage enforces the strict armor rules."""
    lines = data.strip().split(b"\n")
    body = [line.strip() for line in lines[1:] if line.strip() != ARMOR_END]
    try:
        return base64.b64decode(b"".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(_("corrupt age file: the armor is malformed")) from None


def _decode_b64(line: bytes, what: str) -> bytes:
    """Decode canonical unpadded base64, as the header requires."""
    if not _BASE64.fullmatch(line) or len(line) % 4 == 1:
        raise _malformed(_("{what} is not unpadded base64").format(what=what))
    decoded = base64.b64decode(line + b"=" * (-len(line) % 4))
    if base64.b64encode(decoded).rstrip(b"=") != line:
        raise _malformed(_("{what} is not canonical base64").format(what=what))
    return decoded


def _check_scrypt(args: tuple[str, ...]) -> None:
    if len(args) != 2:
        raise _malformed(_("scrypt stanza needs a salt and a work factor"))
    factor = args[1]
    if not _WORK_FACTOR.fullmatch(factor):
        raise _malformed(_("scrypt work factor is not a plain decimal number"))
    if len(factor) > 2 or int(factor) > MAX_SCRYPT_WORK_FACTOR:
        raise _malformed(
            _("scrypt work factor is above {limit}").format(limit=MAX_SCRYPT_WORK_FACTOR)
        )


def _next_line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise _malformed(_("header ends before the MAC line"))
    return data[pos:end], end + 1


def _parse_stanza(first: bytes, data: bytes, pos: int, index: int) -> tuple[Stanza, int]:
    fields = first[3:].split(b" ")
    if not all(_ARG.fullmatch(field) for field in fields):
        raise _malformed(_("stanza {index} has an empty or invalid argument").format(index=index))
    body = bytearray()
    while True:
        if data.startswith(b"-", pos):
            # Another stanza or the MAC line arrived before the short line ending this body.
            raise _malformed(
                _("stanza {index} does not end with a short body line").format(index=index)
            )
        line, pos = _next_line(data, pos)
        if len(line) > BODY_COLUMNS:
            raise _malformed(
                _("stanza {index} has a body line longer than {columns} columns").format(
                    index=index, columns=BODY_COLUMNS
                )
            )
        body += _decode_b64(line, f"stanza {index} body")
        if len(line) < BODY_COLUMNS:
            break
    names = tuple(field.decode("ascii") for field in fields)
    stanza = Stanza(type=names[0], args=names[1:], body=bytes(body))
    if stanza.type == PASSPHRASE_TYPE:
        _check_scrypt(stanza.args)
    return stanza, pos


def _usual_header(data: bytes) -> Header | None:
    """The header of a binary file of the usual shape (what rage writes: no scrypt stanza),
    read with a regex per line group; None for anything else, which `parse_header` reads line by
    line. Only a header that reading accepts matches, and it is read to the same value."""
    stanzas: list[Stanza] = []
    pos = len(_USUAL_START)
    while stanza := _USUAL_STANZA.match(data, pos):
        names = stanza[1].decode("ascii").split(" ")
        if names[0] == PASSPHRASE_TYPE:
            return None  # its work factor is checked line by line
        last = stanza[3]
        tail = len(last) % 4
        if tail and (tail == 1 or last[-1] not in _CANONICAL_LAST[tail]):
            return None  # not canonical base64
        body = binascii.a2b_base64(stanza[2] + last + b"=" * (4 - tail if tail else 0))
        stanzas.append(Stanza(names[0], tuple(names[1:]), body))  # (by keyword costs more)
        pos = stanza.end()
    if not _USUAL_MAC.match(data, pos):
        return None
    return Header(stanzas=tuple(stanzas))


def parse_header(data: bytes) -> Header:
    """Parse and strictly check the header of a binary or armored age file."""
    if data.startswith(_USUAL_START) and (header := _usual_header(data)) is not None:
        return header  # nearly every file: the line-by-line reading below would accept it
    if data.strip().startswith(ARMOR_BEGIN):
        data = _dearmor(data)
    if not data.startswith(VERSION_PREFIX):
        raise DecryptionError(_("not an age-encrypted file"))
    first, pos = _next_line(data, 0)
    if first != VERSION_LINE:
        raise _malformed(_("unsupported version line"))
    stanzas: list[Stanza] = []
    while True:
        line, after = _next_line(data, pos)
        if line.startswith(b"---"):
            if line[3:4] != b" " or len(line) != 4 + MAC_COLUMNS:
                raise _malformed(_("the MAC line is malformed"))
            _decode_b64(line[4:], "MAC")
            return Header(stanzas=tuple(stanzas))
        if not line.startswith(b"-> "):
            raise _malformed(_("a header line is neither a stanza nor the MAC"))
        stanza, pos = _parse_stanza(line, data, after, len(stanzas) + 1)
        stanzas.append(stanza)
