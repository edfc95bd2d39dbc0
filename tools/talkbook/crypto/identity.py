"""Which identity is in use, and so which person is acting.

--identity FILE, else TALKBOOK_IDENTITY, else the user's config folder. The acting person is the
one in talkbook.toml whose public key matches: never a name typed on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from talkbook.errors import IdentityError
from talkbook.i18n import _


def default_identity_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "talkbook" / "identity.txt"


def identity_path(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    if env := os.environ.get("TALKBOOK_IDENTITY"):
        return Path(env)
    return default_identity_path()


def load_keyring(explicit: Path | None, passphrase_prompt: Callable[[], str] | None = None):
    """The identity's keyring; a passphrase-protected OpenSSH key through the talkbook agent,
    so its passphrase is asked once per working session (crypto/agent.py)."""
    from talkbook.crypto.agent import keyring_for

    path = identity_path(explicit)
    if not path.exists():
        raise IdentityError(
            _(
                "no identity file at {path} (run `talkbook keygen`, or pass --identity "
                "/ set TALKBOOK_IDENTITY)"
            ).format(path=path)
        )
    return keyring_for(path, passphrase_prompt)
