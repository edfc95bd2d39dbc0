"""Chain of custody for the workspace's law: `talkbook.toml` and `templates/`.

They decide who reads what and what the tool writes, so a change to them counts only when its
commit carries a good SSH signature by a key that the previous valid `talkbook.toml` lists for a
current custodian (TUF's rule for a new root; `pass` verifying `.gpg-id` before encrypting). The
root is the first commit signed by a custodian its own `talkbook.toml` lists; each clone pins it
on first use (`talkbook setup` shows it, `setup --trust ID` pins it without asking), like SSH's
known hosts.

`ensure` runs before every encryption, template rendering and actor lookup. It walks only the
commits since the last verified one (kept in `.git/talkbook/trust.json`) and raises TrustError,
one line naming the commit, when the chain breaks; nothing is written then. A commit the tool
itself makes on the verified one, bringing no law (`own_commit`), is verified as it is made:
the walk would find nothing in it to check, so the next command asks git nothing. The working tree's
own uncommitted changes are the user's and are not judged here: only commits arrive from others.

Security invariant: nothing is encrypted to, rendered from or acted on as a key, rule or template
that only an unverified commit introduced.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from talkbook.crypto.ssh import fingerprint
from talkbook.errors import TalkbookError
from talkbook.fsutil import atomic_write
from talkbook.i18n import _

CONFIG = "talkbook.toml"
# .gitattributes too: it decides how the others are checked out (encodings, filters, drivers)
LAW = (CONFIG, "templates", ".gitattributes")
MISSING = "-"  # the object id of a law path a commit does not have
UNREADABLE = "\0unreadable"  # marks a talkbook.toml of history that does not parse


class TrustError(TalkbookError):
    """The chain of custody is broken, or no root is pinned and none can be."""


class Signature(NamedTuple):  # not a dataclass: defined at every import, in a fifth of the time
    sha: str
    status: str  # git's %G?: G or U is a good signature (U: not in allowed signers), N none, B bad
    key: str  # SHA256:… fingerprint of the signing key, as git's %GK

    @property
    def good(self) -> bool:
        return self.status in ("G", "U") and bool(self.key)


# --------------------------------------------------------------------------- git, read only
def _git(root: Path, *args: str, stdin: str | None = None) -> str:
    import subprocess  # here, as in _blob and _is_ancestor: a warm read asks git nothing

    done = subprocess.run(
        ["git", "-C", str(root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    if done.returncode != 0:
        raise TalkbookError(
            _("git {args} failed: {detail}").format(args=args[0], detail=done.stderr.strip()[:200])
        )
    return done.stdout


def git_dir(root: Path) -> Path:
    """This clone's git folder: `.git` itself (a file check) when it is a folder, else git's
    answer; every command asks, before anything else."""
    dot_git = root / ".git"
    if dot_git.is_dir() and not dot_git.is_symlink():
        return dot_git
    return Path(_git(root, "rev-parse", "--absolute-git-dir").strip())


def head(root: Path) -> str | None:
    """The commit HEAD names (None without commits), as gittrail reads it: from the plain files
    git keeps it in, git asked for anything else. A warm read, whose chain is verified up to
    HEAD already, thus starts no git process here (nor imports subprocess)."""
    from talkbook import gittrail

    return gittrail.head(root)


def signatures(root: Path, shas: Iterable[str]) -> dict[str, Signature]:
    """Good, bad or missing signature and signing key of each commit.

    A commit never changes, so neither does what its signature says: results are kept in
    `.git/talkbook/signatures.json` and git (which runs ssh-keygen once per commit) is asked only
    about commits not seen before, in one call.
    """
    wanted = list(dict.fromkeys(shas))
    cache_path = git_dir(root) / "talkbook" / "signatures.json"
    known = _read_json(cache_path)
    missing = [sha for sha in wanted if sha not in known]
    if missing:
        fresh = _ask_git(root, missing)
        known |= {sha: f"{sig.status} {sig.key}" for sha, sig in fresh.items() if sig.status != "E"}
        atomic_write(cache_path, json.dumps(known).encode("utf-8"), mode=0o600)
    found = {}
    for sha in wanted:
        status, _sep, key = str(known.get(sha, "E ")).partition(" ")
        found[sha] = Signature(sha, status, key)
    return found


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ask_git(root: Path, shas: list[str]) -> dict[str, Signature]:
    """git's own verdict on each commit's SSH signature (%G?) and its key (%GK): one call."""
    allowed = git_dir(root) / "talkbook" / "allowed_signers"
    if not allowed.is_file():
        atomic_write(allowed, b"", mode=0o644)  # git needs the file; U still means a good one
    out = _git(
        root,
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed}",
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "--format=%H %G? %GK",
        stdin="\n".join(shas) + "\n",
    )
    found: dict[str, Signature] = {}
    for line in out.splitlines():
        sha, status, *key = line.split(" ")
        found[sha] = Signature(sha, status, key[0] if key else "")
    return found


def _objects(root: Path, specs: list[str]) -> dict[str, str]:
    """Object ids of `commit:path` specs; MISSING where there is none."""
    from talkbook import gittrail

    return {spec: oid or MISSING for spec, oid in gittrail.object_ids(root, specs).items()}


def _blob(root: Path, object_id: str) -> bytes:
    import subprocess

    return subprocess.run(
        ["git", "-C", str(root), "cat-file", "blob", object_id], capture_output=True, check=True
    ).stdout


def signers(root: Path, shas: Iterable[str]) -> dict[str, str | None]:
    """For each commit, the person whose key made its good signature, by the talkbook.toml in
    force when it was made (its first parent's; the founding commit's own, when nobody was
    listed before it); None for anyone else."""
    wanted = list(dict.fromkeys(shas))
    sigs = signatures(root, wanted)
    ids = _objects(root, [f"{sha}{tail}:{CONFIG}" for sha in wanted for tail in ("^1", "")])
    cache: dict[str, dict[str, Any]] = {}
    found: dict[str, str | None] = {}
    for sha in wanted:
        sig = sigs.get(sha)
        before, own = ids[f"{sha}^1:{CONFIG}"], ids[f"{sha}:{CONFIG}"]
        config = _config_of(root, before, cache) if before != MISSING else {}
        if not config.get("people") and not config.get(UNREADABLE) and own != MISSING:
            config = _config_of(root, own, cache)  # the founding commit: nobody before it
        found[sha] = key_owners(config).get(sig.key) if sig is not None and sig.good else None
    return found


def key_owners(config: dict[str, Any]) -> dict[str, str]:
    """Fingerprint → person id, for the people of a talkbook.toml who have not left."""
    owners: dict[str, str] = {}
    for pid, entry in (config.get("people") or {}).items():
        if isinstance(entry, dict) and not entry.get("left"):
            owners |= {fingerprint(str(k)): str(pid) for k in entry.get("keys") or ()}
    owners.pop("", None)
    return owners


# --------------------------------------------------------------------------- the law's keys
def custodian_keys(config: dict[str, Any]) -> set[str]:
    """Fingerprints of the keys a talkbook.toml lists for its current custodians."""
    keys = set()
    for entry in (config.get("people") or {}).values():
        roles = entry.get("roles") or () if isinstance(entry, dict) else ()
        if "custodian" in roles and not entry.get("left"):
            keys |= {fingerprint(str(k)) for k in entry.get("keys") or ()} - {""}
    return keys


def shared_key(config: dict[str, Any]) -> str | None:
    """A key listed for two people, or None: a key belongs to one person."""
    owner: dict[str, str] = {}
    for pid, entry in (config.get("people") or {}).items():
        keys = entry.get("keys") if isinstance(entry, dict) else None
        for key in keys or ():
            core = fingerprint(str(key)) or str(key).strip()
            if owner.setdefault(core, pid) != pid:
                return core
    return None


def _config_of(root: Path, object_id: str, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if object_id == MISSING:
        return {}
    if object_id not in cache:
        try:
            cache[object_id] = tomllib.loads(_blob(root, object_id).decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            cache[object_id] = {UNREADABLE: True}  # lists nobody, and is no founding state
    return cache[object_id]


# --------------------------------------------------------------------------- pinned state
def _state_path(root: Path) -> Path:
    return git_dir(root) / "talkbook" / "trust.json"


def pinned(root: Path) -> dict[str, str]:
    return _read_json(_state_path(root))


def _save(root: Path, state: dict[str, str]) -> None:
    atomic_write(_state_path(root), json.dumps(state).encode("utf-8"), mode=0o600)


def pin(root: Path, sha: str) -> None:
    """Trust this commit as the root of the chain (and nothing after it yet)."""
    _save(root, {"root": sha, "verified": sha})


# --------------------------------------------------------------------------- the chain
def find_root(root: Path) -> str | None:
    """The founding commit: signed by a key its own talkbook.toml lists for a custodian and the
    talkbook.toml before it did not. Exactly one may exist; several are refused (an attacker's
    second "founding" merged in somewhere), and so is a shallow clone, which hides history."""
    if _git(root, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise TrustError(
            _("a shallow clone hides the root of trust: fetch the whole history first")
        )
    candidates = founding_commits(root)
    if len(candidates) > 1:
        shown = ", ".join(sha[:12] for sha in candidates)
        raise TrustError(
            _(
                "this history has {count} possible roots ({shown}): pin the one a "
                "custodian confirms with `talkbook setup --trust ID`"
            ).format(count=len(candidates), shown=shown)
        )
    return candidates[0] if candidates else None


def founding_commits(root: Path) -> list[str]:
    """Every commit that could be the root, in any line of history, oldest first."""
    commits = _git(
        root, "rev-list", "--reverse", "--topo-order", "--full-history", "HEAD", "--", CONFIG
    ).split()
    ids = _objects(root, [f"{c}{tail}:{CONFIG}" for c in commits for tail in ("", "^1")])
    sigs = signatures(root, commits)
    cache: dict[str, dict[str, Any]] = {}
    found = []
    for sha in commits:
        sig, own, before = sigs.get(sha), ids[f"{sha}:{CONFIG}"], ids[f"{sha}^1:{CONFIG}"]
        if sig is None or not sig.good or own == MISSING:
            continue
        earlier = _config_of(root, before, cache) if before != MISSING else {}
        if sig.key in custodian_keys(_config_of(root, own, cache)) - custodian_keys(earlier):
            found.append(sha)
    return found


def _parents(root: Path, since: str) -> list[tuple[str, list[str]]]:
    out = _git(root, "rev-list", "--reverse", "--topo-order", "--parents", f"{since}..HEAD")
    return [(line.split()[0], line.split()[1:]) for line in out.splitlines()]


def check_chain(root: Path, since: str) -> str | None:
    """Why the commits after `since` (a verified commit) break the chain; None when they hold."""
    commits = _parents(root, since)
    everyone = {sha for sha, parents in commits for sha in (sha, *parents)}
    ids = _objects(root, [f"{sha}:{path}" for sha in everyone for path in LAW])
    law = {sha: tuple(ids[f"{sha}:{path}"] for path in LAW) for sha in everyone}
    changed = [
        (sha, parents, what)
        for sha, parents in commits
        if (what := [LAW[i] for i in range(len(LAW)) if _introduces(root, law, sha, parents, i)])
    ]
    sigs = signatures(root, [sha for sha, _, _ in changed])
    cache: dict[str, dict[str, Any]] = {}
    for sha, parents, what in changed:
        changes = " and ".join(what)
        # a custodian of every line it joins: a merge cannot lean on a law another line dropped
        custodians = [custodian_keys(_config_of(root, law[p][0], cache)) for p in parents]
        allowed = set.intersection(*custodians) if custodians else set()
        sig = sigs.get(sha)
        if sig is None or not sig.good:
            return _("commit {commit} changes {what} without a good signature").format(
                commit=sha[:12], what=changes
            )
        if sig.key not in allowed:
            return _("commit {commit} changes {what}, signed by no custodian").format(
                commit=sha[:12], what=changes
            )
        if law[sha][0] != MISSING and (key := shared_key(_config_of(root, law[sha][0], cache))):
            return _("commit {commit} lists key {key} for two people").format(
                commit=sha[:12], key=key
            )
    return None


def _introduces(
    root: Path, law: dict[str, tuple[str, ...]], sha: str, parents: list[str], i: int
) -> bool:
    """Whether a commit brings law part `i` of its own: one no parent has, or (in a merge) that
    of a parent which another parent has moved past — taking it back would roll the law back."""
    mine = law[sha][i]
    sources = [p for p in parents if law[p][i] == mine]
    if not sources:
        return True
    others = [q for q in parents if law[q][i] != mine]
    return any(_is_ancestor(root, p, q) for p in sources for q in others)


def ensure(root: Path, notice: Callable[[str], None] | None = None) -> None:
    """Verify the chain from the last verified commit up to HEAD; pin the root on first use.

    Raises TrustError when it breaks. A workspace with nobody in it yet has no chain to check.
    """
    tip = head(root)
    if tip is None:
        return
    state = pinned(root)
    if not state.get("root"):
        candidate = find_root(root)
        if candidate is None:
            _refuse_without_root(root, tip)
            return
        pin(root, candidate)
        state = pinned(root)
        if notice:
            notice(
                _("trusting root {candidate} on first use (compare: `talkbook setup`)").format(
                    candidate=candidate
                )
            )
    verified = state.get("verified") or state["root"]
    if verified == tip:
        return
    if not _is_ancestor(root, state["root"], tip):
        raise TrustError(
            _("HEAD does not descend from the pinned root {state}").format(state=state["root"][:12])
        )
    since = verified if _is_ancestor(root, verified, tip) else state["root"]
    if problem := check_chain(root, since):
        raise TrustError(
            _("chain of custody broken: {problem}; nothing was written").format(problem=problem)
        )
    _save(root, {"root": state["root"], "verified": tip})
    write_allowed_signers(root, head_config(root))  # git's own checks follow verified people


def is_law(rel: str) -> bool:
    """Whether a path of the working tree is (under) one of the law's paths."""
    return any(rel == part or rel.startswith(f"{part}/") for part in LAW)


def own_commit(root: Path, parent: str, sha: str, rels: list[str]) -> None:
    """The tool made `sha` on `parent`, its tree differing from `parent`'s in `rels` only.
    When `parent` is the last verified commit and no path of `rels` is law, `sha` brings no law
    of its own, so check_chain would pass it: it is recorded as verified. Anything else is left
    to `ensure`, which walks it as any other commit."""
    if not rels or any(is_law(rel) for rel in rels):
        return
    state = pinned(root)
    if state.get("root") and state.get("verified") == parent:
        _save(root, {"root": state["root"], "verified": sha})


def head_config(root: Path) -> dict[str, Any]:
    """HEAD's talkbook.toml, as committed (what `ensure` verifies), parsed; {} when none."""
    config_id = _objects(root, [f"HEAD:{CONFIG}"])[f"HEAD:{CONFIG}"]
    return _config_of(root, config_id, {}) if config_id != MISSING else {}


def _refuse_without_root(root: Path, tip: str) -> None:
    """People are listed but no custodian ever signed: a workspace from before signing."""
    config_id = _objects(root, [f"{tip}:{CONFIG}"]).get(f"{tip}:{CONFIG}", MISSING)
    if config_id != MISSING and (_config_of(root, config_id, {}).get("people") or {}):
        raise TrustError(
            _("no custodian has signed this workspace yet: a custodian runs `talkbook migrate`")
        )


def _is_ancestor(root: Path, older: str, newer: str) -> bool:
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(root), "merge-base", "--is-ancestor", older, newer],
        capture_output=True,
    )
    return done.returncode == 0


def setup_root(root: Path, given: str | None, confirm: Callable[[str], bool]) -> str | None:
    """`talkbook setup [--trust ID]`: the pinned root, pinning it now if this clone has none.

    With `given`, the candidate must be that commit (a full id or a prefix of 7+ characters);
    without it, `confirm` is asked. None when nobody has signed the workspace yet.
    """
    if root_sha := pinned(root).get("root"):
        if given and not root_sha.startswith(given.lower()):
            raise TrustError(
                _("this clone already trusts root {root}, not {given}").format(
                    root=root_sha, given=given
                )
            )
        return root_sha
    if given:
        matches = [sha for sha in founding_commits(root) if sha.startswith(given.lower())]
        if len(given) < 7 or len(matches) != 1:
            raise TrustError(
                _("{given} is not a root of this workspace's history; not trusted").format(
                    given=given
                )
            )
        pin(root, matches[0])
        return matches[0]
    candidate = find_root(root)
    if candidate is None:
        return None
    if not confirm(candidate):
        raise TrustError(_("root not trusted; nothing was changed"))
    pin(root, candidate)
    return candidate


def write_allowed_signers(root: Path, config: dict[str, Any]) -> Path:
    """`.git/talkbook/allowed_signers` for `git log --show-signature` and `%G?`."""
    path = git_dir(root) / "talkbook" / "allowed_signers"
    atomic_write(path, allowed_signers(config).encode("utf-8"), mode=0o644)
    return path


def configure_signing(root: Path, config: dict[str, Any]) -> Path:
    """git checks SSH signatures against the people of talkbook.toml (any clone, after setup)."""
    from talkbook import gittrail

    path = write_allowed_signers(root, config)
    gittrail.configure(root, {"gpg.format": "ssh", "gpg.ssh.allowedSignersFile": str(path)})
    return path


def allowed_signers(config: dict[str, Any]) -> str:
    """git's allowed-signers file for a talkbook.toml: `<person-id> namespaces="git" <key>`."""
    lines = []
    for pid, entry in sorted((config.get("people") or {}).items()):
        for key in (entry.get("keys") or ()) if isinstance(entry, dict) else ():
            if str(key).startswith("ssh-"):
                core = " ".join(str(key).split()[:2])
                lines.append(f'{pid} namespaces="git" {core}')
    return "\n".join(lines) + ("\n" if lines else "")
