"""The language a person reads: gettext catalogs for zh-CN and en, chosen once per command.

Contract: `_("text {name}")` returns the translation of a literal English message (format
placeholders are filled *after* translation, so the catalog holds the template, never a value);
`use(language)` picks the catalog for the rest of the process. Codes (statuses, reasons,
occasions) stay codes in files, JSON and CSV; only what a person reads is translated.

Security invariant: a translation is a template from the package's own catalogs; nothing from a
workspace, a document or the environment is ever used as a format string.
"""

from __future__ import annotations

import gettext as _gettext

LANGUAGES = ("zh-CN", "en")

_translation: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def _(message: str) -> str:
    """The message in the chosen language (the English original when there is no entry)."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


def language() -> str:
    return _language


def use(language: str) -> None:
    """Read messages in `language` from now on (zh-CN or en; anything else means en)."""
    global _translation, _language
    _language = language if language in LANGUAGES else "en"
    _translation = _gettext.NullTranslations()
