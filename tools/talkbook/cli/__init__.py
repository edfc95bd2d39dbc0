"""The command line: parse, call the core, format. One exit point, in the group's main().

The group and shared helpers live in `_shared`; each command family registers itself on the group
when its module is imported. `main` imports only the module of the command named (a read command
does not pay for icalendar or the demo); `from talkbook.cli import cli` gives the group with every
command registered.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from talkbook.cli._shared import cli

__all__ = ["cli", "main"]


def main() -> None:
    """The console command: the group, then the process ends without freeing what it built."""
    from talkbook.cli import _shared

    _shared.kept_to_exit = []
    try:
        _shared.cli(prog_name="talkbook")
    except SystemExit as done:
        _leave(done.code)
    _leave(0)


def _leave(code: object) -> NoReturn:
    """End the process as sys.exit(code) would, but without the interpreter's teardown: the
    exit handlers run (atexit: an ssh-agent started for signing is stopped, its folder
    removed) and the standard streams are flushed, and the hundreds of thousands of objects
    a warm listing built are not freed one by one (a tenth of its time) — the system takes
    the memory back. Everything the commands write is closed before they return."""
    import atexit
    import contextlib
    import os

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("text"): the text on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (… | head) or stream
            stream.flush()
    os._exit(status & 0xFF)


def __getattr__(name: str) -> Any:
    """`cli`, with all its commands loaded (what tests and tools that walk it expect)."""
    if name == "cli":
        from talkbook.cli._shared import cli, load_commands

        load_commands()
        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
