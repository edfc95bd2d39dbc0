"""`make bench`: timings of the main operations, each beside a floor measured in the same run.

Builds a throwaway workspace in a temp folder (fictional Chinese data, every file encrypted as
talkbook writes it, one git commit), checks it with `validate`, then times each operation over a
few repetitions (median) next to what it cannot beat: decrypting the same bytes, a bare commit,
starting Python. Prints a Markdown table. Run: python -m talkbook.bench [--quick].
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPERATIONS = (
    "load everything (catalog.load)",
    "due (views.due_rows)",
    "validate (crosscheck.validate)",
    "rekey, no-op (history.rekey)",
    "audit, one commit (audit.audit)",
    "cadre new --from (profiles.new_cadre)",
    "cat ID (subprocess)",
)
COLUMNS = ("operation", "files", "median s", "floor", "floor s", "ratio")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文辉玉兰海燕鹏飞晓东"
UNITS = ["市发展和改革委员会", "市财政局", "市教育局", "市卫生健康委员会", "市生态环境局",
         "市交通运输局", "市农业农村局", "市商务局", "市住房和城乡建设局", "市审计局"]  # fmt: skip
POSTS = ["主任", "副主任", "局长", "副局长", "处长", "副处长", "科长", "一级主任科员"]
RANKS = ["正处级", "副处级", "正科级", "副科级", "一级主任科员", "二级主任科员"]
EDUCATION = [("研究生", "区域经济学"), ("大学本科", "汉语言文学"), ("大学本科", "财政学"),
             ("研究生", "公共管理"), ("大学本科", "土木工程"), ("大学专科", "会计学")]  # fmt: skip
STRENGTHS = ["业务扎实", "作风严谨", "勇于担当", "善于协调", "群众基础好", "执行力强"]
WEAKNESSES = ["与基层沟通偏少", "工作方法略显简单", "统筹全局能力有待提高", "创新意识不够强"]
DIFFICULTIES = ["爱人长期生病，家庭负担较重", "子女在外地上学，照顾不便", "父母年迈需要照料",
                "两地分居多年", "住房离单位较远，通勤时间长"]  # fmt: skip
NOTES = ["调任新岗位，工作交接中", "年度考核结果反馈", "近期工作压力较大，情绪有些低落",
         "家中老人住院", "与同事在项目分工上有分歧", "本人主动提出谈话"]  # fmt: skip
SAID = ["谈话对象表示，近期工作任务繁重，但总体能够适应，对单位发展充满信心。",
        "谈到家庭情况时，谈话对象说父母身体不太好，希望组织在工作安排上适当考虑。",
        "谈话对象对班子团结、分工协作提出了几点具体建议，态度诚恳。",
        "谈话对象坦言，对下一步岗位安排有些顾虑，担心专业不对口。"]  # fmt: skip
GUIDANCE = ["谈话人肯定了其工作成绩，勉励其继续发挥业务专长，在攻坚任务中多担当。",
            "谈话人提醒其注意工作方法，多深入基层，多听取群众意见。",
            "谈话人表示组织将认真研究其反映的困难，能解决的尽快解决。"]  # fmt: skip
STAFF = [  # id, name, roles
    ("P-01", "王芳", ["custodian"]),
    ("P-02", "陈建国", ["approver"]),
    ("P-03", "李明", ["speaker", "recorder"]),
    ("P-04", "刘洋", ["speaker", "recorder"]),
    ("P-05", "孙丽", ["speaker"]),
    ("P-06", "赵丽", ["recorder"]),
]
SPEAKERS = ["P-03", "P-04", "P-05"]
RECORDERS = {"P-03", "P-04", "P-06"}
BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass
class Built:
    root: Path
    keys: dict[str, Path]
    cadres: list[str] = field(default_factory=list)
    plans: int = 0
    records: int = 0
    files: int = 0
    seconds: float = 0.0


def _day(rng: random.Random, today: dt.date, low: int, high: int) -> dt.date:
    return today - dt.timedelta(days=rng.randint(low, high))


def _profile(rng: random.Random, cadre_id: str, today: dt.date, occasions: list[str]) -> dict:
    birth = dt.date(rng.randint(1965, 1995), rng.randint(1, 12), rng.randint(1, 28))
    start = dt.date(birth.year + rng.randint(21, 25), 7, 1)
    education, major = rng.choice(EDUCATION)
    unit = rng.choice(UNITS)
    events = [
        {"date": _day(rng, today, 5, 400).isoformat(), "occasion": rng.choice(occasions),
         "note": rng.choice(NOTES)}
        for _ in range(rng.choice([0, 0, 1, 1, 2]))
    ]  # fmt: skip
    return {
        "id": cadre_id,
        "name": rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2]))),
        "gender": rng.choice(["男", "女"]),
        "birth_date": birth.isoformat(),
        "unit": unit,
        "post": rng.choice(POSTS),
        "rank": rng.choice(RANKS),
        "roles": rng.choice([[], [], ["leadership_team"]]),
        "education": education,
        "major": major,
        "career_start": start.isoformat(),
        "work_history": [
            {"from": start.isoformat(), "to": None, "unit": unit, "post": rng.choice(POSTS)}
        ],
        "rewards": [{"date": _day(rng, today, 30, 2000).isoformat(), "what": "年度考核优秀"}],
        "punishments": [],
        "personality": rng.choice(["introverted", "extroverted", "balanced"]),
        "talkative": rng.choice([True, False, None]),
        "strengths": rng.sample(STRENGTHS, 2),
        "weaknesses": rng.choice(WEAKNESSES),
        "evaluations": "干部群众评价较好，认为其工作认真负责",
        "difficulties": rng.sample(DIFFICULTIES, rng.choice([0, 1, 2])),
        "family": "爱人在" + rng.choice(UNITS) + "工作，育有一子",
        "private": rng.choice([None, "曾因家庭矛盾情绪低落"]),
        "events": sorted(events, key=lambda e: e["date"]),
    }


def _record_body(rng: random.Random, topics: list[str]) -> str:
    lines = ["# 谈心谈话记录", "", "## 谈话主题", "", *(f"- {t}" for t in topics or ["工作情况"])]
    lines += ["", "## 一、谈话对象反映的情况", "", *rng.sample(SAID, 2)]
    lines += ["", "## 二、提出的困难和问题", "", rng.choice(DIFFICULTIES) + "。"]
    lines += ["", "## 三、谈话人的引导和意见", "", *rng.sample(GUIDANCE, 2)]
    lines += ["", "## 四、谈话结论", "", "谈话对象思想稳定，工作积极，建议继续关注其实际困难。"]
    return "\n".join(lines) + "\n"


class _Generator:
    """Writes valid, encrypted documents straight to disk: no per-file validation or commit."""

    def __init__(self, ws, rng: random.Random, built: Built):
        from talkbook.templating import environment

        self.ws, self.rng, self.built = ws, rng, built
        self.now = dt.datetime.now().replace(second=0, microsecond=0)
        self.today = self.now.date()
        self.occasions = sorted(ws.config.get("occasions") or {})
        self.plan_template = environment(ws.templates_dir).get_template(f"{ws.locale}/plan.md.j2")
        self.profiles: dict[str, dict[str, Any]] = {}
        self.deferred: dict[str, tuple[str, list[str]]] = {}  # cadre → (talk, topics put off)
        self.taken: set[str] = set()
        self.written: list[Path] = []

    def write(self, kind: str, path: Path, meta: dict[str, Any], body: str) -> None:
        from talkbook.crypto import encrypt
        from talkbook.models import Document

        text = Document(meta, body).text()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encrypt(text.encode("utf-8"), self.ws.recipients(kind, meta)))
        self.written.append(path)

    def cadre(self, cadre_id: str, roles: list[str] | None = None) -> None:
        meta = _profile(self.rng, cadre_id, self.today, self.occasions)
        if roles is not None:
            meta["roles"] = roles
        self.profiles[cadre_id] = meta
        strength = self.rng.choice(STRENGTHS)
        body = f"谈话时注意语气。{meta['name']}同志{strength}，{meta['weaknesses']}。\n"
        self.write("profile", self.ws.cadre_path(cadre_id), meta, body)

    def talk(self, number: int, at: dt.datetime) -> None:
        """A plan; every sixth talk and those not yet due stay plans, the others are held."""
        from talkbook import rules
        from talkbook.models import new_id

        rng, ws = self.rng, self.ws
        cadre_id = rng.choice(sorted(self.profiles))
        profile = self.profiles[cadre_id]
        talk_id = new_id("T", self.taken)
        self.taken.add(talk_id)
        speaker = rng.choice(SPEAKERS)
        held = at.date() < self.today - dt.timedelta(days=1) and number % 6 != 5
        events = [e for e in profile["events"] if e["date"] <= at.date().isoformat()]
        occasion = rng.choice(events)["occasion"] if events and rng.random() < 0.5 else None
        continues: str | None = None
        deferred: list[str] = []
        if cadre_id in self.deferred and not occasion and rng.random() < 0.5:
            continues, deferred = self.deferred.pop(cadre_id)
        sent = min(at - dt.timedelta(days=4), self.now - dt.timedelta(days=2))
        decisions = [_decision("P-01", sent, "submitted")]
        if held or number % 2:
            decisions.append(_decision("P-02", sent + dt.timedelta(days=1), "approved", "同意"))
        plan = {
            "id": talk_id,
            "cadre": cadre_id,
            "speaker": speaker,
            "at": at.isoformat(timespec="minutes"),
            "place": rng.choice(["组织部谈话室", "单位小会议室"]),
            "talk_type": "continuation" if continues else ("occasion" if occasion else "routine"),
            "occasion": occasion,
            "method": rules.suggest_method(profile, ws.config, at.date()),
            "focus": rules.suggest_focus(profile, occasion, deferred, ws.label, at.date()),
            "preparations": ["查阅干部档案", "了解近期工作情况"],
            "status": decisions[-1]["decision"],
            "decisions": decisions,
            "continues": continues,
            "created_by": "P-01",
        }
        context = {
            "plan": plan,
            "brief": rules.brief(profile, occasion, deferred, ws.label, at.date()),
            "occasion_label": ws.label("occasions", occasion) or None,
            "talk_type_label": ws.label("talk_types", plan["talk_type"]),
            "method": plan["method"],
            "continues": continues,
        }
        folder = ws.talk_dir(talk_id, at.year)
        body = BLANK_RUNS.sub("\n\n", self.plan_template.render(context))
        self.write("plan", folder / "plan.md.age", plan, body)
        self.built.plans += 1
        if held:
            record = self.record_meta(number, plan)
            self.write("record", folder / "record.md.age", record, _record_body(rng, plan["focus"]))
            self.built.records += 1

    def record_meta(self, number: int, plan: dict[str, Any]) -> dict[str, Any]:
        rng, speaker = self.rng, plan["speaker"]
        held = dt.datetime.fromisoformat(plan["at"])
        confirmed = held + dt.timedelta(days=1) if number % 2 else None
        put_off = ["岗位交流意向"] if rng.random() < 0.3 else []
        if put_off:
            self.deferred[plan["cadre"]] = (plan["id"], put_off)
        follow_ups = [
            {
                "what": "协调解决" + rng.choice(DIFFICULTIES)[:6],
                "owner": "P-01",
                "due": (held.date() + dt.timedelta(days=rng.randint(7, 60))).isoformat(),
                "done": rng.random() < 0.6,
            }
        ]
        addenda = []
        if confirmed and number % 10 == 1:
            later = (confirmed + dt.timedelta(hours=2)).isoformat(timespec="minutes")
            addenda = [{"by": speaker, "at": later, "text": "谈话对象补充：希望组织协调子女入学。"}]
        return {
            "id": plan["id"],
            "cadre": plan["cadre"],
            "speaker": speaker,
            "recorder": rng.choice([speaker, "P-06"]) if speaker in RECORDERS else "P-06",
            "held_at": plan["at"],
            "place": plan["place"],
            "present": [speaker],
            "method": plan["method"],
            "occasion": plan["occasion"],
            "topics": plan["focus"] or ["工作情况", "思想状况"],
            "follow_ups": follow_ups if rng.random() < 0.5 else [],
            "deferred": put_off,
            "confirmed_on": confirmed.date().isoformat() if confirmed else None,
            "addenda": addenda,
        }


def _decision(by: str, at: dt.datetime, decision: str, comment: str | None = None) -> dict:
    return {
        "by": by,
        "at": at.isoformat(timespec="minutes"),
        "decision": decision,
        "comment": comment,
    }


def build_workspace(base: Path, cadres: int, talks: int, seed: int = 7) -> Built:
    """A workspace of fictional cadres and talks, written directly (one commit at the end)."""
    from talkbook import gittrail
    from talkbook.app import App, init_workspace
    from talkbook.crypto import generate_key_file
    from talkbook.models import new_id
    from talkbook.workspace import Person, Workspace

    started = time.perf_counter()
    rng = random.Random(seed)
    root = init_workspace(base / "ws", "zh-CN", "市委组织部（基准测试）")
    keydir = base / "keys"
    keydir.mkdir(mode=0o700)
    built = Built(root, {pid: keydir / f"{pid}.txt" for pid, _, _ in STAFF})
    ws = Workspace(root)
    taken: set[str] = set()
    for _ in range(cadres):
        taken.add(new_id("C", taken))
    built.cadres = sorted(taken)
    for pid, name, roles in STAFF:
        public = generate_key_file(built.keys[pid])
        own = built.cadres[0] if pid == "P-03" else None  # a speaker who is a cadre: cadence rule
        ws.add_person(Person(pid, name, tuple(roles), (public,), "", own))
    generator = _Generator(ws, rng, built)
    for index, cadre_id in enumerate(built.cadres):
        generator.cadre(cadre_id, ["unit_head"] if index == 0 else None)
    today = generator.today
    when = sorted(
        dt.datetime.combine(_day(rng, today, -20, 700), dt.time(rng.randint(9, 16), 30))
        for _ in range(talks)
    )
    for number, at in enumerate(when):
        generator.talk(number, at)

    custodian = App(root, built.keys["P-01"])  # one commit, signed as the tool would sign it
    paths = [root / "talkbook.toml", root / "cadres", root / "talks"]
    author = custodian.author(ws.person("P-01"))
    gittrail.commit(root, paths, "bench: generated workspace", author, custodian.signer())
    built.files = len(generator.written)
    built.seconds = time.perf_counter() - started
    return built


# -- measuring ---------------------------------------------------------------------------------
@dataclass
class Row:
    operation: str
    files: int
    median: float
    floor: str
    floor_median: float

    def cells(self) -> list[str]:
        ratio = self.median / self.floor_median if self.floor_median > 0 else float("inf")
        return [
            self.operation,
            str(self.files),
            f"{self.median:.4f}",
            self.floor,
            f"{self.floor_median:.4f}",
            f"{ratio:.1f}",
        ]


def medians(actions: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Median seconds of each action over `repeat` rounds. The actions take turns within a round,
    so an operation and its floor see the same machine load (others may share the cores)."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(max(1, repeat)):
        for action, spent in zip(actions, times, strict=True):
            started = time.perf_counter()
            action()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def fresh_app(built: Built, pid: str = "P-01"):
    """A new App per run, as each command line invocation gets: no decryption cache carried over."""
    from talkbook.app import App

    return App(built.root, built.keys[pid])


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "talkbook"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "talkbook"]


def run_quiet(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(built: Built, repeat: int, few: int) -> tuple[list[Row], list[str]]:
    """The table's rows, and notes on anything unexpected; `few` runs for quick operations."""
    import pyrage

    from talkbook import audit, catalog, crosscheck, history, views
    from talkbook.crypto import Keyring
    from talkbook.profiles import new_cadre
    from talkbook.workspace import Workspace

    files = Workspace(built.root).encrypted_files()
    total = len(files)
    identities = Keyring.from_file(built.keys["P-01"]).identities

    def decrypt_all() -> None:
        for path in files:
            pyrage.decrypt(path.read_bytes(), identities)

    rewritten: list[int] = []

    def rekey() -> None:
        rewritten.append(len(history.rekey(fresh_app(built)).rewritten))

    def load() -> None:
        catalog.load(fresh_app(built))

    rows = []
    for operation, action, floor, floor_name in [
        (OPERATIONS[0], load, decrypt_all, "read + pyrage.decrypt loop"),
        (OPERATIONS[1], lambda: views.due_rows(fresh_app(built), None, 30), load, "catalog load"),
        (OPERATIONS[2], lambda: crosscheck.validate(fresh_app(built)), load, "catalog load"),
        (OPERATIONS[3], rekey, load, "catalog load"),
        (OPERATIONS[4], lambda: audit.audit(fresh_app(built)), load, "catalog load"),
    ]:
        spent, floor_spent = medians([action, floor], repeat)
        rows.append(Row(operation, total, spent, floor_name, floor_spent))

    profile = "---\nname: 基准测试干部\nunit: 市财政局\npersonality: balanced\n---\n\n测试档案。\n"
    counter = iter(range(10**6))

    def bare_commit() -> None:
        rel = f"bench/floor-{next(counter)}.txt"
        (built.root / rel).parent.mkdir(exist_ok=True)
        (built.root / rel).write_text("floor\n", encoding="utf-8")
        git_cli = ["git", "-C", str(built.root), "-c", "user.name=bench"]
        git_cli += ["-c", "user.email=bench@talkbook.invalid"]
        run_quiet([*git_cli, "add", "--", rel])
        run_quiet([*git_cli, "commit", "--no-verify", "--quiet", "-m", "bench: floor", "--", rel])

    spent, floor_spent = medians([lambda: new_cadre(fresh_app(built), profile), bare_commit], few)
    rows.append(Row(OPERATIONS[5], 1, spent, "bare git add + git commit of one file", floor_spent))

    key = str(built.keys["P-01"])
    cat = [*cli_command(), "-w", str(built.root), "-i", key, "cat", built.cadres[0]]
    runs = [lambda: run_quiet(cat), lambda: run_quiet([sys.executable, "-c", "pass"])]
    if age := shutil.which("age"):
        target = built.root / "cadres" / f"{built.cadres[0]}.md.age"
        runs.append(lambda: run_quiet([age, "-d", "-i", key, str(target)]))
    spent, *floors = medians(runs, few)
    for name, floor_spent in zip(["python -c pass", "age -d"], floors, strict=False):
        rows.append(Row(OPERATIONS[6], 1, spent, name, floor_spent))
    notes = [f"rekey rewrote {n} file(s) in a run; a no-op rewrites none" for n in rewritten if n]
    return rows, notes


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---|---:|---:|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    return (
        f"machine: nproc={cpus}, Python {platform.python_version()} ({platform.machine()}, "
        f"{platform.system()} {platform.release()}), {git_version.strip()}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m talkbook.bench",
        description="Time talkbook's main operations on a throwaway workspace, beside floors.",
    )
    parser.add_argument("--cadres", type=int, default=None, help="cadre profiles [300; quick 4]")
    parser.add_argument("--talks", type=int, default=None, help="talks [600; quick 6]")
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per measurement [3; quick 1]"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny workspace, one run each")
    parser.add_argument("--tmp", type=Path, default=None, help="where the temp folder goes")
    parser.add_argument("--seed", type=int, default=7, help="seed of the fictional data")
    args = parser.parse_args(argv)
    args.cadres = args.cadres if args.cadres is not None else (4 if args.quick else 300)
    args.talks = args.talks if args.talks is not None else (6 if args.quick else 600)
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if args.cadres < 1 or args.talks < 0 or args.repeat < 1:
        parser.error("--cadres and --repeat must be at least 1, --talks at least 0")
    return args


def check(built: Built) -> str:
    """`talkbook validate` once on the generated workspace: its summary line and exit code."""
    command = [*cli_command(), "-w", str(built.root), "-i", str(built.keys["P-01"]), "validate"]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stdout.splitlines()[:5]:  # findings name paths and fields, never content
        print(f"  {line}", file=sys.stderr)
    summary = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no summary"
    return f"talkbook validate: {summary} (exit {done.returncode})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="talkbook-bench-", dir=args.tmp) as temp:
        built = build_workspace(Path(temp), args.cadres, args.talks, args.seed)
        print(
            f"workspace: {len(built.cadres)} cadres, {built.plans} plans, {built.records} records "
            f"= {built.files} encrypted files, generated in {built.seconds:.1f} s (one commit)"
        )
        print(check(built))
        few = args.repeat if args.quick else max(args.repeat, 5)
        print(f"runs per measurement (median): {args.repeat}; quick operations: {few}")
        print()
        rows, notes = measure(built, args.repeat, few)
        print(table(rows))
        for note in notes:
            print(f"note: {note}")
    print()
    print(f"total: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
