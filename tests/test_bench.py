"""`make bench` in miniature: every row of the table, written to bench.md. No timing asserts."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from talkbook import bench


def table_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines, text
    header, separator, *body = lines
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.COLUMNS)
    assert set(separator) <= set("|-: ")
    return [[c.strip() for c in line.strip("|").split("|")] for line in body]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[str, str, object]:
    """One tiny bench run for the module: (printed, bench.md, base folder)."""
    base = tmp_path_factory.mktemp("bench")
    out = base / "bench.md"
    argv = ["--cadres", "6", "--talks", "10", "--sample", "3", "--quick"]
    argv += ["--base", str(base / "ws"), "--out", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(base / "home"))
        patch.setenv("XDG_CONFIG_HOME", str(base / "home" / ".config"))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert bench.main(argv) == 0
    return printed.getvalue(), out.read_text(encoding="utf-8"), base


def test_every_row_is_in_the_table_and_in_bench_md(ran):
    printed, written, _ = ran
    rows = table_rows(written)
    names = [row[0] for row in rows]
    expected = ["floor", "peer", "index, cold", "index, warm", "validate", "due", "list talks"]
    expected += ["list cadres", *(f"report {n} " for n in bench.REPORTS), "plan", "audit"]
    expected += ["git log -p", "talkbook --help", "python -c 'import click'"]
    for start in expected:
        assert any(name.startswith(start) for name in names), (start, names)
    for row in rows:
        assert len(row) == len(bench.COLUMNS), row
        assert row[1] == "not available" or float(row[1]) >= 0, row
        assert row[5] in ("", "met", "not met"), row
    assert table_rows(printed) == rows


def test_targets_are_the_issues(ran):
    _, written, _ = ran
    rows = {row[0]: row for row in table_rows(written)}
    assert rows["index, cold"][3] == "≤ 1.0× floor"
    assert rows["due (warm)"][3] == "≤ 0.05× floor"
    assert rows["plan (warm; reads deferred topics)"][3] == "≤ 0.05× floor"
    assert "≤ 3×" in rows["talkbook --help"][3]
    textconv = next(r for name, r in rows.items() if name.startswith("git log -p"))
    assert "5×" in textconv[3]
    assert re.search(r"^machine: nproc=\d+, Python 3\.", written, re.M)
    assert re.search(r"^workspace: 6 cadres, 10 talks, \d+ encrypted files", written, re.M)


def test_the_workspace_is_reused_and_left_as_it_was(ran, capsys):
    _, _, base = ran
    root = base / "ws" / "c6-t10" / "ws"
    head = bench.git(bench.Bench(root, root, bench.environment(), []), "rev-parse", "HEAD")
    assert bench.workspace(base / "ws", 6, 10, bench.environment())[1].startswith("reused")
    after = bench.git(bench.Bench(root, root, bench.environment(), []), "rev-parse", "HEAD")
    assert head == after  # `plan` ran on it and was reset
    assert not list(root.glob("talks/*/*/.*.tmp-*"))


def test_options_and_their_defaults():
    full = bench.parse_args([])
    assert (full.cadres, full.talks, full.sample, full.quick) == (2000, 10000, 200, False)
    assert str(full.out) == "build/bench.md"
    with pytest.raises(SystemExit) as stopped:
        bench.parse_args(["--cadres", "0"])
    assert stopped.value.code == 2
