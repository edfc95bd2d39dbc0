"""One exception hierarchy; each class carries the exit code the command line uses.

The core raises these; only the CLI turns them into a one-line message on stderr. A message is
translated where it is raised (the language is chosen before any command runs), so an exception
carries the text a person reads; ids only, never content.
"""

from talkbook.i18n import _


class TalkbookError(Exception):
    """Base class: bad usage or bad input (exit 2)."""

    exit_code = 2


class WorkspaceNotFound(TalkbookError):
    pass


class WorkspaceExists(TalkbookError):
    pass


class IdentityError(TalkbookError):
    """No identity, unreadable identity, wrong passphrase, unknown acting person."""


class DecryptionError(TalkbookError):
    """Wrong key, not a recipient, corrupt or truncated ciphertext."""


class NotRecipient(DecryptionError):
    """The file is fine; the identity in use is just not among its recipients."""


class NotFound(TalkbookError):
    """Unknown id or path."""


class UnsafePath(TalkbookError):
    """A symlink, or a path resolving outside the workspace: the tool reads and writes only
    regular files under the workspace root."""

    def __init__(self, where: str, why: str):
        self.where = where  # the path, relative to the workspace when it lies inside
        self.reason = _("not a regular file inside the workspace ({why})").format(why=why)
        super().__init__(f"{where}: {self.reason}")


class InvalidDocument(TalkbookError):
    """Malformed YAML, schema violation, missing field: the file is refused."""

    def __init__(self, message: str, findings: list | None = None, line: int = 1, reason: str = ""):
        super().__init__(message)
        self.findings = findings or []
        self.line = line  # for a file that does not parse: where, and why without the path
        self.reason = reason or message


class AmbiguousName(NotFound):
    """A name several profiles (or people) carry: the message lists them by id; give the id."""


class PermissionDenied(TalkbookError):
    """The acting person may not do this (e.g. approving one's own plan)."""


class WorkflowError(TalkbookError):
    """A transition that the talk's state does not allow."""


class EditAborted(TalkbookError):
    """The editor exited non-zero, or the user gave up after a failed validation."""


class TemplateError(TalkbookError):
    """A broken Jinja template: the message names the template and line."""


class Findings(TalkbookError):
    """Not an error of the tool: validation/audit/due found something (exit 1)."""

    exit_code = 1


class UnfinishedMerge(TalkbookError):
    """A merge or rebase is unfinished in this clone: writes wait for it."""
