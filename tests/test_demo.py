"""`talkbook demo`: a small fictional workspace built through the whole main job, then checked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from conftest import git_log, run
from talkbook.demo import DATA_FILE, build

SMALL = ("--cadres", "4", "--talks", "6")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """One small demo for the module: (workspace, what the command printed)."""
    base = tmp_path_factory.mktemp("demo")
    root = base / "ws"
    with pytest.MonkeyPatch.context() as patch:  # module scope: isolate the home here too
        patch.setenv("HOME", str(base / "home"))
        patch.setenv("XDG_CONFIG_HOME", str(base / "home" / ".config"))
        for var in [k for k in os.environ if k.startswith("TALKBOOK_")]:
            patch.delenv(var)
        result = run("demo", root, *SMALL)
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "TALKBOOK_NOW" not in os.environ  # the clock is restored
    return root, result.stdout


def keys(root: Path) -> Path:
    return root.parent / f"{root.name}.keys"


def as_(root: Path, pid: str, *args: str):
    return run("-w", root, "-i", keys(root) / f"{pid}.txt", *args)


def cadre_names(root: Path) -> list[str]:
    listed = as_(root, "P-01", "list", "cadres", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    return [row["name"] for row in json.loads(listed.stdout)]


def test_prints_every_section(built):
    root, out = built
    for heading in ("keys and how to use", "git log", "git log -p", "outsider", "due", "validate"):
        assert heading in out
    assert f"export TALKBOOK_IDENTITY={keys(root) / 'P-01.txt'}" in out
    assert "none of your keys is a recipient" in out
    assert "comment: 谈话重点不够明确" in out  # git log -p decrypted the plan's rejection
    assert "exit code 2" in out
    assert "0 finding(s)" in out


def test_keys_live_outside_the_workspace_and_are_private(built):
    root, _ = built
    folder = keys(root)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["P-01.txt", "P-02.txt", "P-03.txt", "outsider.txt"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert not list(root.rglob("*.txt"))  # no identity inside the workspace


def test_validate_is_clean_for_the_custodian(built):
    root, _ = built
    result = as_(root, "P-01", "validate")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stderr


def test_three_staff_authors_and_a_history_of_months(built):
    root, _ = built
    authors = set(git_log(root, "--format=%an").split())
    assert {"周慧敏", "郑柏川", "柯晓燕"} <= authors
    days = sorted(set(git_log(root, "--format=%ad", "--date=short").split()))
    assert days[0] < "2026-06-01" and days[-1] <= "2026-11-16"  # up to the demo's today
    assert set(git_log(root, "--format=%G?").split()) == {"G"}  # every act signed


def test_all_three_methods_a_rejection_and_a_continuation(built):
    root, _ = built
    talks = json.loads(as_(root, "P-01", "list", "talks", "--format", "json").stdout)
    assert {t["method"] for t in talks} == {"direct_questions", "open_conversation", "consultation"}
    assert {"held", "submitted", "approved"} <= {t["status"] for t in talks}
    plans = [
        yaml.safe_load(as_(root, "P-01", "cat", t["id"]).stdout.split("---")[1]) for t in talks
    ]
    decisions = [d for p in plans for d in p["decisions"]]
    assert any(d["decision"] == "rejected" and d["comment"] for d in decisions)
    assert {d["by"] for d in decisions if d["decision"] == "approved"} == {"P-02"}
    continuation = next(p for p in plans if p.get("continues"))
    parent = as_(root, "P-01", "cat", f"{continuation['continues']}/record").stdout
    deferred = yaml.safe_load(parent.split("---")[1])["deferred"]
    assert deferred and set(deferred) <= set(continuation["focus"])


def test_a_confirmed_record_with_an_addendum(built):
    root, _ = built
    talks = json.loads(as_(root, "P-03", "list", "talks", "--format", "json").stdout)
    records = []
    for talk in (t for t in talks if t["status"] == "held"):
        text = as_(root, "P-03", "cat", f"{talk['id']}/record").stdout
        records.append(yaml.safe_load(text.split("---")[1]))
    assert any(r["confirmed_on"] and r["addenda"] for r in records)
    assert any(r["follow_ups"] for r in records)


def test_due_lists_something_overdue(built):
    root, _ = built
    result = as_(root, "P-01", "due", "--as-of", "2026-11-16", "--format", "json")
    assert result.exit_code == 1  # findings: overdue obligations, as the demo intends
    rows = json.loads(result.stdout)
    overdue = {r["reason"] for r in rows if r["overdue"]}
    assert {"follow_up", "approval"} <= overdue
    assert overdue - {"follow_up", "approval", "cadence"}  # and an occasion nobody talked about


def test_the_outsider_reads_nothing(built):
    root, _ = built
    for ref in [p.relative_to(root).as_posix() for p in root.rglob("*.md.age")][:6]:
        result = as_(root, "outsider", "cat", str(root / ref))
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "none of your keys is a recipient" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_the_speaker_reads_plans_but_not_profiles(built):
    root, _ = built
    cadre = next((root / "cadres").glob("C-*.md.age"))
    assert as_(root, "P-03", "cat", str(cadre)).exit_code == 2
    plan = next(root.glob("talks/*/*/plan.md.age"))
    assert as_(root, "P-03", "cat", str(plan)).exit_code == 0


def test_no_cadre_name_in_any_path_commit_message_or_config(built):
    root, _ = built
    names = cadre_names(root)
    assert len(names) == 4 and all(any("\u4e00" <= c <= "\u9fff" for c in n) for n in names)
    paths = [p.relative_to(root).as_posix() for p in root.rglob("*")]
    messages = git_log(root, "--format=%an %ae %s%n%b")
    config = (root / "talkbook.toml").read_text(encoding="utf-8")
    for name in names:
        assert not any(name in p for p in paths)
        assert name not in messages
        assert name not in config


def test_refuses_an_existing_folder(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    result = run("demo", taken, *SMALL)
    assert result.exit_code == 2
    assert "exists" in result.stderr and "Traceback" not in result.stderr
    assert not keys(taken).exists()


def test_same_seed_same_story(tmp_path):
    first = build(tmp_path / "a", cadres=2, talks_count=1)
    second = build(tmp_path / "b", cadres=2, talks_count=1, locale="en")
    assert [c.meta for c in first.cadres] == [c.meta for c in second.cadres]
    assert [t.id for t in first.talks] == [t.id for t in second.talks]
    assert first.commits == second.commits
    assert "TALKBOOK_NOW" not in os.environ


def test_the_data_is_fictional_and_chinese():
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    assert "虚构" in data["organization"]["zh-CN"]
    assert all(len(s) == 1 for s in data["surnames"])
    assert {"市发改委", "市财政局", "区教育局"} <= {u["name"] for u in data["units"]}


# -- the bulk path: the same builders, a few signed commits per phase ----------------------------
BULK = ("--cadres", "30", "--talks", "60", "--bulk")


@pytest.fixture(scope="module")
def bulk(tmp_path_factory) -> tuple[Path, str]:
    """One bulk demo for the module (forced: 60 talks would take the story path)."""
    base = tmp_path_factory.mktemp("bulk")
    root = base / "ws"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(base / "home"))
        patch.setenv("XDG_CONFIG_HOME", str(base / "home" / ".config"))
        for var in [k for k in os.environ if k.startswith("TALKBOOK_")]:
            patch.delenv(var)
        result = run("demo", root, *BULK)
    assert result.exit_code == 0, result.stderr + result.stdout
    assert "TALKBOOK_NOW" not in os.environ
    return root, result.stdout


def documents(root: Path, pattern: str) -> list[dict]:
    from talkbook.app import App

    app = App(root, keys(root) / "P-01.txt")
    found = []
    for path in sorted(root.glob(pattern)):
        found.append(yaml.safe_load(app.cat(str(path)).decode("utf-8").split("---")[1]))
    return found


def test_bulk_files_exist_and_decrypt_for_the_custodian(bulk):
    root, out = bulk
    assert "built 30 cadres and 60 talks" in out
    assert len(list(root.glob("cadres/C-*.md.age"))) == 30
    plans = documents(root, "talks/*/*/plan.md.age")
    assert len(plans) == 60
    records = documents(root, "talks/*/*/record.md.age")
    assert records and all(r["speaker"] in ("P-03", "P-04", "P-05") for r in records)
    assert not list(root.rglob(".*.tmp-*")), "no temp file left behind"


def test_bulk_every_commit_signed_and_few_of_them(bulk):
    root, _ = bulk
    verdicts = git_log(root, "--format=%G?").split()
    assert set(verdicts) == {"G"}
    versions = len(git_log(root, "--format=", "--name-only").split())
    assert len(verdicts) * 2 < versions  # many files per commit, not one commit per action
    messages = git_log(root, "--format=%s")
    assert "(demo, in bulk)" in messages
    for name in cadre_names(root):
        assert name not in messages


def test_bulk_validate_and_audit_are_clean(bulk):
    root, _ = bulk
    checked = as_(root, "P-01", "validate")
    assert checked.exit_code == 0, checked.stdout
    audited = as_(root, "P-01", "audit")
    assert audited.exit_code == 0, audited.stdout + audited.stderr
    assert "0 finding(s)" in audited.stderr + audited.stdout


def test_bulk_plans_have_the_shape_the_plan_command_gives(bulk):
    root, _ = bulk
    plans = documents(root, "talks/*/*/plan.md.age")
    records = {r["id"]: r for r in documents(root, "talks/*/*/record.md.age")}
    with_occasion = [p for p in plans if p["occasion"]]
    assert with_occasion and all(p["event_date"] for p in with_occasion)
    named = [p for p in plans if p["recorder"]]
    assert named and all(p["recorder"] != p["speaker"] for p in named)
    for plan in named:
        if plan["id"] in records:
            assert records[plan["id"]]["recorder"] == plan["recorder"]
    statuses = {p["status"] for p in plans}
    assert {"draft", "submitted", "approved", "rejected", "postponed", "cancelled"} <= statuses
    for plan in plans:
        approvals = [d for d in plan["decisions"] if d["decision"] in ("approved", "rejected")]
        assert all(d["by"] in ("P-02", "P-07") and d["by"] != plan["speaker"] for d in approvals)
        assert plan["method"] and plan["focus"] is not None and plan["created_by"] == "P-01"
    continuation = next(p for p in plans if p["continues"])
    assert set(records[continuation["continues"]]["deferred"]) <= set(continuation["focus"])
    assert any(r["confirmed_on"] for r in records.values())
    assert any(f["done"] for r in records.values() for f in r["follow_ups"])


def test_bulk_text_is_what_document_text_gives(bulk):
    from talkbook.demo_seal import document_text
    from talkbook.models import parse

    root, _ = bulk
    from talkbook.app import App

    app = App(root, keys(root) / "P-01.txt")
    for path in sorted(root.glob("talks/*/*/*.md.age"))[:20] + sorted(root.glob("cadres/*"))[:5]:
        text = app.cat(str(path)).decode("utf-8")
        doc = parse(text)
        assert document_text(doc) == doc.text() == text


def git_out(root, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout


def test_bulk_repository_is_whole_and_its_status_clean(bulk):
    import subprocess

    root, _ = bulk
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True)
    assert status.returncode == 0 and status.stdout == b""  # index read from HEAD, refreshed
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=root, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
    # Dangling: only the scratch commits fast-import carried the trees on (unreachable, never
    # pushed, pruned by git gc), each of them with a tree a signed commit of the branch has.
    dangling = [line.split()[-1] for line in fsck.stdout.splitlines() if "dangling" in line]
    assert all(line.startswith("dangling commit ") for line in fsck.stdout.splitlines()
               if "dangling" in line)  # fmt: skip
    kept = set(git_out(root, "log", "--format=%T").split())
    for commit in dangling:
        shown = git_out(root, "cat-file", "commit", commit)
        assert "committer talkbook demo <demo@talkbook.invalid> 0 +0000" in shown
        assert shown.split()[1] in kept  # "tree <id>"


def test_front_matter_field_by_field_is_what_document_text_gives(monkeypatch):
    import datetime as dt

    from talkbook import demo_seal
    from talkbook.models import Document

    monkeypatch.setattr(demo_seal, "_FRAGMENTS", {})
    decision = {"by": "P-02", "at": "2026-03-01T09:30", "decision": "approved", "comment": None}
    metas = [
        {"id": "T-aaaaaa", "status": "approved", "decisions": [decision], "focus": ["一", "二"]},
        {"id": "T-bbbbbb", "status": "approved", "decisions": [decision], "focus": []},
        {"status": "approved", "id": "T-aaaaaa", "note": "长" * 120, "on": dt.date(2026, 3, 1)},
        {"a": "approved", "b": 1, "c": True, "d": "1", "e": "2026-03-01", "f": "yes"},
        {},
    ]
    for meta in metas * 2:  # the second time from the cache
        doc = Document(meta, "正文")
        assert demo_seal.document_text(doc) == doc.text()
    assert demo_seal._FRAGMENTS  # cached (one value under two names kept apart: 'approved')
    alone = demo_seal.Pool.__new__(demo_seal.Pool)  # the pool of a one-core machine
    alone.pool = None
    alone.close()
    assert not demo_seal._FRAGMENTS  # no plaintext kept past the build


def test_recipients_by_the_fields_the_access_rules_name(bulk, monkeypatch):
    from talkbook import crypto, demo_seal
    from talkbook.workspace import Workspace

    root, _ = bulk
    ws = Workspace(root)
    monkeypatch.setattr(demo_seal, "_SHARED", {"ws": ws})
    monkeypatch.setattr(demo_seal, "_READERS", {})
    monkeypatch.setattr(crypto, "parse_recipient", lambda key: key)  # keys as written
    assert demo_seal.rule_fields(ws.config) == ("recorder", "speaker")
    plans = documents(root, "talks/*/*/plan.md.age")
    assert len({(p["speaker"], p["recorder"]) for p in plans}) > 3
    for plan in plans:
        assert demo_seal.recipients("plan", plan) == ws.recipients("plan", plan)
        assert demo_seal.recipients("record", plan) == ws.recipients("record", plan)
