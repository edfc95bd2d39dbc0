"""`talkbook audit`: the history itself, commit by commit.

`validate` checks files as they are; an audit checks how they came to be. It reads the history
once: one `git log --raw` gives every commit with the mode and blob id of each path it touched,
and blobs come through one long-lived `git cat-file --batch`. Each file version is read and
decrypted once, so the work grows with the number of file versions, never commits × files.

First the profiles: every version the auditor can decrypt, at any time in history, gives a cadre
name to look for. Then each commit goes through COMMIT_CHECKS in turn:

- **signatures**: who made a commit is who signed it, never its author field. Every commit but
  the one creating talkbook.toml carries a good SSH signature by a key that the talkbook.toml in
  force before it lists for a person (trust.signers), and that person is the commit's author.
  A change to talkbook.toml or templates/ or to a profile is signed by a custodian; a new record
  by its recorder; a confirmation by the record's speaker, its recorder or a custodian.
- **authors**: a change under cadres/, talks/ or templates/, or to talkbook.toml, is signed by a
  person of the workspace (the commit creating talkbook.toml excepted).
- **regular files**: a symlink (git mode 120000) or submodule (160000), anywhere, is a finding.
- **cadre names**: a cadre's name in any path, in any commit message, or in the content of any
  file that is not an age file is a finding. The finding says "a cadre's name (C-…)" with the
  cadre's id and never the name; a path carrying a name is shown withheld, by its blob id. Names
  are matched exactly (ignoring case) and from two characters up; in talkbook.toml the names of
  its own people are public by design and not findings (a cadre can be a person).
- **plaintext**: under cadres/ and talks/ every file but README.md and .gitkeep is an `.age`
  file whose whole age header parses (a first line `age-encryption.org/v1` is not enough).
  Outside them, a `*.md` file is a finding unless it is known plaintext (a README.md, anything
  under templates/); so is any `*.age` file (no access rule says who reads it). A profile, plan
  or record has its own name: `cadres/C-….md.age`, `talks/<year>/T-…/plan|record.md.age`; any
  other age file under cadres/ or talks/ is a finding for the same reason.
- **recipients**: each version of a profile, plan or record is encrypted to the keys that the
  access rule of that commit's talkbook.toml gives for its front matter. What the age header
  decides exactly is checked: the number of recipient stanzas of each type (X25519,
  ssh-ed25519, ssh-rsa, mlkem768x25519) against the keys' types; the key tag of each ssh stanza
  (the first 4 bytes of SHA-256 of the key's wire blob) against the ssh keys; no passphrase
  (scrypt) and no stanza of an unknown type (rage's `…-grease` stanzas excepted). When the
  auditor's own key is one the rule gives and the file does not open with it, that too.
- **trails**: a plan's decisions and a record's addenda are only appended, each committed by the
  person it names; a record once confirmed keeps its `confirmed_on`, changes only by addenda
  (and follow-up progress) and is never deleted.

What the header cannot tell: an X25519 or post-quantum stanza carries only an ephemeral share,
so a file sealed to the right number of such keys, one of them wrong, passes (unless the wrong
one replaced the auditor's own). A version the auditor cannot decrypt is checked against the
rule's roles only when the rule names no field (`field:speaker` needs the front matter), and its
trail is not followed; the summary counts such versions. Plaintext hidden in an age payload
behind a valid header shows only to a reader (the file fails to decrypt). A merge is read
against its first parent, and a blob is judged once per path.

The trail checks name the signer as the one who committed an entry: a decision or addendum
typed in by anyone else, whatever author name they used, is a finding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from talkbook import gittrail, trust
from talkbook.app import App
from talkbook.crosscheck import plaintext_findings
from talkbook.crypto.agefile import HYBRID_TYPE, PASSPHRASE_TYPE, RECIPIENT_TYPES, Header
from talkbook.errors import TalkbookError
from talkbook.i18n import _, label
from talkbook.models import Document
from talkbook.workflow import TRANSITIONS, confirmed_rewrite
from talkbook.workspace import CONFIG_NAME, Person, Workspace, id_of_rel, kind_of_rel

if TYPE_CHECKING:
    from talkbook.crypto import Keyring

GUARDED = ("cadres/", "talks/")
# Changes here are the workspace's law or its records: only its people make them.
PEOPLES_PATHS = (*GUARDED, "templates/", CONFIG_NAME)
ALLOWED_PLAIN = ("cadres/README.md", "talks/README.md", "cadres/.gitkeep", "talks/.gitkeep")
DOCUMENT_PATH = re.compile(
    r"cadres/C-[0-9a-z]{6}\.md\.age|talks/[0-9]{4}/T-[0-9a-z]{6}/(plan|record)\.md\.age"
)
# What each kind of file keeps as an attributed, append-only trail.
TRAILS = {"plan": "decisions", "record": "addenda"}
DECISIONS = {*TRANSITIONS, "reopened", "held"}
SYMLINK, SUBMODULE, DELETED = "120000", "160000", "000000"
MIN_NAME = 2  # shorter names would match everywhere
BROKEN = Document({}, "")  # decrypts, but is no document: validate says why; trails start afresh


@dataclass(frozen=True)
class AuditFinding:
    sha: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.sha[:7]} {self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"commit": self.sha, "path": self.path, "message": self.message}


@dataclass
class AuditReport:
    findings: list[AuditFinding] = field(default_factory=list)
    commits: int = 0
    unreadable: int = 0


class Names:
    """The cadre names to look for, each with its cadre's id; found without saying them."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}  # casefolded name → cadre id
        self.sizes: set[int] = set()

    def add(self, name: object, cadre_id: str) -> None:
        folded = str(name or "").strip().casefold()
        if len(folded) >= MIN_NAME:
            self.ids.setdefault(folded, cadre_id)
            self.sizes.add(len(folded))

    def find(self, text: str, public: frozenset[str] = frozenset()) -> list[str]:
        """The ids of the cadres named in text, in the order of their names' first appearance."""
        folded = text.casefold()
        hits: dict[int, str] = {}
        if len(folded) * len(self.sizes) <= 4 * len(self.ids):  # every window, looked up
            for size in self.sizes:
                for at in range(len(folded) - size + 1):
                    window = folded[at : at + size]
                    if window in self.ids and window not in public:
                        hits.setdefault(at, self.ids[window])
        else:  # a long text and fewer names: one substring search per name
            for name, cadre_id in self.ids.items():
                if name not in public and (at := folded.find(name)) >= 0:
                    hits.setdefault(at, cadre_id)
        return list(dict.fromkeys(hits[at] for at in sorted(hits)))

    def redact(self, text: str) -> str:
        """Text with any cadre's name replaced by its id: a finding never says a name."""
        for cadre_id in self.find(text):
            for name in [n for n, i in self.ids.items() if i == cadre_id]:
                text = re.sub(re.escape(name), f"({cadre_id})", text, flags=re.IGNORECASE)
        return text


class Law:
    """One talkbook.toml of the history, and what the checks ask of it, worked out once."""

    def __init__(self, ws: Workspace, parsed: bool) -> None:
        self.ws, self.parsed = ws, parsed
        self.people = ws.people
        self.by_address = {p.address: p for p in self.people.values()}
        self.public_names = frozenset(p.name.casefold() for p in self.people.values())
        self._readers: dict[tuple[str, tuple[str, ...]], list[str] | TalkbookError] = {}

    def rules(self, kind: str) -> list[str]:
        access = self.ws.config.get("access")
        tokens = (
            access.get("cadre" if kind == "profile" else kind) if isinstance(access, dict) else 0
        )
        return [str(token) for token in tokens] if isinstance(tokens, list) else []

    def recipients(self, kind: str, meta: dict[str, Any]) -> list[str]:
        """The keys the access rule gives for this front matter ({}: the roles' keys only)."""
        fields = [t.partition(":")[2] for t in self.rules(kind) if t.startswith("field:")]
        key = (kind, tuple(str(meta.get(name)) for name in fields))
        if key not in self._readers:
            try:
                readers = self.ws.readers(kind, meta)
                self._readers[key] = sorted({k for person in readers for k in person.keys})
            except TalkbookError as exc:
                self._readers[key] = exc
            except (AttributeError, TypeError):  # a hand-typed [access] of the wrong shape
                self._readers[key] = TalkbookError(
                    _("{config}: [access] is malformed").format(config=CONFIG_NAME)
                )
        found = self._readers[key]
        if isinstance(found, TalkbookError):
            raise found
        return found


@dataclass
class Version:
    """One path as one commit left it."""

    change: gittrail.Change
    shown: str  # the path as findings show it: withheld when it carries a cadre's name
    data: bytes  # empty when deleted or a submodule
    header: Header | None  # None: not an age file
    doc: Document | None = None  # a decrypted profile, plan or record
    readable: bool = True  # False: an age file the auditor's identity does not open
    fresh: bool = True  # False: this path held this very blob before (merges show it again)

    @property
    def path(self) -> str:
        return self.change.path

    @property
    def deleted(self) -> bool:
        return self.change.mode == DELETED


@dataclass
class Step:
    """One commit, as the checks see it."""

    commit: gittrail.LoggedCommit
    law: Law  # the talkbook.toml this commit leaves
    author: Person | None  # the person whose key signed it (never the author field's claim)
    initializing: bool  # the commit that creates talkbook.toml
    files: list[Version]

    def finding(self, version: Version | None, message: str) -> AuditFinding:
        return AuditFinding(self.commit.sha, version.shown if version else "(commit)", message)


CommitCheck = Callable[["Auditor", Step], Iterator[AuditFinding]]


def audit(app: App) -> AuditReport:
    return Auditor(app).run()


class Auditor:
    def __init__(self, app: App) -> None:
        self.app = app
        self.root = app.workspace.root
        self.base = app.workspace
        self.keyring = _keyring_or_none(app)
        self.report = AuditReport()
        self.names = Names()
        self.profiles: dict[str, Document | None] = {}  # blob → decrypted profile (None: not)
        self.laws: dict[str | None, Law] = {}  # talkbook.toml blob → its settings
        self.seen: dict[str, str] = {}  # path → the blob it last held
        self.by_blob: dict[str, Document | None] = {}  # trail file blob → its document
        self.parent_blobs: dict[str, str | None] = {}  # "parent:path" → the blob it held
        self.confirmed: dict[str, Any] = {}  # record path → the confirmed_on first set
        self.prefetched: dict[tuple[str, str], Any] = {}  # (blob, path) → catalog.Reading

    def run(self) -> AuditReport:
        commits = gittrail.history(self.root)
        self.signers = trust.signers(self.root, [commit.sha for commit in commits])
        self.parent_blobs = gittrail.object_ids(
            self.root,
            [
                f"{parent}:{change.path}"
                for commit in commits
                for change in commit.changes
                if DOCUMENT_PATH.fullmatch(change.path) and not change.path.startswith("cadres/")
                for parent in commit.parents
            ],
        )
        self.prefetch(commits)
        self.learn_names(commits)
        config: str | None = None
        for commit in commits:
            self.report.commits += 1
            before = config
            for change in commit.changes:
                if change.path == CONFIG_NAME:
                    config = None if change.mode == DELETED else change.blob
            law = self.law(config)
            files = [self.version(change) for change in commit.changes]
            initializing = before is None and config is not None
            signer = self.signers.get(commit.sha)
            prior = self.law(before)
            # the founder is in their own talkbook.toml; a broken one founds nothing
            people = prior.people if prior.people or not prior.parsed else law.people
            author = people.get(signer) if signer else None
            step = Step(commit, law, author, initializing, files)
            if not law.parsed and config != before:
                problem = _("not readable settings (malformed TOML?): nobody counts as a person")
                self.report.findings.append(AuditFinding(commit.sha, CONFIG_NAME, problem))
            for check in COMMIT_CHECKS:
                self.report.findings += [self.redacted(f) for f in check(self, step)]
            for version in files:
                self.seen[version.path] = version.change.blob
        return self.report

    # -- reading ---------------------------------------------------------------------------
    def learn_names(self, commits: list[gittrail.LoggedCommit]) -> None:
        """Every profile version, at any time in history: the names to look for everywhere."""
        for commit in commits:
            for change in commit.changes:
                path, blob = change.path, change.blob
                if not path.startswith("cadres/") or not DOCUMENT_PATH.fullmatch(path):
                    continue
                if change.mode != DELETED and blob not in self.profiles:
                    doc = self.decrypt(gittrail.read_blob(self.root, blob), path, blob)
                    self.profiles[blob] = doc
                    if doc is not None:
                        self.names.add(doc.meta.get("name"), id_of_rel(path))

    def before(self, parent: str, path: str) -> Document | None:
        """The trail file as a parent commit held it: BROKEN (nothing) when it held none."""
        blob = self.parent_blobs.get(f"{parent}:{path}")
        return self.by_blob.get(blob, BROKEN) if blob else BROKEN

    def version(self, change: gittrail.Change) -> Version:
        path, blob = change.path, change.blob
        named = self.names.find(path)
        shown = _("(path withheld, blob {blob})").format(blob=blob[:12]) if named else path
        if change.mode in (DELETED, SUBMODULE):
            return Version(change, shown, b"", None)
        data = gittrail.read_blob(self.root, blob)
        version = Version(change, shown, data, _header(data), fresh=self.seen.get(path) != blob)
        if version.header is not None and DOCUMENT_PATH.fullmatch(path) and version.fresh:
            if path.startswith("cadres/"):
                version.doc = self.profiles.get(blob)
            else:
                version.doc = self.decrypt(data, path, blob)
            version.readable = version.doc is not None
            self.report.unreadable += not version.readable
        return version

    def decrypt(self, data: bytes, path: str, blob: str = "") -> Document | None:
        """The document, or None when the auditor cannot read it; broken → empty. A version
        with a field of the wrong type is broken too (its name, if any, is still looked for)."""
        from talkbook import catalog

        if self.keyring is None:
            return None
        ahead = self.prefetched.pop((blob, path), None)
        reading = ahead or catalog.read(self.keyring, path, data)
        if reading.state == catalog.UNREADABLE:
            return None
        if reading.state == catalog.OK and reading.doc is not None:
            return reading.doc
        if reading.state == catalog.UNFIT and reading.doc and path.startswith("cadres/"):
            self.names.add(reading.doc.meta.get("name"), id_of_rel(path))
        return BROKEN

    def prefetch(self, commits: list[gittrail.LoggedCommit]) -> None:
        """Decrypt every document version of the history at once, on every core (pyrage
        holds the GIL): the reads one commit at a time then find them here."""
        from talkbook import catalog

        if self.keyring is None:
            return
        wanted = {
            (change.blob, change.path): None
            for commit in commits
            for change in commit.changes
            if change.mode not in (DELETED, SUBMODULE) and DOCUMENT_PATH.fullmatch(change.path)
        }
        pairs = [(path, gittrail.read_blob(self.root, blob)) for blob, path in wanted]
        found = catalog.readings(self.keyring, pairs)
        self.prefetched = dict(zip(wanted, found, strict=True))

    def law(self, blob: str | None) -> Law:
        """The settings a talkbook.toml blob holds; none when a hostile hand broke them."""
        if blob not in self.laws:
            try:
                text = gittrail.read_blob(self.root, blob).decode("utf-8") if blob else ""
                self.laws[blob] = Law(self.base.with_config(tomllib.loads(text)), True)
            except (UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError, TypeError):
                self.laws[blob] = Law(self.base.with_config({}), False)
        return self.laws[blob]

    def redacted(self, finding: AuditFinding) -> AuditFinding:
        """Messages quote emails and fields a hostile hand typed: never let a name through."""
        return AuditFinding(finding.sha, finding.path, self.names.redact(finding.message))


# -- the checks, one commit at a time ----------------------------------------------------------
def check_authors(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    if step.author is not None or step.initializing:
        return
    for version in step.files:
        if version.path.startswith(PEOPLES_PATHS):
            yield step.finding(
                version,
                _("changed by {email}, not signed by a person of the workspace").format(
                    email=step.commit.email
                ),
            )


def check_signatures(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    """Every commit signed, by the person it claims, holding the role its change needs."""
    if step.initializing:
        return
    signer = step.author
    if signer is None:
        if not any(v.path.startswith(PEOPLES_PATHS) for v in step.files):
            yield step.finding(
                None,
                _("not signed by a person of the workspace ({email})").format(
                    email=step.commit.email
                ),
            )
        return
    if signer.address != step.commit.email:
        yield step.finding(
            None,
            _("signed by {person} but authored as {email}").format(
                person=signer.id, email=step.commit.email
            ),
        )
    for version in step.files:
        if (needs := _role_needed(version, signer)) is not None:
            yield step.finding(
                version,
                _("signed by {person}, who is not {needs}").format(person=signer.id, needs=needs),
            )


def _role_needed(version: Version, signer: Person) -> str | None:
    """The role a signer lacks for this change, or None when they may make it."""
    path = version.path
    if path == CONFIG_NAME or path.startswith(("templates/", "cadres/")):
        return None if signer.has_role("custodian") else _("a custodian")
    doc = version.doc
    if not path.endswith("/record.md.age") or doc is None or doc is BROKEN or version.deleted:
        return None
    if not version.fresh:
        return None
    meta = doc.meta
    if signer.has_role("custodian") or signer.id in (meta.get("speaker"), meta.get("recorder")):
        return None
    return _("this record's speaker, its recorder or a custodian")


def check_regular_files(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    for version in step.files:
        if version.change.mode == SYMLINK and version.fresh:
            yield step.finding(version, _("a symlink (git mode 120000): only regular files belong"))
        elif version.change.mode == SUBMODULE and version.fresh:
            yield step.finding(
                version, _("a submodule (git mode 160000): only regular files belong")
            )


def check_names(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    for cadre_id in audit.names.find(step.commit.message):
        yield step.finding(
            None, _("a cadre's name ({cadre}) in the commit message").format(cadre=cadre_id)
        )
    for version in step.files:
        if version.deleted or not version.fresh:
            continue
        for cadre_id in audit.names.find(version.path):
            yield step.finding(
                version, _("a cadre's name ({cadre}) in the path").format(cadre=cadre_id)
            )
        if version.header is None and version.change.mode != SUBMODULE:
            public = step.law.public_names if version.path == CONFIG_NAME else frozenset()
            text = version.data.decode("utf-8", "replace")
            for cadre_id in audit.names.find(text, public):
                yield step.finding(
                    version, _("a cadre's name ({cadre}) in the content").format(cadre=cadre_id)
                )


def check_plaintext(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    for version in step.files:
        path = version.path
        if version.deleted or not version.fresh or version.change.mode in (SYMLINK, SUBMODULE):
            continue
        if path.startswith(GUARDED):
            sealed = version.header is not None and path.endswith(".age")
            problems = [] if sealed else plaintext_findings(path, version.data)
            yield from (step.finding(version, p.message) for p in problems)
            if not problems and path not in ALLOWED_PLAIN and not DOCUMENT_PATH.fullmatch(path):
                yield step.finding(
                    version, _("not a profile, plan or record: no access rule applies")
                )
        elif path.endswith(".age"):
            yield step.finding(version, _("an age file outside cadres/ and talks/: no access rule"))
        elif path.endswith(".md") and not _known_plaintext(path):
            yield step.finding(
                version, _("a Markdown file outside cadres/ and talks/: records belong encrypted")
            )


def check_recipients(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    own = {_key_core(k) for k in audit.keyring.public_keys} if audit.keyring else set()
    for version in step.files:
        if version.header is None or not version.fresh or not DOCUMENT_PATH.fullmatch(version.path):
            continue
        kind = kind_of_rel(version.path)
        meta = version.doc.meta if version.doc is not None and version.doc is not BROKEN else None
        by_field = any(token.startswith("field:") for token in step.law.rules(kind))
        try:
            by_roles = {_key_core(k) for k in step.law.recipients(kind, {})}
            # with field rules, who reads it depends on front matter this identity cannot see
            expected = None if meta is None and by_field else step.law.recipients(kind, meta or {})
        except TalkbookError as exc:
            yield step.finding(version, _("(recipients) {problem}").format(problem=exc))
            continue
        for problem in _recipient_problems(version.header, expected):
            yield step.finding(version, _("(recipients) {problem}").format(problem=problem))
        if not version.readable and own & by_roles:
            yield step.finding(
                version, _("(recipients) not encrypted to your key, which the access rule gives")
            )


def check_trails(audit: Auditor, step: Step) -> Iterator[AuditFinding]:
    for version in step.files:
        path = version.path
        if not DOCUMENT_PATH.fullmatch(path) or path.startswith("cadres/"):
            continue
        if version.deleted:
            if path in audit.confirmed:
                yield step.finding(version, _("a confirmed record was deleted"))
            continue
        if not version.fresh or version.header is None:
            continue
        audit.by_blob[version.change.blob] = version.doc
        # each line of history has its own "before": the version in this commit's first parent
        before, *others = [audit.before(parent, path) for parent in step.commit.parents] or [BROKEN]
        if version.doc is None or before is None:
            continue  # this version or the one before is unreadable: nothing to compare
        kind = kind_of_rel(path)
        trail = TRAILS[kind]
        # a merge brings entries the other lines already made (and were checked in)
        inherited = [e for doc in others if doc is not None for e in doc.meta.get(trail) or []]
        yield from _trail_findings(step, version, trail, before, version.doc, inherited)
        if kind == "record":
            yield from _confirmed_findings(audit, step, version, before, version.doc)


# The checks every commit goes through, in order.
COMMIT_CHECKS: list[CommitCheck] = [
    check_signatures,
    check_authors,
    check_regular_files,
    check_names,
    check_plaintext,
    check_recipients,
    check_trails,
]


# -- helpers -----------------------------------------------------------------------------------
def _trail_findings(
    step: Step,
    version: Version,
    trail: str,
    before: Document,
    after: Document,
    inherited: list[Any] | None = None,
) -> Iterator[AuditFinding]:
    old = list(before.meta.get(trail) or [])
    new = list(after.meta.get(trail) or [])
    if new[: len(old)] != old:
        yield step.finding(
            version, _("{trail}: earlier entries were rewritten").format(trail=trail)
        )
        return
    for entry in new[len(old) :]:
        if entry in (inherited or []):
            continue
        named = entry.get("by") if isinstance(entry, dict) else None
        if step.author is not None and named == step.author.id:
            continue
        who = named if named in step.law.people else _("someone who is not a person")
        what = entry.get("decision", "addendum") if isinstance(entry, dict) else "entry"
        what = what if what in DECISIONS or what == "addendum" else "entry"
        yield step.finding(
            version,
            _("{trail}: {what} by {who} was not signed by them ({email})").format(
                trail=trail, what=_entry_label(what), who=who, email=step.commit.email
            ),
        )


def _entry_label(what: str) -> str:
    """A trail entry as the reader reads it: a decision by its status label."""
    if what == "addendum":
        return _("addendum")
    return _("entry") if what == "entry" else label("status", what)


def _confirmed_findings(
    audit: Auditor, step: Step, version: Version, before: Document, after: Document
) -> Iterator[AuditFinding]:
    """Once confirmed, confirmed for good: the date stays and the rest changes by addenda only."""
    path, first = version.path, audit.confirmed.get(version.path)
    if first is None:
        if after.meta.get("confirmed_on"):
            audit.confirmed[path] = after.meta["confirmed_on"]
        return
    now, then = after.meta.get("confirmed_on"), before.meta.get("confirmed_on")
    if now != first and (then == first or before is BROKEN):
        how = (
            _("confirmed_on: removed after the record was confirmed")
            if not now
            else _("confirmed_on: changed after the record was confirmed")
        )
        yield step.finding(version, how)
    if before is BROKEN:
        return  # nothing to compare the rest with
    same = {"confirmed_on": first, "addenda": []}  # those two are checked on their own
    if problem := confirmed_rewrite(before.with_meta(**same), after.with_meta(**same)):
        yield step.finding(version, problem)


def _recipient_problems(header: Header, keys: list[str] | None) -> Iterator[str]:
    """What the header shows against the keys the rule gives (None: not known)."""
    stanzas = header.recipient_stanzas
    if header.is_passphrase:
        yield _("sealed with a passphrase, not to the access rule's keys")
    unknown = [
        s
        for s in header.stanzas
        if s.type not in RECIPIENT_TYPES
        and s.type != PASSPHRASE_TYPE
        and not s.type.endswith("-grease")
    ]
    if unknown:
        yield _("{n} stanza(s) of an unknown type: readers no access rule gives").format(
            n=len(unknown)
        )
    if keys is None:
        return
    found = Counter(s.type for s in stanzas)
    wanted = Counter(_stanza_type(k) for k in keys)
    if found != wanted:
        yield _(
            "encrypted to {n} key(s) ({found}) but the access rule at this commit gives "
            "{wanted_n} ({wanted}); run `talkbook rekey`"
        ).format(n=len(stanzas), found=_counted(found), wanted_n=len(keys), wanted=_counted(wanted))
        return
    tags = Counter(s.args[0] if s.args else "" for s in stanzas if s.type.startswith("ssh-"))
    if tags != Counter(_ssh_tag(k) for k in keys if k.startswith("ssh-")):
        yield _("an ssh recipient is not a key the access rule gives")


def _stanza_type(key: str) -> str:
    if key.startswith("age1pq1"):
        return HYBRID_TYPE
    if key.startswith("age1"):
        return "X25519"
    return key.split(" ", 1)[0]


def _ssh_tag(key: str) -> str:
    """age's tag of an ssh key: unpadded base64 of the first 4 bytes of SHA-256 of its blob."""
    try:
        blob = base64.b64decode(key.split()[1], validate=True)
    except (IndexError, binascii.Error):
        return "?"
    return base64.b64encode(hashlib.sha256(blob).digest()[:4]).decode().rstrip("=")


def _counted(types: Counter[str]) -> str:
    return ", ".join(f"{kind} ×{n}" for kind, n in sorted(types.items())) or "none"


def _key_core(key: str) -> str:
    """`ssh-ed25519 AAAA… comment` and `ssh-ed25519 AAAA…` are the same key."""
    return " ".join(key.split()[:2])


def _header(data: bytes) -> Header | None:
    from talkbook.crypto.agefile import parse_header

    try:
        return parse_header(data)
    except TalkbookError:
        return None


def _known_plaintext(path: str) -> bool:
    return path.rsplit("/", 1)[-1] == "README.md" or path.startswith("templates/")


def _keyring_or_none(app: App) -> Keyring | None:
    from talkbook.errors import IdentityError

    try:
        return app.keyring
    except IdentityError:
        return None
