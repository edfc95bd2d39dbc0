"""The post-quantum hybrid (mlkem768x25519) decryption in talkbook.crypto.agepq, piece by piece."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import zlib
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from talkbook import crypto
from talkbook.crypto import agefile, agepq
from talkbook.errors import DecryptionError, IdentityError, NotRecipient, TalkbookError

CCTV = Path(__file__).parent / "data" / "age-cctv"

# A key pair from the age repository (cmd/age/testdata/hybrid.txt), written by age-keygen -pq.
AGE_SECRET = "AGE-SECRET-KEY-PQ-16XDSLZ3XCSZ3236YJ5J0T9NAPLZTP96LJKQCVHJYUDTQVJR5J5PQTDPQCX"
AGE_RECIPIENT_HEAD = "age1pq1044e3hfmq2tltgck54m0gnpv8rfrwkdxjgl38psnwg8zfyv4uqdu63kk0u94ztt0q3"
AGE_RECIPIENT_TAIL = "rr5pt2xm4yslfynr0h9wkranhyadxf33kjn9xpg2fq5hnlq0"
CCTV_SECRET = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG"

PLAINTEXT = (
    "---\nid: C-0042\nname: 李建华\npost: 市财政局局长\n---\n\n"
    "## 谈话记录\n\n本人表示愿意接受组织安排。\n"
).encode()


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message
    return message


def load_vector(name: str) -> tuple[dict[str, str], bytes]:
    """A CCTV vector's header fields (the last of each name) and its age file."""
    head, body = (CCTV / name).read_bytes().split(b"\n\n", 1)
    meta = dict(line.split(": ", 1) for line in head.decode().splitlines())
    if meta.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return meta, body


def vectors(prefix: str) -> list[str]:
    if not CCTV.is_dir():
        return []
    names = (p.name for p in CCTV.iterdir() if p.name != "SOURCE.md")
    return sorted(name for name in names if name.startswith(prefix))


# --- A sender for the tests: builds hybrid age files, so payload shapes can be chosen freely.


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def stanza_lines(kind: str, args: list[str], body: bytes) -> bytes:
    encoded = b64(body)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")
    return ("\n".join([" ".join(["->", kind, *args]), *lines]) + "\n").encode()


def encapsulate(recipient: str) -> tuple[bytes, bytes]:
    """X-Wing encapsulation to an age1pq1… key, written from the draft: (shared secret, enc)."""
    hrp, public = agepq.bech32_decode(recipient)
    assert hrp == agepq.RECIPIENT_HRP and len(public) == 1184 + 32
    pk_mlkem, pk_x25519 = public[:1184], public[1184:]
    ss_mlkem, ct_mlkem = mlkem.MLKEM768PublicKey.from_public_bytes(pk_mlkem).encapsulate()
    ephemeral = x25519.X25519PrivateKey.generate()
    ct_x25519 = ephemeral.public_key().public_bytes_raw()
    ss_x25519 = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(pk_x25519))
    shared = hashlib.sha3_256(ss_mlkem + ss_x25519 + ct_x25519 + pk_x25519 + b"\\.//^\\").digest()
    return shared, ct_mlkem + ct_x25519


def hybrid_stanza(file_key: bytes, recipient: str) -> bytes:
    shared, enc = encapsulate(recipient)
    key, nonce = agepq.hpke_key_schedule(shared, agepq.LABEL)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, file_key, b"")
    return stanza_lines(agepq.STANZA_TYPE, [b64(enc)], sealed)


def x25519_stanza(file_key: bytes, recipient: str) -> bytes:
    _, public = agepq.bech32_decode(recipient)
    ephemeral = x25519.X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    secret = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(public))
    info = b"age-encryption.org/v1/X25519"
    key = HKDF(SHA256(), 32, share + public, info).derive(secret)
    return stanza_lines(
        "X25519", [b64(share)], ChaCha20Poly1305(key).encrypt(bytes(12), file_key, b"")
    )


def seal(plaintext: bytes, stanzas: list[bytes], file_key: bytes) -> bytes:
    chunk = agepq.CHUNK_SIZE
    header = b"age-encryption.org/v1\n" + b"".join(stanzas) + b"---"
    mac_key = HKDF(SHA256(), 32, b"", b"header").derive(file_key)
    mac = hmac.new(mac_key, header, hashlib.sha256).digest()
    nonce = os.urandom(16)
    aead = ChaCha20Poly1305(HKDF(SHA256(), 32, nonce, b"payload").derive(file_key))
    pieces = [plaintext[i : i + chunk] for i in range(0, len(plaintext), chunk)] or [b""]
    payload = b"".join(
        aead.encrypt(i.to_bytes(11, "big") + bytes([i == len(pieces) - 1]), piece, None)
        for i, piece in enumerate(pieces)
    )
    return header + b" " + b64(mac).encode() + b"\n" + nonce + payload


def armor(binary: bytes) -> bytes:
    encoded = base64.b64encode(binary).decode()
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return "\n".join(
        ["-----BEGIN AGE ENCRYPTED FILE-----", *lines, "-----END AGE ENCRYPTED FILE-----", ""]
    ).encode()


# --- Bech32 and the identity.


def test_bech32_round_trip_with_a_known_key() -> None:
    hrp, seed = agepq.bech32_decode(AGE_SECRET)
    assert hrp == agepq.IDENTITY_HRP and len(seed) == 32
    assert agepq.bech32_encode(hrp, seed) == AGE_SECRET
    assert agepq.bech32_encode(hrp.lower(), seed) == AGE_SECRET.lower()


def test_public_key_matches_age_keygen() -> None:
    recipient = agepq.HybridIdentity.from_str(AGE_SECRET).recipient
    # The tail ends in the Bech32 checksum, which covers every byte of the key in between.
    assert recipient.startswith(AGE_RECIPIENT_HEAD) and recipient.endswith(AGE_RECIPIENT_TAIL)
    hrp, public = agepq.bech32_decode(recipient)  # no 90-character limit
    assert hrp == "age1pq" and len(public) == 1184 + 32 and len(recipient) > 1900


@pytest.mark.parametrize(
    "text",
    [
        AGE_SECRET[:-1] + ("Q" if AGE_SECRET[-1] != "Q" else "P"),  # checksum
        AGE_SECRET[:20] + AGE_SECRET[20:].lower(),  # mixed case
        AGE_SECRET.replace("-PQ-", "-QP-"),  # another key type
        AGE_SECRET[:-7] + "B" + AGE_SECRET[-6:],  # "b" is not a bech32 character
        "AGE-SECRET-KEY-PQ-1",
        agepq.bech32_encode(agepq.IDENTITY_HRP, bytes(31)),  # wrong seed length
    ],
)
def test_invalid_identity_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(IdentityError) as info:
        agepq.HybridIdentity.from_str(text)
    message = one_line(info.value)
    assert len(text) < 40 or text[19:40] not in message


def test_identity_does_not_show_its_secret() -> None:
    identity = agepq.HybridIdentity.from_str(AGE_SECRET)
    assert AGE_SECRET[19:40] not in f"{identity!r} {identity}"


def test_keyring_holds_hybrid_identities_apart() -> None:
    classic = pyrage.x25519.Identity.generate()
    text = f"# 王芳的密钥\n{classic}\n\n{AGE_SECRET}\n"
    keyring = crypto.Keyring.from_secret_lines(text)
    assert len(keyring.identities) == 1 and len(keyring.hybrid_identities) == 1
    assert keyring.public_keys[0] == str(classic.to_public())
    assert keyring.public_keys[1].startswith(AGE_RECIPIENT_HEAD)


def test_keyring_names_the_line_of_a_bad_hybrid_key(tmp_path: Path) -> None:
    broken = AGE_SECRET[:-3] + "XYZ"
    path = tmp_path / "密钥.txt"
    path.write_text(f"{AGE_SECRET}\n{broken}\n", encoding="utf-8")
    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(path)
    message = one_line(info.value)
    assert "line 2" in message and broken[18:50] not in message


# --- The KEM.


def test_decapsulation_agrees_with_an_independent_encapsulation() -> None:
    identity = agepq.HybridIdentity.from_str(AGE_SECRET)
    expected, enc = encapsulate(identity.recipient)
    ct_mlkem, ct_x25519 = enc[:1088], enc[1088:]
    assert identity.decapsulate(enc) == expected
    # ML-KEM rejects implicitly: a damaged ciphertext gives another secret, not an error.
    damaged = bytes([ct_mlkem[0] ^ 1]) + ct_mlkem[1:]
    assert identity.decapsulate(damaged + ct_x25519) != expected
    with pytest.raises(ValueError):
        identity.decapsulate(ct_mlkem + bytes(32))  # low-order share: all-zero X25519 result
    with pytest.raises(ValueError):
        identity.decapsulate(ct_mlkem + ct_x25519[:-1])


# --- Whole files.


def test_round_trip_of_a_multi_chunk_file_through_crypto_decrypt() -> None:
    plaintext = PLAINTEXT * 5000  # several 64 KiB chunks, the last one short
    identity = agepq.HybridIdentity.from_str(AGE_SECRET)
    file_key = os.urandom(16)
    data = seal(plaintext, [hybrid_stanza(file_key, identity.recipient)], file_key)
    keyring = crypto.Keyring.from_secret_lines(AGE_SECRET)
    assert crypto.decrypt(data, keyring) == plaintext
    assert crypto.decrypt(b"\n  " + armor(data) + b"\n", keyring) == plaintext


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 2 * 64 * 1024])
def test_payload_sizes_at_chunk_edges(size: int) -> None:
    plaintext = (PLAINTEXT * (size // len(PLAINTEXT) + 1))[:size]
    identity = agepq.HybridIdentity.from_str(CCTV_SECRET)
    file_key = os.urandom(16)
    data = seal(plaintext, [hybrid_stanza(file_key, identity.recipient)], file_key)
    assert agepq.decrypt(data, [identity]) == plaintext


def test_x25519_stanza_of_a_hybrid_file_still_opens_with_a_classic_key() -> None:
    classic = pyrage.x25519.Identity.generate()
    stranger = agepq.HybridIdentity.from_str(AGE_SECRET)
    file_key = os.urandom(16)
    stanzas = [
        hybrid_stanza(file_key, stranger.recipient),
        x25519_stanza(file_key, str(classic.to_public())),
    ]
    data = seal(PLAINTEXT, stanzas, file_key)
    assert crypto.decrypt(data, crypto.Keyring.from_secret_lines(str(classic))) == PLAINTEXT
    both = crypto.Keyring.from_secret_lines(f"{CCTV_SECRET}\n{classic}")
    assert crypto.decrypt(data, both) == PLAINTEXT
    with pytest.raises(NotRecipient) as info:
        crypto.decrypt(data, crypto.Keyring.from_secret_lines(CCTV_SECRET))
    assert one_line(info.value) == crypto.NO_MATCH


def test_a_corrupt_last_chunk_yields_no_plaintext_at_all() -> None:
    identity = agepq.HybridIdentity.from_str(CCTV_SECRET)
    file_key = os.urandom(16)
    data = bytearray(
        seal(PLAINTEXT * 3000, [hybrid_stanza(file_key, identity.recipient)], file_key)
    )
    data[-5] ^= 0x40
    with pytest.raises(DecryptionError) as info:
        agepq.decrypt(bytes(data), [identity])
    assert one_line(info.value).endswith("the payload failed authentication")


def test_every_truncation_of_a_hybrid_vector_is_refused() -> None:
    _, data = load_vector("hybrid")
    keyring = crypto.Keyring.from_secret_lines(CCTV_SECRET)
    for cut in range(len(data)):
        with pytest.raises(TalkbookError) as info:
            crypto.decrypt(data[:cut], keyring)
        one_line(info.value)


@pytest.mark.parametrize("bit", [0x01, 0x20, 0x80])
def test_every_bit_flip_of_a_hybrid_vector_is_refused(bit: int) -> None:
    _, data = load_vector("hybrid")
    keyring = crypto.Keyring.from_secret_lines(CCTV_SECRET)
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= bit
        with pytest.raises(TalkbookError) as info:
            crypto.decrypt(bytes(flipped), keyring)
        one_line(info.value)


# --- The generic age parts, checked against the CCTV vectors with the file keys they give.


def payload_vectors() -> list[str]:
    """Vectors whose outcome depends on the header MAC, the nonce or the STREAM payload."""
    wanted = {"success", "HMAC failure", "payload failure"}
    return [
        n for n in vectors("") if n.startswith("stream_") or load_vector(n)[0]["expect"] in wanted
    ]


@pytest.mark.parametrize("name", payload_vectors())
def test_header_mac_and_stream_rules_follow_the_vectors(name: str) -> None:
    meta, data = load_vector(name)
    if meta.get("armored") == "yes":
        data = agepq.dearmor(agefile.normalize(data))
    file_key = bytes.fromhex(meta["file key"])
    if meta["expect"] == "success":
        plaintext = agepq.open_with_file_key(data, file_key)
        assert hashlib.sha256(plaintext).hexdigest() == meta["payload"]
        return
    with pytest.raises(DecryptionError) as info:
        agepq.open_with_file_key(data, file_key)
    one_line(info.value)


@pytest.mark.parametrize("name", vectors("armor"))
def test_strict_armor_follows_the_vectors(name: str) -> None:
    meta, data = load_vector(name)
    if meta["expect"] == "armor failure":
        with pytest.raises(DecryptionError) as info:
            agepq.dearmor(agefile.normalize(data))
        one_line(info.value)
    else:
        agepq.dearmor(agefile.normalize(data))
