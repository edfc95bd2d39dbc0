"""The cold index's per-file shortcuts answer what the longer way answers.

agefile reads a header of the usual shape with a regex per stanza, and line by line otherwise;
fsutil.read_below keeps the folders of the last path open (Folders); yamlguard finds the line
closing the front matter with str.find. Each is checked here against the way it shortcuts.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talkbook import models, plainyaml, yamlguard
from talkbook.crypto import Keyring, agefile, encrypt
from talkbook.errors import DecryptionError
from talkbook.fsutil import Folders, read_below

SECRET = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# -- agefile -------------------------------------------------------------------------------------
def line_by_line(data: bytes) -> agefile.Header | str:
    """parse_header without its regex shortcut: the header, or the refusal's message."""
    try:
        saved, agefile._USUAL_START = agefile._USUAL_START, b"\xff never"
        try:
            return agefile.parse_header(data)
        finally:
            agefile._USUAL_START = saved
    except DecryptionError as exc:
        return str(exc)


def either_way(data: bytes) -> agefile.Header | str:
    try:
        answer: agefile.Header | str = agefile.parse_header(data)
    except DecryptionError as exc:
        answer = str(exc)
    assert answer == line_by_line(data), data
    return answer


def test_the_last_characters_taken_for_canonical_are_those_decode_b64_takes() -> None:
    """Every short tail of a body line: the regex's classes against decoding and re-encoding."""
    last = re.compile(
        rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]["
        + agefile._LAST_OF_2
        + rb"]|[A-Za-z0-9+/]{2}["
        + agefile._LAST_OF_3
        + rb"])?"
    )
    for size in range(4):
        for tail in itertools.product(ALPHABET, repeat=size):
            line = b"AAAA" + bytes(tail)
            try:
                agefile._decode_b64(line, "x")
                canonical = True
            except DecryptionError:
                canonical = False
            assert canonical == bool(last.fullmatch(line)), line


def test_files_rage_writes_take_the_shortcut_to_the_same_header() -> None:
    keyring = Keyring.from_secret_lines(SECRET)
    for size in (0, 1, 1000):
        data = encrypt(b"x" * size, keyring.public_keys * 3)
        assert agefile._usual_header(data) is not None
        header = either_way(data)
        assert isinstance(header, agefile.Header) and len(header.recipient_stanzas) == 3


MAC = b"--- " + base64.b64encode(bytes(range(32))).rstrip(b"=") + b"\n"


@pytest.mark.parametrize(
    "stanzas",
    [
        b"-> X25519 abc\n" + b"A" * 64 + b"\nAAAA\n",
        b"-> X25519 abc\n" + b"A" * 64 + b"\n" + b"A" * 64 + b"\n\n",
        b"-> x-grease !#$ ~}\n\n-> mlkem768x25519 abc\n\n",
        b"-> X25519 abc\n" + b"A" * 64 + b"\n",  # a full line and no short one
        b"-> X25519 abc\nAAB\n",  # not canonical
        b"-> X25519 abc\nAAA=\n",
        b"-> X25519  abc\n\n",
        b"->\n\n",
        b"-> scrypt c2FsdHNhbHRzYWx0c2FsdA 22\n\n",
        b"-> scrypt c2FsdHNhbHRzYWx0c2FsdA 23\n\n",
        b"-> X25519 abc\n\n--- " + b"A" * 42 + b"\n",  # a MAC line one short
        b"-> X25519 abc\n\n--- " + b"A" * 42 + b"B\n",  # a MAC not canonical
        b"-> X25519 abc\r\n\n",
    ],
)
def test_odd_headers_read_or_refused_as_line_by_line(stanzas: bytes) -> None:
    either_way(b"age-encryption.org/v1\n" + stanzas + MAC + b"payload")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.text("AZaz09+/!~-", min_size=0, max_size=4), min_size=1, max_size=3),
            st.binary(max_size=100),
            st.sampled_from(["", "cut", "flip", "pad"]),
        ),
        max_size=4,
    ),
    st.sampled_from(["", "short", "flip"]),
)
def test_generated_headers_read_or_refused_as_line_by_line(stanzas: list, mac: str) -> None:
    lines = [b"age-encryption.org/v1\n"]
    for args, body, damage in stanzas:
        text = base64.b64encode(body).rstrip(b"=")
        rows = [text[i : i + 64] for i in range(0, len(text), 64)]
        if not rows or len(rows[-1]) == 64:
            rows.append(b"")
        if damage == "cut":
            rows.pop()
        elif damage == "flip" and rows[-1]:
            rows[-1] = rows[-1][:-1] + b"B"
        elif damage == "pad":
            rows[-1] += b"="
        lines.append(b"-> " + " ".join(args).encode() + b"\n" + b"".join(r + b"\n" for r in rows))
    tail = {"": MAC, "short": MAC[:-2] + b"\n", "flip": MAC[:-2] + b"B\n"}[mac]
    either_way(b"".join(lines) + tail + b"payload")


# -- fsutil ------------------------------------------------------------------------------------
def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
def test_folders_kept_open_read_what_read_below_reads_and_refuses(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for talk in ("T-aaaaa0", "T-bbbbb0"):
        (root / "talks" / "2026" / talk).mkdir(parents=True)
        for name in ("plan.md.age", "record.md.age"):
            (root / "talks" / "2026" / talk / name).write_bytes(f"{talk}/{name}".encode())
    (root / "cadres").mkdir()
    (root / "cadres" / "C-aaaaa0.md.age").write_bytes(b"cadre")
    (root / "talks" / "2025").symlink_to(root / "talks" / "2026")
    (root / "talks" / "2026" / "T-bbbbb0" / "link.age").symlink_to(root / "cadres")
    rels = [
        "cadres/C-aaaaa0.md.age",
        "talks/2025/T-aaaaa0/plan.md.age",  # below a folder that is a symlink
        "talks/2026/T-aaaaa0/plan.md.age",
        "talks/2026/T-aaaaa0/record.md.age",
        "talks/2026/T-aaaaa0",
        "talks/2026/T-bbbbb0/link.age",
        "talks/2026/T-bbbbb0/plan.md.age",
        "talks/2026/../2026/T-bbbbb0/plan.md.age",
        "talks/2026/T-bbbbb0/record.md.age",
        "cadres/C-aaaaa0.md.age",
    ]
    before = open_descriptors()
    folders = Folders()

    def answer(rel: str, kept: Folders | None) -> bytes | str:
        try:
            return read_below(str(root), rel, kept)
        except OSError as exc:
            return type(exc).__name__

    kept = [answer(rel, folders) for rel in rels]
    assert open_descriptors() > before  # the last path's folders, kept for the next one
    folders.close()
    assert open_descriptors() == before
    assert kept == [answer(rel, None) for rel in rels]
    assert open_descriptors() == before
    assert kept[2] == b"T-aaaaa0/plan.md.age" and kept[8] == b"T-bbbbb0/record.md.age"
    assert kept[1] != b"T-aaaaa0/plan.md.age" and kept[5] != b"cadre"


# -- yamlguard -----------------------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["---", "-", "\n", " ", "\t", "\x0b", "a", "\u2028"]), max_size=12))
def test_the_closing_line_is_found_where_the_regex_finds_it(pieces: list[str]) -> None:
    text = "".join(pieces)
    for start in range(1, len(text) + 2):
        found = yamlguard._closing(text, start)
        expected = yamlguard._BOUNDARY.search(text, start)
        assert (found and found.span()) == (expected and expected.span())


@pytest.mark.parametrize(
    ("text", "body"),
    [  # the bodies yamlguard.parse gave while it called frontmatter.parse
        ("---\na: 1\n---\n\nbody\n", "body\n"),
        ("---\na: 1\n---  \n", "  \n"),  # trailing blanks: the body python-frontmatter left
        ("---\r\n---  ", "  "),
        ("---\na: 1\r\r\n---\nbody", "-\nbody"),  # split after \r\n was made \n twice
    ],
)
def test_bodies_as_frontmatter_parse_split_them(text: str, body: str) -> None:
    assert yamlguard.parse(text).body == body


# -- plainyaml -----------------------------------------------------------------------------------
def test_every_character_left_to_the_guarded_loader_is_one_isprintable_refuses() -> None:
    """Reader.load searches for them only in a text with a line isprintable refuses."""
    for code in range(0x110000):
        char = chr(code)
        assert not (plainyaml._OUTSIDE.match(char) and char.isprintable()), hex(code)


@pytest.mark.parametrize("char", ["\x00", "\t", "\x85", "\u2028", "\ufeff", "\ud800", "\uffff"])
def test_a_line_with_such_a_character_is_left_to_the_guarded_loader(char: str) -> None:
    reader = plainyaml.Reader(models.to_plain)
    assert reader.load(f"a: 1\nb: x{char}y\n") is None
    assert reader.load("a: 1\nb: x\u3000y\n") == {"a": 1, "b": "x\u3000y"}  # printable to YAML
