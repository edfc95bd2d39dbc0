"""`make bench`: the main operations timed on a large demo workspace, beside the floor.

The workspace is built once by `talkbook demo DIR --cadres C --talks T --bulk` (the user's own
builders) under build/bench/c<C>-t<T>/ and reused by later runs of the same size. One run then
measures, on the custodian's key (who reads every file):

- the floor: pyrage decrypting each file once in a plain loop, in this process, the files
  read once before and the best of two loops (so the disk never flatters a ratio);
- the peer way: the `age` CLI decrypting each file (a sample when there are many, scaled);
- talkbook's commands as a user runs them, each a process of its own: `index` cold (its cache
  deleted; the best of two, as the floor) and warm, `validate`, `due`, `list`, each `report`,
  `plan` (which reads deferred topics; run on a throwaway branch of the bench's own workspace
  and reset after), `audit`,
  `git log -p` over 100 commits (the textconv driver as `talkbook setup` writes it, beside
  `age -d` as the driver in the same git log), `talkbook --help` beside
  `python -c "import click"`. Warm = the best of two runs after one that warms the caches
  and the index, as the floor is the best of two (`validate`, untimed by a target: one run).

It prints a Markdown table (seconds, ratio to the floor, the issue's target, met or not) and
writes it to build/bench.md. Timings live here, never in a test's assert. Nothing it prints
carries a name or content: commands' output goes to /dev/null, reports to a temp folder.
Run: python -m talkbook.bench [--cadres 2000 --talks 10000] [--sample 200].
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPORTS = ("coverage", "due", "speakers", "occasions", "approvals", "followups")
COLUMNS = ("operation", "seconds", "× floor", "target", "measured", "met")
DEMO_TODAY = "2026-11-16T17:30"  # demo_data.yaml's today: what due and reports judge by
GIT_LOG_COMMITS = 100
GIT_LOG_ROUNDS = 3  # interleaved: driver, no textconv, age; the median of each


@dataclass
class Row:
    operation: str
    seconds: float | None  # None: not available
    floor: float
    target: str = ""
    measured: str = ""
    met: bool | None = None
    note: str = ""

    def cells(self) -> list[str]:
        if self.seconds is None:
            return [self.operation, "not available", "", self.target, self.note, ""]
        ratio = f"{self.seconds / self.floor:.3f}" if self.floor > 0 else "∞"
        met = "" if self.met is None else ("met" if self.met else "not met")
        return [self.operation, f"{self.seconds:.3f}", ratio, self.target, self.measured, met]


@dataclass
class Bench:
    root: Path
    keys: Path
    env: dict[str, str]
    files: list[Path]
    quick: bool = False  # one run each: warm rows are then first runs (for tests, not numbers)

    @property
    def key(self) -> Path:
        return self.keys / "P-01.txt"

    def talkbook(self, *args: str) -> list[str]:
        script = Path(sys.executable).parent / "talkbook"
        command = [str(script)] if script.is_file() else [sys.executable, "-m", "talkbook"]
        return [*command, "-w", str(self.root), "-i", str(self.key), *args]


def timed(command: list[str], env: dict[str, str], **kwargs) -> tuple[float, int, str]:
    """(seconds, exit code, last line of stderr) of one run, output discarded."""
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs
    )
    spent = time.perf_counter() - started
    last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
    return spent, done.returncode, last


def unavailable(code: int, stderr: str) -> bool:
    """A command this version of talkbook does not have (click's usage error)."""
    return code == 2 and ("No such command" in stderr or "no such option" in stderr.lower())


# -- the workspace -----------------------------------------------------------------------------
def workspace(base: Path, cadres: int, talks: int, env: dict[str, str]) -> tuple[Path, str]:
    """The bench workspace of this size, built by `talkbook demo --bulk` unless already there."""
    folder = base / f"c{cadres}-t{talks}"
    root, done = folder / "ws", folder / "built"
    if done.is_file() and (root / ".git").is_dir():
        return root, f"reused {root} (built by `talkbook demo`: {done.read_text().strip()})"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    command = [sys.executable, "-m", "talkbook", "demo", str(root), "--bulk"]
    command += ["--cadres", str(cadres), "--talks", str(talks)]
    started = time.perf_counter()
    made = subprocess.run(command, env=env, capture_output=True, text=True)
    spent = time.perf_counter() - started
    if made.returncode != 0:
        sys.exit(f"bench: talkbook demo failed: {made.stderr.strip()[-500:]}")
    said = [line for line in made.stdout.splitlines() if line.startswith(("built ", "where "))]
    summary = f"{spent:.1f} s wall, load average {load()}; " + "; ".join(said)
    done.write_text(summary + "\n", encoding="utf-8")
    return root, f"built {root} with `talkbook demo --bulk` in {summary}"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


# -- the floor and the peer ----------------------------------------------------------------------
def floor_seconds(bench: Bench, runs: int = 2) -> float:
    """pyrage decrypting each file once, in a plain loop in this process: what no tool beats.
    The files are read once before (a floor that waited on the disk would flatter every ratio
    over it), and the best of `runs` loops is taken, for the same reason."""
    import pyrage

    from talkbook.crypto import Keyring

    identities = Keyring.from_file(bench.key).identities
    for path in bench.files:  # into the page cache: the timed loop reads, it does not wait
        path.read_bytes()
    best = float("inf")
    for _ in range(1 if bench.quick else runs):
        started = time.perf_counter()
        for path in bench.files:
            pyrage.decrypt(path.read_bytes(), identities)
        best = min(best, time.perf_counter() - started)
    return best


def age_per_file(bench: Bench, sample: int) -> tuple[float | None, int]:
    """Seconds per file for `age -d`, over an evenly spread sample of the files."""
    age = shutil.which("age")
    if age is None or not bench.files:
        return None, 0
    step = max(1, len(bench.files) // max(1, sample))
    chosen = bench.files[::step][:sample]
    started = time.perf_counter()
    for path in chosen:
        command = [age, "-d", "-i", str(bench.key), str(path)]
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - started) / len(chosen), len(chosen)


# -- the commands ------------------------------------------------------------------------------
def warm(bench: Bench, *args: str, runs: int = 2) -> tuple[float | None, str]:
    """The best of `runs` runs after one that warms caches and the index (measured as the
    floor is: its best of two); None if unavailable."""
    spent, code, last = timed(bench.talkbook(*args), bench.env)
    if unavailable(code, last):
        return None, "not available yet"
    if not bench.quick:
        times = []
        for _ in range(runs):
            again, code, last = timed(bench.talkbook(*args), bench.env)
            times.append(again)
        spent = min(times)
    return spent, "" if code in (0, 1) else f"exit {code}"


def once(bench: Bench, *args: str) -> tuple[float | None, str]:
    spent, code, last = timed(bench.talkbook(*args), bench.env)
    if unavailable(code, last):
        return None, "not available yet"
    return spent, "" if code in (0, 1) else f"exit {code}"


def cold_index_seconds(bench: Bench, runs: int = 2) -> float | None:
    """`talkbook index` with no index there, the best of `runs` (measured as the floor is)."""
    best: float | None = None
    for _ in range(1 if bench.quick else runs):
        shutil.rmtree(bench.root / ".talkbook", ignore_errors=True)
        spent = once(bench, "index")[0]
        if spent is None:
            return None
        best = spent if best is None else min(best, spent)
    return best


def plan_seconds(bench: Bench) -> tuple[float | None, str]:
    """`talkbook plan` for three cadres (warm = the best of the second and third, as `warm`),
    then the bench's workspace is put back."""
    head = git(bench, "rev-parse", "HEAD").strip()
    cadres = sorted(p.name.removesuffix(".md.age") for p in (bench.root / "cadres").glob("C-*"))
    with tempfile.TemporaryDirectory(prefix="talkbook-bench-") as temp:
        source = Path(temp) / "plan.md"
        source.write_text("---\npreparations: [查阅近三年年度考核材料]\n---\n", encoding="utf-8")
        at = (dt.datetime.fromisoformat(DEMO_TODAY) + dt.timedelta(days=7)).isoformat()[:16]
        try:
            runs = []
            for cadre in cadres[: 1 if bench.quick else 3]:
                args = ["plan", cadre, "--speaker", "P-03", "--at", at, "--from", str(source)]
                spent, code, last = timed(bench.talkbook(*args), bench.env)
                if code != 0:
                    return None, f"exit {code}"
                runs.append(spent)
        finally:
            git(bench, "reset", "--hard", "-q", head)
    return min(runs[1:] or runs), ""


def git(bench: Bench, *args: str) -> str:
    command = ["git", "--no-pager", "-C", str(bench.root), *args]
    return subprocess.run(command, env=bench.env, capture_output=True, text=True, check=True).stdout


@dataclass
class GitLog:
    """`git log -p` with each diff driver ("driver": talkbook's, as `talkbook setup` writes it
    today; "age": `age -d -i KEY`, the peer timed the same way; "plain": --no-textconv, git's
    own work): the median of interleaved rounds, in seconds of wall clock and of CPU (user +
    sys of git and all it started)."""

    wall: dict[str, float]
    cpu: dict[str, float]
    runs: int  # how many times a driver ran, counted
    same: bool | None  # whether talkbook's driver showed what age showed

    def per_run(self, name: str, cpu: bool = False) -> float:
        """One run of this driver: git's own work taken out."""
        spent = self.cpu if cpu else self.wall
        return max(0.0, spent[name] - spent["plain"]) / self.runs if self.runs else 0.0


def git_log_paths(bench: Bench) -> list[str]:
    """The files of 25 talks spread over the workspace."""
    talks = sorted({p.parent for p in bench.files if p.parent.name.startswith("T-")})
    return [str(p.relative_to(bench.root)) for t in talks[:: max(1, len(talks) // 25)] for p in
            sorted(t.glob("*.md.age"))]  # fmt: skip


def git_log_run(
    bench: Bench, env: dict[str, str], driver: str | None, paths: list[str]
) -> tuple[float, float, bytes, bytes]:
    """(seconds, CPU seconds, stdout, stderr) of one `git log -p` with `driver` as
    diff.talkbook.textconv (None: --no-textconv)."""
    import resource

    config = [] if driver is None else ["-c", f"diff.talkbook.textconv={driver}"]
    log = ["log", "-p", "-n", str(GIT_LOG_COMMITS), *(["--no-textconv"] if driver is None else [])]
    command = ["git", "--no-pager", "-C", str(bench.root), *config, *log, "--", *paths]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=True)
    spent = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return spent, cpu, done.stdout, done.stderr


def git_log_seconds(bench: Bench) -> GitLog:
    """`git log -p` over the latest 100 commits touching 25 talks' files, warm, with
    talkbook's driver (the script `talkbook setup` writes, put in a temp folder: the
    workspace's own configuration may be older), with `age -d` as the driver, and without
    textconv, in interleaved rounds. The runs are counted by a driver that says each one."""
    import shlex

    from talkbook.textconv import install_driver

    # git runs the driver at the top of the work tree: a relative identity is not found there
    key = str(bench.key.resolve())
    env = {**bench.env, "TALKBOOK_IDENTITY": key}
    paths = git_log_paths(bench)
    age = shutil.which("age")
    with tempfile.TemporaryDirectory(prefix="talkbook-bench-") as temp:
        drivers = {"driver": install_driver(temp), "plain": None}
        if age:
            drivers["age"] = f"{shlex.quote(age)} -d -i {shlex.quote(key)}"
        runs = git_log_run(bench, env, "echo run >&2; cat", paths)[3].count(b"run\n")
        spent: dict[str, list[tuple[float, float]]] = {name: [] for name in drivers}
        shown: dict[str, bytes] = {}
        if not bench.quick:
            git_log_run(bench, env, drivers["driver"], paths)  # warms the caches
        for _ in range(1 if bench.quick else GIT_LOG_ROUNDS):
            for name, driver in drivers.items():
                seconds, cpu_seconds, shown[name], _ = git_log_run(bench, env, driver, paths)
                spent[name].append((seconds, cpu_seconds))
    wall = {name: statistics.median(w for w, _ in values) for name, values in spent.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in spent.items()}
    return GitLog(wall, cpu, runs, shown["driver"] == shown["age"] if age else None)


def median_of(command: list[str], env: dict[str, str], runs: int = 5) -> float:
    return statistics.median(timed(command, env)[0] for _ in range(runs))


# -- the run -----------------------------------------------------------------------------------
def measure(bench: Bench, sample: int, say: Callable[[str], None]) -> list[Row]:
    floor = floor_seconds(bench)
    name = "floor: pyrage.decrypt each file once (in-process; it and the cold index: best of 2)"
    rows = [Row(name, floor, floor, measured="1×")]
    age, sampled = age_per_file(bench, sample)
    if age is None:
        rows.append(Row("peer: `age -d` each file", None, floor, note="no age CLI"))
    else:
        scaled = age * len(bench.files)
        what = f"peer: `age -d` each file (sample of {sampled}, scaled)"
        rows.append(Row(what, scaled, floor, measured=f"{age * 1000:.1f} ms/file"))
    say("floor and peer measured")
    cold = Row("index, cold", cold_index_seconds(bench), floor)  # best of 2, as the floor
    rows.append(target(cold, "≤ 1.0× floor", 1.0))
    rows.append(Row("index, warm", once(bench, "index")[0], floor))
    say("index measured")
    commands = [("validate", ["validate"], None), ("due", ["due"], 0.05)]
    commands += [("list talks", ["list", "talks"], 0.05), ("list cadres", ["list", "cadres"], 0.05)]
    with tempfile.TemporaryDirectory(prefix="talkbook-bench-") as temp:
        for name in REPORTS:
            out = str(Path(temp) / f"{name}.html")
            commands.append((f"report {name} --format html", ["report", name, "--format", "html",
                             "--out", out], 0.05))  # fmt: skip
        for name, args, bound in commands:
            spent, note = warm(bench, *args, runs=2 if bound else 1)  # validate: 40 s a run
            row = Row(f"{name} (warm)", spent, floor, note=note)
            rows.append(target(row, "≤ 0.05× floor", bound) if bound else row)
            say(f"{name} measured")
    spent, note = plan_seconds(bench)
    rows.append(target(Row("plan (warm; reads deferred topics)", spent, floor, note=note),
                       "≤ 0.05× floor", 0.05))  # fmt: skip
    textconv = textconv_rows(bench, floor, age)  # before audit: right after it, git log -p
    rows.append(Row("audit", *once(bench, "audit")[:1], floor))  # runs several times slower
    say("plan, git log, --help and audit measured")
    return rows + textconv


def textconv_rows(bench: Bench, floor: float, age: float | None) -> list[Row]:
    """git log -p with talkbook's driver, judged against `age -d` as the driver in the same
    git log (both pay git's cost of a driver run: a temp file, a process, a diff), and shown
    beside `age -d` run alone (`age`, seconds per file) and in CPU time."""
    log = git_log_seconds(bench)
    rounds = 1 if bench.quick else GIT_LOG_ROUNDS
    what = f"git log -p, {GIT_LOG_COMMITS} commits (warm, median of {rounds}; {log.runs} runs)"
    row = Row(what, log.wall["driver"], floor, target="textconv ≤ 5× `age -d` per file")
    per, per_cpu = log.per_run("driver"), log.per_run("driver", cpu=True)
    row.measured = f"{per * 1000:.1f} ms/run"
    if "age" not in log.wall:
        return [row, *help_rows(bench, floor)]
    peer, peer_cpu = log.per_run("age"), log.per_run("age", cpu=True)
    if peer > 0 and peer_cpu > 0:
        alone = f"; {per / age:.2f}× `age -d` alone" if age else ""
        row.measured = (
            f"{per / peer:.2f}× ({per * 1000:.1f} vs {peer * 1000:.1f} ms/run{alone}; CPU "
            f"{per_cpu / peer_cpu:.2f}×: {per_cpu * 1000:.1f} vs {peer_cpu * 1000:.1f} ms/run)"
        )
        row.met = per <= 5 * peer and bool(log.same)
    if not log.same:
        row.measured += "; shows other text than age"
    peer_row = Row(
        "peer: the same git log -p, `age -d` as the textconv driver", log.wall["age"], floor
    )
    peer_row.measured = f"{peer * 1000:.1f} ms/run"
    return [row, peer_row, *help_rows(bench, floor)]


def help_rows(bench: Bench, floor: float) -> list[Row]:
    runs = 1 if bench.quick else 5
    click = median_of([sys.executable, "-c", "import click"], bench.env, runs)
    helped = median_of(bench.talkbook("--help"), bench.env, runs)
    help_row = Row("talkbook --help", helped, floor, "≤ 3× `python -c 'import click'`")
    help_row.measured, help_row.met = f"{helped / click:.2f}×", helped <= 3 * click
    return [help_row, Row("python -c 'import click'", click, floor)]


def target(row: Row, text: str, bound: float) -> Row:
    row.target = text
    if row.seconds is not None and row.floor > 0:
        row.measured = f"{row.seconds / row.floor:.3f}×"
        row.met = row.seconds <= bound * row.floor
    return row


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---|---|---|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"machine: nproc={cpus}, Python {platform.python_version()} ({platform.machine()}, "
        f"{platform.system()} {platform.release()}), {version}; load average {load()}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m talkbook.bench",
        description="Time talkbook's main operations on a demo workspace, beside the floor.",
    )
    parser.add_argument("--cadres", type=int, default=2000, help="cadre profiles [2000]")
    parser.add_argument("--talks", type=int, default=10000, help="talks [10000]")
    parser.add_argument("--sample", type=int, default=200, help="files `age -d` decrypts [200]")
    parser.add_argument("--base", type=Path, default=Path("build/bench"), help="[build/bench]")
    parser.add_argument("--out", type=Path, default=Path("build/bench.md"), help="[build/bench.md]")
    parser.add_argument("--quick", action="store_true", help="one run each (tests; no numbers)")
    args = parser.parse_args(argv)
    if args.cadres < 1 or args.talks < 1 or args.sample < 1:
        parser.error("--cadres, --talks and --sample must be at least 1")
    return args


def environment() -> dict[str, str]:
    """The user's environment, with the demo's clock; no other TALKBOOK_ setting leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALKBOOK_")}
    env.update(TALKBOOK_NOW=DEMO_TODAY, GIT_PAGER="cat")
    # An installed package runs from its cached bytecode: without it (PYTHONDONTWRITEBYTECODE
    # and a module edited since) every command would compile talkbook's modules again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compiled() -> None:
    """talkbook's bytecode written now, as pip writes it at install, before anything is timed."""
    import compileall

    import talkbook

    compileall.compile_dir(Path(talkbook.__file__).parent, quiet=2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    env = environment()
    compiled()
    lines = [machine()]
    print(lines[0], flush=True)
    root, how = workspace(args.base, args.cadres, args.talks, env)
    keys = root.parent / f"{root.name}.keys"
    env["TALKBOOK_IDENTITY"] = str((keys / "P-01.txt").resolve())  # git runs drivers elsewhere
    files = sorted([*root.glob("cadres/*.md.age"), *root.glob("talks/*/*/*.md.age")])
    bench = Bench(root, keys, env, files, args.quick)
    commits = git(bench, "rev-list", "--count", "HEAD").strip()
    lines.append(f"workspace: {args.cadres} cadres, {args.talks} talks, {len(files)} encrypted "
                 f"files, {commits} commits; {how}")  # fmt: skip
    print(lines[-1], flush=True)
    rows = measure(bench, args.sample, lambda text: print(f"  … {text}", file=sys.stderr))
    lines += [f"load average after: {load()} (the machine may be shared: compare ratios)", ""]
    lines += [table(rows), "", f"total: {time.perf_counter() - started:.1f} s"]
    text = "\n".join(lines)
    print("\n".join(lines[2:]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
