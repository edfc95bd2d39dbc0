"""The encrypted index (index.py): right after every kind of change, rebuilt when it cannot be
trusted, owner-only, out of git, and no plaintext in its bytes."""

from __future__ import annotations

import marshal
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pyrage
import pytest

from conftest import Setup, age_cli, ok
from talkbook import catalog, index, indexchunks, indexfile
from talkbook.app import App
from talkbook.crypto import encrypt
from talkbook.errors import UnsafePath
from talkbook.models import parse


def app_of(ws: Setup, pid: str = "P-01") -> App:
    return App(ws.root, ws.keys[pid])


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def index_files(root: Path) -> list[Path]:
    """The index files (not the notes or stat files beside them: see note_files)."""
    besides = note_files(root) + stat_files(root)
    return sorted(p for p in (root / indexfile.FOLDER).glob("index-*.age") if p not in besides)


def stat_files(root: Path) -> list[Path]:
    return sorted((root / indexfile.FOLDER).glob("index-*.stat.age"))


def note_files(root: Path) -> list[Path]:
    return sorted((root / indexfile.FOLDER).glob("index-*.notes.age"))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths catalog.read decrypts, in this process (the sequential path)."""
    seen: list[str] = []
    real = catalog.read

    def counting(keyring, rel, data, keep_text=True):
        seen.append(rel)
        return real(keyring, rel, data, keep_text)

    monkeypatch.setattr(catalog, "read", counting)
    return seen


def renamed(ws: Setup, cadre: str, name: str, tmp_path: Path) -> None:
    """`talkbook edit --from`: the profile with another name."""
    text = app_of(ws).vault.read_text(ws.path(f"cadres/{cadre}.md.age"))
    source = tmp_path / "edited.md"
    source.write_text(text.replace("张伟", name), encoding="utf-8")
    ok(ws.as_("P-01", "edit", cadre, "--from", source))


def test_talkbook_index_builds_then_answers_from_the_index(workspace: Setup, cadre: str) -> None:
    shutil.rmtree(workspace.root / indexfile.FOLDER)  # the one adding the cadre left an index
    first = ok(workspace.as_("P-01", "index"))
    assert "1 files, 1 decrypted now, 0 from the index, 0 not readable" in first.stderr
    again = ok(workspace.as_("P-01", "index"))
    assert "1 files, 0 decrypted now, 1 from the index, 0 not readable" in again.stderr
    outsider = ok(workspace.as_("P-03", "index"))  # a speaker reads no profile
    assert "1 not readable with your identity" in outsider.stderr


def test_an_edit_shows_in_the_next_load_and_only_it_is_decrypted(
    workspace: Setup, cadre: str, tmp_path: Path, counted: list[str]
) -> None:
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    plan = next(workspace.root.glob("talks/*/*/plan.md.age")).relative_to(workspace.root)
    assert counted == [str(plan)]  # by the plan command, as it noted what it wrote
    counted.clear()
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert counted == []
    renamed(workspace, cadre, "张卫国", tmp_path)
    counted.clear()
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert counted == [f"cadres/{cadre}.md.age"]


@pytest.mark.interop
def test_a_hand_edit_with_the_age_cli_shows_in_the_very_next_load(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    age = age_cli()
    path = workspace.path(f"cadres/{cadre}.md.age")
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    plain = subprocess.run(
        [age, "-d", "-i", str(workspace.keys["P-01"]), str(path)], capture_output=True, check=True
    ).stdout.decode("utf-8")
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(workspace.public["P-01"] + "\n", encoding="utf-8")
    subprocess.run(
        [age, "-e", "-R", str(recipients), "-o", str(path)],
        input=plain.replace("张伟", "张建华").encode("utf-8"),
        check=True,
    )
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张建华"


def test_checkouts_of_older_revisions_and_back(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    """A checkout changes files under the index: an older version is read again, a file the
    revision does not hold drops out, and coming back needs no decryption of what it knew."""
    before = git(workspace.root, "rev-parse", "HEAD").strip()
    renamed(workspace, cadre, "张卫国", tmp_path)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    git(workspace.root, "checkout", "-q", before)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    git(workspace.root, "checkout", "-q", f"{before}~1")  # before the cadre was added
    assert catalog.load(app_of(workspace)).profiles == {}
    assert index.refresh(app_of(workspace)).files == 0
    git(workspace.root, "checkout", "-q", "main")
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"


def test_front_matter_from_the_index_is_what_parse_gives(
    workspace: Setup, cadre: str, counted: list[str]
) -> None:
    app = app_of(workspace)
    text = app.vault.read_text(workspace.path(f"cadres/{cadre}.md.age"))
    catalog.load(app_of(workspace))
    counted.clear()
    item = catalog.load(app_of(workspace)).profiles[cadre]
    assert counted == []  # all from the index
    assert item.meta == parse(text).meta
    assert item.meta["birth_date"] == "1968-05-12"  # models.to_plain: dates as ISO text
    assert item.text == text  # the body, decrypted when asked for
    assert "不宜追问家庭细节" in item.doc.body


DAMAGES = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: os.urandom(len(data)),
    "empty": lambda data: b"",
}


def test_a_damaged_index_is_rebuilt(workspace: Setup, cadre: str) -> None:
    catalog.load(app_of(workspace))
    [path] = index_files(workspace.root)
    for name, damage in DAMAGES.items():
        path.write_bytes(damage(path.read_bytes()))
        summary = index.refresh(app_of(workspace))
        assert (summary.rebuilt, summary.decrypted) == ("damaged", 1), name
        assert index.refresh(app_of(workspace)).rebuilt == ""


def crafted(rel: str, name: str) -> bytes:
    reading = ["profile", {"id": rel[7:14], "name": name}, [], "", ""]
    content = {
        "format": indexfile.FORMAT,
        "root": "",
        "rules": "",
        "rels": [rel],
        "stamps": [None],
        "digests": [b"0" * 32],
        "states": ["ok"],
        "readings": [indexchunks.encode([reading])],
    }
    return indexfile.MAGIC + b"0" * 64 + b"\n" + marshal.dumps(content)


def test_a_foreign_index_encrypted_to_my_public_key_is_rejected(
    workspace: Setup, cadre: str
) -> None:
    """Anyone can encrypt to a public key: the crafted index fails the HMAC."""
    catalog.load(app_of(workspace))
    [path] = index_files(workspace.root)
    rel = f"cadres/{cadre}.md.age"
    forged = crafted(rel, "假名字")
    path.write_bytes(
        pyrage.encrypt(forged, [pyrage.ssh.Recipient.from_str(workspace.public["P-01"])])
    )
    summary = index.refresh(app_of(workspace))
    assert (summary.rebuilt, summary.decrypted) == ("foreign", 1)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"


def resealed(app: App, change, stat_file: bool = False) -> None:
    """Rewrite the index's content (or its stat file's) with the right key: what only its
    owner can do."""
    store = indexfile.Store.open(app.workspace.root, app.keyring)
    assert store is not None
    entries, why = store.load()
    assert why == ""
    store.save(entries)
    path = store.stat_path if stat_file else store.path
    plaintext = pyrage.decrypt(path.read_bytes(), app.keyring.identities)
    body = marshal.loads(plaintext[len(indexfile.MAGIC) + 65 :])
    change(body)
    data = marshal.dumps(body)
    mac = indexfile.hmac.new(store.key, data, "sha256").hexdigest().encode()
    path.write_bytes(encrypt(indexfile.MAGIC + mac + b"\n" + data, store.recipients))


CHANGES = {
    "format": (lambda body: body.update(format=0), "outdated"),
    "schemas": (lambda body: body.update(rules="older schemas"), "outdated"),
    "another workspace": (lambda body: body.update(root="0" * 40), "foreign"),
    "unknown state": (lambda body: body.update(states=["nonsense"]), "damaged"),
    "columns of other lengths": (lambda body: body.update(digests=[]), "damaged"),
    "no readings": (lambda body: body.update(readings=None), "damaged"),
    "readings not in chunks": (lambda body: body.update(readings=b""), "damaged"),
}


def test_an_index_of_another_format_or_workspace_is_rebuilt(workspace: Setup, cadre: str) -> None:
    for name, (change, why) in CHANGES.items():
        catalog.load(app_of(workspace))
        resealed(app_of(workspace), change)
        summary = index.refresh(app_of(workspace))
        assert (summary.rebuilt, summary.decrypted) == (why, 1), name


@pytest.mark.parametrize("blob", [b"not marshal", marshal.dumps([]), marshal.dumps({})])
def test_stamps_or_folders_that_do_not_decode_mean_hash_and_list_again(
    workspace: Setup, cadre: str, counted: list[str], blob: bytes
) -> None:
    """The stamps and the talk folders are decoded only where used (the sweeping child); a
    blob that gives no stamp per path, or no folders, is none: every file is hashed (its
    bytes are the known ones: nothing decrypted) and every folder listed, never misread."""
    catalog.load(app_of(workspace))
    resealed(app_of(workspace), lambda body: body.update(stamps=blob, folders=blob), True)
    counted.clear()
    summary = index.refresh(app_of(workspace))
    assert (summary.rebuilt, summary.decrypted, counted) == ("", 0, [])
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"


@pytest.mark.parametrize("planted", ["missing", "garbage", "symlink", "another index's"])
def test_an_index_without_its_stat_file_decrypts_nothing_and_writes_it_again(
    workspace: Setup,
    cadre: str,
    counted: list[str],
    tmp_path: Path,
    planted: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stamps and talk folders live in a stat file beside the index, bound to it by its
    HMAC. None there, one that is not this identity's, a link, or one saved with another
    index (a kill between the two writes): every file is hashed (their bytes are the known
    ones: nothing decrypted) and the next save writes it again (here at once: a few files
    without stamps are otherwise hashed each time rather than saved); never misread."""
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    catalog.load(app_of(workspace))
    [stat_file] = stat_files(workspace.root)
    stat_file.unlink()
    if planted == "garbage":
        stat_file.write_bytes(encrypt(b"talkbook-index nonsense", [workspace.public["P-01"]]))
    elif planted == "symlink":
        (tmp_path / "elsewhere").write_bytes(b"")
        stat_file.symlink_to(tmp_path / "elsewhere")
    elif planted == "another index's":  # the index as saved, the stat file of a later one
        store = indexfile.Store.open(workspace.root, app_of(workspace).keyring)
        assert store is not None
        columns, _ = store.load()
        store.save(columns)
        [path] = index_files(workspace.root)
        saved = path.read_bytes()
        columns.states[0] = catalog.UNREADABLE
        store.save(columns)
        path.write_bytes(saved)
    counted.clear()
    summary = index.refresh(app_of(workspace))
    assert (summary.rebuilt, summary.decrypted, counted) == ("", 0, [])
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert stat_file.is_file() and not stat_file.is_symlink()
    assert planted != "symlink" or (tmp_path / "elsewhere").read_bytes() == b""
    assert index_files(workspace.root)[0].stat().st_size > 0


def test_owner_only_and_no_plaintext_in_the_bytes(workspace: Setup, cadre: str) -> None:
    catalog.load(app_of(workspace))
    folder = workspace.root / indexfile.FOLDER
    [path] = index_files(workspace.root)
    assert note_files(workspace.root)  # the cadre the fixture wrote, noted over the index
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for each in (path, *note_files(workspace.root), *stat_files(workspace.root)):
        assert stat.S_IMODE(each.stat().st_mode) == 0o600
        data = each.read_bytes()
        assert data.startswith(b"age-encryption.org/v1\n")
        for secret in ("张伟", "市发展和改革委员会", "爱人"):
            assert secret.encode("utf-8") not in data
    assert sorted(folder.iterdir()) == sorted(
        [path, *note_files(workspace.root), *stat_files(workspace.root)]
    )


def test_git_status_stays_clean_without_the_gitignore_line(workspace: Setup, cadre: str) -> None:
    ignore = workspace.path(".gitignore")
    ignore.write_text(ignore.read_text().replace(".talkbook/\n", ""), encoding="utf-8")
    git(workspace.root, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "x", ".gitignore")
    assert git(workspace.root, "status", "--porcelain") == ""
    catalog.load(app_of(workspace))
    assert index_files(workspace.root)
    assert git(workspace.root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(workspace.root, "ls-files", indexfile.FOLDER) == ""


def test_a_symlinked_index_folder_is_not_used(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(workspace.root / indexfile.FOLDER)  # `cadre new` made it (it reads the others)
    (workspace.root / indexfile.FOLDER).symlink_to(elsewhere)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert list(elsewhere.iterdir()) == []


def test_a_killed_write_leaves_the_old_index_and_its_temp_file_goes(
    workspace: Setup, cadre: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.load(app_of(workspace))
    [path] = index_files(workspace.root)
    old = path.read_bytes()
    stray = path.parent / f".{path.name}.tmp-{_dead_pid()}-0badc0de"  # what a kill -9 leaves
    renamed(workspace, cadre, "张卫国", tmp_path)

    def killed(target: Path, data: bytes, mode: int = 0o644, root: Path | None = None) -> None:
        stray.write_bytes(data[:10])
        raise OSError("killed")

    monkeypatch.setattr("talkbook.fsutil.atomic_write", killed)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert path.read_bytes() == old  # the save failed: the old index stays, whole
    monkeypatch.undo()
    assert index.refresh(app_of(workspace)).rebuilt == ""  # the old one is still valid
    assert not stray.exists()


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_two_refreshes_at_once_leave_a_valid_index(workspace: Setup, cadre: str) -> None:
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    results: list[index.Summary] = []
    threads = [
        threading.Thread(target=lambda: results.append(index.refresh(app_of(workspace))))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.files for r in results] == [2, 2]
    summary = index.refresh(app_of(workspace))
    assert (summary.rebuilt, summary.decrypted) == ("", 0)


def test_each_identity_has_its_own_index(workspace: Setup, cadre: str) -> None:
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    speaker = catalog.load(app_of(workspace, "P-03"))
    assert (len(speaker.plans), speaker.unreadable) == (1, [f"cadres/{cadre}.md.age"])
    custodian = catalog.load(app_of(workspace))
    assert custodian.cadre_name(cadre) == "张伟"
    assert len(index_files(workspace.root)) == 2
    assert index.refresh(app_of(workspace, "P-03")).decrypted == 0


def test_copying_the_workspace_keeps_nothing_stale(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    catalog.load(app_of(workspace))
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy, symlinks=True)
    moved = App(copy, workspace.keys["P-01"])
    summary = index.refresh(moved)  # inodes differ: hashed again, not decrypted
    assert (summary.rebuilt, summary.decrypted, summary.cached) == ("", 0, 1)


def test_the_listing_is_the_workspace_s_own(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    """index.Listing lists what Workspace.encrypted_files globs, and refuses a symlinked talk
    folder as reading through it does."""
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    (workspace.root / "talks" / "2026" / ".hidden.age").mkdir()
    ws = app_of(workspace).workspace
    assert index.listing(ws.root) == sorted(ws.relative(p) for p in ws.encrypted_files())
    outside = tmp_path / "outside" / "T-zzzzzz"
    outside.mkdir(parents=True)
    (outside / "plan.md.age").write_bytes(b"age-encryption.org/v1\n")
    (workspace.root / "talks" / "2026" / "T-zzzzzz").symlink_to(outside)
    with pytest.raises(UnsafePath, match="T-zzzzzz is a symlink"):
        catalog.load(app_of(workspace))


def test_settled_folders_and_files_are_trusted_by_their_stat_until_they_change(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    """With nothing racy, a talk folder's listing and a file's fingerprint answer for them; a
    file added to the folder, removed, or rewritten in place is seen all the same."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    talk_id = talk.stdout.strip().splitlines()[-1]
    folder = next(workspace.root.glob(f"talks/*/{talk_id}"))
    catalog.load(app_of(workspace))
    counted.clear()
    assert catalog.load(app_of(workspace)).plans and counted == []
    added = folder / "record.md.age"
    added.write_bytes((folder / "plan.md.age").read_bytes())  # a plan where a record goes
    found = catalog.load(app_of(workspace))
    assert [rel for rel, _ in found.malformed] == [added.relative_to(workspace.root).as_posix()]
    added.unlink()
    assert catalog.load(app_of(workspace)).malformed == []
    profile = workspace.path(f"cadres/{cadre}.md.age")
    with profile.open("r+b") as handle:  # in place: same inode, same size
        data = bytearray(handle.read())
        data[-5] ^= 1
        handle.seek(0)
        handle.write(data)
    counted.clear()
    broken = catalog.load(app_of(workspace))
    assert counted == [f"cadres/{cadre}.md.age"] and broken.unreadable == [f"cadres/{cadre}.md.age"]


def planned(workspace: Setup, cadre: str, day: str) -> Path:
    """A plan made by the command; its talk folder."""
    at = f"2026-03-{day}T09:30"
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", at))
    return next(workspace.root.glob(f"talks/*/{talk.stdout.strip().splitlines()[-1]}"))


def test_talk_folders_as_saved_are_not_listed_one_by_one(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    """Every talk folder as the index saved it (path, mtime, ctime, inode, in order): the
    saved paths are the listing, with no folder looked up or listed; a folder changed in any
    way is looked at again."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    folders = [planned(workspace, cadre, day) for day in ("10", "11")]
    monkeypatch.setattr(index, "RACY_REHASH", 0)  # saved at once, not noted: as after a pull
    index.refresh(app_of(workspace))
    monkeypatch.setattr(index, "RACY_REHASH", 64)
    looked_at = listed_again(monkeypatch)
    counted.clear()
    assert len(index.refresh(app_of(workspace)).columns.rels) == 3 and counted == []
    assert looked_at == []
    os.utime(folders[0], ns=(0, folders[0].stat().st_mtime_ns))  # its ctime moves
    added = folders[0] / "record.md.age"
    added.write_bytes((folders[0] / "plan.md.age").read_bytes())
    os.utime(folders[0], ns=(0, folders[0].stat().st_mtime_ns))
    found = catalog.load(app_of(workspace))
    assert [rel for rel, _ in found.malformed] == [added.relative_to(workspace.root).as_posix()]
    assert looked_at == listed(workspace, folders[0])  # that one only, and none looked at
    shutil.rmtree(folders[1])
    assert len(catalog.load(app_of(workspace)).plans) == 1


def listed_again(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a listing does per talk folder: "looked at" one by one (Listing._talk: its key
    against the saved one) and "listed" (Listing._age_names: its names read again)."""
    done: list[str] = []
    real_talk, real_names = index.Listing._talk, index.Listing._age_names

    def talk(self: index.Listing, rel: str, *args: object) -> list[str] | None:
        done.append(f"looked at {rel}")
        return real_talk(self, rel, *args)  # type: ignore[arg-type]

    def names(self: index.Listing, rel: str) -> list[str]:
        done.append(f"listed {rel}")
        return real_names(self, rel)

    monkeypatch.setattr(index.Listing, "_talk", talk)
    monkeypatch.setattr(index.Listing, "_age_names", names)
    return done


def listed(workspace: Setup, *folders: Path) -> list[str]:
    return sorted(f"listed {folder.relative_to(workspace.root).as_posix()}" for folder in folders)


def as_listed(workspace: Setup) -> list[str]:
    """The tree's files as a listing with no index gives them."""
    return index.listing(workspace.root)


@pytest.mark.parametrize("settled", [True, False])
def test_a_few_talk_folders_changed_are_the_only_ones_listed_again(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, settled: bool
) -> None:
    """A few talk folders added, changed or gone since the save (a command wrote there): the
    saved paths of the others, and those few listed again, are the listing. Settled, they
    are worth a save, after which no folder is listed; not yet, the saved folders are kept
    and the few listed again until they settle."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    folders = [planned(workspace, cadre, day) for day in ("10", "11", "12")]
    monkeypatch.setattr(index, "RACY_REHASH", 0)  # saved at once, not noted: as after a pull
    index.refresh(app_of(workspace))
    monkeypatch.setattr(index, "RACY_REHASH", 64)
    if not settled:
        monkeypatch.setattr(index, "RACY_NS", 1 << 62)
    looked_at = listed_again(monkeypatch)
    added = folders[0] / "record.md.age"
    added.write_bytes((folders[0] / "plan.md.age").read_bytes())
    shutil.rmtree(folders[1])
    new = folders[2].parent / "T-zzzzzz"
    shutil.copytree(folders[2], new)  # a talk folder as a pull brings one
    other_year = workspace.root / "talks" / "2031" / "T-yyyyyy"
    shutil.copytree(folders[2], other_year)  # and one in a year that had none
    looked_at.clear()
    rels = index.refresh(app_of(workspace)).columns.rels
    assert sorted(looked_at) == listed(workspace, folders[0], new, other_year)
    assert rels == as_listed(workspace)
    looked_at.clear()
    rels = index.refresh(app_of(workspace)).columns.rels
    again = [] if settled else listed(workspace, folders[0], new, other_year)
    assert sorted(looked_at) == again
    assert rels == as_listed(workspace)


def test_many_talk_folders_changed_are_listed_one_by_one(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "RACY_NS", 0)
    folders = [planned(workspace, cadre, day) for day in ("10", "11", "12")]
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    index.refresh(app_of(workspace))
    monkeypatch.setattr(index, "RACY_REHASH", 1)  # more than this differ: every folder
    looked_at = listed_again(monkeypatch)
    for folder in folders[:2]:
        (folder / "record.md.age").write_bytes((folder / "plan.md.age").read_bytes())
    rels = index.refresh(app_of(workspace)).columns.rels
    assert len([done for done in looked_at if done.startswith("looked at")]) == 3
    assert sorted(done for done in looked_at if done.startswith("listed")) == listed(
        workspace, *folders[:2]
    )
    assert rels == as_listed(workspace)


def test_saved_folder_keys_that_are_not_this_codes_mean_every_folder_is_listed(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "RACY_NS", 0)
    folders = [planned(workspace, cadre, day) for day in ("10", "11")]
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    index.refresh(app_of(workspace))
    monkeypatch.setattr(index, "RACY_REHASH", 64)
    (folders[0] / "record.md.age").write_bytes((folders[0] / "plan.md.age").read_bytes())
    looked_at = listed_again(monkeypatch)
    year = folders[0].parent.relative_to(workspace.root).as_posix()
    monkeypatch.setattr(indexfile.Store, "folder_keys", lambda self: {year: marshal.dumps([[1]])})
    rels = index.refresh(app_of(workspace)).columns.rels
    assert len([done for done in looked_at if done.startswith("looked at")]) == 2
    assert rels == as_listed(workspace)


@pytest.mark.parametrize("apart", [False, True])
def test_a_tail_found_damaged_as_a_command_reads_it_means_read_again(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, apart: bool
) -> None:
    """A talk's lists are decoded when a command first asks for them, after the index was
    loaded: one that does not decode (only a writer's bug could seal it) is found there, the
    index built again from the files and the command's answer computed again, right; also
    when it was computed while a child swept the tree (the answer then stood as computed)."""
    monkeypatch.setattr(index, "RACY_REHASH", 0)  # saved, not noted: its chunks are read
    if apart:  # as on two cores, every file settled at once: the child says "unchanged"
        monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
        monkeypatch.setattr(catalog, "processes", lambda: 2)
        monkeypatch.setattr(index, "RACY_NS", 0)
    folder = planned(workspace, cadre, "10")
    index.refresh(app_of(workspace))

    def broken_tails(body: dict) -> None:
        parts = [indexchunks.heads(chunk) for chunk in body["readings"]]
        body["readings"] = [
            marshal.dumps((rows, marshal.dumps([None] * len(rows)))) for rows, _ in parts
        ]

    resealed(app_of(workspace), broken_tails)
    index.refresh(app_of(workspace))  # every file hashed, none changed: saved with its chunks
    talk, plan = folder.name, app_of(workspace).read(folder / "plan.md.age").meta
    read = catalog.load_into(app_of(workspace), lambda c: c.plans[talk].meta)
    assert read == plan and "decisions" in read
    assert index.refresh(app_of(workspace)).rebuilt == ""


def test_a_warm_run_with_nothing_changed_writes_nothing(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    """Nothing changed, nothing saved; a file rewritten with the same bytes (a new inode, say)
    is hashed, not decrypted, and saved once with its new stamp."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    for notes in note_files(workspace.root):  # what was written, saved with stamps instead
        notes.unlink()
    catalog.load(app_of(workspace))
    saved: list[int] = []
    real = indexfile.Store.save
    monkeypatch.setattr(indexfile.Store, "save", lambda *a: saved.append(1) or real(*a))
    counted.clear()
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert index.refresh(app_of(workspace)).cached == 2
    assert (saved, counted) == ([], [])
    profile = workspace.path(f"cadres/{cadre}.md.age")
    data = profile.read_bytes()
    profile.unlink()
    profile.write_bytes(data)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert (saved, counted) == ([1], [])
    assert index.refresh(app_of(workspace)).cached == 2 and saved == [1]


def test_readings_that_do_not_match_their_columns_are_rebuilt(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The readings are decoded only when a catalog needs them: a blob of the wrong length,
    which only a writer's bug could seal, is found then and the index built again."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    catalog.load(app_of(workspace))
    resealed(app_of(workspace), lambda body: body.update(readings=[indexchunks.encode([])]))
    assert index.refresh(app_of(workspace)).rebuilt == ""  # nothing changed: not decoded
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    summary = index.refresh(app_of(workspace))
    assert (summary.rebuilt, summary.cached, len(summary.columns.readings())) == ("", 1, 1)


def test_a_stamp_matches_only_a_regular_file(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    """A file swapped for a symlink to the same bytes has another stamp (its mode): refused
    as when the index did not know it."""
    catalog.load(app_of(workspace))
    profile = workspace.path(f"cadres/{cadre}.md.age")
    moved = tmp_path / "profile.age"
    profile.rename(moved)
    profile.symlink_to(moved)
    with pytest.raises(UnsafePath, match="symlink"):
        catalog.load(app_of(workspace))


def test_readings_that_do_not_match_are_rebuilt_when_a_file_changed(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new file needs the known readings: the wrong blob is found there and every file read
    again."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    catalog.load(app_of(workspace))
    resealed(app_of(workspace), lambda body: body.update(readings=[indexchunks.encode([])]))
    profile = workspace.path(f"cadres/{cadre}.md.age")
    workspace.path("cadres/C-zzzzzz.md.age").write_bytes(profile.read_bytes())
    summary = index.refresh(app_of(workspace))
    assert (summary.rebuilt, summary.decrypted) == ("damaged", 2)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"


def _columns(rels: list[str], readings: list | None, chunks: list[bytes] | None = None):
    n = len(rels)
    return indexfile.Columns(rels, [None] * n, [b""] * n, ["ok"] * n, readings, chunks)


def test_a_save_encodes_again_only_the_chunk_a_new_file_lands_in() -> None:
    rels = [f"talks/2026/T-{n:06d}/plan.md.age" for n in range(0, 6000, 2)]
    readings = [["plan", {"id": rel[11:19], "n": n}, [], "", ""] for n, rel in enumerate(rels)]
    chunks = _columns(rels, readings).chunks()
    assert len(chunks) > 2
    known = _columns(rels, None, chunks)
    assert known.readings() == readings
    k = 1500
    added = f"talks/2026/T-{2 * k + 1:06d}/plan.md.age"  # between rels[k] and rels[k + 1]
    fresh_rels = [*rels[: k + 1], added, *rels[k + 1 :]]
    fresh_readings = [*readings[: k + 1], ["plan", {"id": "new"}, [], "", ""], *readings[k + 1 :]]
    fresh = _columns(fresh_rels, fresh_readings)
    fresh._reuse = (known, [*range(k + 1), None, *range(k + 1, len(rels))])
    written = fresh.chunks()
    assert sum(any(chunk is old for old in chunks) for chunk in written) == len(chunks) - 1
    assert _columns(fresh_rels, None, written).readings() == fresh_readings


def test_chunks_of_other_bounds_are_never_reused_misplaced() -> None:
    rels = [f"talks/2026/T-{n:06d}/plan.md.age" for n in range(2000)]
    readings = [["plan", {"n": n}, [], "", ""] for n in range(2000)]
    chunks = [indexchunks.encode(readings[:700]), indexchunks.encode(readings[700:])]
    known = _columns(rels, None, chunks)
    assert known.readings() == readings
    fresh = _columns(rels, list(readings))
    fresh._reuse = (known, list(range(2000)))
    assert _columns(rels, None, fresh.chunks()).readings() == readings
    assert not any(chunk is old for chunk in fresh.chunks() for old in known._chunks or ())


def test_a_file_name_not_in_utf8_is_one_malformed_file_not_a_crash(
    workspace: Setup, cadre: str
) -> None:
    """Anyone who can push can add `cadres/x\\xff.md.age`: the index is still saved (its chunks
    are cut by the name's bytes) and every later command still runs."""
    ok(workspace.as_("P-01", "index"))
    source = workspace.path(f"cadres/{cadre}.md.age")
    shutil.copy(source, os.path.join(os.fsencode(workspace.root), b"cadres", b"x\xff.md.age"))
    for _ in range(2):  # the second run reads the index the first one saved
        result = workspace.as_("P-01", "index")
        assert result.exit_code == 0, result.stderr
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    listed = workspace.as_("P-01", "list", "cadres", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    assert cadre in listed.stdout


def test_what_a_command_writes_is_in_the_index_it_leaves(
    workspace: Setup, cadre: str, counted: list[str]
) -> None:
    """A command that refreshed the index (plan reads the catalog) tells it what it wrote:
    the next load decrypts nothing, and has the new plan."""
    ok(workspace.as_("P-01", "index"))
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    counted.clear()
    summary = index.refresh(app_of(workspace))
    assert counted == [] and summary.decrypted == 0
    assert len(catalog.load(app_of(workspace)).plans) == 1
    assert None in summary.columns.stamps  # just written: hashed again, not trusted by stamp


def test_only_indexed_paths_are_noted(workspace: Setup) -> None:
    assert index._indexed("cadres/C-1.md.age")
    assert index._indexed("talks/2026/T-1/plan.md.age")
    assert not index._indexed("talkbook.toml")
    assert not index._indexed("cadres/sub/C-1.md.age")
    assert not index._indexed("talks/2026/T-1/notes.txt")


def test_a_write_notes_its_files_over_the_index_and_leaves_the_index_as_it_was(
    workspace: Setup, cadre: str, counted: list[str]
) -> None:
    """plan writes one file: a small notes file over the index, not the index again."""
    ok(workspace.as_("P-01", "index"))
    [path] = index_files(workspace.root)
    before = path.read_bytes()
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    assert path.read_bytes() == before and note_files(workspace.root)
    counted.clear()
    assert len(catalog.load(app_of(workspace)).plans) == 1 and counted == []


def test_a_write_notes_its_files_without_decoding_the_readings_or_the_stat_file(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a write notes is its own few entries: no other reading is decoded whole, no
    stamp read from the stat file (the notes' stamps are their own). The tree is swept in a
    child, as on two cores with a large index: the command's process reads neither."""
    ok(workspace.as_("P-01", "index"))
    monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
    monkeypatch.setattr(catalog, "processes", lambda: 2)
    decoded: list[str] = []
    whole, stat_read = indexfile.Columns.readings, indexfile.Store._stat_blob

    def readings(self: indexfile.Columns) -> list:
        if self._readings is None:  # decoded now, not a noted few held already
            decoded.append("readings")
        return whole(self)

    def stat_blob(self: indexfile.Store, name: str) -> bytes:
        decoded.append(name)
        return stat_read(self, name)

    monkeypatch.setattr(indexfile.Columns, "readings", readings)
    monkeypatch.setattr(indexfile.Store, "_stat_blob", stat_blob)
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    assert note_files(workspace.root) and decoded == []
    monkeypatch.undo()
    assert len(catalog.load(app_of(workspace)).plans) == 1


def _noted_plan(ws: Setup, cadre: str) -> Path:
    ok(ws.as_("P-01", "index"))
    ok(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    [notes] = note_files(ws.root)
    return notes


def test_notes_over_another_index_are_not_taken(
    workspace: Setup, cadre: str, counted: list[str]
) -> None:
    """A save folds the notes in and removes them; notes put back over the new index (made
    over the old one) are ignored: the plan is read from its file again."""
    notes = _noted_plan(workspace, cadre)
    kept = notes.read_bytes()
    app = app_of(workspace)
    store = indexfile.Store.open(app.workspace.root, app.keyring)
    assert store is not None
    columns, _ = store.load()
    store.save(columns)
    assert not notes.exists()
    notes.write_bytes(kept)
    counted.clear()
    assert len(catalog.load(app_of(workspace)).plans) == 1
    assert counted == []  # the saved index holds the plan: nothing decrypted, notes unused
    index_files(workspace.root)[0].unlink()
    counted.clear()
    assert len(catalog.load(app_of(workspace)).plans) == 1 and len(counted) > 1


@pytest.mark.parametrize("how", ["garbage", "foreign"])
def test_damaged_or_forged_notes_are_ignored(
    workspace: Setup, cadre: str, counted: list[str], how: str
) -> None:
    """Notes anyone could encrypt to the public key fail the HMAC; damaged ones fail to
    decrypt: either way the plan is read from its own file."""
    notes = _noted_plan(workspace, cadre)
    if how == "garbage":
        notes.write_bytes(os.urandom(notes.stat().st_size))
    else:
        forged = crafted("talks/2026/T-000000/plan.md.age", "假名字")
        recipient = pyrage.ssh.Recipient.from_str(workspace.public["P-01"])
        notes.write_bytes(pyrage.encrypt(forged, [recipient]))
    counted.clear()
    found = catalog.load(app_of(workspace))
    assert len(found.plans) == 1 and any(rel.endswith("/plan.md.age") for rel in counted)
    assert "假名字" not in repr([item.meta for item in found.plans.values()])


def test_more_notes_than_worth_keeping_save_the_index(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    ok(workspace.as_("P-01", "index"))
    app = app_of(workspace)
    index.refresh(app)
    path = workspace.path(f"cadres/{cadre}.md.age")
    index.note_written(app, [path])
    assert not note_files(workspace.root)


@pytest.mark.parametrize("decoded", [False, True])
def test_overlay_replaces_and_inserts_in_path_order(decoded: bool) -> None:
    """Noted entries go over the index's (its readings decoded already, or not yet): one
    replaced, two inserted; the readings follow, and the chunks are encoded again (the old
    ones no longer match the paths)."""
    stamps = marshal.dumps([(1,), (3,), (5,)])  # a blob, as a loaded index keeps them
    base = indexfile.Columns(["a", "c", "e"], stamps, [b"a", b"c", b"e"], ["ok"] * 3, None)
    base._chunks = [indexchunks.encode([["k", {"n": x}, [], "", ""] for x in "ace"])]
    if decoded:
        base.readings()
        assert base.stamps == [(1,), (3,), (5,)]
    noted = indexfile.Columns(["b", "c", "f"], [None] * 3, [b"B", b"C", b"F"], ["ok"] * 3)
    noted._readings = [["k", {"n": x}, [], "", ""] for x in "BCF"]
    base.overlay(noted)
    assert base.rels == ["a", "b", "c", "e", "f"]
    assert base.digests == [b"a", b"B", b"C", b"e", b"F"]
    assert base.stamps == [(1,), None, None, (5,), None]
    assert [row[1]["n"] for row in base.readings()] == ["a", "B", "C", "e", "F"]
    decoded = [row for chunk in base.chunks() for row in indexchunks.rows(chunk)]
    assert decoded == base.readings()


def test_a_file_gone_between_the_sweep_and_its_read_means_sweep_again(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout meanwhile can take a file away after the sweep listed it: the refresh
    sweeps again instead of failing on it, and the file is gone from what it answers."""
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    for notes in note_files(workspace.root):  # the plan read afresh below, not noted
        notes.unlink()
    index_files(workspace.root)[0].unlink()
    [plan] = workspace.root.glob("talks/*/*/plan.md.age")
    real = catalog.file_readings
    calls: list[int] = []

    def taken_away(keyring, root, files, *args, **kwargs):
        calls.append(len(files))
        if len(calls) == 1:
            plan.unlink()  # listed, then gone before it is read
        return real(keyring, root, files, *args, **kwargs)

    monkeypatch.setattr(catalog, "file_readings", taken_away)
    found = catalog.load(app_of(workspace))
    assert found.plans == {} and found.cadre_name(cadre) == "张伟" and len(calls) == 2


@pytest.mark.parametrize("planted", ["folder as a file", "folder as a link", "index as a folder"])
def test_what_a_pull_plants_under_talkbook_does_not_turn_the_index_off(
    workspace: Setup, cadre: str, counted: list[str], tmp_path: Path, planted: str
) -> None:
    """Anyone who can push can commit `.talkbook` (git add -f), and a pull writes it: a file
    or a link in the folder's place, a folder in the index's. The next save clears it (a
    link goes, never what it points to), so the index works again from the next command."""
    store = indexfile.Store.open(workspace.root, app_of(workspace).keyring)
    assert store is not None
    folder = workspace.root / indexfile.FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("留着", encoding="utf-8")
    if planted == "folder as a file":
        folder.write_text("x", encoding="utf-8")
    elif planted == "folder as a link":
        folder.symlink_to(outside)
    else:
        (store.path / "sub").mkdir(parents=True)
        (store.path / "sub" / "link").symlink_to(outside)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    counted.clear()
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert counted == [] and store.path.is_file() and not folder.is_symlink()
    assert (outside / "keep.txt").read_text(encoding="utf-8") == "留着"
