"""`talkbook validate`: every file, then the rules that span files. Every finding in one run.

Order: regular files only (no symlink, in the working tree or staged); no plaintext where
ciphertext belongs; talkbook.toml against its schema; each readable file against its schema;
recipients against the access rule; then references, roles, workflow order, dates and the
addenda-only rule for confirmed records.

`document_findings` runs the same rules across files for one document before a command
writes it (App.check): one rule book for `validate` and every write.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from talkbook import catalog as loader
from talkbook import gittrail
from talkbook.catalog import Catalog, Item
from talkbook.errors import (
    TalkbookError,
    UnsafePath,
)
from talkbook.fsutil import inside, read_regular
from talkbook.i18n import _, label
from talkbook.models import Document, parse_date, parse_datetime
from talkbook.validation import Finding, Subject, rule_findings
from talkbook.workspace import CONFIG_NAME, Workspace

if TYPE_CHECKING:
    from talkbook.crypto import Keyring

AGE_MAGIC = (b"age-encryption.org/v1\n", b"-----BEGIN AGE ENCRYPTED FILE-----")
GUARDED = ("cadres/", "talks/")
ALLOWED_PLAIN = ("cadres/README.md", "talks/README.md", "cadres/.gitkeep", "talks/.gitkeep")
REGULAR_ONLY = ("cadres", "talks", "templates")  # and talkbook.toml: what the tool reads
NOT_REGULAR = {"120000": "symlink", "160000": "submodule"}  # git modes; 100644/100755 are files


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    unreadable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    ws: Workspace
    catalog: Catalog
    today: dt.date
    root: Path
    keyring: Keyring | None  # for reading earlier versions from git
    written: frozenset[str] = frozenset()  # documents checked before they reach the disk


def plaintext_findings(rel: str, data: bytes) -> list[Finding]:
    """Under cadres/ and talks/ only age files: the whole header must parse, not just its first
    line (plaintext can start with `age-encryption.org/v1` too)."""
    from talkbook.crypto.agefile import parse_header

    if not rel.startswith(GUARDED) or rel in ALLOWED_PLAIN:
        return []
    if not rel.endswith(".age"):
        return [Finding(rel, 1, "(file)", _("plaintext file: only .age ciphertext belongs here"))]
    if not data.lstrip().startswith(AGE_MAGIC):
        return [Finding(rel, 1, "(file)", _("not an age-encrypted file: plaintext refused"))]
    try:
        parse_header(data)
    except TalkbookError as exc:
        return [Finding(rel, 1, "(file)", _("{error}: refused as plaintext").format(error=exc))]
    return []


def regular_only(rel: str) -> bool:
    """Paths the tool reads, where only regular files may be."""
    return rel == CONFIG_NAME or rel.split("/")[0] in REGULAR_ONLY


def symlink_findings(root: Path) -> list[Finding]:
    """Every symlink where the tool reads (a folder too, even one with nothing to list)."""
    found = []
    for top in (CONFIG_NAME, *REGULAR_ONLY):
        if (root / top).is_symlink():
            found.append(_not_regular(top, "symlink"))
            continue
        for folder, dirs, files in os.walk(root / top):  # never descends into a linked folder
            for name in [*dirs, *files]:
                if (Path(folder) / name).is_symlink():
                    rel = (Path(folder) / name).relative_to(root).as_posix()
                    found.append(_not_regular(rel, "symlink"))
    return found


def _not_regular(rel: str, why: str) -> Finding:
    return Finding(rel, 1, "(file)", UnsafePath(rel, why).reason)


def config_findings(ws: Workspace) -> list[Finding]:
    from talkbook.crypto import parse_recipient
    from talkbook.validation import field_path, schema_message, validator_for

    found = []
    for error in validator_for("config").iter_errors(ws.config):  # messages never quote values
        where = field_path(error) or "(settings)"
        found.append(Finding(CONFIG_NAME, 1, where, schema_message(error)))
    for person in ws.people.values():
        for key in person.keys:
            try:
                parse_recipient(key)
            except TalkbookError:
                found.append(
                    Finding(CONFIG_NAME, 1, f"people.{person.id}.keys", _("not a public key"))
                )
    return found


def recipient_findings(ws: Workspace, item: Item, data: bytes) -> list[Finding]:
    from talkbook.crypto.agefile import parse_header

    try:
        stanzas = len(parse_header(data).recipient_stanzas)
        expected = len(ws.recipients(item.kind, item.meta))
    except TalkbookError as exc:
        return [Finding(item.rel, 1, "(recipients)", str(exc))]
    if stanzas != expected:
        return [
            Finding(
                item.rel,
                1,
                "(recipients)",
                _(
                    "encrypted to {stanzas} keys but the access rule gives {expected}; run "
                    "`talkbook rekey`"
                ).format(stanzas=stanzas, expected=expected),
            )
        ]
    return []


# -- rules across files ----------------------------------------------------------------------
def _subject(item: Item) -> Subject:
    return Subject(item.kind, item.rel, item.doc, item.text)


def check_references(ctx: Context) -> Iterator[Finding]:
    occasions = ctx.ws.config.get("occasions") or {}
    talk_types = ctx.ws.config.get("talk_types") or {}
    for item in ctx.catalog.items():
        meta, s = item.meta, _subject(item)
        cadre = meta.get("cadre")
        if cadre and not ctx.ws.cadre_path(str(cadre)).is_file():
            yield s.finding("cadre", _("{cadre} has no profile").format(cadre=cadre))
        if meta.get("occasion") and meta["occasion"] not in occasions:
            yield s.finding(
                "occasion",
                _("{occasion} is not an occasion in {config}").format(
                    occasion=meta["occasion"], config=CONFIG_NAME
                ),
            )
        if item.kind == "plan" and meta.get("talk_type") not in talk_types:
            yield s.finding(
                "talk_type", _("{type} is not a talk type").format(type=meta.get("talk_type"))
            )
        continued = meta.get("continues") if item.kind == "plan" else None
        if continued and not list((ctx.root / "talks").glob(f"*/{continued}")):
            yield s.finding("continues", _("{talk} is not a talk").format(talk=meta["continues"]))
        if item.kind == "profile":
            for index, event in enumerate(meta.get("events") or []):
                if event.get("occasion") not in occasions:
                    yield s.finding(
                        f"events.{index}.occasion",
                        _("{occasion} is unknown").format(occasion=event.get("occasion")),
                    )


def check_decisions(ctx: Context) -> Iterator[Finding]:
    people = ctx.ws.people
    for item in ctx.catalog.plans.values():
        s = _subject(item)
        decisions = item.meta.get("decisions") or []
        for index, decision in enumerate(decisions):
            who = decision.get("by")
            where = f"decisions.{index}.by"
            if who not in people:
                yield s.finding(
                    where,
                    _("{who} is not a person in {config}").format(who=who, config=CONFIG_NAME),
                )
            elif decision.get("decision") in ("approved", "rejected"):
                if not people[who].has_role("approver"):
                    yield s.finding(where, _("{who} is not an approver").format(who=who))
                elif who == item.meta.get("speaker"):
                    yield s.finding(where, _("{who} approved a plan they speak in").format(who=who))
            left = _date(people[who].left) if who in people else None
            when = _datetime(decision.get("at"))
            if left and when and when.date() > left:
                yield s.finding(
                    where,
                    _("{who} decided after leaving on {day}").format(who=who, day=left.isoformat()),
                )
        yield from _steps(s, decisions)
        last = decisions[-1]["decision"] if decisions else "draft"
        expected = {"reopened": "draft"}.get(last, last)
        if item.meta.get("status") != expected:
            yield s.finding(
                "status",
                _("is {status} but the last decision is {last}").format(
                    status=item.meta.get("status"), last=last
                ),
            )


def _steps(s: Subject, decisions: list) -> Iterator[Finding]:
    """The trail replayed from draft: each decision must leave a state it may leave from, so
    no hand edit reaches `held` (or `approved`) past the approval it needs."""
    from talkbook.workflow import HELD, TRANSITIONS

    state = "draft"
    for index, entry in enumerate(decisions):
        decision = entry.get("decision") if isinstance(entry, dict) else None
        if decision == HELD:
            sources, after = {"approved"}, HELD
        elif decision == "reopened":
            sources, after = {"submitted", "approved"}, "draft"
        elif decision in TRANSITIONS:
            sources, after = TRANSITIONS[decision]
        else:
            return  # the schema says what is wrong with it
        if state not in sources:
            yield s.finding(
                f"decisions.{index}.decision",
                _("{decision} cannot follow {state}").format(
                    decision=label("status", decision), state=label("status", state)
                ),
            )
            return
        state = after


def check_workflow(ctx: Context) -> Iterator[Finding]:
    for talk_id, item in ctx.catalog.plans.items():
        held = item.meta.get("status") == "held"
        if held and not (ctx.ws.talk_dir(talk_id) / "record.md.age").is_file():
            yield _subject(item).finding("status", _("held, but the talk has no record"))
    for talk_id, record in ctx.catalog.records.items():
        s = _subject(record)
        plan = ctx.catalog.plans.get(talk_id)
        if plan is None:
            if not (ctx.ws.talk_dir(talk_id) / "plan.md.age").is_file():
                yield s.finding("id", _("a record needs a plan in the same folder"))
            continue
        if plan.meta.get("status") not in ("approved", "held"):  # approved: before `held`
            yield s.finding(
                "id",
                _("held, but its plan is {status}, not approved").format(
                    status=plan.meta.get("status")
                ),
            )
        for key in ("cadre", "speaker"):
            if record.meta.get(key) != plan.meta.get(key):
                yield s.finding(
                    key, _("differs from the plan ({value})").format(value=plan.meta.get(key))
                )
        approvals = [d for d in plan.meta.get("decisions") or [] if d.get("decision") == "approved"]
        held = _datetime(record.meta.get("held_at"))
        approved = _datetime(approvals[-1].get("at")) if approvals else None
        if held and approved and held < approved:
            yield s.finding("held_at", _("held before the plan was approved"))


def check_dates(ctx: Context) -> Iterator[Finding]:
    horizon = ctx.today + dt.timedelta(days=1)
    for item in ctx.catalog.items():
        meta, s = item.meta, _subject(item)
        if item.kind == "profile":
            birth, start = _date(meta.get("birth_date")), _date(meta.get("career_start"))
            if birth and birth > ctx.today:
                yield s.finding("birth_date", _("is in the future"))
            if birth and start and start < birth:
                yield s.finding("career_start", _("is before the birth date"))
            for index, event in enumerate(meta.get("events") or []):
                when = _date(event.get("date"))
                if when and when > horizon:
                    yield s.finding(f"events.{index}.date", _("is in the future"))
        if item.kind == "record":
            held = _date(meta.get("held_at"))
            if held and held > horizon:
                yield s.finding("held_at", _("is in the future"))
            for index, follow in enumerate(meta.get("follow_ups") or []):
                due = _date(follow.get("due"))
                if held and due and due < held:
                    yield s.finding(f"follow_ups.{index}.due", _("is before the talk was held"))
            confirmed = _date(meta.get("confirmed_on"))
            if held and confirmed and confirmed < held:
                yield s.finding("confirmed_on", _("is before the talk was held"))


def check_confirmed_records(ctx: Context) -> Iterator[Finding]:
    """A confirmed record changes only by addenda: compare with the version first confirmed.
    Every record, confirmed now or not: setting `confirmed_on: null` un-confirms nothing."""
    from talkbook.workflow import confirmed_rewrite

    if ctx.keyring is None or not ctx.catalog.records:
        return
    blobs: dict[str, list[str]] = {}  # path → blob ids of its versions, oldest first
    scope = [r.rel for r in ctx.catalog.records.values()] if ctx.written else ["talks/"]
    for commit in gittrail.history(ctx.root, *scope):
        for change in commit.changes:
            if change.status != "D":
                blobs.setdefault(change.path, []).append(change.blob)
    for record in ctx.catalog.records.values():
        versions = blobs.get(record.rel, [])
        current = ""  # a version about to be written is none of git's: compare with each
        if versions and record.rel not in ctx.written:
            current = gittrail.blob_id((ctx.root / record.rel).read_bytes(), versions[0])
        for blob in versions:
            if blob == current:  # the same bytes as now: no need to decrypt
                if record.meta.get("confirmed_on"):
                    break  # the first confirmed version is the current one
                continue  # not confirmed; a later version may have been (then reverted)
            data = gittrail.read_blob(ctx.root, blob)
            reading = loader.read(ctx.keyring, record.rel, data)  # a planted version: skipped
            earlier = reading.doc
            if reading.state != loader.OK or earlier is None:
                continue
            if earlier.meta.get("confirmed_on"):
                if problem := confirmed_rewrite(earlier, record.doc):
                    field_name, _sep, message = problem.partition(": ")
                    yield _subject(record).finding(field_name, message)
                break


CROSS_FILE: list[Callable[[Context], Iterator[Finding]]] = [
    check_references,
    check_decisions,
    check_workflow,
    check_dates,
    check_confirmed_records,
]


def _date(value: object) -> dt.date | None:
    try:
        return parse_date(str(value)) if value else None
    except ValueError:
        return None


def _datetime(value: object) -> dt.datetime | None:
    try:
        return parse_datetime(str(value)) if value else None
    except ValueError:
        return None


# -- one document, before it is written ------------------------------------------------------
def document_findings(app, subject: Subject) -> list[Finding]:
    """The rules across files that `validate` runs, for one document a command is about to
    write (`subject.rel` is its path in the workspace): what the new version would bring, on
    it or on the other file of its talk (a plan edited under its record). What the current
    version already showed is not this write's doing (an occasion the workspace dropped since,
    a role taken away): it is for `validate` to report and `edit` to mend, and it does not
    freeze the file. So a command that succeeds leaves `validate` as clean as it found it."""
    from collections import Counter

    ws = app.workspace
    path = ws.root / subject.rel
    written = Item(subject.kind, subject.rel, subject.doc, subject.text)
    others = [
        item
        for sibling in _siblings(subject.kind, path)
        if (item := _readable(app, ws, sibling)) is not None
    ]
    after = _cross_findings(app, [written, *others], frozenset({subject.rel}))
    current = None
    if after or _names_departed(ws, subject):
        current = _readable(app, ws, path) if path.is_file() else None
    departed = departed_findings(ws, subject, current.doc if current else None)
    if not after:
        return departed
    before = _cross_findings(app, [*([current] if current else []), *others])
    known = Counter((f.path, f.field, f.message) for f in before)  # lines move with an edit
    brought = []
    for finding in sorted(after):
        key = (finding.path, finding.field, finding.message)
        if known[key]:
            known[key] -= 1
        else:
            brought.append(finding)
    return sorted([*departed, *brought])


NAMED_PEOPLE = ("speaker", "recorder")  # who holds and records the talk: not one who left


def _names_departed(ws: Workspace, subject: Subject) -> bool:
    people = ws.people
    return subject.kind in ("plan", "record") and any(
        (person := people.get(str(subject.doc.meta.get(key)))) is not None and person.left
        for key in NAMED_PEOPLE
    )


def departed_findings(ws: Workspace, subject: Subject, current: Document | None) -> list[Finding]:
    """A plan or record about to be written names nobody who left as its speaker or recorder:
    checked for a new document and for a changed field only, so the talks of someone who has
    left since stay as they were, and valid (`validate` does not run this rule)."""
    if subject.kind not in ("plan", "record"):
        return []
    people = ws.people
    found = []
    for key in NAMED_PEOPLE:
        pid = subject.doc.meta.get(key)
        person = people.get(pid) if isinstance(pid, str) else None
        if person is None or not person.left:
            continue
        if current is not None and current.meta.get(key) == pid:
            continue  # named before they left: the talk stays theirs
        found.append(
            subject.finding(key, _("{person} left on {left}").format(person=pid, left=person.left))
        )
    return found


def _siblings(kind: str, path: Path) -> list[Path]:
    names = {"plan": "record.md.age", "record": "plan.md.age"}
    return [path.parent / names[kind]] if kind in names else []


def _readable(app, ws: Workspace, path: Path) -> Item | None:
    """A document of the workspace as `validate` takes it into its catalog: readable with this
    identity and past its schema (else the rules across files skip it, as validate does)."""
    if not path.is_file():
        return None
    [(rel, data)] = loader.working_tree(ws, [path])
    reading = loader.read(app.keyring, rel, data)
    if reading.state != loader.OK or reading.doc is None:
        return None
    return Item(reading.kind, rel, reading.doc, reading.text)


def _cross_findings(app, items: list[Item], written: frozenset[str] = frozenset()) -> list[Finding]:
    catalog = Catalog()
    for item in items:
        catalog.add(item)
    ws = app.workspace
    context = Context(ws, catalog, app.today(), ws.root, _keyring_or_none(app), written)
    return [finding for rule in CROSS_FILE for finding in rule(context)]


# -- the run ----------------------------------------------------------------------------------
def validate(app, paths: list[str] | None = None, staged: bool = False) -> Report:
    ws = app.workspace
    report = Report()
    if staged:
        candidates = []
        for mode, rel in gittrail.staged_entries(ws.root):
            if mode in NOT_REGULAR and regular_only(rel):
                report.findings.append(_not_regular(rel, NOT_REGULAR[mode]))
            elif mode not in NOT_REGULAR:
                candidates.append(rel)
    else:
        chosen = [ws.resolve(p) for p in paths] if paths else ws.encrypted_files()
        candidates = [_rel(ws, p) for p in chosen]
        report.findings += config_findings(ws)
        if not paths:
            report.findings += symlink_findings(ws.root)
    if staged and CONFIG_NAME in candidates:
        report.findings += config_findings(ws)
    keyring = _keyring_or_none(app)
    documents = _documents(ws, candidates, staged, report)
    found = loader.readings(keyring, [(rel, data) for rel, data in documents.items()])
    loaded = Catalog()
    for reading in found:
        report.findings += _reading_findings(ws, reading, documents[reading.rel], report)
        if reading.state == loader.OK:
            loaded.add(Item(reading.kind, reading.rel, reading.doc, reading.text))
    context = Context(ws, loaded, app.today(), ws.root, keyring)
    for rule in CROSS_FILE:
        report.findings += list(rule(context))
    report.findings = sorted(set(report.findings))
    return report


def _documents(ws: Workspace, rels: list[str], staged: bool, report: Report) -> dict[str, bytes]:
    """The bytes of each candidate that is an age file where documents live (the working
    tree's, or the staged index's); what is no regular file or no ciphertext is a finding."""
    documents: dict[str, bytes] = {}
    for rel in rels:
        try:
            if staged:
                [(_rel, data)] = loader.staged(ws.root, [rel])
            else:
                data = read_regular(ws.root, ws.root / rel)
        except UnsafePath as exc:
            report.findings.append(Finding(rel, 1, "(file)", exc.reason))
            continue
        if problems := plaintext_findings(rel, data):
            report.findings += problems
        elif rel.startswith(GUARDED) and rel.endswith(".md.age"):
            report.checked += 1
            documents[rel] = data
    return documents


def _reading_findings(ws: Workspace, reading, data: bytes, report: Report) -> list[Finding]:
    """One document's own findings: why it cannot be read, its schema, or its rules; and its
    recipients against the access rule whenever it parsed."""
    if reading.state == loader.UNREADABLE:
        report.unreadable.append(reading.rel)
        return []
    if reading.doc is None:
        return list(reading.findings)
    item = Item(reading.kind, reading.rel, reading.doc, reading.text)
    subject = Subject(reading.kind, reading.rel, reading.doc, reading.text or "")
    own = list(reading.findings) or rule_findings(subject, ws)
    return own + recipient_findings(ws, item, data)


def _rel(ws: Workspace, path: Path) -> str:
    """The path as the workspace names it: by name, never where a symlink points."""
    rel = inside(ws.root, path)
    return rel.as_posix() if rel is not None else str(path)


def _keyring_or_none(app):
    from talkbook.errors import IdentityError

    try:
        return app.keyring
    except IdentityError:
        return None
