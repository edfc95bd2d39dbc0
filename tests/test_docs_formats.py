"""The README's `--from` examples, run as printed: a profile, a plan and a record in Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import last_line, ok
from talkbook.models import parse

README = Path(__file__).parents[1] / "README.md"


def readme_example(kind: str) -> str:
    """The fenced block right after `<!-- example: KIND -->` in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- example: {kind} -->\n```markdown\n(.*?)```\n", text, re.DOTALL)
    assert found, f"README has no {kind} example"
    return found.group(1)


@pytest.mark.parametrize("kind", ["profile", "plan", "record"])
def test_each_example_parses(kind: str) -> None:
    doc = parse(readme_example(kind), f"README {kind}")
    assert doc.meta and doc.body.strip()


def test_the_examples_make_a_whole_talk(workspace, clock, tmp_path) -> None:
    sources = {}
    for kind in ("profile", "plan", "record"):
        sources[kind] = tmp_path / f"{kind}.md"
        sources[kind].write_text(readme_example(kind), encoding="utf-8")
    clock.set("2026-11-20T10:00")
    cadre = last_line(workspace.as_("P-01", "cadre", "new", "--from", sources["profile"]))
    talk = last_line(workspace.as_("P-01", "plan", cadre, "--from", sources["plan"]))
    ok(workspace.as_("P-03", "submit", talk))
    ok(workspace.as_("P-02", "approve", talk, "--comment", "同意"))
    clock.set("2026-12-02T10:00")
    ok(workspace.as_("P-04", "record", talk, "--from", sources["record"]))
    ok(workspace.as_("P-01", "validate"))
    plan = ok(workspace.as_("P-01", "cat", talk)).stdout
    record = ok(workspace.as_("P-01", "cat", f"{talk}/record")).stdout
    assert "method: consultation" in plan and "新岗位的工作思路" in plan
    assert "recorder: P-04" in plan and "谈话提纲" in plan
    assert "协调解决爱人就医问题" in record and "子女入学问题" in record
    profile = ok(workspace.as_("P-01", "cat", cadre)).stdout
    assert "预算科科长" in profile and "年度考核优秀" in profile
