"""`talkbook demo DIR`: a fictional workspace walked through the whole main job.

The story (up to BULK_ABOVE talks): every step goes through the library API with the acting
staff member's own identity, one commit each; the clock (TALKBOOK_NOW) moves step by step so the
history spans months up to the demo's fixed "today". Above it (or with --bulk), demo_bulk.py
makes the same kinds of documents with the same builders and commits them a period, a stage and
a person at a time, each commit signed by that person. The data is invented (demo_data.yaml) and
generated with random.Random(seed), so the same arguments give the same workspace. Nothing here
prints: the command line shows the result. Security invariant: keys live in DIR.keys/ (0700,
files 0600), outside the workspace; names and content reach disk only encrypted.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from talkbook import demo_bulk, i18n, profiles, talks
from talkbook.app import App, init_workspace
from talkbook.crypto import generate_key_file
from talkbook.errors import TalkbookError, WorkspaceExists
from talkbook.i18n import _
from talkbook.models import ID_ALPHABET, Document
from talkbook.workspace import Workspace

DATA_FILE = Path(__file__).with_name("demo_data.yaml")
OUTSIDER = "outsider"
CUSTODIAN, APPROVER, SPEAKER = "P-01", "P-02", "P-03"
# The shape of the story, repeated: talks held for an occasion or as routine, a continuation of
# the routine talk before it, a plan left waiting for approval, a plan approved for next week.
PATTERN = ("held", "held", "routine", "continuation", "waiting", "scheduled", "held", "routine")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def load_data() -> dict[str, Any]:
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


@dataclass
class Cadre:
    id: str
    unit: dict[str, Any]
    archetype: str
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.meta["name"])


@dataclass
class Talk:
    index: int
    id: str
    cadre: Cadre
    kind: str
    occasion: str | None = None
    event: dt.datetime | None = None  # when the occasion is logged (its date is the event's)
    drafted: dt.datetime = dt.datetime.min
    at: dt.datetime = dt.datetime.min
    parent: Talk | None = None
    rejected: bool = False
    confirm: bool = False
    addendum: bool = False
    lagging: bool = False  # its first follow-up is left open: `due` shows it overdue
    follow_ups: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Action:
    when: dt.datetime
    seq: int
    who: str
    run: Callable[[App], object]


@dataclass
class Demo:
    root: Path
    keys: Path
    locale: str
    today: dt.datetime
    staff: list[dict[str, Any]]
    cadres: list[Cadre]
    talks: list[Any]  # Talk (the story) or demo_bulk.BulkTalk
    commits: int = 0
    seconds: float = 0.0
    bulk: demo_bulk.Built | None = None  # what the bulk path wrote; None for the story

    def key(self, pid: str) -> Path:
        return self.keys / f"{pid}.txt"

    @property
    def showcase(self) -> Talk:
        """The plan to show decrypted, the record the outsider tries: the first talk."""
        return self.talks[0]


# -- the clock -------------------------------------------------------------------------------
@contextmanager
def fixed_clock() -> Iterator[Callable[[dt.datetime], None]]:
    """Set TALKBOOK_NOW step by step; restore what it was, however the build ends."""
    before = os.environ.get("TALKBOOK_NOW")

    def set_to(when: dt.datetime) -> None:
        os.environ["TALKBOOK_NOW"] = when.isoformat(timespec="minutes")

    try:
        yield set_to
    finally:
        if before is None:
            os.environ.pop("TALKBOOK_NOW", None)
        else:
            os.environ["TALKBOOK_NOW"] = before


# -- fictional people ------------------------------------------------------------------------
def _id(rng: random.Random, prefix: str, taken: set[str]) -> str:
    while (candidate := f"{prefix}-" + "".join(rng.choices(ID_ALPHABET, k=6))) in taken:
        pass
    taken.add(candidate)
    return candidate


def _until(steps: list[tuple[dt.date, str, str]], n: int) -> str | None:
    return (steps[n + 1][0] - DAY).isoformat() if n + 1 < len(steps) else None


def _day(rng: random.Random, year: int) -> dt.date:
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))


def make_cadre(
    rng: random.Random, data: dict, index: int, today: dt.date, names: set[str], ids: set[str]
) -> Cadre:
    order = data["archetype_order"]
    archetype = order[index] if index < len(order) else rng.choice(order)
    shape = data["archetypes"][archetype]
    gender = rng.choice(["男", "女"])
    while True:
        given = rng.sample(data["given"][gender], rng.choice([1, 2, 2, 2]))
        name = rng.choice(data["surnames"]) + "".join(given)
        if name not in names:
            break
    names.add(name)
    age = rng.randint(*shape["age"])
    career = min(rng.randint(*shape["career"]), age - 21)
    unit = rng.choice(data["units"])
    section = rng.choice(unit["sections"])
    post, rank = rng.choice(data["posts"]["veteran" if archetype == "veteran" else "other"])
    post = post.format(head=unit["head"], section=section)
    start = dt.date(today.year - career, rng.choice([7, 8, 9]), 1)
    current = dt.date(today.year - rng.randint(1, min(6, career - 1)), rng.randint(1, 12), 1)
    steps = [(start, rng.choice(data["early_units"]), rng.choice(data["early_posts"]))]
    if career >= 10:
        middle = dt.date(start.year + (current.year - start.year) // 2, 3, 1)
        steps.append((middle, unit["name"], f"{section}副科长"))
    steps.append((current, unit["name"], post))
    history = [
        {"from": begin.isoformat(), "to": _until(steps, n), "unit": where, "post": what}
        for n, (begin, where, what) in enumerate(steps)
    ]
    rewards = [
        {"date": _day(rng, rng.randint(start.year + 1, today.year - 1)).isoformat(), "what": what}
        for what in rng.sample(data["rewards"], rng.randint(0, 2))
    ]
    punishments = [
        {"date": _day(rng, today.year - rng.randint(1, 4)).isoformat(), "what": what}
        for what in rng.sample(data["punishments"], 1 if rng.random() < 0.15 else 0)
    ]
    roles = ["unit_head"] if post == unit["head"] else []
    roles += ["leadership_team"] if post.startswith(("副", "党组成员")) else []
    meta: dict[str, Any] = {
        "id": _id(rng, "C", ids),
        "name": name,
        "gender": gender,
        "birth_date": _day(rng, today.year - age).isoformat(),
        "unit": unit["name"],
        "post": post,
        "rank": rank,
        "roles": roles,
        "education": rng.choice(data["education"]),
        "major": rng.choice(unit["majors"]),
        "career_start": start.isoformat(),
        "work_history": history,
        "rewards": sorted(rewards, key=lambda r: r["date"]),
        "punishments": punishments,
        "personality": rng.choice(shape["personality"]),
        "talkative": shape.get("talkative"),
        "strengths": rng.sample(data["strengths"], 2),
        "weaknesses": rng.choice(data["weaknesses"]),
        "evaluations": rng.sample(data["evaluations"], rng.randint(1, 2)),
        "difficulties": rng.sample(data["difficulties"], rng.randint(1, 2)),
        "family": rng.choice(data["family"]),
        "private": rng.choice(data["private"]) if rng.random() < 0.6 else None,
        "events": [],
    }
    return Cadre(meta["id"], unit, archetype, meta)


# -- the story -------------------------------------------------------------------------------
def plan_story(
    rng: random.Random, data: dict, cadres: list[Cadre], count: int, today: dt.datetime, ws: dict
) -> list[Talk]:
    """Who talks to whom about what, and when; the run turns this into actions."""
    deadlines = {k: int(v["deadline_days"]) for k, v in (ws.get("occasions") or {}).items()}
    start = today - data["span_days"] * DAY
    ids: set[str] = set()
    stories: list[Talk] = []
    settled = [i for i in range(count) if PATTERN[i % len(PATTERN)] in ("held", "routine")]
    first, last = 15, data["span_days"] - 25  # settled talks' anchors: leave room at the end

    def day(n: int) -> dt.datetime:
        return (today - n * DAY).replace(hour=9, minute=0)

    for i in range(count):
        kind = PATTERN[i % len(PATTERN)]
        cadre = cadres[(i + i // len(cadres)) % len(cadres)]  # each round shifted by one
        talk = Talk(i, _id(rng, "T", ids), cadre, kind)
        if kind in ("held", "routine"):
            k = settled.index(i)
            offset = first + (last - first) * k // max(1, len(settled) - 1)
            anchor = (start + offset * DAY).replace(hour=9, minute=0)
            if kind == "held":
                fixed = {0: "post_change", 1: "ideological_fluctuation"}
                talk.occasion = fixed.get(i) or rng.choice(data["held_occasions"])
                talk.event = anchor + 7 * HOUR
                talk.drafted = anchor + DAY + HOUR
                room = deadlines.get(talk.occasion, 7) - 1
                talk.at = anchor + min(3 + rng.randint(0, 3), room) * DAY + 6 * HOUR
            else:
                talk.drafted = anchor + HOUR
                talk.at = anchor + 3 * DAY + 6 * HOUR
                talk.deferred = rng.sample(data["deferred"], 2)
            talk.rejected = i % 20 == 0
            talk.confirm = i % 3 == 0
            talk.addendum = talk.confirm and i % 9 == 0
            talk.lagging = i % 5 == 1
            talk.follow_ups = _follow_ups(rng, data, cadre, talk.at.date())
        elif kind == "continuation":
            talk.parent = stories[i - 1]
            talk.cadre = talk.parent.cadre
            talk.drafted = talk.parent.at + rng.randint(3, 5) * DAY - 5 * HOUR
            talk.at = talk.parent.at + rng.randint(7, 12) * DAY
            talk.follow_ups = _follow_ups(rng, data, talk.cadre, talk.at.date())[:1]
        elif kind == "waiting":
            talk.occasion = rng.choice([o for o, d in deadlines.items() if d >= 14])
            talk.event = day(rng.randint(8, 14)) + 7 * HOUR
            talk.drafted = talk.event + 18 * HOUR
            talk.at = today.replace(hour=14, minute=30) + rng.randint(3, 8) * DAY
        else:  # scheduled: approved, to be held after today
            talk.occasion = rng.choice([o for o, d in deadlines.items() if d >= 30])
            talk.event = day(rng.randint(3, 6)) + 7 * HOUR
            talk.drafted = talk.event + 18 * HOUR
            talk.at = today.replace(hour=9, minute=30) + rng.randint(2, 9) * DAY
        stories.append(talk)
    return stories


def _follow_ups(rng: random.Random, data: dict, cadre: Cadre, held: dt.date) -> list[dict]:
    chosen = rng.sample(data["follow_ups"], 2)
    return [
        {
            "what": item["what"],
            "owner": item["owner"].format(unit=cadre.unit["name"]),
            "due": (held + days * DAY).isoformat(),
            "done": False,
        }
        for item, days in zip(chosen, (rng.randint(10, 16), rng.randint(40, 60)), strict=True)
    ]


def overdue_events(
    rng: random.Random, data: dict, cadres: list[Cadre], today: dt.datetime
) -> list[Action]:
    """Occasions logged lately with no talk yet: `due` has them overdue."""
    chosen = cadres[1::4] or cadres[:1]
    actions = []
    for n, cadre in enumerate(chosen):
        occasion = rng.choice(data["overdue_occasions"])
        note = rng.choice(data["event_notes"][occasion])
        when = (today - rng.randint(16, 18) * DAY).replace(hour=15, minute=n % 60)
        actions.append(Action(when, 0, CUSTODIAN, _event(cadre.id, occasion, when.date(), note)))
    return actions


def _event(cadre: str, occasion: str, date: dt.date, note: str) -> Callable[[App], object]:
    return lambda app: profiles.add_event(app, cadre, occasion, date, note)


def actions_for(
    talk: Talk, rng: random.Random, data: dict, locale: str, today: dt.datetime
) -> list[Action]:
    """Each step of one talk as (when, who, what) through the library API."""
    tid, cadre, steps = talk.id, talk.cadre, []

    def add(when: dt.datetime, who: str, run: Callable[[App], object]) -> None:
        steps.append(Action(when, talk.index, who, run))

    if talk.event and talk.occasion:
        note = rng.choice(data["event_notes"][talk.occasion])
        add(talk.event, CUSTODIAN, _event(cadre.id, talk.occasion, talk.event.date(), note))
    place = rng.choice(data["places"]).format(unit=cadre.unit["name"])
    given = {"id": tid, "preparations": rng.sample(data["preparations"], 2)}
    text = Document(given).text()
    at = talk.at.isoformat(timespec="minutes")
    parent = talk.parent.id if talk.parent else None
    add(
        talk.drafted,
        CUSTODIAN,
        lambda app: talks.draft_plan(
            app, cadre.id, speaker=SPEAKER, at=at, occasion=talk.occasion, place=place,
            continues=parent, text=text,
        ),
    )  # fmt: skip
    submitted = talk.drafted + HOUR // 2
    add(submitted, SPEAKER, lambda app: talks.decide(app, tid, "submitted"))
    if talk.kind == "waiting":
        return steps
    decided = (submitted + DAY).replace(hour=9, minute=30)
    if talk.rejected:
        reason = data["reject_comment"]
        add(decided, APPROVER, lambda app: talks.decide(app, tid, "rejected", reason))
        extra = data["extra_preparations"]
        add(decided + 4 * HOUR, CUSTODIAN, lambda app: _revise_plan(app, tid, extra))
        add(decided + 5 * HOUR, CUSTODIAN, lambda app: talks.decide(app, tid, "submitted"))
        decided = decided + DAY
    comment = rng.choice(data["approve_comments"])
    add(decided, APPROVER, lambda app: talks.decide(app, tid, "approved", comment))
    if talk.kind == "scheduled":
        return steps
    record = _record_text(talk, rng, data, locale)
    add(talk.at + 2 * HOUR, SPEAKER, lambda app: talks.write_record(app, tid, record(app)))
    for n, item in enumerate(talk.follow_ups):
        done = dt.datetime.fromisoformat(item["due"]) + 10 * HOUR
        if done < today and not (talk.lagging and n == 0):
            add(done, SPEAKER, functools.partial(_close, tid=tid, number=n + 1))
    # A record is confirmed soon after the talk; closing follow-ups later is progress, not a
    # rewrite, and stays allowed. After confirmation only addenda change what was said.
    confirmed = talk.at + DAY
    if talk.confirm and confirmed + 2 * DAY < today:
        add(confirmed, SPEAKER, lambda app: talks.confirm_record(app, tid))
        if talk.addendum:
            added = data["addendum"]
            add(confirmed + DAY, SPEAKER, lambda app: talks.add_addendum(app, tid, added))
    return steps


def _revise_plan(app: App, tid: str, extra: list[str]) -> None:
    """After a rejection the custodian adds what the approver asked for, then resubmits."""
    doc = talks.read_plan(app, tid)
    preparations = [*(doc.meta.get("preparations") or []), *extra]
    text = doc.with_meta(preparations=preparations).text()
    app.save("plan", talks.plan_path(app, tid), text, f"plan {tid}: edited", app.actor())


def _close(app: App, *, tid: str, number: int) -> None:
    talks.close_followup(app, tid, number)


def _record_text(talk: Talk, rng: random.Random, data: dict, locale: str) -> Callable[[App], str]:
    """The record as the speaker writes it; topics come from the plan, read at writing time."""
    said = list(data["said"][talk.occasion or "routine"])
    if talk.parent:
        said.insert(0, data["continued"] + "；".join(talk.parent.deferred) + "。")
    pick = rng.randrange(1000)
    conclusion = rng.choice(data["conclusions"])
    raised = talk.cadre.meta["difficulties"]
    headings = data["record_headings"][locale]

    def write(app: App) -> str:
        plan = talks.read_plan(app, talk.id).meta
        focus = list(plan.get("focus") or [])
        advice = data["guidance"][plan.get("method") or "direct_questions"]
        guidance = advice[pick % len(advice)]
        meta = {"topics": focus, "follow_ups": talk.follow_ups, "deferred": talk.deferred}
        parts = [f"# {headings[0]}", f"## {headings[1]}", "\n".join(f"- {t}" for t in focus)]
        parts += [f"## {headings[2]}", "".join(said), f"## {headings[3]}"]
        parts += ["\n".join(f"- {d}" for d in raised), f"## {headings[4]}", guidance]
        parts += [f"## {headings[5]}", conclusion]
        return Document(meta, "\n\n".join(p for p in parts if p)).text()

    return write


# -- the run ---------------------------------------------------------------------------------
def keys_dir_for(root: Path) -> Path:
    return root.parent / f"{root.name}.keys"


BULK_ABOVE = 100  # more talks than this: the bulk path (demo_bulk.py), a few commits per phase


def build(
    root: Path,
    cadres: int = 12,
    talks_count: int = 16,
    locale: str = "zh-CN",
    bulk: bool | None = None,
) -> Demo:
    """Build the fictional workspace at root (which must not exist), keys beside it.

    The story path runs each step as its own command (one commit each); the bulk path (the
    default above BULK_ABOVE talks) makes the same documents with the same builders and commits
    them a period, a stage and a person at a time."""
    root = Path(os.path.abspath(root))
    keys = keys_dir_for(root)
    for folder in (root, keys):
        if folder.exists():
            raise WorkspaceExists(
                _("{folder} exists; the demo builds a new one, pick another DIR").format(
                    folder=folder
                )
            )
    if cadres < 1 or talks_count < 1:
        raise TalkbookError(_("--cadres and --talks must be at least 1"))
    if locale not in ("zh-CN", "en"):
        raise TalkbookError(
            _("unknown locale {locale}: choose zh-CN or en").format(locale=repr(locale))
        )
    bulk = talks_count > BULK_ABOVE if bulk is None else bulk
    data = load_data()
    today = dt.datetime.fromisoformat(data["today"])
    rng = random.Random(data["seed"])
    began = time.perf_counter()
    staff = [*data["staff"], *(data["bulk_staff"] if bulk else [])]
    names = {p["name"] for p in [*data["staff"], *data["bulk_staff"]]}
    ids: set[str] = set()
    people = [make_cadre(rng, data, i, today.date(), names, ids) for i in range(cadres)]
    demo = Demo(root, keys, locale, today, staff, people, [])
    start = today - (demo_bulk.SPAN_DAYS if bulk else data["span_days"]) * DAY
    apps = _found(demo, data, start.replace(hour=9, minute=0))
    if bulk:
        demo.talks, demo.bulk = demo_bulk.run(
            root, apps, people, talks_count, rng, data, locale, today
        )
    else:
        _tell_story(demo, apps, rng, data, talks_count)
    demo.seconds = time.perf_counter() - began
    demo.commits = int(_git(root, "rev-list", "--count", "HEAD").strip() or 0)
    return demo


def _found(demo: Demo, data: dict, start: dt.datetime) -> dict[str, App]:
    """Keys for every staff member and the outsider, the workspace, its people: their Apps."""
    demo.keys.mkdir(mode=0o700, parents=True)
    demo.keys.chmod(0o700)
    public = {p["id"]: generate_key_file(demo.key(p["id"])) for p in demo.staff}
    generate_key_file(demo.keys / f"{OUTSIDER}.txt")
    for key in demo.keys.iterdir():
        key.chmod(0o600)
    with fixed_clock() as clock:
        clock(start)
        custodian = App(demo.root, demo.key(CUSTODIAN))
        init_workspace(
            demo.root, demo.locale, data["organization"][demo.locale], custodian.signer()
        )
        for n, person in enumerate(demo.staff, start=1):
            clock(start + n * 5 * dt.timedelta(minutes=1))
            pid = person["id"]
            custodian.add_person(pid, person["name"], person["roles"], [public[pid]])
    apps = {p["id"]: App(demo.root, demo.key(p["id"])) for p in demo.staff}
    apps[CUSTODIAN] = custodian
    return apps


def _tell_story(
    demo: Demo, apps: dict[str, App], rng: random.Random, data: dict, talks_count: int
) -> None:
    """The small demo: every step a command of its own, in time order, one commit each."""
    today, locale, people = demo.today, demo.locale, demo.cadres
    start = (today - data["span_days"] * DAY).replace(hour=9, minute=0)
    config = Workspace(demo.root).config
    demo.talks = plan_story(rng, data, people, talks_count, today, config)
    actions = [_create(c, n, start, len(people), data, locale) for n, c in enumerate(people)]
    actions += overdue_events(rng, data, people, today)
    for talk in demo.talks:
        actions += actions_for(talk, rng, data, locale, today)
    with fixed_clock() as clock:
        for action in sorted(actions, key=lambda a: (a.when, a.seq)):
            clock(action.when)
            action.run(apps[action.who])


def _create(cadre: Cadre, n: int, start: dt.datetime, total: int, data: dict, locale: str):
    when = start + (1 + n * 10 // total) * DAY + dt.timedelta(minutes=2 * (n % 200))
    text = Document(cadre.meta, data["profile_note"][locale]).text()
    return Action(when, -1, CUSTODIAN, lambda app: profiles.new_cadre(app, text))


# -- what the demo shows ---------------------------------------------------------------------
def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "--no-pager", "-C", str(root), *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [_("no message")])[-1]
        raise TalkbookError(
            _("git {command} failed: {message}").format(command=args[0], message=last)
        )
    return done.stdout


def _env(demo: Demo, identity: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALKBOOK_")}
    env["TALKBOOK_NOW"] = demo.today.isoformat(timespec="minutes")
    env["TALKBOOK_LANG"] = i18n.language()  # the tour speaks the language of the command
    if identity is not None:
        env["TALKBOOK_IDENTITY"] = str(identity)
    return env


def talkbook(demo: Demo, identity: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user runs it: a separate process."""
    command = [sys.executable, "-m", "talkbook", "-w", str(demo.root), "-i", str(identity), *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(demo))


def _path_line() -> list[str]:
    """`export PATH=…` when the shell would not find this talkbook (say, in the venv `make`
    made): the commands printed after it then run as printed."""
    folder = Path(sys.executable).parent
    here = folder / "talkbook"
    found = shutil.which("talkbook")
    if not here.exists() or (found and Path(found).resolve() == here.resolve()):
        return []
    return [f'  export PATH="{folder}:$PATH"    # ' + _("where talkbook is")]


def usage_text(demo: Demo) -> str:
    lines = [
        _("workspace: {folder}").format(folder=demo.root),
        _("keys:      {folder}/  (folder 0700, files 0600; kept outside the workspace)").format(
            folder=demo.keys
        ),
        "",
    ]
    for person in demo.staff:
        roles = ", ".join(person["roles"])
        lines.append(f"  {person['id']}.txt       {person['name']}  {person['title']}  [{roles}]")
    lines += [
        "  " + _("{key}.txt  a key that is nobody's recipient").format(key=OUTSIDER),
        "",
        _("use them:"),
        *_path_line(),
        f"  export TALKBOOK_WORKSPACE={demo.root}",
        f"  export TALKBOOK_IDENTITY={demo.key(CUSTODIAN)}",
        f"  talkbook list talks; talkbook show {demo.showcase.id}; talkbook history "
        f"{demo.showcase.id}",
        f"  talkbook due --as-of {demo.today.date()}    # " + _("the demo's today"),
        f"  TALKBOOK_IDENTITY={demo.key(SPEAKER)} talkbook list talks   # "
        + _("the speaker's view"),
    ]
    return "\n".join(lines)


def sections(demo: Demo) -> Iterator[tuple[str, str]]:
    """(heading, text) for each part of the tour; raises when a guarantee does not hold."""
    yield _("keys and how to use them"), usage_text(demo)
    log = _git(demo.root, "log", "-n", "15", "--format=%h %G? %GS %an %ad %s", "--date=short")
    yield _("git log (the latest 15 commits; G = signed by the person named)"), log.rstrip()
    talk = demo.showcase
    plan = talks_rel(demo, talk.id, "plan")
    env = _env(demo, demo.key(CUSTODIAN))
    # The approver's decisions on the showcase plan: its rejection and its approval, ~30 lines.
    decisions = ["--grep=: rejected", "--grep=: approved", "--format=commit %h %an %ad %s"]
    patch = _git(demo.root, "log", "-p", "-U1", *decisions, "--date=short", "--", plan, env=env)
    excerpt = "\n".join(patch.splitlines()[:40])
    heading = _("git log -p {path}: the decisions, decrypted for the custodian's key")
    yield heading.format(path=plan), excerpt
    tried = talkbook(demo, demo.key(OUTSIDER), "cat", f"{talk.id}/record")
    if tried.returncode != 2 or tried.stdout:
        raise TalkbookError(_("demo: the outsider's key read a record; the workspace is not safe"))
    yield (
        _("the outsider tries to read a record"),
        f"$ talkbook -i {demo.key(OUTSIDER)} cat {talk.id}/record\n{tried.stderr.strip()}\n"
        + _("exit code {code}").format(code=tried.returncode),
    )
    due = talkbook(demo, demo.key(CUSTODIAN), "due", "--as-of", demo.today.date().isoformat())
    if due.returncode not in (0, 1):
        raise TalkbookError(
            _("demo: `talkbook due` failed: {message}").format(message=due.stderr.strip())
        )
    note = (
        _("exit code 1: something is overdue, as the demo intends")
        if due.returncode
        else _("exit code {code}").format(code=0)
    )
    yield f"talkbook due --as-of {demo.today.date()}", f"{due.stdout.rstrip()}\n{note}"
    for command in ("validate", "audit"):
        checked = talkbook(demo, demo.key(CUSTODIAN), command)
        if checked.returncode != 0:
            raise TalkbookError(
                _("demo: {command} found problems: {findings}").format(
                    command=command, findings=checked.stdout.strip()[:300]
                )
            )
        clean = _("exit code 0: clean")
        yield f"talkbook {command}", f"{checked.stderr.strip()}\n{clean}"


def talks_rel(demo: Demo, talk_id: str, part: str) -> str:
    found = next(demo.root.glob(f"talks/*/{talk_id}/{part}.md.age"))
    return found.relative_to(demo.root).as_posix()
