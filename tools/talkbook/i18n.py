"""The language a person reads: gettext catalogs for zh-CN and en, chosen once per command.

Contract: `_("text {name}")` returns the translation of a literal English message (format
placeholders are filled *after* translation, so the catalog holds the template, never a value);
`N_("text")` only marks a literal for extraction (translated later, where it is shown);
`use(language)` picks the catalog for the rest of the process; `choose()` says which language a
command speaks (--lang, TALKBOOK_LANG, the locale variables, the workspace's locale, else en);
`label(kind, code)` is how a status, reason, method or role code reads. Codes (statuses, reasons,
occasions) stay codes in files, JSON and CSV; only what a person reads is translated. The catalogs
are compiled .mo files shipped in the package (locale/<lang>/LC_MESSAGES/talkbook.mo), read with
the standard library's gettext: Babel is needed only to produce them (`make messages`).

Security invariant: a translation is a template from the package's own catalogs; nothing from a
workspace, a document or the environment is ever used as a format string, and choosing a language
reads no more of a workspace than its talkbook.toml's `locale` (nothing is decrypted or trusted).
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Mapping
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DOMAIN = "talkbook"
LOCALE_DIR = Path(__file__).parent / "locale"
_CATALOG_NAMES = {"zh-CN": "zh_CN", "en": "en"}  # gettext's folder names

_translation: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def _(message: str) -> str:
    """The message in the chosen language (the English original when there is no entry)."""
    return _translation.gettext(message)


def N_(message: str) -> str:  # noqa: N802  (the conventional name Babel looks for)
    """Mark a literal for extraction; it is translated with `_()` where it is shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return _translation.pgettext(context, message)


def language() -> str:
    return _language


def use(language: str) -> None:
    """Read messages in `language` from now on (zh-CN or en; anything else means en)."""
    global _translation, _language
    _language = language if language in LANGUAGES else "en"
    _translation = _catalog(_language)


_catalogs: dict[str, _gettext.NullTranslations] = {}


def _catalog(language: str) -> _gettext.NullTranslations:
    """The package's compiled catalog for `language`, read once per process; none (messages as
    written) when it is missing. Opened by its path: gettext.translation() would search for it
    by locale names, importing the locale module to expand them, on every command."""
    if language not in _catalogs:
        path = LOCALE_DIR / _CATALOG_NAMES[language] / "LC_MESSAGES" / f"{DOMAIN}.mo"
        try:
            with open(path, "rb") as file:
                _catalogs[language] = _gettext.GNUTranslations(file)
        except OSError:
            _catalogs[language] = _gettext.NullTranslations()
    return _catalogs[language]


def normalize(value: str | None) -> str | None:
    """zh-CN for any zh* (zh_CN.UTF-8, zh-Hans, zh), en for any en*; None for C, POSIX or other
    languages, which say nothing about the two this tool speaks."""
    if not value:
        return None
    code = value.strip().split(".")[0].split("@")[0].replace("_", "-").lower()
    if code == "zh" or code.startswith("zh-"):
        return "zh-CN"
    if code == "en" or code.startswith("en-"):
        return "en"
    return None


def from_environment(env: Mapping[str, str]) -> str | None:
    """The language the locale variables name, the way gettext reads them: the first set of
    LC_ALL, LC_MESSAGES, LANG is the locale; LANGUAGE (a list) comes first unless that locale is
    C. A C or POSIX locale names no language, whatever LANGUAGE says."""
    locale = next((env[v] for v in ("LC_ALL", "LC_MESSAGES", "LANG") if env.get(v)), "")
    if locale.split(".")[0] in ("C", "POSIX"):
        return None
    for entry in env.get("LANGUAGE", "").split(":"):
        if chosen := normalize(entry):
            return chosen
    return normalize(locale)


def workspace_language(explicit: Path | None, env: Mapping[str, str]) -> str | None:
    """The `locale` of the workspace a command would use (--workspace, TALKBOOK_WORKSPACE, the
    nearest talkbook.toml upwards), read cheaply and without trusting it: it only picks a
    language. Nothing found, or a file that does not parse, names none."""
    import tomllib  # here: a command whose language is given reads no TOML for it

    from talkbook.workspace import CONFIG_NAME

    chosen = explicit or (Path(v) if (v := env.get("TALKBOOK_WORKSPACE")) else None)
    if chosen is not None:
        candidates = [chosen]
    else:
        here = Path.cwd().resolve()
        candidates = [f for f in (here, *here.parents) if (f / ".git").exists()]
    for folder in candidates:
        config = folder / CONFIG_NAME
        if config.is_file() and not config.is_symlink():
            try:
                locale = tomllib.loads(config.read_text(encoding="utf-8")).get("locale")
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return None
            return normalize(locale) if isinstance(locale, str) else None
    return None


def choose(
    explicit: str | None = None,
    workspace: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """--lang, else TALKBOOK_LANG, else the locale variables (when they name zh or en), else the
    workspace's locale, else en."""
    env = os.environ if env is None else env
    for candidate in (explicit, env.get("TALKBOOK_LANG")):
        if chosen := normalize(candidate):
            return chosen
    return from_environment(env) or workspace_language(workspace, env) or "en"


def label(kind: str, code: str) -> str:
    """How a status, reason, method or role code reads in the chosen language; an unknown kind
    or code reads as itself. (Occasions and talk types have their labels in the workspace.)"""
    labels = _labels(kind)
    return labels.get(code, code) if isinstance(code, str) else str(code)


def _labels(kind: str) -> dict[str, str]:
    # Built on each call so the labels follow the language; pgettext keeps "held" the status
    # apart from any other "held". In English a label is the code itself.
    if kind == "status":
        return {
            "draft": pgettext("status", "draft"),
            "submitted": pgettext("status", "submitted"),
            "approved": pgettext("status", "approved"),
            "rejected": pgettext("status", "rejected"),
            "postponed": pgettext("status", "postponed"),
            "cancelled": pgettext("status", "cancelled"),
            "held": pgettext("status", "held"),
        }
    if kind == "reason":
        return {
            "cadence": pgettext("reason", "cadence"),
            "follow_up": pgettext("reason", "follow_up"),
            "approval": pgettext("reason", "approval"),
        }
    if kind == "method":
        return {
            "direct_questions": pgettext("method", "direct_questions"),
            "open_conversation": pgettext("method", "open_conversation"),
            "consultation": pgettext("method", "consultation"),
        }
    if kind == "role":
        return {
            "custodian": pgettext("role", "custodian"),
            "approver": pgettext("role", "approver"),
            "speaker": pgettext("role", "speaker"),
            "recorder": pgettext("role", "recorder"),
        }
    return {}
