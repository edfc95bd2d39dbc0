"""Nothing that names a cadre or says what was talked about leaks out of the encrypted files.

One realistic run (init, people, two cadres, an event, a plan, its approval, a record), then every
place plaintext could hide is searched: paths, commit messages, every git object, stderr, the
temporary folders. The names are random so another test's data cannot be mistaken for a leak.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import Result

from conftest import STAFF, Setup, age_cli, make_key, run

AGE_HEADER = b"age-encryption.org/v1\n"
OCCASION = "family_emergency"
OCCASION_LABEL = "家庭发生变故"  # its zh-CN label in the default talkbook.toml


def rare(count: int) -> str:
    """Random CJK characters: a string no other test (or template) contains."""
    pick = random.SystemRandom()
    return "".join(chr(pick.randint(0x4E00, 0x9FA5)) for _ in range(count))


def profile(name: str, unit: str, post: str, note: str) -> str:
    return (
        f"---\nname: {name}\ngender: 女\nbirth_date: 1975-09-03\nunit: {unit}\npost: {post}\n"
        f"rank: 正科级\npersonality: extroverted\ndifficulties: [{note}]\n"
        f"family: 父亲{note}需要照顾\n---\n\n{note}，谈话时应多关心。\n"
    )


def record(secret: str) -> str:
    return (
        "---\nplace: 组织部小会议室\ntopics: [家庭困难, 工作安排]\nfollow_ups:\n"
        f"- what: 协调{secret}事宜\n  owner: P-01\n  due: 2026-04-01\n  done: false\n"
        f"deferred: [{secret}的去向]\n---\n\n## 本人谈了什么\n\n{secret}，心里压力很大。\n\n"
        "## 谈话人的引导\n\n组织上会尽力帮助解决。\n"
    )


def git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True).stdout


def git_objects(root: Path) -> list[tuple[str, str, bytes]]:
    """(sha, type, content) of every object in the repository, decompressed."""
    raw = git(root, "cat-file", "--batch-all-objects", "--batch")
    objects, pos = [], 0
    while pos < len(raw):
        end = raw.index(b"\n", pos)
        sha, kind, size = raw[pos:end].decode().split()
        start = end + 1
        objects.append((sha, kind, raw[start : start + int(size)]))
        pos = start + int(size) + 1
    return objects


def blob_paths(root: Path) -> dict[str, set[str]]:
    paths: dict[str, set[str]] = {}
    for line in git(root, "rev-list", "--objects", "--all").decode().splitlines():
        sha, _, path = line.partition(" ")
        if path:
            paths.setdefault(sha, set()).add(path)
    return paths


def files_changed_since(folder: Path, since_ns: int) -> list[Path]:
    found = []
    for base, _dirs, files in os.walk(folder, onerror=lambda e: None):
        for name in files:
            path = Path(base) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if max(info.st_mtime_ns, info.st_ctime_ns) >= since_ns and path.is_file():
                found.append(path)
    return found


@pytest.fixture
def story(tmp_path: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The realistic run; returns the workspace, the secrets and every command's result."""
    started = time.time_ns() - 2_000_000_000
    names = [f"欧阳{rare(2)}", f"司马{rare(2)}"]
    units = [f"{rare(2)}县财政局", f"{rare(2)}街道办事处"]
    posts = [f"{rare(2)}科科长", f"{rare(2)}主任"]
    notes = [rare(4), rare(4)]
    event_note, place, talk = rare(5), f"{rare(2)}会议室", rare(6)
    results: list[Result] = []

    def ok(result: Result) -> Result:
        assert result.exit_code == 0, result.stderr
        results.append(result)
        return result

    monkeypatch.setenv("TALKBOOK_NOW", "2026-03-02T09:00")
    root = tmp_path / "ws"
    ok(run("init", root, "--org", "市委组织部"))
    setup = Setup(root)
    for pid in [*STAFF, "outsider"]:
        setup.keys[pid], setup.public[pid] = make_key(keydir, pid)
    for pid, (name, roles) in STAFF.items():
        role_args = [a for r in roles for a in ("--role", r)]
        ok(setup.as_("P-01", "person", "add", pid, "--name", name, *role_args,
                     "--key", setup.public[pid]))  # fmt: skip
    cadres = []
    for name, unit, post, note in zip(names, units, posts, notes, strict=True):
        created = ok(setup.as_("P-01", "cadre", "new", "--from", "-",
                               input=profile(name, unit, post, note)))  # fmt: skip
        cadres.append(created.stdout.splitlines()[-1])
    ok(
        setup.as_(
            "P-01", "event", cadres[0], OCCASION, "--date", "2026-03-01", "--note", event_note
        )
    )
    planned = ok(
        setup.as_(
            "P-01",
            "plan",
            cadres[0],
            "--speaker",
            "P-03",
            "--at",
            "2026-03-05T09:30",
            "--occasion",
            OCCASION,
            "--place",
            place,
        )  # fmt: skip
    )
    talk_id = planned.stdout.splitlines()[-1]
    ok(setup.as_("P-03", "submit", talk_id))
    ok(setup.as_("P-02", "approve", talk_id, "--comment", "同意，注意方式方法"))
    monkeypatch.setenv("TALKBOOK_NOW", "2026-03-05T11:00")
    ok(setup.as_("P-03", "record", talk_id, "--from", "-", input=record(talk)))
    secrets = [*names, *units, *posts, *notes, event_note, place, talk]
    return {
        "setup": setup,
        "cadres": cadres,
        "talk": talk_id,
        "secrets": secrets,
        "results": results,
        "started": started,
    }


def test_no_secret_outside_the_ciphertext(story: dict) -> None:
    setup: Setup = story["setup"]
    root = setup.root
    secrets: list[str] = story["secrets"]
    with_occasion = [*secrets, OCCASION, OCCASION_LABEL]

    # paths in the work tree and in git
    paths = [p.relative_to(root).as_posix() for p in root.rglob("*")]
    paths += git(root, "ls-files").decode().splitlines()
    for secret in with_occasion:
        assert not [p for p in paths if secret in p], secret
    assert any(p.startswith("talks/2026/T-") for p in paths)

    # commit messages
    messages = git(root, "log", "--format=%B").decode()
    for secret in with_occasion:
        assert secret not in messages
    subjects = git(root, "log", "--format=%s").decode().splitlines()
    talk, first, second = story["talk"], *story["cadres"]
    assert subjects[:7] == [
        f"record {talk}: written",
        f"plan {talk}: approved",
        f"plan {talk}: submitted",
        f"plan {talk}: drafted",
        f"cadre {first}: event",
        f"cadre {second}: created",
        f"cadre {first}: created",
    ]

    # every git object; settings and templates may name occasions, nothing may name a cadre
    where = blob_paths(root)
    objects = git_objects(root)
    assert len(objects) > 20
    for sha, kind, content in objects:
        plain_settings = kind == "blob" and not any(p.endswith(".age") for p in where.get(sha, ()))
        for secret in secrets if plain_settings else with_occasion:
            assert secret.encode() not in content, (kind, where.get(sha), secret)

    # every byte under the workspace folder, .git included
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets if s.encode() in data], path

    # what talkbook wrote on stderr along the way
    for result in story["results"]:
        for secret in with_occasion:
            assert secret not in result.stderr


def test_encrypted_files_for_readers_only(story: dict) -> None:
    setup: Setup = story["setup"]
    age = age_cli()
    files = [
        p
        for folder in ("cadres", "talks")
        for p in sorted(setup.path(folder).rglob("*"))
        if p.is_file() and p.name != "README.md"
    ]
    assert len(files) == 4  # two profiles, a plan, a record
    for path in files:
        assert path.read_bytes().startswith(AGE_HEADER), path

        refused = setup.as_("outsider", "cat", path)
        assert refused.exit_code == 2
        assert refused.stdout == ""
        assert len(refused.stderr.splitlines()) == 1
        assert "none of your keys" in refused.stderr

        ours = setup.as_("P-01", "cat", path)
        assert ours.exit_code == 0, ours.stderr
        theirs = subprocess.run(
            [age, "-d", "-i", str(setup.keys["P-01"]), str(path)], capture_output=True, check=True
        )
        assert theirs.stdout == ours.stdout_bytes
    names = story["secrets"][:2]
    profiles = [setup.as_("P-01", "cat", cadre).stdout for cadre in story["cadres"]]
    assert [f"name: {name}\n" in text for name, text in zip(names, profiles, strict=True)] == [
        True,
        True,
    ]
    record_text = setup.as_("P-03", "cat", f"{story['talk']}/record").stdout
    assert story["secrets"][-1] in record_text


def test_no_plaintext_left_in_temporary_folders(story: dict) -> None:
    setup: Setup = story["setup"]
    # Reading everything back must not leave anything behind either.
    for cadre in story["cadres"]:
        assert setup.as_("P-01", "show", cadre).exit_code == 0
    assert setup.as_("P-01", "validate").exit_code == 0
    folders = {Path("/tmp"), Path("/dev/shm"), Path(tempfile.gettempdir())}
    needles = [s.encode() for s in story["secrets"][:2] + story["secrets"][-1:]]
    leaks = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in files_changed_since(folder, story["started"]):
            try:
                with path.open("rb") as handle:
                    data = handle.read(64 << 20)
            except OSError:
                continue
            if any(n in data for n in needles):
                leaks.append(path)
    assert leaks == []
