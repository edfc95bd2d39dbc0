"""The bench's git log rows (talkbook.bench.git_log_seconds, textconv_rows): the driver runs
counted, `age -d` timed as a driver in the same git log, and the identity found where git runs
the driver. Timings are the bench's business: nothing here asserts one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import age_cli, make_key
from talkbook import bench, crypto

PLAN = "---\nid: T-k3x9p2\ncadre: 张伟\n---\n\n谈话时注意语气。\n"


def small_workspace(root: Path, keys: Path) -> list[Path]:
    """A git repository with one talk's file: added, then changed (3 driver runs in git log),
    encrypted to P-01's key. Returns its files."""
    keys.mkdir()
    _key, public = make_key(keys, "P-01")
    talk = root / "talks" / "2026" / "T-k3x9p2"
    talk.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", root], check=True)
    (root / ".gitattributes").write_text("*.age diff=talkbook\n", encoding="utf-8")
    plan = talk / "plan.md.age"
    for text in (PLAN, PLAN.replace("谈话", "约谈")):
        plan.write_bytes(crypto.encrypt(text.encode(), [public]))
        subprocess.run(["git", "-C", root, "add", "."], check=True)
        subprocess.run(["git", "-C", root, "commit", "-qm", "plan"], check=True)
    return [plan]


@pytest.fixture
def relative_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bench.Bench:
    """Paths relative to the bench's folder, as `make bench` gives them (build/bench/…)."""
    monkeypatch.chdir(tmp_path)
    root, keys = Path("ws"), Path("ws.keys")
    files = small_workspace(root, keys)
    env = bench.environment() | {"TALKBOOK_IDENTITY": str(keys / "P-01.txt")}
    return bench.Bench(root, keys, env, files, quick=True)


def test_runs_counted_and_age_timed_as_a_driver(relative_bench: bench.Bench) -> None:
    age_cli()
    log = bench.git_log_seconds(relative_bench)
    assert log.runs == 3  # the new file once, the change on both sides
    assert set(log.wall) == set(log.cpu) == {"driver", "plain", "age"}
    # the identity is relative to the bench, git runs the driver in the work tree: still read
    assert log.same is True


def test_rows_judge_the_driver_against_age_as_a_driver(relative_bench: bench.Bench) -> None:
    age_cli()
    rows = bench.textconv_rows(relative_bench, 1.0, 0.005)
    names = [row.operation for row in rows]
    assert names[0].startswith("git log -p") and "3 runs" in names[0]
    assert names[1] == "peer: the same git log -p, `age -d` as the textconv driver"
    assert "`age -d` alone" in rows[0].measured and "CPU" in rows[0].measured
    assert rows[0].met is not None
