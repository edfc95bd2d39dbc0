"""Reports: coverage, due, speakers, occasions, approvals, follow-ups, and one talk's form.

Contract: `Reports(app, options)` verifies the chain of custody (templates render only from a
verified revision, or the user's own uncommitted edit), loads the catalog once, and then
`produce(name, fmt, talk=None)` returns a report's bytes (Markdown, HTML or CSV; the form in
Markdown or HTML only). `write_all(folder)` writes every report in every format into a folder.
Unknown names and formats are one TalkbookError (exit 2). The values come from `data` and
`form`, the text from the locale's report templates (`render`), the files from `output`.

Security invariant: a report holds only what the identity could decrypt; with `redact`, no name
of a cadre or person the workspace knows survives (render.Redactor); where a report is written
is output.py's concern (owner-only, atomic, never through a symlink in the workspace); compiled
templates are kept between commands only as template_cache allows (HMAC under the identity's key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from talkbook import i18n
from talkbook.errors import TalkbookError
from talkbook.i18n import _

NAMES = ("coverage", "due", "speakers", "occasions", "approvals", "followups")
FORM = "form"
FORMATS = ("md", "html", "csv")
FORM_FORMATS = ("md", "html")


class Options:
    """What the command line asked for. A plain class, not a dataclass: defining one costs a
    report command a millisecond at import (and `dataclasses` its own import)."""

    __slots__ = ("as_of", "since", "until", "within", "redact")

    def __init__(
        self,
        as_of: dt.date | None = None,
        since: dt.date | None = None,  # speakers and occasions: from (default: 1 January)
        until: dt.date | None = None,  # … to (default: the as-of day)
        within: int | None = None,  # due: how many days ahead count
        redact: bool = False,
    ) -> None:
        self.as_of, self.since, self.until = as_of, since, until
        self.within, self.redact = within, redact


def check_name(name: str, fmt: str) -> None:
    if name not in (*NAMES, FORM):
        raise TalkbookError(
            _("unknown report; choose one of: {names}").format(names=", ".join((*NAMES, FORM)))
        )
    allowed = FORM_FORMATS if name == FORM else FORMATS
    if fmt not in allowed:
        raise TalkbookError(
            _("report {name} comes as {formats}").format(name=name, formats=", ".join(allowed))
        )


@contextlib.contextmanager
def speaking(language: str) -> Iterator[None]:
    """A report speaks the workspace's locale, whatever language the command's messages use."""
    before = i18n.language()
    i18n.use(language)
    try:
        yield
    finally:
        i18n.use(before)


class Reports:
    def __init__(
        self, app: Any, options: Options, ahead: tuple[str, str, str | None] | None = None
    ) -> None:
        """`ahead`: (name, format, talk) of the report to produce while the catalog's tree is
        checked for changes (catalog.load_into); `produce` then gives it without rendering
        it again."""
        from talkbook.catalog import load_into

        day = options.as_of or app.today()
        since = options.since or day.replace(month=1, day=1)
        until = options.until or day
        if since > until:
            raise TalkbookError(_("--since is after --until"))
        app.ensure_trust()  # settings and templates from a verified revision
        self.ws = app.workspace
        self.app = app  # its compiled templates are asked for only by a report rendered
        # through Jinja: a CSV report imports no Jinja (app.compiled_templates does)
        self._produced: dict[tuple[str, str, str | None], bytes] = {}

        def prepared(catalog: Any) -> None:
            self._prepare(app, options, catalog, day, since, until)
            if ahead is not None:
                self.produce(*ahead)

        load_into(app, prepared)

    def _prepare(
        self, app: Any, options: Options, catalog: Any, day: dt.date, since: dt.date, until: dt.date
    ) -> None:
        from talkbook.reports.data import Context
        from talkbook.views import created_dates

        self._produced = {}
        self.context = Context(
            ws=self.ws,
            catalog=catalog,
            as_of=day,
            since=since,
            until=until,
            created=functools.cache(lambda: created_dates(app)),
            within=options.within if options.within is not None else 30,
        )
        self.redactor = self._redactor() if options.redact else None
        self.page = {
            "organization": str(self.ws.config.get("organization") or ""),
            "as_of": day.isoformat(),
            "since": since.isoformat(),
            "until": until.isoformat(),
            "generated": app.now().isoformat(timespec="minutes").replace("T", " "),
            "redacted": options.redact,
            "unreadable": len(catalog.unreadable),
            "malformed": len(catalog.malformed),
        }

    def _redactor(self):
        from talkbook.reports.render import Redactor

        names = [
            (str(p.get("name") or ""), cid) for cid, p in self.context.catalog.profiles.items()
        ]
        names += [(person.name, pid) for pid, person in self.ws.people.items()]
        known = [cid for cid, p in self.context.catalog.profiles.items() if p.get("name")]
        return Redactor(names, known)

    def data(self, name: str, talk: str | None = None) -> dict[str, Any]:
        """The report's values; their labels in the workspace's locale (errors stay in the
        command's language: they are raised before or after, never inside `speaking`)."""
        from talkbook.reports import data

        if name != FORM:
            with speaking(self.ws.locale):
                return data.GATHER[name](self.context)
        from talkbook.reports import form  # only the form's: not imported for the others

        if not talk:
            raise TalkbookError(_("report form needs a talk id: talkbook report form T-…"))
        form.sources(self.context, talk)  # its refusals, in the command's language
        with speaking(self.ws.locale):
            values = form.form(self.context, talk)
            return self.redactor.form(values) if self.redactor else values

    def produce(self, name: str, fmt: str, talk: str | None = None) -> bytes:
        from talkbook.reports.render import render

        check_name(name, fmt)
        key = (name, fmt, talk)
        if key not in self._produced:
            if name == "due" and fmt != "csv":
                self._templates_while_git_logs()
            data = self.data(name, talk)
            self._produced[key] = render(
                self.ws, name, fmt, data, self.page, self.redactor, self._compiled(fmt)
            )
        return self._produced[key]

    def write_all(self, folder: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
        """Every report (the form is per talk: not among them) in every format asked for.
        All are rendered before the first is written: a broken template writes none."""
        from talkbook.reports.output import write
        from talkbook.reports.render import render

        texts = {}
        for name in NAMES:
            values = self.data(name)
            for fmt in formats:
                texts[f"{name}.{fmt}"] = render(
                    self.ws, name, fmt, values, self.page, self.redactor, self._compiled(fmt)
                )
        return [write(folder, file_name, text, self.ws.root) for file_name, text in texts.items()]

    def _templates_while_git_logs(self) -> None:
        """Jinja imported (and the compiled templates' cache opened) here while a thread reads
        when each profile was added (Context.created: `git log`, mostly waiting for git, which
        leaves the GIL free): `due` asks for those dates next, and renders with Jinja after.
        The thread ends before this returns: no fork meets it (index.py forks a sweeping child
        before the catalog is built, and workers after it). Its answer is kept by created's
        cache; a failure of its is raised when `due` asks again, in this thread."""
        import subprocess  # noqa: F401 — imported here: the thread imports nothing meanwhile
        import threading

        created = self.context.created
        reading = threading.Thread(target=_quietly, args=(created,), daemon=True)
        reading.start()
        try:
            import talkbook.templating  # noqa: F401 — Jinja, the rendering's

            self._compiled("html")
        finally:
            reading.join()

    def _compiled(self, fmt: str) -> Any:
        """Where compiled templates are kept (template_cache), for a format Jinja renders."""
        return None if fmt == "csv" else self.app.compiled_templates

    def notes(self) -> list[str]:
        from talkbook.views import skipped_note

        return skipped_note(self.context.catalog)


def _quietly(call: Any) -> None:
    """call(), whatever it raises: asked again, it raises it where it is handled."""
    with contextlib.suppress(Exception):
        call()
