"""Property tests: whatever the bytes or text, the answer is a result or a TalkbookError.

Bad input must end in one clear line, never a traceback: these look for any other exception.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkbook.crypto import Keyring, agefile, decrypt, encrypt
from talkbook.errors import InvalidDocument, TalkbookError
from talkbook.models import parse

SECRET = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
KEYRING = Keyring.from_secret_lines(SECRET)
PLAINTEXT = "---\nname: 张伟\nunit: 市财政局\n---\n\n谈话记录：本人表示服从组织安排。\n".encode()
VALID = encrypt(PLAINTEXT, KEYRING.public_keys)
ARMORED_PREFIX = b"-----BEGIN AGE ENCRYPTED FILE-----\n"


def decrypts_or_refuses(data: bytes) -> None:
    try:
        decrypt(data, KEYRING)
    except TalkbookError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    decrypts_or_refuses(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_behind_an_age_header(tail: bytes) -> None:
    decrypts_or_refuses(b"age-encryption.org/v1\n" + tail)
    decrypts_or_refuses(ARMORED_PREFIX + tail)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_ciphertext_never_yields_other_plaintext(data: st.DataObject) -> None:
    """Flip, cut or insert bytes in a real file: it decrypts to the original or is refused."""
    raw = bytearray(VALID)
    how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del raw[at:]
    else:
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        assert decrypt(bytes(raw), KEYRING) == PLAINTEXT
    except TalkbookError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_header_parser_only_raises_its_own_errors(data: bytes) -> None:
    with contextlib.suppress(TalkbookError):
        agefile.parse_header(data)


TEXT = st.text(st.characters(codec="utf-8"), max_size=200)


@settings(max_examples=400, deadline=None)
@given(st.one_of(TEXT, TEXT.map(lambda t: "---\n" + t), TEXT.map(lambda t: f"---\n{t}\n---\n")))
def test_any_text_parses_or_is_refused_with_a_line(text: str) -> None:
    try:
        document = parse(text, "doc.md")
    except InvalidDocument as exc:
        assert str(exc).startswith("doc.md:") and "\n" not in str(exc)
        assert exc.line >= 1
    else:
        assert isinstance(document.meta, dict)


@pytest.mark.parametrize("keep", [0, 10, 40, len(VALID) // 2, len(VALID) - 1])
def test_truncations_are_refused(keep: int) -> None:
    with pytest.raises(TalkbookError):
        decrypt(VALID[:keep], KEYRING)
