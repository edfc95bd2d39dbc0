"""The age conformance vectors (C2SP/CCTV) fed through the decryption path `talkbook cat` uses."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
import pytest

from talkbook import crypto
from talkbook.crypto import agefile
from talkbook.errors import DecryptionError, IdentityError, NotRecipient, TalkbookError

CCTV = Path(__file__).parent / "data" / "age-cctv"

VECTORS = sorted(p.name for p in CCTV.iterdir() if p.name != "SOURCE.md")

# The post-quantum hybrid recipient (mlkem768x25519) is decrypted by crypto.agepq, not pyrage.
HYBRID = [name for name in VECTORS if "hybrid" in name]


@dataclass
class Vector:
    expect: str
    body: bytes
    identities: list[str] = field(default_factory=list)
    passphrase: str | None = None
    payload: str | None = None


def load(name: str) -> Vector:
    raw = (CCTV / name).read_bytes()
    head, body = raw.split(b"\n\n", 1)
    meta: dict[str, str] = {}
    identities: list[str] = []
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        if key == "identity":
            identities.append(value)
        else:
            meta[key] = value
    if meta.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return Vector(
        expect=meta["expect"],
        body=body,
        identities=identities,
        passphrase=meta.get("passphrase"),
        payload=meta.get("payload"),
    )


def keyring_for(vector: Vector) -> crypto.Keyring:
    if vector.passphrase is not None:
        return crypto.Keyring.with_passphrase(vector.passphrase)
    if not vector.identities:
        # The empty-file vectors name no identity; any key will do to reach decrypt().
        return crypto.Keyring.from_secret_lines(str(pyrage.x25519.Identity.generate()))
    return crypto.Keyring.from_secret_lines("\n".join(vector.identities))


def test_vectors_present() -> None:
    assert CCTV.is_dir(), f"age test vectors not found at {CCTV}"
    assert len(VECTORS) > 100
    assert len(HYBRID) >= 19
    assert {"armor_hybrid", "hybrid", "hybrid_and_x25519", "hybrid_multiple_recipients"} <= set(
        HYBRID
    )


@pytest.mark.parametrize("name", VECTORS)
def test_vector(name: str) -> None:
    vector = load(name)
    if vector.expect == "success":
        plaintext = crypto.decrypt(vector.body, keyring_for(vector))
        assert hashlib.sha256(plaintext).hexdigest() == vector.payload
        return
    with pytest.raises(TalkbookError) as info:
        crypto.decrypt(vector.body, keyring_for(vector))
    error = info.value
    assert isinstance(error, DecryptionError | IdentityError)
    message = str(error)
    assert message and "\n" not in message and "\r" not in message
    if vector.expect == "no match":
        # A "Scrypt" stanza (wrong case) is not a passphrase stanza: then no key matches.
        is_scrypt = agefile.parse_header(agefile.normalize(vector.body)).is_passphrase
        expected = crypto.WRONG_PASSPHRASE if is_scrypt else crypto.NO_MATCH
        assert message == expected
    else:
        # A damaged file must not pass for one that is merely not addressed to this key.
        assert not isinstance(error, NotRecipient)
