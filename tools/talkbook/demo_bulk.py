"""`talkbook demo DIR --cadres 2000 --talks 10000`: a large fictional workspace, built in bulk.

The small demo (demo.py) runs every step as its own command, one commit each. This path makes
the same documents with the same builders (builders.py: the plan's suggestions and brief from the
locale's template, the record prefilled from the plan, the decision trail, events, follow-ups,
confirmations, addenda) but writes many per commit: the story's steps are grouped by period
(PERIOD_DAYS), by stage of a talk's life (STAGES) and by the person taking them, and each group
is one commit signed by that person. So `talkbook audit` finds what it asks of any history:
every decision and addendum arrives in a commit signed by the person it names, every record in
one signed by its speaker or recorder, every profile in one signed by a custodian. A talk's steps
keep their order across groups; a step that would land in a group before its predecessor's moves
to the next period.

All the groups are applied in memory first; then every version is sealed in one stream on
every core (forked processes: pyrage holds the GIL; demo_seal), its ciphertext packed as it
comes, and the commits are made from trees git fast-import builds (demo_history). Each file is
written to a temp file in its folder and renamed over the target, so no reader sees a half-written
file.
The per-file fsync of fsutil.atomic_write is left out (a fresh demo is rebuilt, not repaired);
one `os.sync()` ends the build. Security invariant: plaintext lives in memory only, passed to the
encrypting processes through a pipe; commit messages carry counts, never a name or content.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkbook import builders, demo_history, demo_seal, workflow
from talkbook.app import App
from talkbook.i18n import _
from talkbook.models import Document
from talkbook.workspace import Workspace

PERIOD_DAYS = 183  # one commit per person and stage per half year
SPAN_DAYS = 730  # two years of history up to the demo's today
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
# The stages of a talk's life, in the order their commits come within a period.
EVENTS, PLANS, DECISIONS, LATER, RECORDS, PROGRESS = range(6)
NOUNS = {"profile": "cadres", "plan": "plans", "record": "records"}
CUSTODIAN = "P-01"
FIRST_SETTLED = ("held", "rejected_held", "rejected", "postponed", "cancelled", "held")
FIRST_RECENT = ("draft", "waiting", "scheduled")


@dataclass
class Step:
    """One act of the story: who changes which document, when, how (a builder call)."""

    when: dt.datetime
    stage: int
    who: str
    kind: str  # profile, plan or record
    doc_id: str
    label: str  # what the commit message counts: drafted, approved, written…
    apply: Callable[[Document | None], Document]
    period: int = 0


@dataclass
class BulkTalk:
    id: str
    cadre: str
    speaker: str
    at: dt.datetime
    outcome: str  # held, rejected_held, rejected, postponed, cancelled, draft, waiting, scheduled
    occasion: str | None = None
    event: dt.datetime | None = None
    recorder: str | None = None  # named in the plan: someone other than the speaker records
    approver: str = "P-02"
    parent: BulkTalk | None = None
    deferred: list[str] = field(default_factory=list)
    follow_ups: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    drafted: dt.datetime = dt.datetime.min
    place: str = ""
    given: Document = field(default_factory=lambda: Document({}))  # the --from file's part


@dataclass
class Built:
    files: int = 0
    versions: int = 0
    commits: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per part of the work

    @contextmanager
    def timing(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - started


# -- the story ---------------------------------------------------------------------------------
class Story:
    """Who talks with whom, when and how it ends; turned into steps that call the builders."""

    def __init__(self, rng: random.Random, data: dict, ws: Workspace, today: dt.datetime):
        self.rng, self.data, self.ws, self.today = rng, data, ws, today
        self.start = (today - SPAN_DAYS * DAY).replace(hour=9, minute=0)
        self.deadlines = {k: int(v["deadline_days"]) for k, v in ws.config["occasions"].items()}
        roles = {p["id"]: set(p["roles"]) for p in [*data["staff"], *data["bulk_staff"]]}
        self.speakers = sorted(pid for pid, r in roles.items() if "speaker" in r)
        self.recorders = sorted(pid for pid, r in roles.items() if "recorder" in r)
        self.approvers = sorted(pid for pid, r in roles.items() if "approver" in r)
        self.open_deferred: dict[str, BulkTalk] = {}  # cadre → held talk whose topics wait
        self.seen = {True: 0, False: 0}  # talks shaped so far: recent ones, settled ones

    def talks(self, cadres: list[Any], count: int, taken: set[str]) -> list[BulkTalk]:
        from talkbook.demo import _id

        rng = self.rng
        reached = cadres[: max(1, len(cadres) * 19 // 20)]  # one in twenty is never reached
        first, last = self.start + 20 * DAY, self.today + 20 * DAY
        seconds = int((last - first).total_seconds())
        times = sorted(first + dt.timedelta(seconds=rng.randrange(seconds)) for _ in range(count))
        made = []
        for at in times:
            at = at.replace(minute=rng.choice((0, 30)), second=0, microsecond=0)
            at = at.replace(hour=rng.choice((9, 10, 14, 15, 16)))
            talk = BulkTalk(_id(rng, "T", taken), rng.choice(reached).id, "", at, "")
            talk.speaker = rng.choice(self.speakers)
            self.shape(talk)
            made.append(talk)
        return made

    def shape(self, talk: BulkTalk) -> None:
        rng, data = self.rng, self.data
        recent = talk.at > self.today - 2 * DAY
        roll = rng.random()
        if recent:
            talk.outcome = "draft" if roll < 0.15 else "waiting" if roll < 0.5 else "scheduled"
        else:
            outcomes = [(0.04, "rejected_held"), (0.06, "rejected"), (0.09, "postponed")]
            outcomes += [(0.11, "cancelled"), (1.0, "held")]
            talk.outcome = next(name for bound, name in outcomes if roll < bound)
        # every ending at least once, however small the demo: the first talks of each kind
        firsts = FIRST_RECENT if recent else FIRST_SETTLED
        seen = self.seen[recent]
        if seen < len(firsts):
            talk.outcome = firsts[seen]
        self.seen[recent] = seen + 1
        talk.approver = rng.choice(self.approvers)
        others = [r for r in self.recorders if r != talk.speaker]
        talk.recorder = rng.choice(others) if rng.random() < 0.3 else None
        parent = self.open_deferred.get(talk.cadre)
        plain = not talk.outcome.startswith("rejected")
        if parent and plain and rng.random() < 0.6 and talk.at > parent.at + 5 * DAY:
            talk.parent = self.open_deferred.pop(talk.cadre)
        if talk.parent is None and plain and roll < 0.98 and rng.random() < 0.5:
            talk.occasion = rng.choice(data["held_occasions"])
            room = self.deadlines.get(talk.occasion, 7)
            days = min(rng.randint(3, 6), room - 1)
            talk.event = (talk.at - days * DAY).replace(hour=16, minute=0)
        if talk.outcome in ("held", "rejected_held"):
            if rng.random() < 0.35:
                talk.deferred = rng.sample(data["deferred"], rng.randint(1, 2))
                self.open_deferred[talk.cadre] = talk
            talk.follow_ups = _follow_ups(rng, data, talk.at.date(), rng.randint(0, 2))

    def steps(self, talk: BulkTalk, cadre: Any, state: State) -> list[Step]:
        """Each act of one talk, in order, as builder calls on the in-memory documents."""
        rng, data, tid = self.rng, self.data, talk.id
        steps: list[Step] = []

        def add(when, stage, who, kind, label, apply, doc_id=tid) -> None:
            steps.append(Step(when, stage, who, kind, doc_id, label, apply))

        drafted = talk.event + DAY if talk.event else talk.at - rng.randint(6, 9) * DAY
        if talk.parent is not None:
            drafted = max(drafted, talk.parent.at + 3 * DAY)
        # a talk still to come was drafted (and its occasion logged) before the demo's today
        drafted = min(drafted, self.today - rng.randint(2, 5) * DAY).replace(hour=10, minute=0)
        if talk.event:
            talk.event = min(talk.event, drafted - DAY + 6 * HOUR)
        if talk.event and talk.occasion:
            entry = builders.event_entry(
                talk.occasion, talk.event.date(), rng.choice(data["event_notes"][talk.occasion])
            )
            add(talk.event, EVENTS, CUSTODIAN, "profile", "event", _log(entry), cadre.id)
        talk.drafted = drafted
        talk.place = rng.choice(data["places"]).format(unit=cadre.unit["name"])
        talk.given = Document({"preparations": rng.sample(data["preparations"], 2)})
        add(drafted, PLANS, CUSTODIAN, "plan", "drafted", lambda _doc: state.plan(talk))
        if talk.outcome == "draft":
            return steps
        sent = drafted + HOUR // 2
        add(sent, PLANS, CUSTODIAN, "plan", "submitted", _decide(CUSTODIAN, "submitted", sent))
        if talk.outcome == "waiting":
            return steps
        decided = (sent + DAY).replace(hour=9, minute=30)
        if talk.outcome.startswith("rejected"):
            reason = data["reject_comment"]
            add(decided, DECISIONS, talk.approver, "plan", "rejected",
                _decide(talk.approver, "rejected", decided, reason))  # fmt: skip
            if talk.outcome == "rejected":
                return steps
            extra = data["extra_preparations"]
            add(decided + 4 * HOUR, PLANS, CUSTODIAN, "plan", "edited", lambda d: _revise(d, extra))
            again = decided + 5 * HOUR
            add(
                again, PLANS, CUSTODIAN, "plan", "submitted", _decide(CUSTODIAN, "submitted", again)
            )
            decided += DAY
        if talk.outcome == "cancelled":
            add(decided, LATER, CUSTODIAN, "plan", "cancelled",
                _decide(CUSTODIAN, "cancelled", decided, data["cancel_comment"]))  # fmt: skip
            return steps
        comment = rng.choice(data["approve_comments"])
        add(decided, DECISIONS, talk.approver, "plan", "approved",
            _decide(talk.approver, "approved", decided, comment))  # fmt: skip
        if talk.outcome == "postponed":
            later = decided + 3 * HOUR
            moved = (talk.at + rng.randint(14, 40) * DAY).isoformat(timespec="minutes")
            why = data["postpone_comment"]
            add(later, LATER, CUSTODIAN, "plan", "postponed",
                _decide(CUSTODIAN, "postponed", later, why, moved))  # fmt: skip
            return steps
        if talk.outcome == "scheduled":
            return steps
        self.record_steps(talk, add, state)
        return steps

    def record_steps(self, talk: BulkTalk, add: Callable[..., None], state: State) -> None:
        rng, data = self.rng, self.data
        writer = talk.recorder or talk.speaker
        written = talk.at + 2 * HOUR
        pick = rng.randrange(1000)
        add(written, RECORDS, writer, "record", "written",
            lambda _doc: state.record(talk, writer, pick))  # fmt: skip
        person = self.ws.person(writer)  # `talkbook record` marks the plan held, same commit
        add(written, RECORDS, writer, "plan", "held",
            lambda d: workflow.held(_sure(d), person, written))  # fmt: skip
        for number, item in enumerate(talk.follow_ups, start=1):
            done = dt.datetime.fromisoformat(item["due"]) - rng.randint(0, 5) * DAY
            if done.replace(hour=11) < self.today and rng.random() < 0.7:
                on = done.date()
                add(
                    done.replace(hour=11),
                    PROGRESS,
                    talk.speaker,
                    "record",
                    "follow-up done",
                    lambda d, n=number, o=on: builders.with_followup_done(_sure(d), n, o),
                )
        confirmed = talk.at + DAY
        if confirmed + 2 * DAY < self.today and rng.random() < 0.6:
            on = confirmed.date()
            add(confirmed, PROGRESS, talk.speaker, "record", "confirmed",
                lambda d: builders.with_confirmation(_sure(d), on))  # fmt: skip
            if rng.random() < 0.1:
                added, text, who = confirmed + DAY, data["addendum"], talk.speaker
                add(added, PROGRESS, who, "record", "addendum",
                    lambda d: builders.with_addendum(_sure(d), who, added, text))  # fmt: skip


def _sure(doc: Document | None) -> Document:
    if doc is None:  # a step ahead of the document it changes: the story's ordering is broken
        raise AssertionError("demo: a step came before the document it changes")
    return doc


def _decide(
    who: str, decision: str, when: dt.datetime, comment: str | None = None, at: str | None = None
) -> Callable[[Document | None], Document]:
    entry = builders.decision_entry(who, decision, comment, when)
    return lambda doc: builders.with_decision(_sure(doc), entry, at)


def _log(entry: dict[str, Any]) -> Callable[[Document | None], Document]:
    return lambda doc: builders.with_event(_sure(doc), entry)


def _revise(doc: Document | None, extra: list[str]) -> Document:
    """After a rejection the custodian adds what the approver asked for (`talkbook edit`)."""
    doc = _sure(doc)
    return doc.with_meta(preparations=[*(doc.meta.get("preparations") or []), *extra])


def _follow_ups(rng: random.Random, data: dict, held: dt.date, count: int) -> list[dict]:
    return [
        {
            "what": item["what"],
            "owner": item["owner"].format(unit="所在单位"),
            "due": (held + rng.randint(10, 60) * DAY).isoformat(),
            "done": False,
        }
        for item in rng.sample(data["follow_ups"], count)
    ]


class State:
    """The documents as the story has made them so far (in memory: plaintext never on disk)."""

    def __init__(self, app: App, data: dict, locale: str, cadres: dict[str, Any]):
        self.app, self.data, self.locale = app, data, locale
        self.cadres = cadres
        self.docs: dict[tuple[str, str], Document] = {}
        self.paths: dict[tuple[str, str], str] = {}  # where each document lives, set once
        self.drafts: dict[str, tuple[dict[str, Any], str]] = {}  # plans built beforehand
        self.built = Built()

    def plan(self, talk: BulkTalk) -> Document:
        """The plan as drafted: built beforehand on every core (drafts), or here."""
        if talk.id in self.drafts:
            meta, body = self.drafts.pop(talk.id)
            return Document(meta, body)
        meta, body = demo_seal.draft(plan_inputs(talk, self.docs["profile", talk.cadre]))
        return Document(meta, body)

    def record(self, talk: BulkTalk, writer: str, pick: int) -> Document:
        """What the recorder writes (`talkbook record --from`): topics from the approved plan."""
        data = self.data
        plan = self.docs["plan", talk.id].meta
        said = list(data["said"][talk.occasion or "routine"])
        if talk.parent:
            said.insert(0, data["continued"] + "；".join(talk.parent.deferred) + "。")
        focus = list(plan.get("focus") or [])
        advice = data["guidance"][plan.get("method") or "direct_questions"]
        headings = data["record_headings"][self.locale]
        raised = self.cadres[talk.cadre].meta["difficulties"]
        parts = [f"# {headings[0]}", f"## {headings[1]}", "\n".join(f"- {t}" for t in focus)]
        parts += [f"## {headings[2]}", "".join(said), f"## {headings[3]}"]
        parts += ["\n".join(f"- {d}" for d in raised), f"## {headings[4]}"]
        parts += [advice[pick % len(advice)], f"## {headings[5]}"]
        parts += [data["conclusions"][pick % len(data["conclusions"])]]
        meta = {"topics": focus, "follow_ups": talk.follow_ups, "deferred": talk.deferred}
        given = Document(meta, "\n\n".join(p for p in parts if p))
        return builders.record_document(self.app, plan, writer, given)


# -- grouping into commits ---------------------------------------------------------------------
def order(talks: list[BulkTalk], start: dt.datetime) -> None:
    """Give each step its period: a talk's steps keep their order across groups, and a
    continuation comes after the record of the talk it continues."""
    record_key: dict[str, tuple[int, int]] = {}
    for talk in talks:
        prev = (-1, -1)
        if talk.parent is not None and talk.parent.id in record_key:
            prev = record_key[talk.parent.id]
        for step in talk.steps:
            if step.kind == "profile":  # events come before the talk, on the cadre's own file
                step.period = max(0, (step.when - start).days // PERIOD_DAYS)
                continue
            key = (max(0, (step.when - start).days // PERIOD_DAYS), step.stage)
            if key < prev:
                key = (prev[0] + (step.stage < prev[1]), step.stage)
            step.period, prev = key[0], key
            if step.kind == "record" and step.label == "written":
                record_key[talk.id] = key


def groups(steps: list[Step]) -> Iterator[tuple[tuple[int, int, str], list[Step]]]:
    """The steps by (period, stage, person), in commit order; each group in time order."""
    grouped: dict[tuple[int, int, str], list[Step]] = {}
    for step in steps:
        grouped.setdefault((step.period, step.stage, step.who), []).append(step)
    for key in sorted(grouped):
        yield key, sorted(grouped[key], key=lambda s: s.when)


def message(steps: list[Step]) -> str:
    """Counts per kind and act, ids and names never: `plans: 812 drafted, 790 submitted`."""
    counts: dict[str, Counter[str]] = {}
    for step in steps:
        counts.setdefault(NOUNS[step.kind], Counter())[step.label] += 1
    parts = [
        f"{noun}: " + ", ".join(f"{n} {label}" for label, n in labels.items())
        for noun, labels in counts.items()
    ]
    return "; ".join(parts) + " (demo, in bulk)"


# -- the run -------------------------------------------------------------------------------------
def run(
    root: Path,
    apps: dict[str, App],
    people: list[Any],
    talk_count: int,
    rng: random.Random,
    data: dict,
    locale: str,
    today: dt.datetime,
) -> tuple[list[BulkTalk], Built]:
    """Profiles, events, plans, decisions, records and their progress: a few signed commits."""
    custodian = apps[CUSTODIAN]
    story = Story(rng, data, custodian.workspace, today)
    state = State(custodian, data, locale, {c.id: c for c in people})
    talks = story.talks(people, talk_count, set())
    for talk in talks:
        talk.steps = story.steps(talk, state.cadres[talk.cadre], state)
    order(talks, story.start)
    steps = [step for talk in talks for step in talk.steps]
    steps += _overdue_events(rng, data, people, today, story.start)
    for cadre in people:  # as `cadre new --from` takes it: the front matter given, a note
        state.docs["profile", cadre.id] = Document(cadre.meta, data["profile_note"][locale])
    built = Built(outcomes=Counter(t.outcome for t in talks))
    state.built = built
    pool = demo_seal.Pool(custodian)
    demo_seal.quiet_git(root, "config", "gc.auto", "0")  # no repacking between the commits
    try:
        with built.timing(_("plans built")):
            state.drafts = _drafts(pool, state, talks, steps)
        _commits(root, apps, pool, state, steps, story, built)
    finally:
        pool.close()
        demo_seal.quiet_git(root, "config", "--unset", "gc.auto")
    with built.timing(_("index refreshed, synced")):
        demo_history.refresh_index(root)  # read from HEAD, stat data taken: status clean
        os.sync()  # the files written without a per-file fsync reach the disk, once
    built.files = len(state.docs)
    return talks, built


def plan_inputs(talk: BulkTalk, profile: Document) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `talkbook plan C --speaker … --at … --from FILE` gives the plan's builder."""
    return profile.meta, {
        "cadre_id": talk.cadre, "talk_id": talk.id, "speaker": talk.speaker, "when": talk.at,
        "today": talk.drafted.date(), "created_by": CUSTODIAN, "recorder": talk.recorder,
        "occasion": talk.occasion, "place": talk.place, "given": talk.given,
        "continues": talk.parent.id if talk.parent else None,
        "deferred": talk.parent.deferred if talk.parent else [],
    }  # fmt: skip


def _drafts(
    pool: demo_seal.Pool, state: State, talks: list[BulkTalk], steps: list[Step]
) -> dict[str, tuple[dict[str, Any], str]]:
    """Every plan built beforehand, on every core, from its cadre's profile as it will stand
    when the plan's commit comes: the events of the same or an earlier period applied."""
    events: dict[str, list[Step]] = {}
    for step in sorted(steps, key=lambda s: (s.period, s.when)):
        if step.kind == "profile":
            events.setdefault(step.doc_id, []).append(step)
    jobs = []
    for talk in talks:
        period = next(s.period for s in talk.steps if s.label == "drafted")
        profile: Document | None = state.docs["profile", talk.cadre]
        for event in events.get(talk.cadre, []):
            if event.period <= period:
                profile = event.apply(profile)
        jobs.append(plan_inputs(talk, _sure(profile)))
    return {t.id: built for t, built in zip(talks, pool.map(demo_seal.draft, jobs), strict=True)}


@dataclass
class Pending:
    """One commit to make: who signs it, when, what it says, which versions it brings."""

    who: str
    when: dt.datetime
    message: str
    jobs: list[demo_seal.Job]


def _commits(
    root: Path,
    apps: dict[str, App],
    pool: demo_seal.Pool,
    state: State,
    steps: list[Step],
    story: Story,
    built: Built,
) -> None:
    """Every group's steps applied, then every version sealed in one stream (on every core,
    the ciphertext into the pack as it comes), then the commits (demo_history): the profiles
    first, then one per group, each signed by the person who acts."""
    pending = _pending(state, steps, story)
    packer = demo_seal.Packer(root)
    try:
        with built.timing(_("sealed")):
            blobs = _seal(packer, pool, [job for commit in pending for job in commit.jobs])
    finally:
        with built.timing(_("packed")):
            packer.close()
    with apps[CUSTODIAN].writing("talkbook demo"):
        _history(root, apps, pending, blobs, built)


def _pending(state: State, steps: list[Step], story: Story) -> list[Pending]:
    """The commits to make, in order, each with the versions it brings: the story's documents
    changed group by group in memory (a document's last version is also written to the
    working tree; the earlier ones live in history only)."""
    created = [("profile", cadre_id) for cadre_id in state.cadres]
    text = f"cadres: {len(created)} created (demo, in bulk)"
    ordered = list(groups(steps))
    final = {(s.kind, s.doc_id): n for n, (_key, group) in enumerate(ordered) for s in group}
    lasts = [final.get(c, -1) == -1 for c in created]
    pending = [Pending(CUSTODIAN, story.start, text, _jobs(state, created, lasts))]
    last = story.start
    for n, ((period, _stage, who), group) in enumerate(ordered):
        start = story.start + period * PERIOD_DAYS * DAY
        last = min(max(last, start, group[-1].when), story.today)
        changed = _apply(state, group)
        jobs = _jobs(state, changed, [final[c] == n for c in changed])
        pending.append(Pending(who, last, message(group), jobs))
    return pending


def _jobs(state: State, changed: list[tuple[str, str]], final: list[bool]) -> list[demo_seal.Job]:
    """What sealing needs of each changed document: where it lives, its kind, its text."""
    jobs: list[demo_seal.Job] = []
    for (kind, doc_id), last in zip(changed, final, strict=True):
        doc = state.docs[kind, doc_id]
        if (kind, doc_id) not in state.paths:
            state.paths[kind, doc_id] = _rel(state, kind, doc_id)
        jobs.append((state.paths[kind, doc_id], kind, doc.meta, doc.body, last))
    return jobs


def _seal(packer: demo_seal.Packer, pool: demo_seal.Pool, jobs: list[demo_seal.Job]) -> list[str]:
    """Every version encrypted, its ciphertext into the pack; their blob ids, in order."""
    blobs = []
    for blob, data in pool.stream(demo_seal.seal, jobs):
        packer.add(data)
        blobs.append(blob)
    return blobs


def _history(
    root: Path, apps: dict[str, App], pending: list[Pending], blobs: list[str], built: Built
) -> None:
    """Each commit's tree (fast-import: only its changed folders, one pack), then the signed
    commits."""
    from talkbook.demo import fixed_clock

    before = demo_history.head(root)
    versions = iter(blobs)
    groups = [[(job[0], next(versions)) for job in commit.jobs] for commit in pending]
    parent = before
    with built.timing(_("committed")), fixed_clock() as clock:
        trees = demo_history.trees(root, before, groups)
        for commit, tree_id in zip(pending, trees, strict=True):
            clock(commit.when)
            who = commit.who
            parent = demo_history.commit(root, tree_id, parent, commit.message, apps[who], who)
            built.versions += len(commit.jobs)
            built.commits += 1
        demo_history.move_branch(root, parent, before)


def _apply(state: State, group: list[Step]) -> list[tuple[str, str]]:
    changed: dict[tuple[str, str], None] = {}
    for step in group:
        key = (step.kind, step.doc_id)
        state.docs[key] = step.apply(state.docs.get(key))
        changed[key] = None
    return list(changed)


def _rel(state: State, kind: str, doc_id: str) -> str:
    """Where a document lives: a record beside its plan, a plan under the year it was drafted
    for (a plan postponed into the next year stays where it is, as with `talkbook postpone`)."""
    if kind == "profile":
        return f"cadres/{doc_id}.md.age"
    if kind == "record":
        return state.paths["plan", doc_id].replace("/plan.md.age", "/record.md.age")
    return f"talks/{str(state.docs[kind, doc_id].meta['at'])[:4]}/{doc_id}/plan.md.age"


def _overdue_events(
    rng: random.Random, data: dict, people: list[Any], today: dt.datetime, start: dt.datetime
) -> list[Step]:
    """Occasions logged lately with no talk planned: `due` has them overdue."""
    steps = []
    for cadre in people[3::40] or people[:1]:
        occasion = rng.choice(data["overdue_occasions"])
        when = (today - rng.randint(16, 30) * DAY).replace(hour=15, minute=0)
        entry = builders.event_entry(
            occasion, when.date(), rng.choice(data["event_notes"][occasion])
        )
        step = Step(when, EVENTS, CUSTODIAN, "profile", cadre.id, "event", _log(entry))
        step.period = (when - start).days // PERIOD_DAYS
        steps.append(step)
    return steps
