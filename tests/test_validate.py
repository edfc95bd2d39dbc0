"""`talkbook validate`: every finding in one run, like a compiler: `path:line: field: message`.

Broken files are planted by hand: encrypted with talkbook.crypto.encrypt to chosen people.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from conftest import Clock, Setup, ok
from talkbook.crypto import encrypt

FINDING = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<field>[^:]+): (?P<message>.+)$")
PLAN_READERS = ["P-01", "P-02", "P-03"]  # custodian, approver, the speaker
RECORD_READERS = ["P-01", "P-03"]  # custodian, the speaker who is also the recorder
RECORD_ZH = """---
held_at: 2026-03-10T09:30
place: 市委组织部三楼谈话室
follow_ups:
  - what: 协调市人民医院专家会诊
    owner: 干部一科
    due: 2026-04-10
deferred: [对班子分工的不同意见]
---

谈话对象表示服从组织安排。
"""


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> None:
    clock.set("2026-03-01T08:00")


@pytest.fixture
def held(workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A clean workspace: the cadre, and one talk planned, approved and recorded."""
    ws = workspace
    made = ok(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    talk = made.stdout.strip().splitlines()[-1]
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk))
    monkeypatch.setenv("TALKBOOK_NOW", "2026-03-20T08:00")
    source = tmp_path / "record.md"
    source.write_text(RECORD_ZH, encoding="utf-8")
    ok(ws.as_("P-03", "record", talk, "--from", source))
    return talk


def plan_text(talk: str, **fields: str) -> str:
    """A plan's text; `fields` (with at least the cadre) override or add front matter."""
    meta = {
        "id": talk,
        "speaker": "P-03",
        "at": "2026-03-10T09:30",
        "talk_type": "routine",
        "method": "direct_questions",
        "status": "approved",
        "focus": "[岗位调整后的思想状况]",
        "decisions": (
            "\n  - {by: P-03, at: 2026-03-02T09:00, decision: submitted}"
            "\n  - {by: P-02, at: 2026-03-03T09:00, decision: approved, comment: 同意}"
        ),
        **fields,
    }
    front = "".join(f"{key}: {value}\n" for key, value in meta.items())
    return f"---\n{front}---\n\n手工加入的谈话计划。\n"


def record_text(talk: str, cadre: str, due: str = "2026-04-10") -> str:
    return (
        f"---\nid: {talk}\ncadre: {cadre}\nspeaker: P-03\nrecorder: P-03\n"
        f"held_at: 2026-03-10T09:30\nfollow_ups:\n  - what: 落实体检安排\n    owner: 干部一科\n"
        f"    due: {due}\n---\n\n谈话对象表示服从组织安排。\n"
    )


@dataclass
class Case:
    """Files to plant, and the one finding they must produce."""

    files: list[tuple[str, str, list[str]]]  # (talk id, plan/record, readers)
    texts: dict[str, str]
    where: str  # the file the finding is about
    fragment: str | None  # a text on the finding's line; None: line 1
    field: str
    message: str


def cases(cadre: str) -> dict[str, Case]:
    def plan(talk: str, readers: list[str] = PLAN_READERS, **fields: str):
        text = plan_text(talk, **{"cadre": cadre, **fields})
        return (f"talks/2026/{talk}/plan.md.age", text, readers)

    def record(talk: str, due: str = "2026-04-10"):
        return (f"talks/2026/{talk}/record.md.age", record_text(talk, cadre, due), RECORD_READERS)

    submitted = "\n  - {by: P-03, at: 2026-03-02T09:00, decision: submitted}"
    by_recorder = (
        submitted + "\n  - {by: P-04, at: 2026-03-03T09:00, decision: approved, comment: 同意}"
    )
    table = {
        "references": ([plan("T-ref001", cadre="C-zzzzzz")], "cadre: C-zzzzzz", "cadre",
                       "C-zzzzzz has no profile"),
        "roles": ([plan("T-rol001", decisions=by_recorder)], "by: P-04", "decisions",
                  "P-04 is not an approver"),
        "workflow": ([plan("T-wfl001", status="submitted", decisions=submitted),
                      record("T-wfl001")], "id: T-wfl001", "id",
                     "held, but its plan is submitted, not approved"),
        "dates": ([plan("T-dat001"), record("T-dat001", due="2026-03-01")], "due: 2026-03-01",
                  "follow_ups", "is before the talk was held"),
        "yaml": ([plan("T-yml001", place="会议室: 三楼")], "place:", "(front matter)",
                 "malformed YAML"),
        "recipients": ([plan("T-rcp001", readers=["P-01"])], None, "(recipients)",
                       "encrypted to 1 keys but the access rule gives 3"),
    }  # fmt: skip
    built = {}
    for name, (files, fragment, field, message) in table.items():
        where = files[-1][0]
        texts = {rel: text for rel, text, _ in files}
        built[name] = Case(files, texts, where, fragment, field, message)
    return built


def plant(ws: Setup, case: Case) -> None:
    for rel, text, readers in case.files:
        path = ws.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encrypt(text.encode("utf-8"), [ws.public[p] for p in readers]))


def expected_line(case: Case) -> int:
    if case.fragment is None:
        return 1
    lines = case.texts[case.where].splitlines()
    return next(i for i, row in enumerate(lines, 1) if case.fragment in row)


def findings(result: Result) -> list[dict[str, str]]:
    rows = []
    for line in result.stdout.splitlines():
        match = FINDING.match(line)
        assert match, f"not a path:line: field: message finding: {line!r}"
        rows.append(match.groupdict())
    return rows


def test_a_clean_workspace_has_no_findings(workspace: Setup, held: str) -> None:
    result = ok(workspace.as_("P-01", "validate"))
    assert result.stdout == "" and "3 file(s) checked, 0 finding(s)" in result.stderr


@pytest.mark.parametrize("name", ["references", "roles", "workflow", "dates", "yaml", "recipients"])
def test_each_rule(workspace: Setup, cadre: str, held: str, name: str) -> None:
    case = cases(cadre)[name]
    plant(workspace, case)
    result = workspace.as_("P-01", "validate")
    assert result.exit_code == 1, result.stderr
    rows = findings(result)
    about = [r for r in rows if r["path"] == case.where]
    assert [(int(r["line"]), r["field"]) for r in about] == [(expected_line(case), case.field)]
    assert case.message in about[0]["message"]


def test_every_finding_in_one_run_and_as_json(workspace: Setup, cadre: str, held: str) -> None:
    every = cases(cadre)
    for case in every.values():
        plant(workspace, case)
    result = workspace.as_("P-01", "validate")
    assert result.exit_code == 1
    rows = findings(result)
    got = {(r["path"], int(r["line"]), r["field"]) for r in rows}
    want = {(c.where, expected_line(c), c.field) for c in every.values()}
    assert got == want and len(rows) == len(want)
    assert f"{len(want)} finding(s)" in result.stderr

    as_json = workspace.as_("P-01", "validate", "--format", "json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["unreadable"] == [] and report["checked"] == 3 + 8
    assert [
        f"{f['path']}:{f['line']}: {f['field']}: {f['message']}" for f in report["findings"]
    ] == (result.stdout.splitlines())


def test_unreadable_files_are_counted_and_named_not_errors(
    workspace: Setup, cadre: str, held: str
) -> None:
    profile = f"cadres/{cadre}.md.age"
    result = ok(workspace.as_("P-03", "validate"))  # the speaker cannot read the profile
    assert result.stdout == ""
    assert "3 file(s) checked, 0 finding(s), 1 not readable" in result.stderr
    assert profile in result.stderr
    report = json.loads(ok(workspace.as_("P-03", "validate", "--format", "json")).stdout)
    assert report == {"findings": [], "checked": 3, "unreadable": [profile]}

    report = json.loads(ok(workspace.as_("outsider", "validate", "--format", "json")).stdout)
    assert report["findings"] == [] and len(report["unreadable"]) == 3

    # the speaker still sees what is wrong in the files the speaker can read
    plant(workspace, cases(cadre)["dates"])
    result = workspace.as_("P-03", "validate")
    assert result.exit_code == 1 and "follow_ups: is before the talk was held" in result.stdout


def test_validate_named_paths_only(
    workspace: Setup, cadre: str, held: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(workspace, cases(cadre)["references"])
    monkeypatch.chdir(workspace.root)
    assert ok(workspace.as_("P-01", "validate", f"talks/2026/{held}/plan.md.age", held))
    assert workspace.as_("P-01", "validate", "T-ref001").exit_code == 1


@pytest.mark.parametrize(
    "template, line, detail",
    [
        ("# 谈心谈话计划\n\n{{ brief.name | no_such_filter }}\n", 3, "no_such_filter"),
        ("# 谈心谈话计划\n{{ brief.age + '岁' }}\n", 2, "TypeError"),
        ("# 谈心谈话计划\n\n\n{% if brief.name %}\n{{ brief.name }}\n", 5, ""),
    ],
)
def test_a_broken_workspace_template_is_named_with_its_line(
    workspace: Setup, cadre: str, template: str, line: int, detail: str
) -> None:
    workspace.path("templates/zh-CN/plan.md.j2").write_text(template, encoding="utf-8")
    before = sorted(workspace.path("talks").rglob("*.age"))
    result = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "zh-CN/plan.md.j2" in message and f"line {line}" in message and detail in message
    assert "张伟" not in message  # the data being rendered stays out of the message
    assert sorted(workspace.path("talks").rglob("*.age")) == before


def test_due_names_the_malformed_files_it_skipped(workspace: Setup, cadre: str, held: str) -> None:
    """`due` cannot count what it cannot parse: it says so instead of staying silent."""
    case = cases(cadre)["yaml"]
    plant(workspace, case)
    result = workspace.as_("P-01", "due", "--as-of", "2026-03-05")
    assert result.exit_code in (0, 1)
    assert f"1 malformed file(s) skipped (run validate): {case.where}\n" in result.stderr


VALID_PLAN = """---
id: T-aaaaaa
cadre: C-aaaaaa
speaker: P-03
at: 2026-03-10T09:30
talk_type: routine
method: consultation
status: draft
---
"""
CHECKED = """
import sys
from talkbook.models import parse
from talkbook.validation import Subject, check_document
text = sys.stdin.read()
findings = check_document(Subject("plan", "talks/2026/T-aaaaaa/plan.md.age", parse(text), text))
print([str(f) for f in findings], "jsonschema" in sys.modules)
"""


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (VALID_PLAN, "[] False"),
        (VALID_PLAN.replace("method: consultation", "method: 7"), "[':7: method:'] True"),
    ],
)
def test_only_a_document_the_schema_refuses_is_walked_by_jsonschema(text: str, said: str) -> None:
    """jsonschema (a tenth of a second to import) words findings: a valid document needs none."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CHECKED], input=text, capture_output=True, text=True, check=True
    )
    where = re.sub(r"'talks/2026/T-aaaaaa/plan.md.age(:\d+: \w+:)[^']*'", r"'\1'", done.stdout)
    assert where.strip() == said
