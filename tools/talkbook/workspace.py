"""The workspace: where it is, its settings (talkbook.toml), its people, its file layout.

Paths carry only opaque ids and the year; everything that names a cadre lives inside encrypted
files. This module knows where things are, never what they say.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from talkbook.errors import NotFound, TalkbookError, WorkspaceExists, WorkspaceNotFound
from talkbook.fsutil import atomic_write, inside, read_regular, regular_file
from talkbook.i18n import _
from talkbook.models import ID_FORMS, ID_PATTERNS, is_id, one_line, shown

CONFIG_NAME = "talkbook.toml"
ROLES = ("custodian", "approver", "speaker", "recorder")
LOCALES = ("zh-CN", "en")
FOLDER_READMES = {
    "cadres": (
        "# cadres/\n\nOne encrypted profile per cadre: `<cadre-id>.md.age`.\n"
        "Add one with `talkbook cadre new`; read it with `talkbook cat <cadre-id>`.\n"
        "Only ciphertext belongs here: the pre-commit hook refuses anything else.\n"
    ),
    "talks": (
        "# talks/\n\nOne folder per talk: `<year>/<talk-id>/plan.md.age` and `record.md.age`.\n"
        "Draft a plan with `talkbook plan`, record the talk with `talkbook record`.\n"
        "Only ciphertext belongs here: the pre-commit hook refuses anything else.\n"
    ),
}


# A NamedTuple, not a frozen dataclass: every command defines it at import, and this is built in a
# fifth of the time.
class Person(NamedTuple):
    id: str
    name: str
    roles: tuple[str, ...]
    keys: tuple[str, ...]
    email: str = ""
    cadre: str | None = None
    left: str | None = None  # the day they left: no longer a reader or an actor

    @property
    def address(self) -> str:
        return self.email or f"{self.id.lower()}@talkbook.invalid"

    def has_role(self, role: str) -> bool:
        return role in self.roles


def default_config_text() -> str:
    return (Path(__file__).parent / "defaults.toml").read_text(encoding="utf-8")


def read_config(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TalkbookError(
            _("{file}: malformed TOML: {error}").format(file=path.name, error=exc)
        ) from None
    except UnicodeDecodeError:
        raise TalkbookError(_("{file}: not UTF-8 text").format(file=path.name)) from None
    except OSError as exc:
        raise TalkbookError(
            _("{path}: cannot read: {reason}").format(path=path, reason=exc.strerror)
        ) from None


def find_root(explicit: Path | None = None, start: Path | None = None) -> Path:
    """--workspace, else TALKBOOK_WORKSPACE, else the nearest folder upwards with talkbook.toml."""
    chosen = explicit or (Path(v) if (v := os.environ.get("TALKBOOK_WORKSPACE")) else None)
    if chosen is not None:
        if not (chosen / CONFIG_NAME).is_file():
            raise WorkspaceNotFound(
                _("{chosen}: not a talkbook workspace (no {config})").format(
                    chosen=chosen, config=CONFIG_NAME
                )
            )
        return chosen.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        # a workspace is a repository's top: a talkbook.toml committed in a subfolder is not one
        if (folder / CONFIG_NAME).is_file() and (folder / ".git").exists():
            return folder
    raise WorkspaceNotFound(
        _(
            "no talkbook workspace here or above {here} (run `talkbook init` or pass --workspace)"
        ).format(here=here)
    )


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of a folder; none when it is missing or not a folder."""
    try:
        with os.scandir(folder) as found:
            return list(found)
    except (FileNotFoundError, NotADirectoryError):
        return []


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.config_path = root / CONFIG_NAME
        self.config = read_config(regular_file(root, self.config_path))

    def with_config(self, config: dict[str, Any]) -> Workspace:
        """The same folder under other settings (those of an earlier commit, for rekey)."""
        other = object.__new__(Workspace)
        other.root, other.config_path, other.config = self.root, self.config_path, config
        return other

    # -- settings -------------------------------------------------------------------------
    @property
    def locale(self) -> str:
        return str(self.config.get("locale", "zh-CN"))

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def people(self) -> dict[str, Person]:
        """Everyone in talkbook.toml; a key listed for two people is refused (a key is one
        person's: otherwise one of them could act, and read, as the other)."""
        people = {}
        owners: dict[str, str] = {}
        table = self.config.get("people") or {}
        if not isinstance(table, dict) or not all(isinstance(e, dict) for e in table.values()):
            raise TalkbookError(
                _("{config}: [people] must hold one table per person").format(config=CONFIG_NAME)
            )
        for pid, entry in table.items():
            people[pid] = Person(
                id=pid,
                name=str(entry.get("name", pid)),
                roles=tuple(entry.get("roles", ())),
                keys=tuple(entry.get("keys", ())),
                email=str(entry.get("email", "")),
                cadre=entry.get("cadre"),
                left=str(entry["left"]) if entry.get("left") else None,
            )
            for key in people[pid].keys:
                if owners.setdefault(key_core(str(key)), pid) != pid:
                    raise TalkbookError(
                        _(
                            "{config}: one key is listed for {owners} and {person}; a key belongs "
                            "to one person"
                        ).format(config=CONFIG_NAME, owners=owners[key_core(str(key))], person=pid)
                    )
        return people

    def person(self, pid: str) -> Person:
        if not is_id("person", pid):
            raise NotFound(_("not a person id ({form})").format(form=_(ID_FORMS["person"])))
        try:
            return self.people[pid]
        except KeyError:
            raise NotFound(_("unknown person: {person}").format(person=pid)) from None

    def person_by_key(self, public_keys: list[str]) -> Person | None:
        wanted = {key_core(k) for k in public_keys}
        for person in self.current_people():
            if wanted & {key_core(k) for k in person.keys}:
                return person
        return None

    def current_people(self) -> list[Person]:
        return [p for p in self.people.values() if not p.left]

    def with_role(self, role: str) -> list[Person]:
        return [p for p in self.current_people() if p.has_role(role)]

    def label(self, table: str, key: str | None) -> str:
        """The label of an occasion or talk type in the workspace's locale, else the key."""
        if not key:
            return ""
        labels = ((self.config.get(table) or {}).get(key) or {}).get("label") or {}
        return str(labels.get(self.locale) or labels.get("en") or key)

    # -- access rules ---------------------------------------------------------------------
    def readers(self, kind: str, meta: dict[str, Any]) -> list[Person]:
        """The people who may read a file of this kind, by the rules in [access]."""
        rules = (self.config.get("access") or {}).get("cadre" if kind == "profile" else kind)
        if not rules:
            raise TalkbookError(
                _("{config}: no access rule for {kind} files").format(config=CONFIG_NAME, kind=kind)
            )
        chosen: dict[str, Person] = {}
        for token in rules:
            how, _sep, what = str(token).partition(":")
            if how == "role":
                chosen.update((p.id, p) for p in self.with_role(what))
            elif how == "field":
                person = self.people.get(str(meta.get(what)))
                if person and not person.left:
                    chosen[person.id] = person
            else:
                raise TalkbookError(
                    _("{config}: access rule {token!r} is not role:… or field:…").format(
                        config=CONFIG_NAME, token=token
                    )
                )
        return sorted(chosen.values(), key=lambda p: p.id)

    def recipients(self, kind: str, meta: dict[str, Any]) -> list[str]:
        keys = [k for person in self.readers(kind, meta) for k in person.keys]
        if not keys:
            raise TalkbookError(
                _("nobody may read this {kind}: add a custodian with a key first").format(kind=kind)
            )
        return sorted(set(keys))

    # -- layout ---------------------------------------------------------------------------
    def cadre_path(self, cadre_id: str) -> Path:
        if not is_id("profile", cadre_id):  # it becomes a path: never a name, `*` or "../"
            raise NotFound(_("not a cadre id ({form})").format(form=_(ID_FORMS["profile"])))
        return self.root / "cadres" / f"{cadre_id}.md.age"

    def talk_dir(self, talk_id: str, year: int | str | None = None) -> Path:
        if not is_id("talk", talk_id):  # a path and a glob pattern: `T-*` would match any talk
            raise NotFound(_("not a talk id ({form})").format(form=_(ID_FORMS["talk"])))
        if year is None:
            found = sorted((self.root / "talks").glob(f"*/{talk_id}"))
            if not found:
                raise NotFound(_("unknown talk: {talk}").format(talk=talk_id))
            regular_file(self.root, found[0] / "plan.md.age")  # no symlinked folder on the way
            return found[0]
        return self.root / "talks" / str(year) / talk_id

    def cadre_ids(self) -> list[str]:
        return sorted(
            p.name.removesuffix(".md.age") for p in (self.root / "cadres").glob("*.md.age")
        )

    def talk_taken(self, talk_id: str) -> bool:
        """Whether any year's folder has an entry of this name (a talk folder, or anything else
        a new talk could not be made in): what `plan` asks of a new id, a look-up per year
        instead of listing every talk."""
        return any(
            os.path.lexists(os.path.join(year.path, talk_id))
            for year in _entries(self.root / "talks")
            if year.is_dir()
        )

    def encrypted_files(self) -> list[Path]:
        """Listed by name, symlinks too: reading one refuses it, validate names it.

        `cadres/*.md.age` and `talks/*/*/*.age`, by os.scandir: pathlib's glob costs seconds
        at tens of thousands of files."""
        cadres = [e.path for e in _entries(self.root / "cadres") if e.name.endswith(".md.age")]
        talks = [
            e.path
            for year in _entries(self.root / "talks")
            if year.is_dir()
            for talk in _entries(Path(year.path))
            if talk.is_dir()
            for e in _entries(Path(talk.path))
            if e.name.endswith(".age")
        ]
        return [Path(p) for p in sorted([*cadres, *talks])]

    def resolve(self, ref: str) -> Path:
        """An id (`C-…`, `T-…` = its plan, `T-…/record`) or a path → the encrypted file."""
        if not one_line(ref):
            raise NotFound(_("unknown id or file: {ref}").format(ref=shown(ref)))
        if ID_PATTERNS["profile"].fullmatch(ref):
            path = self.cadre_path(ref)
        elif ID_PATTERNS["talk"].fullmatch(ref.split("/")[0]):
            talk_id, _sep, part = ref.partition("/")
            path = self.talk_dir(talk_id) / f"{part or 'plan'}.md.age"
        else:
            candidate = Path(ref)
            path = candidate if candidate.is_absolute() else Path.cwd() / candidate
        path = regular_file(self.root, path)  # no symlink, nothing outside the workspace
        if not path.is_file():
            raise NotFound(_("unknown id or file: {ref}").format(ref=ref))
        return path

    def relative(self, path: Path) -> str:
        rel = inside(self.root, path)  # by name: a symlink is named, not where it points
        return rel.as_posix() if rel is not None else str(path)

    # -- editing talkbook.toml ------------------------------------------------------------
    def add_person(self, person: Person) -> None:
        """Add or update a person in talkbook.toml, keeping the file's comments and layout.

        The id becomes a TOML key, a path in messages and a commit message: it must match its
        pattern whole. Name and email go into commits' author lines: one line each.
        """
        import tomlkit

        if not is_id("person", person.id):
            raise TalkbookError(
                _("person id: must be {form} (e.g. P-01)").format(form=_(ID_FORMS["person"]))
            )
        if person.cadre is not None and not is_id("profile", person.cadre):
            raise TalkbookError(
                _("--cadre: must be a cadre id ({form})").format(form=_(ID_FORMS["profile"]))
            )
        if not person.name.strip() or not one_line(person.name):
            raise TalkbookError(_("name: must be one line of text, without control characters"))
        if not one_line(person.email) or set(person.email) & set(" <>"):
            raise TalkbookError(_("email: must be one address, without spaces, < or >"))

        entry = tomlkit.table()
        entry["name"] = person.name
        entry["roles"] = list(person.roles)
        entry["keys"] = list(person.keys)
        if person.email:
            entry["email"] = person.email
        if person.cadre:
            entry["cadre"] = person.cadre
        self._edit_people(lambda people: people.__setitem__(person.id, entry))

    def mark_left(self, pid: str, day: str) -> None:
        """Keep the person (their past decisions stay valid), but no longer as a reader."""
        self.person(pid)  # NotFound for an unknown id
        self._edit_people(lambda people: people[pid].__setitem__("left", day))

    def _edit_people(self, change: Callable[[Any], None]) -> None:
        import tomlkit

        document = tomlkit.parse(read_regular(self.root, self.config_path).decode("utf-8"))
        change(document.setdefault("people", tomlkit.table()))
        data = tomlkit.dumps(document).encode("utf-8")
        atomic_write(self.config_path, data, mode=0o644, root=self.root)
        self.config = read_config(self.config_path)


def id_of_rel(rel: str) -> str:
    """The id a path carries: cadres/C-….md.age → C-…; talks/2026/T-…/plan.md.age → T-…"""
    parts = rel.split("/")
    return parts[-1].removesuffix(".md.age") if parts[0] == "cadres" else parts[-2]


def kind_of_rel(rel: str) -> str:
    """profile, plan or record, from a path relative to the workspace."""
    if rel.startswith("cadres/"):
        return "profile"
    if rel.endswith("/plan.md.age"):
        return "plan"
    if rel.endswith("/record.md.age"):
        return "record"
    raise TalkbookError(_("{file}: not a profile, plan or record").format(file=rel))


def key_core(key: str) -> str:
    """`ssh-ed25519 AAAA… comment` and `ssh-ed25519 AAAA…` are the same key."""
    parts = key.split()
    return " ".join(parts[:2]) if key.startswith("ssh-") else key.strip()


def create_layout(root: Path, locale: str, organization: str) -> list[Path]:
    """Write talkbook.toml, the folders and their READMEs, .gitignore and .gitattributes."""
    import tomlkit

    from talkbook.templating import copy_default_templates

    if (root / CONFIG_NAME).exists():
        raise WorkspaceExists(
            _("{root}: already a talkbook workspace; refusing to overwrite it").format(root=root)
        )
    if locale not in LOCALES:
        raise TalkbookError(
            _("unknown locale {locale!r}: choose one of {choices}").format(
                locale=locale, choices=", ".join(LOCALES)
            )
        )
    root.mkdir(parents=True, exist_ok=True)
    config = tomlkit.parse(default_config_text())
    config["organization"] = organization
    config["locale"] = locale
    written = [root / CONFIG_NAME]
    atomic_write(root / CONFIG_NAME, tomlkit.dumps(config).encode("utf-8"), mode=0o644)
    for folder, readme in FOLDER_READMES.items():
        (root / folder).mkdir(exist_ok=True)
        if not (root / folder / "README.md").exists():
            atomic_write(root / folder / "README.md", readme.encode("utf-8"), mode=0o644)
            written.append(root / folder / "README.md")
    written += copy_default_templates(root / "templates")
    written += _ensure_lines(root / ".gitignore", ["build/", ".talkbook/"])
    written += _ensure_lines(root / ".gitattributes", ["*.age diff=talkbook -text"])
    return written


def _ensure_lines(path: Path, lines: list[str]) -> list[Path]:
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if not missing:
        return []
    atomic_write(path, ("\n".join(existing + missing) + "\n").encode("utf-8"), mode=0o644)
    return [path]
