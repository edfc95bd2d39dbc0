"""The vault: encrypted files in, documents out, in memory only.

Read = decrypt in memory. Write = encrypt to the given recipients, then an atomic replace. A file
whose plaintext did not change is never re-encrypted: age output is random, so rewriting it would
put noise into history.

Only regular files: inside the workspace every read and write goes through
fsutil.regular_file (no symlink, nothing outside the root). A path outside every workspace
(`talkbook cat ~/copy.md.age`, git's textconv temp files) is read as given, never written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from talkbook.errors import DecryptionError, NotFound, TalkbookError, UnsafePath
from talkbook.fsutil import atomic_write, inside, read_regular
from talkbook.i18n import _
from talkbook.models import Document, parse

if TYPE_CHECKING:
    from talkbook.crypto import Keyring


def enclosing_root(path: Path) -> Path | None:
    """The workspace a path lies in when the App has none: the nearest folder above it, by
    name, holding a talkbook.toml and a .git (which no commit can plant)."""
    from talkbook.workspace import CONFIG_NAME

    for folder in Path(os.path.normpath(path.absolute())).parents:
        if (folder / CONFIG_NAME).is_file() and (folder / ".git").exists():
            return folder
    return None


class Vault:
    def __init__(self, keyring: Keyring, root: Path | None = None) -> None:
        self.keyring = keyring
        self.root = root  # the workspace; None when there is none (cat of an outside file)
        self._cache: dict[Path, tuple[int, bytes]] = {}

    def _root_of(self, path: Path) -> Path | None:
        if self.root is not None and inside(self.root, path) is not None:
            return self.root
        return enclosing_root(path)

    def read_plaintext(self, path: Path) -> bytes:
        from talkbook.crypto import decrypt

        root = self._root_of(path)
        try:
            data = read_regular(root, path) if root is not None else path.read_bytes()
        except FileNotFoundError:
            raise NotFound(_("no such file: {path}").format(path=path)) from None
        except OSError as exc:
            raise TalkbookError(
                _("{path}: cannot read: {reason}").format(path=path, reason=exc.strerror)
            ) from None
        key = path.absolute()
        mtime = path.stat().st_mtime_ns
        cached = self._cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            plaintext = decrypt(data, self.keyring)
        except DecryptionError as exc:
            raise type(exc)(f"{path.name}: {exc}") from None
        self._cache[key] = (mtime, plaintext)
        return plaintext

    def read_text(self, path: Path) -> str:
        try:
            return self.read_plaintext(path).decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError(
                _("{file}: decrypted content is not UTF-8 text").format(file=path.name)
            ) from None

    def read(self, path: Path, source: str | None = None) -> Document:
        return parse(self.read_text(path), source or path.name)

    def can_read(self, path: Path) -> bool:
        try:
            self.read_plaintext(path)
        except DecryptionError:
            return False
        return True

    def write(self, path: Path, text: str, recipients: list[str], *, force: bool = False) -> bool:
        """Encrypt and replace atomically; False (and no write) when the plaintext is unchanged.

        `force` re-encrypts unchanged plaintext: only rekey needs it, when recipients changed.
        """
        from talkbook.crypto import encrypt

        root = self._root_of(path)
        if root is None:
            raise UnsafePath(str(path), _("outside it"))
        plaintext = text.encode("utf-8")
        if path.exists() and not force and self.read_plaintext(path) == plaintext:
            return False
        ciphertext = encrypt(plaintext, recipients)
        atomic_write(path, ciphertext, mode=0o644, root=root)
        self._cache[path.absolute()] = (path.stat().st_mtime_ns, plaintext)
        return True
