"""`make bench` in miniature: every row of the table is there and numeric. No timing asserts."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import git_log
from talkbook import bench
from talkbook.app import App

CJK = re.compile(r"[\u4e00-\u9fff]")


def table_rows(out: str) -> list[list[str]]:
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines, out
    header, separator, *body = lines
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.COLUMNS)
    assert set(separator) <= set("|-: ")
    return [[c.strip() for c in line.strip("|").split("|")] for line in body]


def test_quick_run_prints_every_row_with_numbers(tmp_path, capsys):
    assert bench.main(["--quick", "--cadres", "3", "--talks", "4", "--tmp", str(tmp_path)]) == 0
    out = capsys.readouterr().out

    rows = table_rows(out)
    assert {row[0] for row in rows} == set(bench.OPERATIONS)
    floors = {row[3] for row in rows}
    assert "python -c pass" in floors
    assert ("age -d" in floors) == (shutil.which("age") is not None)
    for row in rows:
        assert len(row) == len(bench.COLUMNS), row
        assert int(row[1]) >= 1
        for cell in (row[2], row[4], row[5]):
            assert float(cell) >= 0, row
    files = {row[0]: int(row[1]) for row in rows}
    assert files["cat ID (subprocess)"] == 1
    assert files["load everything (catalog.load)"] >= 3 + 4  # profiles and plans at least

    assert re.search(r"^machine: nproc=\d+, Python 3\.", out, re.M)
    assert re.search(r"^workspace: 3 cadres, 4 plans, \d+ records", out, re.M)
    assert re.search(
        r"^talkbook validate: \d+ file\(s\) checked, 0 finding\(s\) \(exit 0\)", out, re.M
    )
    assert re.search(r"^total: [\d.]+ s$", out, re.M)
    assert "note: rekey rewrote" not in out  # a second rekey on an unchanged workspace is a no-op
    assert not list(tmp_path.iterdir()), "the throwaway workspace is removed afterwards"


def test_generated_workspace_is_encrypted_chinese_and_one_commit(tmp_path):
    built = bench.build_workspace(tmp_path, cadres=3, talks=5)
    app = App(built.root, built.keys["P-01"])

    text = app.cat(built.cadres[0]).decode("utf-8")
    name = re.search(r"^name: (.+)$", text, re.M).group(1)
    assert CJK.search(name)
    for path in built.root.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        assert not CJK.search(path.relative_to(built.root).as_posix()), path
        if path.suffix == ".age":
            assert name.encode("utf-8") not in path.read_bytes()
    subjects = git_log(built.root, "--format=%s").splitlines()
    assert subjects == ["bench: generated workspace", "workspace: initialized"]
    assert built.files == len(app.workspace.encrypted_files()) == 3 + built.plans + built.records
    assert built.records <= built.plans == 5


def test_options_and_their_defaults():
    full = bench.parse_args([])
    assert (full.cadres, full.talks, full.repeat, full.quick) == (300, 600, 3, False)
    quick = bench.parse_args(["--quick", "--talks", "2"])
    assert (quick.cadres, quick.talks, quick.repeat) == (4, 2, 1)
    with pytest.raises(SystemExit) as stopped:
        bench.parse_args(["--cadres", "0"])
    assert stopped.value.code == 2
