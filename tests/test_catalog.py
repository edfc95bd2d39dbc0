"""The one loader (catalog.py): every state a (path, ciphertext) pair can end in, the same
answers on one core or several, and pairs from the working tree, a revision or the index."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pyrage
import pytest

from talkbook import catalog
from talkbook.crypto import Keyring, encrypt
from talkbook.errors import UnsafePath
from talkbook.models import Document

PROFILE = "---\nid: C-aaaaaa\nname: 张伟\nbirth_date: 1968-05-12\n---\n\n谈话时注意语气。\n"
REL = "cadres/C-aaaaaa.md.age"


@pytest.fixture(scope="module")
def keys() -> tuple[Keyring, str, Keyring]:
    """A reader's keyring and public key, and an outsider's keyring."""
    mine, other = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    return (
        Keyring.from_secret_lines(str(mine)),
        str(mine.to_public()),
        Keyring.from_secret_lines(str(other)),
    )


def sealed(text: str, public: str) -> bytes:
    return encrypt(text.encode("utf-8"), [public])


def test_a_readable_document_is_ok_with_its_front_matter_and_body(keys) -> None:
    keyring, public, _ = keys
    reading = catalog.read(keyring, REL, sealed(PROFILE, public))
    assert (reading.state, reading.kind, reading.findings) == (catalog.OK, "profile", ())
    assert reading.doc is not None and reading.doc.meta["name"] == "张伟"
    assert reading.doc.meta["birth_date"] == "1968-05-12"
    assert reading.text == PROFILE and "注意语气" in reading.doc.body
    lean = catalog.read(keyring, REL, sealed(PROFILE, public), keep_text=False)
    assert lean.text is None and lean.doc is not None and lean.doc.body == ""
    assert lean.doc.meta == reading.doc.meta


def test_not_a_recipient_is_unreadable_not_an_error(keys) -> None:
    keyring, public, outsider = keys
    data = sealed(PROFILE, public)
    assert catalog.read(outsider, REL, data).state == catalog.UNREADABLE
    assert catalog.read(None, REL, data).state == catalog.UNREADABLE


@pytest.mark.parametrize(
    "rel, text, state, field",
    [
        (REL, "---\nid: C-aaaaaa\nname: [张伟\n---\n", catalog.MALFORMED, "(front matter)"),
        (REL, "没有前言的文字\n", catalog.MALFORMED, "(front matter)"),
        (REL, "---\nid: C-aaaaaa\nname: 张伟\nevents: 5\n---\n", catalog.UNFIT, "events"),
        ("cadres/zhang.md.age", "---\nid: C-aaaaaa\nname: 张伟\n---\n", catalog.UNFIT, "(file)"),
        ("talks/2026/T-aaaaaa/notes.md.age", PROFILE, catalog.MALFORMED, "(file)"),
    ],
    ids=["bad-yaml", "no-front-matter", "wrong-type", "name-not-an-id", "not-a-document"],
)
def test_what_logic_may_not_read_is_malformed_or_unfit_with_findings(
    keys, rel: str, text: str, state: str, field: str
) -> None:
    keyring, public, _ = keys
    reading = catalog.read(keyring, rel, sealed(text, public))
    assert reading.state == state
    assert reading.findings[0].field == field and reading.findings[0].path == rel
    error = reading.error()
    assert str(error).startswith(f"{rel}:") and "张伟" not in str(error)
    assert (reading.doc is not None) == (state == catalog.UNFIT)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[: len(data) - 20], "corrupt or truncated"),
        (lambda data: b"age-encryption.org/v1\n-> X25519 garbage\n", "corrupt"),
    ],
    ids=["truncated", "garbage-header"],
)
def test_a_damaged_file_is_broken(keys, damage, message: str) -> None:
    keyring, public, _ = keys
    reading = catalog.read(keyring, REL, damage(sealed(PROFILE, public)))
    assert reading.state == catalog.BROKEN and reading.findings[0].field == "(file)"


def test_content_that_is_not_utf8_is_broken(keys) -> None:
    keyring, public, _ = keys
    data = encrypt("---\nname: 张伟\n---\n".encode("gb18030"), [public])
    reading = catalog.read(keyring, REL, data)
    assert reading.state == catalog.BROKEN
    assert reading.findings[0].message == "decrypted content is not UTF-8"


def many(public: str, count: int) -> list[tuple[str, bytes]]:
    pairs = []
    for n in range(count):
        cid = f"C-{n:06d}"
        text = PROFILE.replace("C-aaaaaa", cid).replace("张伟", f"张伟{n}")
        pairs.append((f"cadres/{cid}.md.age", sealed(text, public)))
    pairs.append(("cadres/C-broken.md.age", b"age-encryption.org/v1\n"))
    return pairs


def test_forked_workers_give_what_one_process_gives(keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the threshold the work is done in forked processes: `read` as patched in this
    process is never called, and the answers are the same, in order."""
    keyring, public, outsider = keys
    if catalog.processes() < 2:
        pytest.skip("one core: readings stay in this process")
    pairs = many(public, 12)
    alone = catalog.readings(keyring, pairs)
    here: list[str] = []
    real = catalog.read

    def counting(keyring, rel, data, keep_text=True):
        here.append(rel)
        return real(keyring, rel, data, keep_text)

    monkeypatch.setattr(catalog, "PARALLEL_FROM", 4)
    monkeypatch.setattr(catalog, "read", counting)
    forked = catalog.readings(keyring, pairs)
    assert here == []
    assert forked == alone
    assert [r.state for r in forked] == [catalog.OK] * 12 + [catalog.BROKEN]
    assert {r.state for r in catalog.readings(outsider, pairs[:12])} == {catalog.UNREADABLE}


class Unpicklable(bytes):
    def __reduce__(self):
        raise AssertionError("ciphertext sent to a worker through a pipe")


def test_workers_take_the_ciphertext_from_the_parent_not_a_pipe(
    keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forked workers inherit the pairs: only spans go out, only readings come back."""
    keyring, public, _ = keys
    if catalog.processes() < 2:
        pytest.skip("one core: readings stay in this process")
    pairs = [(rel, Unpicklable(data)) for rel, data in many(public, 12)]
    monkeypatch.setattr(catalog, "PARALLEL_FROM", 4)
    readings = catalog.readings(keyring, pairs, keep_text=False)
    assert [r.state for r in readings] == [catalog.OK] * 12 + [catalog.BROKEN]
    assert [r.rel for r in readings] == [rel for rel, _ in pairs]


def on_disk(root: Path, public: str, n: int) -> list[tuple[str, str]]:
    """many(public, n) written under root: (rel, path) of each."""
    (root / "cadres").mkdir()
    files = []
    for rel, data in many(public, n):
        (root / rel).write_bytes(data)
        files.append((rel, str(root / rel)))
    return files


def test_files_are_read_hashed_and_decrypted_in_the_workers(
    keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring, public, _ = keys
    files = on_disk(tmp_path, public, 12)
    monkeypatch.setattr(catalog, "PARALLEL_FROM", 4)
    here: list[str] = []
    real = catalog._hashed_reading
    monkeypatch.setattr(
        catalog,
        "_hashed_reading",
        lambda *a: here.append(a[2]) or real(*a),  # type: ignore
    )
    done = catalog.file_readings(keyring, tmp_path, files, keep_text=False)
    assert here == [] or catalog.processes() < 2  # in the workers, where there are two cores
    for (rel, path), (digest, reading) in zip(files, done, strict=True):
        data = Path(path).read_bytes()
        assert digest == hashlib.sha256(data).digest()
        assert reading == catalog.read(keyring, rel, data, keep_text=False)


def test_a_shape_is_given_to_each_reading_where_it_is_read(
    keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What crosses the pipe is shape(reading), made in the worker; in order, as read alone."""
    keyring, public, _ = keys
    files = on_disk(tmp_path, public, 12)
    monkeypatch.setattr(catalog, "PARALLEL_FROM", 4)
    parent = os.getpid()

    def shape(reading: catalog.Reading) -> tuple[str, str, bool]:
        return reading.rel, reading.state, os.getpid() != parent

    done = catalog.file_readings(keyring, tmp_path, files, keep_text=False, shape=shape)
    states = [catalog.OK] * 12 + [catalog.BROKEN]  # many(): twelve files and a broken one
    assert [answer for _, answer in done] == [
        (rel, state, catalog.processes() > 1) for (rel, _), state in zip(files, states, strict=True)
    ]


def test_a_file_the_workers_cannot_read_is_refused_as_read_regular_refuses_it(
    keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring, public, _ = keys
    files = on_disk(tmp_path, public, 6)
    (tmp_path / "elsewhere.age").write_bytes(b"x")
    os.unlink(files[2][1])
    os.symlink(tmp_path / "elsewhere.age", files[2][1])
    monkeypatch.setattr(catalog, "PARALLEL_FROM", 4)
    with pytest.raises(UnsafePath, match="symlink"):
        catalog.file_readings(keyring, tmp_path, files)


def test_below_the_threshold_nothing_forks(keys, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring, public, _ = keys
    here: list[str] = []
    real = catalog.read
    monkeypatch.setattr(catalog, "read", lambda k, r, d, t=True: here.append(r) or real(k, r, d, t))
    catalog.readings(keyring, many(public, 3))
    assert len(here) == 4


def test_pairs_from_a_revision_and_from_the_staged_index(keys, tmp_path: Path) -> None:
    keyring, public, _ = keys

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q")
    path = tmp_path / REL
    path.parent.mkdir(parents=True)
    path.write_bytes(sealed(PROFILE, public))
    git("add", REL)
    git("-c", "commit.gpgsign=false", "commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD")
    path.write_bytes(sealed(PROFILE.replace("张伟", "张卫国"), public))
    git("add", REL)
    path.write_bytes(sealed(PROFILE.replace("张伟", "李娜"), public))  # not staged

    def name(pairs) -> str:
        [(rel, data)] = list(pairs)
        reading = catalog.read(keyring, rel, data)
        assert reading.doc is not None
        return reading.doc.meta["name"]

    assert name(catalog.at_revision(tmp_path, first, [REL])) == "张伟"
    assert name(catalog.staged(tmp_path, [REL])) == "张卫国"
    assert list(catalog.at_revision(tmp_path, first, ["cadres/C-bbbbbb.md.age"])) == []


def test_an_item_from_the_index_decrypts_its_body_once_when_asked() -> None:
    fetched: list[str] = []

    def fetch(rel: str) -> str:
        fetched.append(rel)
        return PROFILE

    item = catalog.Item("profile", REL, meta={"id": "C-aaaaaa", "name": "张伟"}, fetch=fetch)
    assert item.meta["name"] == "张伟" and fetched == []
    assert "注意语气" in item.doc.body and item.text == PROFILE
    assert fetched == [REL]  # its own path, asked once
    built = catalog.Item("profile", REL, Document({"name": "张伟"}), "text")
    assert (built.meta, built.text, built.doc.meta) == ({"name": "张伟"}, "text", {"name": "张伟"})


def test_the_catalog_files_each_state_where_read_commands_look(keys) -> None:
    keyring, public, _ = keys
    found = catalog.Catalog()
    pairs = [
        (REL, sealed(PROFILE, public)),
        ("cadres/C-bbbbbb.md.age", b"age-encryption.org/v1\n"),
        ("cadres/C-cccccc.md.age", sealed("---\nid: C-cccccc\nname: 5\nevents: 5\n---\n", public)),
    ]
    for reading in catalog.readings(keyring, pairs, keep_text=False):
        catalog.add_reading(found, reading, lambda rel: PROFILE)
    assert list(found.profiles) == ["C-aaaaaa"] and found.cadre_name("C-aaaaaa") == "张伟"
    assert found.unreadable == ["cadres/C-bbbbbb.md.age"]  # broken: nothing this identity can use
    assert [rel for rel, _ in found.malformed] == ["cadres/C-cccccc.md.age"]
    assert found.profiles["C-aaaaaa"].text == PROFILE
