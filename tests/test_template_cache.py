"""Compiled templates kept in `.talkbook/templates/`: reused, and never trusted unless ours.

An entry is code that runs without being compiled again: one that is forged (no HMAC under the
identity's key), damaged, or in a folder that is not owner-only or is reached through a symlink
must be ignored, never run and never fail the command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2
import pytest

from talkbook import template_cache, templating
from talkbook.errors import TemplateError
from talkbook.template_cache import Compiled
from talkbook.templating import render

KEY = b"k" * 32
TEMPLATE = "en/page.md.j2"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A workspace with an owner-only `.talkbook/` and one template."""
    (tmp_path / ".talkbook").mkdir(mode=0o700)
    os.chmod(tmp_path / ".talkbook", 0o700)
    page = tmp_path / "templates" / TEMPLATE
    page.parent.mkdir(parents=True)
    page.write_text("{% for row in rows %}{{ row.name }};{% endfor %}\n", "utf-8")
    return tmp_path


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja compiles (a fresh environment for every render)."""
    compiled: list[str] = []
    real = jinja2.Environment.compile

    def compile(env: jinja2.Environment, source: str, name: Any = None, *rest: Any) -> Any:
        compiled.append(str(name))
        return real(env, source, name, *rest)

    monkeypatch.setattr(jinja2.Environment, "compile", compile)
    monkeypatch.setattr(templating, "environment", templating.environment.__wrapped__)
    return compiled


def shown(root: Path, key: bytes = KEY, source: str | None = None) -> str:
    if source is not None:
        (root / "templates" / TEMPLATE).write_text(source, "utf-8")
    rows = [{"name": "甲"}, {"name": "乙"}]
    return render("page.md.j2", "en", {"rows": rows}, root / "templates", Compiled(root, key))


def entries(root: Path) -> list[Path]:
    folder = root / ".talkbook" / "templates"
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def test_a_template_compiled_once_is_reused(root: Path, compiles: list[str]) -> None:
    assert shown(root) == shown(root) == "甲;乙;\n"
    assert compiles == [TEMPLATE]  # the second render loaded what the first compiled
    [entry] = entries(root)
    assert (entry.stat().st_mode & 0o777) == 0o600
    assert ((root / ".talkbook" / "templates").stat().st_mode & 0o777) == 0o700


def test_an_edited_template_is_compiled_again(root: Path, compiles: list[str]) -> None:
    shown(root)
    assert shown(root, source="{{ rows | length }}\n") == "2\n"
    assert compiles == [TEMPLATE, TEMPLATE]


FORGED = compile("raise SystemExit('forged code ran')", "<forged>", "exec")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-40],  # cut short
        lambda data: data[:30] + bytes(len(data) - 30),  # zeroed
        lambda data: b"",
        lambda data: data.replace(template_cache.MAGIC, b"talkbook-template 0\n"),
        lambda data: data[: -len(FORGED_BODY)] + FORGED_BODY,  # code swapped, HMAC kept
    ],
)
def test_a_damaged_or_forged_entry_is_compiled_afresh(
    root: Path, compiles: list[str], damage: Any
) -> None:
    shown(root)
    [entry] = entries(root)
    entry.write_bytes(damage(entry.read_bytes()))
    assert shown(root) == "甲;乙;\n"
    assert compiles == [TEMPLATE, TEMPLATE]


FORGED_BODY = __import__("marshal").dumps(FORGED)


def test_an_entry_made_with_another_key_never_runs(root: Path, compiles: list[str]) -> None:
    """Anyone who can push can plant `.talkbook/templates/<entry>` through a checkout, with
    code of their own and an HMAC under a key of their own: it is not ours, it is ignored."""
    shown(root, key=b"x" * 32)
    [entry] = entries(root)
    forged = Compiled(root, b"x" * 32)
    body = FORGED_BODY
    entry.write_bytes(template_cache.MAGIC + forged._mac(entry.name, body) + body)
    assert shown(root) == "甲;乙;\n"  # with KEY: SystemExit would have ended the test
    assert compiles == [TEMPLATE, TEMPLATE]


def test_no_cache_in_a_folder_that_is_not_owner_only(root: Path, compiles: list[str]) -> None:
    os.chmod(root / ".talkbook", 0o755)
    shown(root)
    shown(root)
    assert compiles == [TEMPLATE, TEMPLATE]
    assert not (root / ".talkbook" / "templates").exists()


def test_no_cache_through_a_symlink(root: Path, tmp_path_factory: Any, compiles: list[str]) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chmod(elsewhere, 0o700)
    (root / ".talkbook" / "templates").symlink_to(elsewhere)
    shown(root)
    shown(root)
    assert compiles == [TEMPLATE, TEMPLATE]
    assert list(elsewhere.iterdir()) == []


def test_an_entry_too_large_is_not_read(root: Path, compiles: list[str]) -> None:
    """A file planted by a checkout may be of any size: one larger than an entry can be is not
    read at all (it would be refused by its HMAC, but only after reading it whole)."""
    shown(root)
    [entry] = entries(root)
    with entry.open("r+b") as handle:
        handle.truncate(template_cache.MOST + 1)
    assert template_cache._read(root, entry.name) is None
    assert shown(root) == "甲;乙;\n"
    assert compiles == [TEMPLATE, TEMPLATE]


def test_no_talkbook_folder_no_cache(tmp_path: Path, compiles: list[str]) -> None:
    page = tmp_path / "templates" / TEMPLATE
    page.parent.mkdir(parents=True)
    page.write_text("x\n", "utf-8")
    assert shown(tmp_path) == shown(tmp_path) == "x\n"
    assert compiles == [TEMPLATE, TEMPLATE]
    assert not (tmp_path / ".talkbook").exists()


def test_a_cached_template_is_still_sandboxed(root: Path, compiles: list[str]) -> None:
    """The code kept is what the sandbox compiled: its checks run when it is loaded again."""
    source = "{{ rows.__class__.__mro__ }}\n"
    for _attempt in range(2):
        with pytest.raises(TemplateError, match="unsafe"):
            shown(root, source=source)
    assert compiles == [TEMPLATE]


def test_the_key_never_shows_in_a_repr(root: Path) -> None:
    assert KEY.decode() not in repr(Compiled(root, KEY))


def test_the_entry_names_what_the_code_depends_on(root: Path) -> None:
    """Another environment (an option, a filter), another entry."""
    env = templating.environment.__wrapped__(root / "templates")
    other = templating.environment.__wrapped__(root / "templates")
    other.filters["extra"] = str
    assert template_cache.fingerprint(env, TEMPLATE) != template_cache.fingerprint(other, TEMPLATE)
    other = templating.environment.__wrapped__(root / "templates")
    other.trim_blocks = False
    assert template_cache.fingerprint(env, TEMPLATE) != template_cache.fingerprint(other, TEMPLATE)


def test_what_a_killed_write_left_goes_with_the_next_write(root: Path, compiles: list[str]) -> None:
    """A write is fsutil.atomic_write's (fsynced, renamed over): the temporary file a kill -9
    left behind, named by its dead process, goes when the next entry is written."""
    folder = root / ".talkbook" / "templates"
    folder.mkdir(mode=0o700)
    stray = folder / f".{'0' * 64}.tmp-{2**22 + 7}-0badc0de"  # no process has this id
    stray.write_bytes(b"half")
    assert shown(root) == "甲;乙;\n"
    assert not stray.exists() and len(entries(root)) == 1
