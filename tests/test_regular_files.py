"""Regular files only: a symlink, or a path resolving outside the workspace, is refused everywhere.

Anyone who can push may commit `talks/2026/T-evil00/plan.md.age -> /a/file/outside`. Followed,
rekey would re-encrypt that file to the readers and commit it; a symlinked folder would take
writes outside the workspace. Outside files here are age files the victim can read.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from conftest import Clock, Setup, git_log, ok, run
from talkbook.crypto import encrypt
from talkbook.errors import UnsafePath
from talkbook.fsutil import regular_file

EVIL = "talks/2026/T-evil00/plan.md.age"
SECRET = "外部机密：不应进入谈话记录"


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> None:
    clock.set("2026-03-01T08:00")


def git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def commits(root: Path) -> int:
    return len(git_log(root, "--format=%H").splitlines())


def one_error(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    return result.stderr.strip()


def outside_plan(ws: Setup, folder: Path, talk: str = "T-evil00") -> Path:
    """A plan elsewhere on the victim's disk, readable by the custodian (P-01) only."""
    text = (
        f"---\nid: {talk}\ncadre: C-zzzzzz\nspeaker: P-03\nat: 2026-03-10T09:30\n"
        "talk_type: routine\nmethod: direct_questions\nstatus: draft\nfocus: [外部]\n---\n\n"
        f"{SECRET}\n"
    )
    path = folder / talk / "plan.md.age"
    path.parent.mkdir(parents=True)
    path.write_bytes(encrypt(text.encode("utf-8"), [ws.public["P-01"]]))
    return path


def plant_link(ws: Setup, rel: str, target: Path) -> Path:
    link = ws.path(rel)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def attacker_commits(ws: Setup, rel: str) -> None:
    """A plain git commit, the hook skipped: what anyone with push access can do."""
    assert git(ws.root, "add", "--", rel).returncode == 0
    done = git(ws.root, "commit", "--no-verify", "-q", "-m", f"plan {rel}: drafted", "--", rel)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def planned(workspace: Setup, cadre: str) -> str:
    made = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    return made.stdout.strip().splitlines()[-1]


# -- rekey ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "link, target, why",
    [
        (EVIL, "file", "symlink"),
        ("talks/2025", "folder", "talks/2025 is a symlink"),
    ],
)
def test_rekey_never_follows_a_committed_symlink(
    workspace: Setup, planned: str, tmp_path: Path, link: str, target: str, why: str
) -> None:
    outside = outside_plan(workspace, tmp_path / "elsewhere")
    plant_link(workspace, link, outside if target == "file" else outside.parent.parent)
    attacker_commits(workspace, link)
    # readers change afterwards, so rekey has every plan to re-encrypt
    ok(workspace.as_("P-01", "person", "add", "P-05", "--name", "刘洋", "--role", "approver",
                     "--key", workspace.public["outsider"]))  # fmt: skip
    before = outside.read_bytes()
    legit = workspace.path(f"talks/2026/{planned}/plan.md.age").read_bytes()
    count = commits(workspace.root)

    result = workspace.as_("P-01", "rekey")
    rel = EVIL if target == "file" else "talks/2025/T-evil00/plan.md.age"
    assert one_error(result) == f"talkbook: {rel}: not a regular file inside the workspace ({why})"
    assert result.stdout == ""
    assert outside.read_bytes() == before  # neither replaced nor re-encrypted
    assert workspace.path(link).is_symlink()
    assert commits(workspace.root) == count  # nothing committed, not even the legit plan
    assert workspace.path(f"talks/2026/{planned}/plan.md.age").read_bytes() == legit
    assert git(workspace.root, "status", "--porcelain").stdout == ""
    staged = git(workspace.root, "ls-files", "-s", "--", link).stdout
    assert staged.startswith("120000 ")  # HEAD still holds the link, not the outside content


# -- validate and the pre-commit hook --------------------------------------------------------
def test_validate_names_symlinked_files_and_folders(
    workspace: Setup, planned: str, tmp_path: Path
) -> None:
    plant_link(workspace, EVIL, outside_plan(workspace, tmp_path / "elsewhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    plant_link(workspace, "talks/2024", empty)  # nothing to list in it: still named
    result = workspace.as_("P-01", "validate")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.splitlines() == [
        "talks/2024:1: (file): not a regular file inside the workspace (symlink)",
        f"{EVIL}:1: (file): not a regular file inside the workspace (symlink)",
    ]
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "rel",
    [EVIL, "talks/2025", "templates/zh-CN/plan.md.j2", "talkbook.toml"],
)
def test_the_hook_refuses_a_staged_symlink(
    workspace: Setup, planned: str, tmp_path: Path, rel: str
) -> None:
    outside = outside_plan(workspace, tmp_path / "elsewhere")
    path = workspace.path(rel)
    if path.exists():
        path.unlink()  # a tracked file turned into a link: a type change
    plant_link(workspace, rel, outside)
    assert git(workspace.root, "add", "--", rel).returncode == 0
    count = commits(workspace.root)

    finding = f"{rel}:1: (file): not a regular file inside the workspace (symlink)"
    result = run("-w", workspace.root, "validate", "--staged")
    if rel == "talkbook.toml":  # the workspace's settings cannot even be read: refused outright
        finding = f"talkbook: {rel}: not a regular file inside the workspace (symlink)"
        assert one_error(result) == finding
    else:
        assert result.exit_code == 1, result.stderr
        assert finding in result.stdout.splitlines()

    hooked = git(workspace.root, "commit", "-q", "-m", "by hand")  # the hook runs
    assert hooked.returncode != 0
    assert finding in (hooked.stdout + hooked.stderr).splitlines()
    assert commits(workspace.root) == count


# -- cat -----------------------------------------------------------------------------------
def test_cat_refuses_a_symlinked_id_or_path(
    workspace: Setup, planned: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_link(workspace, EVIL, outside_plan(workspace, tmp_path / "elsewhere"))
    expected = f"talkbook: {EVIL}: not a regular file inside the workspace (symlink)"
    by_id = workspace.as_("P-01", "cat", "T-evil00")
    assert one_error(by_id) == expected
    assert by_id.stdout == ""
    monkeypatch.chdir(workspace.root)
    by_path = run("-i", workspace.keys["P-01"], "cat", EVIL)
    assert one_error(by_path) == expected
    assert SECRET not in by_path.stdout


def test_cat_of_a_file_outside_any_workspace_still_works(
    workspace: Setup, cadre: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_id = ok(workspace.as_("P-01", "cat", cadre))
    copy = tmp_path / "copies" / "some.md.age"
    copy.parent.mkdir()
    copy.write_bytes(workspace.path(f"cadres/{cadre}.md.age").read_bytes())
    monkeypatch.chdir(tmp_path)  # no workspace here or above
    alone = ok(run("-i", workspace.keys["P-01"], "cat", copy))
    assert alone.stdout_bytes == by_id.stdout_bytes
    from_inside = ok(workspace.as_("P-01", "cat", copy))  # with a workspace: read-only too
    assert from_inside.stdout_bytes == by_id.stdout_bytes


# -- writes ------------------------------------------------------------------------------------
def test_a_new_plan_is_not_written_through_a_symlinked_folder(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plant_link(workspace, "talks/2026", elsewhere)
    count = commits(workspace.root)
    result = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30")
    message = one_error(result)
    assert message.startswith("talkbook: talks/2026/T-")
    assert message.endswith(
        "/plan.md.age: not a regular file inside the workspace (talks/2026 is a symlink)"
    )
    assert list(elsewhere.iterdir()) == []  # not even a folder
    assert commits(workspace.root) == count


def test_an_event_is_not_written_over_a_symlinked_profile(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    profile = workspace.path(f"cadres/{cadre}.md.age")
    outside = tmp_path / "elsewhere.md.age"
    outside.write_bytes(profile.read_bytes())
    profile.unlink()
    profile.symlink_to(outside)
    before, count = outside.read_bytes(), commits(workspace.root)
    result = workspace.as_("P-01", "event", cadre, "post_change", "--date", "2026-02-20")
    assert one_error(result) == (
        f"talkbook: cadres/{cadre}.md.age: not a regular file inside the workspace (symlink)"
    )
    assert profile.is_symlink() and outside.read_bytes() == before
    assert commits(workspace.root) == count


# -- the gate itself ---------------------------------------------------------------------------
def test_regular_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ws"
    (root / "talks" / "2026").mkdir(parents=True)
    (root / "talks" / "2026" / "plan.md.age").write_bytes(b"x")
    (root / "talks" / "loop").symlink_to(root)
    alias = tmp_path / "alias"
    alias.symlink_to(root)  # a link above the root is not the workspace's business

    assert regular_file(root, root / "talks/2026/plan.md.age") == root / "talks/2026/plan.md.age"
    assert regular_file(root, alias / "talks/2026/plan.md.age") == root / "talks/2026/plan.md.age"
    assert regular_file(root, root / "talks/2027/T-new000/plan.md.age")  # not there yet: fine
    refused = {
        root / "talks/loop/talks/2026/plan.md.age": "talks/loop is a symlink",
        alias / "talks/loop/talks/2026/plan.md.age": "talks/loop is a symlink",
        root / "talks/2026": "a folder",
        root / "talks/../../elsewhere.md.age": "outside it",
        tmp_path / "elsewhere.md.age": "outside it",
    }
    for path, why in refused.items():
        with pytest.raises(UnsafePath) as caught:
            regular_file(root, path)
        assert str(caught.value).endswith(f": not a regular file inside the workspace ({why})")
    monkeypatch.chdir(root)
    with pytest.raises(UnsafePath, match=r"^talks/loop: .*\(symlink\)$"):
        regular_file(root, Path("talks/loop"))


def test_read_below_follows_no_symlink_and_reads_only_regular_files(tmp_path: Path) -> None:
    """The cold index's reader (fsutil.read_below, in the workers): the same refusals as
    read_regular, as OSError (the parent reads such a file again to word the error)."""
    import os

    from talkbook.fsutil import read_below

    root = tmp_path / "ws"
    (root / "talks" / "2026" / "T-good00").mkdir(parents=True)
    (root / "talks" / "2026" / "T-good00" / "plan.md.age").write_bytes("计划".encode())
    outside = tmp_path / "outside"
    (outside / "T-evil00").mkdir(parents=True)
    (outside / "T-evil00" / "plan.md.age").write_bytes(SECRET.encode())
    (root / "talks" / "2025").symlink_to(outside)  # a folder that is a symlink
    (root / "talks" / "2026" / "T-link00").mkdir()
    (root / "talks" / "2026" / "T-link00" / "plan.md.age").symlink_to(
        outside / "T-evil00" / "plan.md.age"
    )
    os.mkfifo(root / "talks" / "2026" / "T-good00" / "record.md.age")
    assert read_below(str(root), "talks/2026/T-good00/plan.md.age") == "计划".encode()
    for rel in [
        "talks/2025/T-evil00/plan.md.age",
        "talks/2026/T-link00/plan.md.age",
        "talks/2026/T-good00/record.md.age",  # a FIFO: refused, not waited on
        "talks/2026/T-good00",
        "talks/2026/../2025/T-evil00/plan.md.age",
        "/etc/passwd",
        "",
    ]:
        with pytest.raises(OSError):
            read_below(str(root), rel)
