"""Hostile files: whatever a `--from` file or a planted file holds, one line and exit 2 (or a
finding and exit 1 from validate), nothing changed on disk, within seconds and modest memory.

YAML that expands (aliases) or nests without end is refused before it is built; a field of the
wrong type is a finding, never a crash, for every reader; ids match their pattern whole; no
message repeats what a hostile hand typed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, Clock, Setup, last_line, ok
from talkbook.crypto import Keyring, decrypt, encrypt
from talkbook.models import Document, parse

STAFF_KEYS = ("P-01", "P-02", "P-03", "P-04")
MEMORY = 1 << 30  # the address space a hostile file gets to play with: 1 GiB
SECRET = "绝密内容"  # a value that must never reach a message


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> None:
    clock.set("2026-03-01T08:00")


# -- helpers ---------------------------------------------------------------------------------
def state(ws: Setup) -> tuple[str, str, bytes]:
    """What is on disk: HEAD, git's view of the working tree, and talkbook.toml."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ws.root), *args], capture_output=True, text=True)
        return done.stdout

    return (
        git("rev-parse", "HEAD"),
        git("status", "--porcelain"),
        ws.path("talkbook.toml").read_bytes(),
    )


def one_line(result: Result | subprocess.CompletedProcess, code: int = 2) -> str:
    exit_code = result.exit_code if isinstance(result, Result) else result.returncode
    assert exit_code == code, (exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("talkbook: "), result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    return lines[0]


def unchanged(ws: Setup, before: tuple[str, str, bytes]) -> None:
    assert state(ws) == before


def limited(ws: Setup, pid: str, *args: str | Path) -> subprocess.CompletedProcess:
    """The real command line in a child process with 1 GiB of address space and a timeout."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

    command = [sys.executable, "-m", "talkbook", "-w", ws.root, "-i", ws.keys[pid], *args]
    return subprocess.run(
        [str(a) for a in command],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        env={**os.environ, "PYTHONFAULTHANDLER": ""},
    )


def read_doc(ws: Setup, rel: str) -> Document:
    data = decrypt(ws.path(rel).read_bytes(), Keyring.from_file(ws.keys["P-01"]))
    return parse(data.decode("utf-8"), rel)


def plant(ws: Setup, rel: str, text: str) -> None:
    """A file written by hand, encrypted to all staff, as anyone with push access could."""
    path = ws.path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encrypt(text.encode("utf-8"), [ws.public[p] for p in STAFF_KEYS]))


def commit_by_hand(ws: Setup, rel: str) -> None:
    git = ["git", "-C", str(ws.root), "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", rel], check=True, capture_output=True)
    subprocess.run([*git, "commit", "--no-verify", "-qm", "by hand"], check=True)


def alias_bomb() -> str:
    rows = ['a: &a ["哈哈", "哈哈", "哈哈", "哈哈", "哈哈", "哈哈", "哈哈", "哈哈", "哈哈"]']
    for index in range(1, 10):
        prev, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "---\nname: 张伟\n" + "\n".join(rows) + "\n---\n\n档案备注。\n"


def deep_flow(depth: int = 100_000) -> str:
    return "---\nname: 张伟\nstrengths: " + "[" * depth + "]" * depth + "\n---\n"


def deep_block() -> str:
    return "---\nname: 张伟\nstrengths:\n" + "- " * 100_000 + "业务扎实\n---\n"


@pytest.fixture
def held(workspace: Setup, cadre: str, clock: Clock, tmp_path: Path) -> str:
    """One talk planned, approved and recorded, with follow-ups and deferred topics."""
    ws = workspace
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk))
    clock.set("2026-03-20T08:00")
    source = tmp_path / "record.md"
    source.write_text(
        "---\nheld_at: 2026-03-10T09:30\nfollow_ups:\n"
        "  - {what: 协调专家会诊, owner: 干部一科, due: 2026-04-10}\n"
        "deferred: [对班子分工的不同意见]\n---\n\n谈话对象表示服从组织安排。\n",
        encoding="utf-8",
    )
    ok(ws.as_("P-03", "record", talk, "--from", source))
    return talk


# -- YAML that would expand or nest without end ----------------------------------------------
@pytest.mark.parametrize(
    "text, reason",
    [
        (alias_bomb(), "anchors and aliases"),
        (deep_flow(), "nest"),
        (deep_flow(900), "nested deeper than 32"),
        (deep_block(), "nested deeper than 32"),
    ],
    ids=["alias-bomb", "deep-flow", "flow-900", "deep-block"],
)
def test_cadre_new_refuses_yaml_bombs_in_little_time_and_memory(
    workspace: Setup, tmp_path: Path, text: str, reason: str
) -> None:
    source = tmp_path / "张伟.md"
    source.write_text(text, encoding="utf-8")
    before = state(workspace)
    message = one_line(limited(workspace, "P-01", "cadre", "new", "--from", source))
    assert reason in message and "张伟.md:" in message
    unchanged(workspace, before)


def test_a_planted_bomb_is_a_finding_for_validate_and_skipped_by_due(
    workspace: Setup, cadre: str
) -> None:
    rel = "cadres/C-b0mb00.md.age"
    plant(workspace, rel, alias_bomb().replace("name: 张伟", "id: C-b0mb00\nname: 李四"))
    plant(workspace, "cadres/C-deep00.md.age", deep_flow().replace("name:", "id: C-deep00\nname:"))
    before = state(workspace)
    checked = limited(workspace, "P-01", "validate")
    assert checked.returncode == 1, checked.stderr
    assert f"{rel}:4: (front matter): YAML anchors and aliases" in checked.stdout
    assert "cadres/C-deep00.md.age:4: (front matter): malformed YAML: " in checked.stdout
    due = limited(workspace, "P-01", "due")
    assert due.returncode in (0, 1), due.stderr
    assert "2 malformed file(s) skipped (run validate)" in due.stderr and rel in due.stderr
    assert "unexpected" not in due.stderr + checked.stderr
    unchanged(workspace, before)


# -- front matter: tags, size ------------------------------------------------------------------
@pytest.mark.parametrize(
    "front, reason",
    [
        (f'name: !!python/object/apply:os.system ["echo {SECRET}"]', "YAML tags"),
        ("name: 张伟\nprivate: !%E7%BB%9D%E5%AF%86%E5%86%85%E5%AE%B9 档案", "YAML tags"),
        (f"name: 张伟\nprivate: {'秘' * 100_000}", "front matter is larger than 256 KiB"),
    ],
    ids=["python-tag", "private-tag", "large-front-matter"],
)
def test_cadre_new_refuses_tags_and_oversized_front_matter_without_quoting(
    workspace: Setup, tmp_path: Path, front: str, reason: str
) -> None:
    source = tmp_path / "profile.md"
    source.write_text(f"---\n{front}\n---\n\n档案备注。\n", encoding="utf-8")
    before = state(workspace)
    message = one_line(workspace.as_("P-01", "cadre", "new", "--from", source))
    assert reason in message
    assert SECRET not in message and "python" not in message and "秘秘" not in message
    unchanged(workspace, before)


def test_cadre_new_refuses_a_document_over_2_mib(workspace: Setup, tmp_path: Path) -> None:
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH + "谈话记录。" * 150_000, encoding="utf-8")
    before = state(workspace)
    message = one_line(workspace.as_("P-01", "cadre", "new", "--from", source))
    assert message.endswith("profile.md:1: the document is larger than 2 MiB")
    unchanged(workspace, before)


def test_fields_named_like_the_libraries_arguments_are_plain_fields(
    workspace: Setup, tmp_path: Path
) -> None:
    """`content` and `handler` would collide with python-frontmatter's Post arguments."""
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH.replace("name: 张伟", "name: 张伟\ncontent: 正文\nhandler: 1"))
    cadre = last_line(workspace.as_("P-01", "cadre", "new", "--from", source))
    doc = read_doc(workspace, f"cadres/{cadre}.md.age")
    assert doc.meta["content"] == "正文" and doc.meta["handler"] == 1


# -- a field of the wrong type: a finding for validate, skipped by every other reader -------
CASES = {
    "events": ("profile", 5),
    "decisions": ("plan", 5),
    "follow_ups": ("record", "x"),
    "addenda": ("record", {}),
    "present": ("record", 3),
    "topics": ("record", 5),
    "deferred": ("record", {SECRET: 1}),
}


def broken_rel(ws: Setup, cadre: str, talk: str, kind: str) -> str:
    if kind == "profile":
        return f"cadres/{cadre}.md.age"
    return f"talks/2026/{talk}/{kind}.md.age"


@pytest.mark.parametrize("field", list(CASES))
def test_a_wrong_type_is_a_finding_never_a_crash(
    workspace: Setup, cadre: str, held: str, field: str
) -> None:
    ws = workspace
    kind, value = CASES[field]
    rel = broken_rel(ws, cadre, held, kind)
    doc = read_doc(ws, rel)
    plant(ws, rel, Document({**doc.meta, field: value}, doc.body).text())
    before = state(ws)

    checked = ws.as_("P-01", "validate")
    assert checked.exit_code == 1, checked.stderr
    assert f"{rel}:" in checked.stdout and f": {field}: must be array" in checked.stdout
    assert "unexpected" not in checked.stderr and SECRET not in checked.stdout

    skipped = f"1 malformed file(s) skipped (run validate): {rel}"
    for command in (["due"], ["followups"], ["list", "talks"], ["list", "cadres"]):
        result = ws.as_("P-01", *command)
        assert result.exit_code in (0, 1), (command, result.stderr)
        assert skipped in result.stderr, (command, result.stderr)
        assert "unexpected" not in result.stderr and SECRET not in result.output

    shown = one_line(ws.as_("P-01", "show", cadre if kind == "profile" else held))
    assert f"{rel}:" in shown and f": {field}: must be array" in shown and SECRET not in shown
    unchanged(ws, before)

    commit_by_hand(ws, rel)  # history and audit read it from git
    before = state(ws)
    story = ws.as_("P-01", "history", cadre if kind == "profile" else held)
    assert story.exit_code == 0 and "unexpected" not in story.stderr, story.stderr
    audit = ws.as_("P-01", "audit")
    assert audit.exit_code in (0, 1) and "unexpected" not in audit.stderr, audit.stderr
    assert ws.as_("P-01", "validate").exit_code == 1
    unchanged(ws, before)


@pytest.mark.parametrize(
    "field, value, command",
    [
        ("events", 5, ("event", "{cadre}", "post_change", "--date", "2026-02-27")),
        ("decisions", 5, ("postpone", "{talk}")),
        ("follow_ups", "x", ("done", "{talk}", "1")),
        ("addenda", {}, ("addendum", "{talk}", "--text", "补充说明")),
    ],
    ids=["event", "postpone", "done", "addendum"],
)
def test_commands_that_change_a_broken_file_refuse_it_in_one_line(
    workspace: Setup, cadre: str, field: str, value: object, command: tuple[str, ...]
) -> None:
    ws = workspace
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    kind = {"events": "profile", "decisions": "plan"}.get(field, "record")
    if kind == "record":  # a record file next to the plan, as a hostile hand could put one
        doc = Document(
            {"id": talk, "cadre": cadre, "speaker": "P-03", "recorder": "P-03",
             "held_at": "2026-02-20T09:30", field: value}, "谈话记录。\n",
        )  # fmt: skip
        plant(ws, f"talks/2026/{talk}/record.md.age", doc.text())
    else:
        rel = broken_rel(ws, cadre, talk, kind)
        doc = read_doc(ws, rel)
        plant(ws, rel, Document({**doc.meta, field: value}, doc.body).text())
    before = state(ws)
    args = [part.format(cadre=cadre, talk=talk) for part in command]
    message = one_line(ws.as_("P-01", *args))
    assert f": {field}: must be array" in message
    unchanged(ws, before)


def test_deferred_topics_come_only_from_well_formed_records(
    workspace: Setup, cadre: str, held: str
) -> None:
    """`plan` suggests the topics earlier talks deferred; a record with a wrong type gives none."""
    rel = f"talks/2026/{held}/record.md.age"
    doc = read_doc(workspace, rel)
    plant(workspace, rel, Document({**doc.meta, "deferred": {SECRET: 1}}, doc.body).text())
    talk = last_line(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-25T09:30")
    )
    plan = read_doc(workspace, f"talks/2026/{talk}/plan.md.age")
    assert SECRET not in plan.text()


def test_a_file_that_is_no_document_kind_is_skipped(workspace: Setup, cadre: str) -> None:
    rel = "talks/2026/T-abc123/notes.md.age"
    plant(workspace, rel, "---\nid: T-abc123\n---\n")
    result = workspace.as_("P-01", "due")
    assert result.exit_code in (0, 1) and "unexpected" not in result.stderr, result.stderr
    assert rel in result.stderr
    checked = workspace.as_("P-01", "validate")
    assert checked.exit_code == 1, checked.stderr
    assert f"{rel}:1: (file): not a profile, plan or record" in checked.stdout


@pytest.mark.parametrize(
    "field, value", [("follow_ups", "x"), ("follow_ups", ["x"]), ("topics", 5), ("addenda", 5)]
)
def test_editing_a_confirmed_record_into_a_wrong_type_is_refused_in_one_line(
    workspace: Setup, held: str, tmp_path: Path, field: str, value: object
) -> None:
    ws = workspace
    ok(ws.as_("P-03", "confirm", held))
    rel = f"talks/2026/{held}/record.md.age"
    doc = read_doc(ws, rel)
    source = tmp_path / "record.md"
    source.write_text(Document({**doc.meta, field: value}, doc.body).text(), encoding="utf-8")
    before = state(ws)
    message = one_line(ws.as_("P-03", "edit", f"{held}/record", "--from", source))
    assert field in message
    unchanged(ws, before)


# -- ids match their pattern whole -------------------------------------------------------------
def test_an_id_with_a_trailing_newline_is_refused(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    ws = workspace
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH.replace("name: 张伟", 'id: "C-abcdef\\n"\nname: 张伟'))
    before = state(ws)
    message = one_line(ws.as_("P-01", "cadre", "new", "--from", source))
    assert "id" in message and "C-abcdef" not in message
    unchanged(ws, before)

    plan = tmp_path / "plan.md"
    plan.write_text('---\nid: "T-abcdef\\n"\nplace: 三楼小会议室\n---\n', encoding="utf-8")
    args = ("plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30", "--from", plan)
    message = one_line(ws.as_("P-01", *args))
    assert "T-abcdef" not in message
    unchanged(ws, before)
    assert not list(ws.path("talks").rglob("T-abcdef*"))


def test_person_ids_match_whole_and_never_reach_a_commit_message(workspace: Setup) -> None:
    ws = workspace
    before = state(ws)
    forged = "P-05\n\nperson P-01: removed"
    args = ("--name", "刘洋", "--role", "speaker", "--key", ws.public["outsider"])
    message = one_line(ws.as_("P-01", "person", "add", forged, *args))
    assert "person id" in message and "removed" not in message
    message = one_line(ws.as_("P-01", "person", "add", "P-05", "--name", "刘洋\n伪造", *args[2:]))
    assert "name" in message and "伪造" not in message
    message = one_line(ws.as_("P-01", "person", "remove", "P-02\n伪造"))
    assert "伪造" not in message
    unchanged(ws, before)


@pytest.mark.parametrize(
    "command",
    [
        ("show", "T-abcdef\n伪造"),
        ("cat", "C-abcdef\n伪造"),
        ("history", "T-abcdef\n伪造"),
        ("event", "C-abcdef\n伪造", "post_change"),
        ("submit", "T-abcdef\n伪造"),
    ],
    ids=["show", "cat", "history", "event", "submit"],
)
def test_ids_with_control_characters_are_never_echoed(
    workspace: Setup, cadre: str, command: tuple[str, ...]
) -> None:
    before = state(workspace)
    message = one_line(workspace.as_("P-01", *command))
    assert "伪造" not in message
    unchanged(workspace, before)


def test_a_talk_id_is_never_a_glob_pattern(workspace: Setup, cadre: str) -> None:
    ws = workspace
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    ok(ws.as_("P-03", "submit", talk))
    before = state(ws)
    message = one_line(ws.as_("P-02", "approve", "T-*"))
    assert "not a talk id" in message
    unchanged(ws, before)


# -- no message echoes a value ---------------------------------------------------------------
def test_settings_findings_never_quote_values(workspace: Setup) -> None:
    config = workspace.path("talkbook.toml")
    text = config.read_text(encoding="utf-8")
    config.write_text(text + f'\n[people."P-09"]\nname = "{SECRET}"\nkeys = ["{SECRET}"]\n')
    result = workspace.as_("P-01", "validate")
    assert result.exit_code in (1, 2), result.stderr
    assert SECRET not in result.output
    assert "unexpected" not in result.stderr
