"""Decryption of age files that carry the post-quantum hybrid recipient (mlkem768x25519).

pyrage 1.4 and the age 1.1 command line predate age v1.3's hybrid recipient, so for files with an
`mlkem768x25519` stanza this module does the whole job: it reads the identity (Bech32, HRP
`AGE-SECRET-KEY-PQ-`, a 32-byte seed), decapsulates the MLKEM768-X25519 KEM (X-Wing), opens the
HPKE-sealed file key, checks the header MAC and decrypts the STREAM payload. Everything else stays
with pyrage. The checks follow https://c2sp.org/age and the C2SP/CCTV age vectors.

Failures are one-line TalkbookErrors without key material or plaintext; the payload is returned
whole or not at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from talkbook.crypto import agefile
from talkbook.errors import DecryptionError, IdentityError, NotRecipient
from talkbook.i18n import N_, _

STANZA_TYPE = agefile.HYBRID_TYPE
LABEL = b"age-encryption.org/mlkem768x25519"  # the HPKE info string of this recipient
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
RECIPIENT_HRP = "age1pq"

SEED_SIZE = 32
MLKEM_SEED_SIZE = 64
MLKEM_CIPHERTEXT_SIZE = 1088
X25519_SIZE = 32
ENC_SIZE = MLKEM_CIPHERTEXT_SIZE + X25519_SIZE
FILE_KEY_SIZE = 16
TAG_SIZE = 16
NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
ARMOR_COLUMNS = 64

# X-Wing (draft-connolly-cfrg-xwing-kem), HPKE KEM id 0x647a; HKDF-SHA256 and ChaCha20-Poly1305.
XWING_LABEL = b"\\.//^\\"
HPKE_SUITE = b"HPKE" + bytes.fromhex("647a00010003")

NO_MATCH = N_("cannot decrypt: none of your post-quantum keys is a recipient of this file")

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_ARMOR_LINE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _header_error(reason: str) -> DecryptionError:
    return DecryptionError(
        _("corrupt age file: header is malformed ({reason})").format(reason=reason)
    )


def _payload_error(reason: str) -> DecryptionError:
    return DecryptionError(_("corrupt or truncated age file: {reason}").format(reason=reason))


# --- Bech32 (BIP 173), without its 90-character limit: a hybrid public key is ~1,960 long.


def _polymod(values: Sequence[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = ((check & 0x1FFFFFF) << 5) ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                check ^= generator
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> bytes:
    acc = bits = 0
    out = bytearray()
    mask = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & mask)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & mask)
    elif bits >= from_bits or (acc << (to_bits - bits)) & mask:
        raise ValueError("bech32 padding is not canonical")
    return bytes(out)


def bech32_encode(hrp: str, data: bytes) -> str:
    """Bech32 of `data`; an upper-case HRP gives an upper-case string, as age writes secret keys."""
    lower = hrp.lower()
    values = list(_convert_bits(data, 8, 5, pad=True))
    mod = _polymod(_hrp_expand(lower) + values + [0] * 6) ^ 1
    checksum = [(mod >> (5 * (5 - i))) & 31 for i in range(6)]
    text = lower + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)
    return text.upper() if hrp.isupper() else text


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Split a Bech32 string into its HRP (in the string's case) and data; ValueError if invalid."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("bech32 string has mixed case")
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValueError("bech32 separator is misplaced")
    hrp = text[:pos]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32 prefix has an invalid character")
    values = []
    for char in text[pos + 1 :].lower():
        index = _BECH32_CHARSET.find(char)
        if index < 0:
            raise ValueError("bech32 data has an invalid character")
        values.append(index)
    if _polymod(_hrp_expand(hrp.lower()) + values) != 1:
        raise ValueError("bech32 checksum does not match")
    return hrp, _convert_bits(values[:-6], 5, 8, pad=False)


# --- The KEM and HPKE.


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def _labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _hkdf_extract(salt, b"HPKE-v1" + HPKE_SUITE + label + ikm)


def _labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled = length.to_bytes(2, "big") + b"HPKE-v1" + HPKE_SUITE + label + info
    return _hkdf_expand(prk, labeled, length)


def hpke_key_schedule(shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 base mode: the AEAD key and base nonce agreed from a KEM shared secret."""
    context = (
        b"\x00"
        + _labeled_extract(b"", b"psk_id_hash", b"")
        + _labeled_extract(b"", b"info_hash", info)
    )
    secret = _labeled_extract(shared_secret, b"secret", b"")
    key = _labeled_expand(secret, b"key", context, 32)
    return key, _labeled_expand(secret, b"base_nonce", context, 12)


def hpke_open(shared_secret: bytes, info: bytes, ciphertext: bytes) -> bytes:
    """RFC 9180 single-shot open (empty aad); raises InvalidTag on a wrong key."""
    key, base_nonce = hpke_key_schedule(shared_secret, info)
    # The only message of a single-shot context has sequence number 0: its nonce is base_nonce.
    return ChaCha20Poly1305(key).decrypt(base_nonce, ciphertext, b"")


class HybridIdentity:
    """An MLKEM768-X25519 identity; both private keys are expanded from one 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValueError("a hybrid identity seed is 32 bytes")
        expanded = hashlib.shake_256(seed).digest(MLKEM_SEED_SIZE + X25519_SIZE)
        self._mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:MLKEM_SEED_SIZE])
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(expanded[MLKEM_SEED_SIZE:])
        self._x25519_public = self._x25519.public_key().public_bytes_raw()

    @classmethod
    def from_str(cls, text: str) -> HybridIdentity:
        """Parse `AGE-SECRET-KEY-PQ-1…`; the message of the IdentityError never shows the key."""
        try:
            hrp, seed = bech32_decode(text.strip())
            if hrp != IDENTITY_HRP:
                raise ValueError("not a hybrid secret key")
            return cls(seed)
        except ValueError:
            raise IdentityError(_("not a valid post-quantum age secret key")) from None

    def __repr__(self) -> str:
        return "<HybridIdentity (secret)>"

    @property
    def recipient(self) -> str:
        """The `age1pq1…` public key: the ML-KEM encapsulation key, then the X25519 key."""
        public = self._mlkem.public_key().public_bytes_raw() + self._x25519_public
        return bech32_encode(RECIPIENT_HRP, public)

    def decapsulate(self, enc: bytes) -> bytes:
        """X-Wing decapsulation; ValueError on a wrong length or an all-zero X25519 result."""
        if len(enc) != ENC_SIZE:
            raise ValueError("wrong encapsulated key length")
        ct_mlkem, ct_x25519 = enc[:MLKEM_CIPHERTEXT_SIZE], enc[MLKEM_CIPHERTEXT_SIZE:]
        # ML-KEM rejects implicitly: a foreign ciphertext yields a random secret, not an error.
        ss_mlkem = self._mlkem.decapsulate(ct_mlkem)
        # cryptography refuses a low-order share (all-zero result) with ValueError.
        ss_x25519 = self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x25519))
        material = ss_mlkem + ss_x25519 + ct_x25519 + self._x25519_public + XWING_LABEL
        return hashlib.sha3_256(material).digest()

    def unwrap(self, stanza: agefile.Stanza) -> bytes | None:
        """The file key if this stanza is ours, None if not; DecryptionError if it is malformed."""
        if stanza.type != STANZA_TYPE:
            return None
        if len(stanza.args) != 1:
            raise _header_error(f"{STANZA_TYPE} stanza needs exactly one argument")
        enc = _decode_canonical(stanza.args[0].encode("ascii"), f"{STANZA_TYPE} argument")
        if len(enc) != ENC_SIZE:
            raise _header_error(f"{STANZA_TYPE} encapsulated key has the wrong length")
        # Checked before opening: a longer sealed key must not be accepted and truncated.
        if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
            raise _header_error(f"{STANZA_TYPE} stanza body has the wrong length")
        try:
            shared_secret = self.decapsulate(enc)
        except ValueError:
            raise _header_error(f"{STANZA_TYPE} X25519 share is a low-order point") from None
        try:
            return hpke_open(shared_secret, LABEL, stanza.body)
        except InvalidTag:
            return None


def _decode_canonical(text: bytes, what: str) -> bytes:
    """Unpadded, canonical base64 as the age header requires."""
    try:
        decoded = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _header_error(f"{what} is not unpadded base64") from None
    if base64.b64encode(decoded).rstrip(b"=") != text:
        raise _header_error(f"{what} is not canonical base64")
    return decoded


# --- The age file around the stanza: armor, header MAC, STREAM payload.


def dearmor(data: bytes) -> bytes:
    """Strictly decode an armored file (PEM, 64 columns, canonical padded base64, LF or CRLF)."""
    lines = [line.removesuffix(b"\r") for line in data.strip().split(b"\n")]
    if len(lines) < 2 or lines[0] != agefile.ARMOR_BEGIN or lines[-1] != agefile.ARMOR_END:
        raise DecryptionError(_("corrupt age file: the armor begin or end line is wrong"))
    body = lines[1:-1]
    for number, line in enumerate(body, start=1):
        last = number == len(body)
        if not (0 < len(line) <= ARMOR_COLUMNS and (last or len(line) == ARMOR_COLUMNS)):
            raise DecryptionError(_("corrupt age file: an armor line has the wrong length"))
        if not _ARMOR_LINE.fullmatch(line) or (not last and line.endswith(b"=")):
            raise DecryptionError(_("corrupt age file: the armor is not valid base64"))
    joined = b"".join(body)
    try:
        decoded = base64.b64decode(joined, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(_("corrupt age file: the armor is not valid base64")) from None
    if base64.b64encode(decoded) != joined:
        raise DecryptionError(_("corrupt age file: the armor is not canonical base64"))
    return decoded


def _split_header(binary: bytes) -> tuple[bytes, bytes, bytes]:
    """Header bytes covered by the MAC, the MAC, and the payload of a binary age file."""
    agefile.parse_header(binary)
    # Body lines are base64 and stanza lines start with "-> ": the first "\n---" is the MAC line.
    end = binary.index(b"\n---") + len(b"\n---")
    line_end = binary.index(b"\n", end)
    mac = base64.b64decode(binary[end + 1 : line_end] + b"=")
    return binary[:end], mac, binary[line_end + 1 :]


def _derive(file_key: bytes, salt: bytes, info: bytes) -> bytes:
    return _hkdf_expand(_hkdf_extract(salt, file_key), info, 32)


def _stream_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _decrypt_stream(key: bytes, stream: bytes) -> bytes:
    aead = ChaCha20Poly1305(key)
    chunks: list[bytes] = []
    pos = counter = 0
    while True:
        if pos == len(stream):
            raise _payload_error(_("the file ends too early"))
        chunk = stream[pos : pos + ENC_CHUNK_SIZE]
        pos += len(chunk)
        if len(chunk) < TAG_SIZE:
            raise _payload_error(_("the file ends too early"))
        # A short chunk can only be the last one; a full one is the last if it opens as such.
        candidates = (True,) if len(chunk) < ENC_CHUNK_SIZE else (False, True)
        for last in candidates:
            try:
                plaintext = aead.decrypt(_stream_nonce(counter, last), chunk, None)
                break
            except InvalidTag:
                continue
        else:
            raise _payload_error(_("the payload failed authentication"))
        if last:
            if pos != len(stream):
                raise _payload_error(_("there is data after the end of the payload"))
            if not plaintext and counter:
                raise _payload_error(_("the last payload chunk is empty"))
            chunks.append(plaintext)
            return b"".join(chunks)
        chunks.append(plaintext)
        counter += 1


def open_with_file_key(binary: bytes, file_key: bytes) -> bytes:
    """Check the header MAC of a binary age file and decrypt its payload with a known file key."""
    header, mac, payload = _split_header(binary)
    expected = hmac.new(_derive(file_key, b"", b"header"), header, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise _payload_error(_("the header MAC does not match"))
    if len(payload) < NONCE_SIZE:
        raise _payload_error(_("the file ends too early"))
    nonce = payload[:NONCE_SIZE]
    return _decrypt_stream(_derive(file_key, nonce, b"payload"), payload[NONCE_SIZE:])


def decrypt(data: bytes, identities: Sequence[HybridIdentity]) -> bytes:
    """Decrypt a binary or armored age file with hybrid identities; NotRecipient if none fits."""
    binary = dearmor(data) if data.strip().startswith(agefile.ARMOR_BEGIN) else data
    header = agefile.parse_header(binary)
    file_key = None
    for stanza in header.stanzas:
        for identity in identities:
            file_key = identity.unwrap(stanza)
            if file_key is not None:
                break
        if file_key is not None:
            break
    if file_key is None:
        raise NotRecipient(_(NO_MATCH))
    return open_with_file_key(binary, file_key)
