"""Attacks on the features of the last hour: reports, index, agent, names, retire, remove."""

from __future__ import annotations

from pathlib import Path

from conftest import Setup


def test_report_out_through_a_committed_build_symlink_is_refused(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    """Someone with push access commits `build -> /tmp/…`: `--out build/x.html` must not
    write the plaintext report through it, outside the workspace."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace.root / "build").symlink_to(elsewhere)
    result = workspace.as_(
        "P-01", "report", "coverage", "--out", workspace.root / "build" / "cov.html"
    )
    assert result.exit_code != 0
    assert list(elsewhere.iterdir()) == []
