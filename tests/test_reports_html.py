"""Every HTML report, and the talk record form, rendered in headless Chromium: a screenshot that
is neither missing nor blank. The PNG is read with zlib and struct (no imaging library). A
person looks at them too: the layout, and Chinese drawn as text, are beyond this test.

Skipped only when Chromium is absent locally; .ci/run installs it (and a CJK font), so in CI
its absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ok
from test_reports import World, world  # noqa: F401  (the module's workspace, built again here)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None and os.environ.get("CI"):
        pytest.fail("chromium is missing in CI (.ci/run installs it)")
    if found is None:
        pytest.skip("chromium not installed")
    return found


def cjk_font() -> None:
    if shutil.which("fc-list") is None:  # fontconfig comes with chromium; without it, no check
        return
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
    if not fonts.strip() and os.environ.get("CI"):
        pytest.fail("no CJK font in CI (.ci/run installs fonts-noto-cjk)")


def screenshot(browser: str, page: Path, out: Path, profile: Path) -> bytes:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert out.is_file(), f"no screenshot of {page.name}"
    return out.read_bytes()


def png_rows(png: bytes) -> list[bytes]:
    """The image's rows as PNG stores them (each a filter byte and the filtered pixels): a
    blank or one-colour image has a handful of distinct rows, a page with text hundreds."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (width, height) == (1200, 1600), (width, height)
    assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
    stride = 1 + width * (3 if colour == 2 else 4)
    raw = zlib.decompress(b"".join(chunks))
    assert len(raw) == stride * height
    return [raw[i : i + stride] for i in range(0, len(raw), stride)]


def test_every_html_report_renders_in_chromium(world: World, tmp_path: Path) -> None:  # noqa: F811
    browser = chromium()
    cjk_font()
    ok(world.report("--all"))
    folder = world.ws.root / "build" / "reports"
    ok(world.report("form", world.talks["held"], "--format", "html"))
    pages = sorted(folder.glob("*.html"))
    assert len(pages) == 7

    def shoot(page: Path) -> bytes:
        profile = tmp_path / f"profile-{page.stem}"  # one per browser: two run at once
        return screenshot(browser, page, tmp_path / f"{page.stem}.png", profile)

    with ThreadPoolExecutor(max_workers=2) as pool:
        shots = dict(zip(pages, pool.map(shoot, pages), strict=True))
    for page, png in shots.items():
        assert len(set(png_rows(png))) > 40, f"{page.name}: a blank screenshot"
