"""The crypto layer: keyrings, encryption, strict header checks, and interop with the age CLI."""

from __future__ import annotations

import os
import pty
import select
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talkbook import crypto
from talkbook.crypto import agefile
from talkbook.errors import DecryptionError, IdentityError, TalkbookError

PLAINTEXT = (
    "---\nid: C-0001\nname: 张三\npost: 县委组织部副部长\n---\n\n"
    "## 谈话要点\n\n思想状况稳定，工作积极。\n"
).encode()
PASSPHRASE = "正确的口令 correct horse"


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message
    return message


def tool(name: str) -> str:
    """The path of a command-line tool; interop tests fail in CI when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but is not installed")
    pytest.skip(f"{name} is not installed")


def run_with_tty(argv: list[str], answer: str, timeout: float = 60) -> tuple[int, bytes]:
    """Run a command on a pseudo-terminal, typing `answer` at every passphrase prompt.

    age reads passphrases from the terminal only, never from stdin.
    """
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.execvp(argv[0], argv)
    output = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if output.lower().count(b"passphrase") > answered:
                answered += 1
                os.write(fd, answer.encode() + b"\r")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@pytest.fixture
def alice(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "keys" / "alice.txt"
    return path, crypto.generate_identity_file(path)


@pytest.fixture
def bob(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "keys" / "bob.txt"
    return path, crypto.generate_identity_file(path)


def ssh_key(tmp_path: Path, kind: str, passphrase: str = "") -> Path:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path / f"id_{kind}"
    extra = ["-b", "2048"] if kind == "rsa" else []
    argv = [
        keygen,
        "-q",
        "-t",
        kind,
        *extra,
        "-N",
        passphrase,
        "-C",
        "李四@组织部",
        "-f",
        str(path),
    ]
    subprocess.run(argv, check=True, capture_output=True)
    return path


# --- round trips -------------------------------------------------------------------------------


def test_x25519_round_trip_cjk(alice: tuple[Path, str]) -> None:
    path, public_key = alice
    keyring = crypto.Keyring.from_file(path)
    assert keyring.public_keys == [public_key]
    ciphertext = crypto.encrypt(PLAINTEXT, [public_key])
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    assert "张三".encode() not in ciphertext
    assert crypto.decrypt(ciphertext, keyring) == PLAINTEXT


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_ssh_round_trip(tmp_path: Path, kind: str) -> None:
    key = ssh_key(tmp_path, kind)
    public_line = key.with_suffix(".pub").read_text().split()
    keyring = crypto.Keyring.from_file(key)
    assert keyring.public_keys == [f"{public_line[0]} {public_line[1]}"]
    # The comment of a public key line is allowed and ignored.
    ciphertext = crypto.encrypt(PLAINTEXT, [" ".join(public_line)])
    assert crypto.decrypt(ciphertext, keyring) == PLAINTEXT
    header = agefile.parse_header(ciphertext)
    assert [s.type for s in header.recipient_stanzas] == [f"ssh-{kind}"]


def test_several_recipients_each_decrypt(
    tmp_path: Path, alice: tuple[Path, str], bob: tuple[Path, str]
) -> None:
    recipients = [alice[1], bob[1]]
    if shutil.which("ssh-keygen"):
        key = ssh_key(tmp_path, "ed25519")
        recipients.append(key.with_suffix(".pub").read_text().strip())
        keyrings = [crypto.Keyring.from_file(p) for p in (alice[0], bob[0], key)]
    else:
        keyrings = [crypto.Keyring.from_file(p) for p in (alice[0], bob[0])]
    ciphertext = crypto.encrypt(PLAINTEXT, recipients)
    assert len(agefile.parse_header(ciphertext).recipient_stanzas) == len(recipients)
    for keyring in keyrings:
        assert crypto.decrypt(ciphertext, keyring) == PLAINTEXT


def test_keyring_with_several_keys(alice: tuple[Path, str], bob: tuple[Path, str]) -> None:
    text = alice[0].read_text() + "\n\n# 第二把钥匙\n" + bob[0].read_text()
    keyring = crypto.Keyring.from_secret_lines(text)
    assert keyring.public_keys == [alice[1], bob[1]]
    assert crypto.decrypt(crypto.encrypt(PLAINTEXT, [bob[1]]), keyring) == PLAINTEXT


@settings(max_examples=25, deadline=None)
@given(payload=st.binary(max_size=3000) | st.text().map(str.encode))
def test_round_trip_any_payload(payload: bytes) -> None:
    identity = pyrage.x25519.Identity.generate()
    keyring = crypto.Keyring.from_secret_lines(str(identity))
    assert crypto.decrypt(crypto.encrypt(payload, [str(identity.to_public())]), keyring) == payload


def test_armored_file_with_surrounding_whitespace(alice: tuple[Path, str]) -> None:
    recipient = pyrage.x25519.Recipient.from_str(alice[1])
    armored = pyrage.encrypt(PLAINTEXT, [recipient], armored=True)
    keyring = crypto.Keyring.from_file(alice[0])
    assert crypto.decrypt(b"\n  " + armored + b"\r\n\n", keyring) == PLAINTEXT


# --- decryption failures -----------------------------------------------------------------------


def test_non_recipient_gets_exact_message(alice: tuple[Path, str], bob: tuple[Path, str]) -> None:
    ciphertext = crypto.encrypt(PLAINTEXT, [alice[1]])
    with pytest.raises(DecryptionError) as info:
        crypto.decrypt(ciphertext, crypto.Keyring.from_file(bob[0]))
    assert one_line(info.value) == "cannot decrypt: none of your keys is a recipient of this file"


@pytest.mark.parametrize("cut", [1, 16, 17, 100, -1, -16, -17])
def test_truncated_ciphertext(alice: tuple[Path, str], cut: int) -> None:
    ciphertext = crypto.encrypt(PLAINTEXT, [alice[1]])
    truncated = ciphertext[:cut]
    with pytest.raises(DecryptionError) as info:
        crypto.decrypt(truncated, crypto.Keyring.from_file(alice[0]))
    message = one_line(info.value)
    assert "张三" not in message


def test_bit_flips_anywhere_are_refused(alice: tuple[Path, str]) -> None:
    ciphertext = crypto.encrypt(PLAINTEXT, [alice[1]])
    keyring = crypto.Keyring.from_file(alice[0])
    for position in range(0, len(ciphertext), 7):
        flipped = bytearray(ciphertext)
        flipped[position] ^= 0x01
        try:
            result = crypto.decrypt(bytes(flipped), keyring)
        except DecryptionError as exc:
            one_line(exc)
        else:
            pytest.fail(f"flipped byte {position} was accepted ({len(result)} bytes)")


def test_not_an_age_file(alice: tuple[Path, str]) -> None:
    keyring = crypto.Keyring.from_file(alice[0])
    for data in (b"", b"# just markdown\n", "张三".encode()):
        with pytest.raises(DecryptionError, match="^not an age-encrypted file$"):
            crypto.decrypt(data, keyring)


# --- passphrases -------------------------------------------------------------------------------


def test_passphrase_identity_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "protected.txt"
    public_key = crypto.generate_identity_file(path, passphrase=PASSPHRASE)
    content = path.read_bytes()
    assert content.startswith(agefile.ARMOR_BEGIN)
    assert b"AGE-SECRET-KEY" not in content
    assert agefile.parse_header(content).is_passphrase

    asked: list[int] = []

    def prompt() -> str:
        asked.append(1)
        return PASSPHRASE

    keyring = crypto.Keyring.from_file(path, passphrase_prompt=prompt)
    assert asked == [1]
    assert keyring.public_keys == [public_key]
    assert crypto.decrypt(crypto.encrypt(PLAINTEXT, [public_key]), keyring) == PLAINTEXT

    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(path, passphrase_prompt=lambda: "错误的口令")
    assert one_line(info.value) == f"wrong passphrase for identity file {path}"
    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(path)
    assert str(path) in one_line(info.value)


def test_passphrase_encrypted_file() -> None:
    ciphertext = pyrage.passphrase.encrypt(PLAINTEXT, PASSPHRASE)
    assert crypto.decrypt(ciphertext, crypto.Keyring.with_passphrase(PASSPHRASE)) == PLAINTEXT
    with pytest.raises(DecryptionError) as info:
        crypto.decrypt(ciphertext, crypto.Keyring.with_passphrase("wrong"))
    assert one_line(info.value) == "cannot decrypt: wrong passphrase for this file"
    no_prompt = crypto.Keyring.from_secret_lines(str(pyrage.x25519.Identity.generate()))
    with pytest.raises(IdentityError):
        crypto.decrypt(ciphertext, no_prompt)
    # A passphrase-only keyring is simply not a recipient of an X25519 file.
    other = pyrage.x25519.Identity.generate()
    x25519_file = crypto.encrypt(PLAINTEXT, [str(other.to_public())])
    with pytest.raises(DecryptionError, match="none of your keys"):
        crypto.decrypt(x25519_file, crypto.Keyring.with_passphrase(PASSPHRASE))


# --- identity files ----------------------------------------------------------------------------


def test_generated_identity_file_layout_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "me.txt"
    public_key = crypto.generate_identity_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# created: 20")
    assert lines[1] == f"# public key: {public_key}"
    assert lines[2].startswith("AGE-SECRET-KEY-1") and len(lines) == 3
    assert public_key.startswith("age1")
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_generate_refuses_to_overwrite(alice: tuple[Path, str]) -> None:
    path, _ = alice
    before = path.read_bytes()
    with pytest.raises(TalkbookError) as info:
        crypto.generate_identity_file(path)
    assert one_line(info.value).endswith("exists; refusing to overwrite")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"  \n\n",
        "这不是密钥\n".encode(),
        b"AGE-SECRET-KEY-1NOTBECH32\n",
        b"\x00\xff\xfe garbage",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64!\n-----END OPENSSH PRIVATE KEY-----\n",
        b"age-encryption.org/v1\n-> X25519 abc\nAAAA\n--- x\n",
    ],
)
def test_garbage_identity_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "identity.txt"
    path.write_bytes(content)
    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(path, passphrase_prompt=lambda: "x")
    message = one_line(info.value)
    assert str(path) in message
    assert "NOTBECH32" not in message


def test_missing_identity_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.txt"
    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(path)
    assert str(path) in one_line(info.value)


def test_secret_key_never_in_message(tmp_path: Path) -> None:
    secret = str(pyrage.x25519.Identity.generate())
    path = tmp_path / "identity.txt"
    path.write_text(f"{secret}\n{secret[:-3]}xyz\n")
    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(path)
    message = one_line(info.value)
    assert "line 2" in message and secret[16:40] not in message


def test_post_quantum_identity_accepted() -> None:
    """A hybrid (ML-KEM-768 + X25519) identity reads hybrid files; its recipient is age1pq1…"""
    text = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG\n"
    keyring = crypto.Keyring.from_secret_lines(text)
    assert [key[:7] for key in keyring.public_keys] == ["age1pq1"]


def test_passphrase_protected_ssh_key_opens_once(tmp_path: Path) -> None:
    """A key protected by ssh-keygen itself: the passphrase is asked once, then it reads and
    signs; a wrong one is one line, and no prompt at all is one line too."""
    key = ssh_key(tmp_path, "ed25519", passphrase="ssh口令")
    asked: list[int] = []

    def prompt() -> str:
        asked.append(1)
        return "ssh口令"

    keyring = crypto.Keyring.from_file(key, prompt)
    assert asked == [1]
    assert keyring.signing_key is not None and keyring.signing_key.protected
    sealed = crypto.encrypt(PLAINTEXT, keyring.public_keys)
    assert crypto.decrypt(sealed, keyring) == PLAINTEXT and asked == [1]
    with pytest.raises(IdentityError) as info:
        crypto.Keyring.from_file(key, lambda: "wrong")
    assert one_line(info.value) == f"wrong passphrase for identity file {key}"
    with pytest.raises(IdentityError, match="needs a passphrase and none can be asked"):
        crypto.Keyring.from_file(key)


def test_unsupported_ssh_key_type(tmp_path: Path) -> None:
    key = ssh_key(tmp_path, "ecdsa")
    with pytest.raises(IdentityError, match="unsupported SSH key type ecdsa-sha2-nistp256"):
        crypto.Keyring.from_file(key)


# --- recipients and headers --------------------------------------------------------------------


def test_parse_recipient(alice: tuple[Path, str]) -> None:
    assert isinstance(crypto.parse_recipient(alice[1]), pyrage.x25519.Recipient)
    for bad in ("", "age1xyz", "ssh-ed25519 AAAA", "ecdsa-sha2-nistp256 AAAA", "张三"):
        with pytest.raises(IdentityError) as info:
            crypto.parse_recipient(bad)
        assert one_line(info.value).startswith("not a valid public key: ")


def test_encrypt_needs_recipients() -> None:
    with pytest.raises(TalkbookError):
        crypto.encrypt(PLAINTEXT, [])


def test_header_counts_recipients_not_grease(
    alice: tuple[Path, str], bob: tuple[Path, str]
) -> None:
    header = agefile.parse_header(crypto.encrypt(PLAINTEXT, [alice[1], bob[1]]))
    assert [s.type for s in header.recipient_stanzas] == ["X25519", "X25519"]
    assert any(s.type.endswith("-grease") for s in header.stanzas)
    assert not header.is_passphrase


MAC = "--- " + "A" * 43 + "\n"


def header_bytes(*stanza_lines: str) -> bytes:
    return ("age-encryption.org/v1\n" + "".join(stanza_lines) + MAC).encode() + b"payload"


def test_parse_header_stanzas() -> None:
    share = "TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc"
    data = header_bytes(
        f"-> X25519 {share}\n" + "A" * 64 + "\nAAAA\n",
        "-> x-grease !#$ ~}\n\n",
        "-> mlkem768x25519 abc\n\n",
    )
    header = agefile.parse_header(data)
    assert [s.type for s in header.stanzas] == ["X25519", "x-grease", "mlkem768x25519"]
    assert header.stanzas[0].args == (share,) and len(header.stanzas[0].body) == 51
    assert header.stanzas[1].args == ("!#$", "~}") and header.stanzas[1].body == b""
    assert len(header.recipient_stanzas) == 2


@pytest.mark.parametrize(
    "stanza",
    [
        "-> X25519 abc\n",  # no body line at all
        "-> X25519 abc\n" + "A" * 64 + "\n",  # a full line must be followed by a short one
        "-> X25519 abc\n" + "A" * 65 + "\n",
        "-> X25519 abc\nAAA=\n",
        "-> X25519 abc\nAAB\n",  # not canonical
        "-> X25519  abc\n\n",
        "->\n\n",
        "-> scrypt c2FsdHNhbHRzYWx0c2FsdA 23\n\n",
        "-> scrypt c2FsdHNhbHRzYWx0c2FsdA 018\n\n",
        "-> scrypt c2FsdHNhbHRzYWx0c2FsdA\n\n",
    ],
)
def test_parse_header_rejects(stanza: str) -> None:
    with pytest.raises(DecryptionError) as info:
        agefile.parse_header(header_bytes(stanza))
    assert one_line(info.value).startswith("corrupt age file: header is malformed (")


def test_parse_header_scrypt_limit() -> None:
    header = agefile.parse_header(header_bytes("-> scrypt c2FsdHNhbHRzYWx0c2FsdA 22\n\n"))
    assert header.is_passphrase and header.recipient_stanzas == ()


def test_normalize() -> None:
    armored = agefile.ARMOR_BEGIN + b"\nabc\n-----END AGE ENCRYPTED FILE-----\n"
    assert agefile.normalize(b" \n" + armored + b"\n\n") == armored.strip()
    binary = b"age-encryption.org/v1\n  "
    assert agefile.normalize(binary) == binary


# --- interoperability with the age command-line tool -------------------------------------------


@pytest.mark.interop
def test_age_encrypts_we_decrypt(tmp_path: Path, alice: tuple[Path, str]) -> None:
    age = tool("age")
    for armor in ([], ["-a"]):
        result = subprocess.run(
            [age, *armor, "-r", alice[1]], input=PLAINTEXT, capture_output=True, check=True
        )
        assert crypto.decrypt(result.stdout, crypto.Keyring.from_file(alice[0])) == PLAINTEXT


@pytest.mark.interop
def test_we_encrypt_age_decrypts(tmp_path: Path, alice: tuple[Path, str]) -> None:
    age = tool("age")
    ciphertext = tmp_path / "record.md.age"
    ciphertext.write_bytes(crypto.encrypt(PLAINTEXT, [alice[1]]))
    result = subprocess.run(
        [age, "-d", "-i", str(alice[0]), str(ciphertext)], capture_output=True, check=True
    )
    assert result.stdout == PLAINTEXT


@pytest.mark.interop
def test_age_keygen_identity_file(tmp_path: Path) -> None:
    keygen = tool("age-keygen")
    path = tmp_path / "age-keygen.txt"
    subprocess.run([keygen, "-o", str(path)], capture_output=True, check=True)
    keyring = crypto.Keyring.from_file(path)
    public_key = subprocess.run(
        [keygen, "-y", str(path)], capture_output=True, check=True, text=True
    ).stdout.strip()
    assert keyring.public_keys == [public_key]


@pytest.mark.interop
def test_age_decrypts_with_our_ssh_recipient(tmp_path: Path) -> None:
    age = tool("age")
    key = ssh_key(tmp_path, "ed25519")
    ciphertext = tmp_path / "plan.md.age"
    ciphertext.write_bytes(crypto.encrypt(PLAINTEXT, crypto.Keyring.from_file(key).public_keys))
    result = subprocess.run(
        [age, "-d", "-i", str(key), str(ciphertext)], capture_output=True, check=True
    )
    assert result.stdout == PLAINTEXT


@pytest.mark.interop
def test_age_uses_our_passphrase_identity_file(tmp_path: Path) -> None:
    age = tool("age")
    path = tmp_path / "keys" / "protected.txt"
    public_key = crypto.generate_identity_file(path, passphrase=PASSPHRASE)
    ciphertext = tmp_path / "record.md.age"
    ciphertext.write_bytes(crypto.encrypt(PLAINTEXT, [public_key]))
    out = tmp_path / "out.md"
    code, _ = run_with_tty(
        [age, "-d", "-i", str(path), "-o", str(out), str(ciphertext)], PASSPHRASE
    )
    assert code == 0
    assert out.read_bytes() == PLAINTEXT


@pytest.mark.interop
def test_we_use_age_passphrase_identity_file(tmp_path: Path, alice: tuple[Path, str]) -> None:
    age = tool("age")
    protected = tmp_path / "protected.age"
    argv = [age, "-p", "-a", "-o", str(protected), str(alice[0])]
    code, _ = run_with_tty(argv, PASSPHRASE)
    assert code == 0
    keyring = crypto.Keyring.from_file(protected, passphrase_prompt=lambda: PASSPHRASE)
    assert keyring.public_keys == [alice[1]]
    with pytest.raises(IdentityError, match="^wrong passphrase for identity file "):
        crypto.Keyring.from_file(protected, passphrase_prompt=lambda: "nope")
