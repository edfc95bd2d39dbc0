"""Read commands ask a talk's fields with Item.get: a talk's lists and tables (its decisions,
topics) are decoded from the index only when asked for (catalog.Item), so `due`, the reports
and `plan` ask a plan's or record's whole front matter (`meta`) only where they need a list
the index keeps in the tail (indexchunks: not a record's follow-ups, not a waiting plan's
decisions)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from talkbook import obligations, talks, views
from talkbook.catalog import Catalog, Item
from talkbook.reports import data
from talkbook.workspace import Workspace, default_config_text

AS_OF = dt.date(2026, 3, 1)


class Counted(Item):
    """An item that notes each time its whole front matter is asked for."""

    __slots__ = ()
    asked: list[str] = []  # noqa: RUF012 (one list for the test, cleared by the fixture)

    @property
    def meta(self) -> dict[str, Any]:
        Counted.asked.append(self.rel)
        return super().meta


@pytest.fixture(autouse=True)
def _fresh() -> None:
    Counted.asked.clear()


def _catalog() -> Catalog:
    def item(kind: str, key: str, meta: dict[str, Any]) -> Counted:
        return Counted(kind, f"{kind}/{key}", meta=meta)

    held = {"cadre": "C-aaaaaa", "speaker": "P-02", "method": "consultation"}
    plan = {**held, "at": "2026-02-01T09:00", "talk_type": "routine", "occasion": None}
    decisions = [{"by": "P-01", "at": "2026-02-20T09:00", "decision": "submitted"}]
    return Catalog(
        profiles={
            "C-aaaaaa": item(
                "profile",
                "C-aaaaaa",
                {"name": "张伟", "events": [{"date": "2026-02-01", "occasion": "post_change"}]},
            )
        },
        plans={
            "T-held01": item("plan", "T-held01", {**plan, "status": "held", "decisions": []}),
            "T-asked1": item(
                "plan", "T-asked1", {**plan, "status": "submitted", "decisions": decisions}
            ),
            "T-open01": item(
                "plan", "T-open01", {**plan, "status": "draft", "occasion": "post_change"}
            ),
        },
        records={
            "T-held01": item(
                "record",
                "T-held01",
                {
                    **held,
                    "id": "T-held01",
                    "held_at": "2026-02-02T09:00",
                    "occasion": None,
                    "follow_ups": [{"what": "回访", "due": "2026-02-20"}],
                    "deferred": [],
                },
            )
        },
    )


def _workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "talkbook.toml").write_text(default_config_text(), encoding="utf-8")
    return Workspace(tmp_path)


def test_due_asks_no_plans_whole_front_matter(
    tmp_path: Path,
) -> None:
    catalog = _catalog()
    found = obligations.due(_workspace(tmp_path), catalog, AS_OF, {"C-aaaaaa": AS_OF})
    assert {o.reason for o in found} >= {"post_change", "follow_up", "approval"}
    assert next(o.talk for o in found if o.reason == "post_change") == "T-open01"
    # a submitted plan's decisions too are asked with get: the index keeps them in the head
    assert [r for r in Counted.asked if r.startswith("plan/")] == []


@pytest.mark.parametrize("name", ["coverage", "speakers", "occasions", "approvals"])
def test_reports_ask_no_plans_whole_front_matter(tmp_path: Path, name: str) -> None:
    catalog = _catalog()
    ws = _workspace(tmp_path)
    context = data.Context(ws, catalog, AS_OF, dt.date(2026, 1, 1), AS_OF, lambda: {})
    data.GATHER[name](context)
    assert [r for r in Counted.asked if r.startswith("plan/")] == []
    assert not [r for r in Counted.asked if r.startswith("record/")]


def test_a_talks_status_and_a_plans_warnings_ask_scalars_only() -> None:
    catalog = _catalog()
    assert views.talk_status(catalog, "T-open01") == "draft"
    when = dt.datetime(2026, 3, 2, 9, 0)
    warnings = talks._plan_warnings("C-aaaaaa", "T-new001", None, None, when, catalog)
    assert warnings and "T-open01" in warnings[0] and "T-asked1" in warnings[0]
    assert Counted.asked == []
