"""The index's chunks: a talk's scalar fields decoded at every load, its lists only when its
whole front matter is asked for; put back exactly as they were (keys, values, order)."""

from __future__ import annotations

import datetime as dt
import marshal
import os
from pathlib import Path

import pytest

from conftest import ok, run
from talkbook import catalog, index, indexchunks, indexfile, listing, obligations
from talkbook.app import App
from talkbook.catalog import Catalog, Item

PLAN = {
    "id": "T-2aa3kk",
    "cadre": "C-001tsk",
    "decisions": [{"at": "2026-03-01T09:00", "by": "P-01", "decision": "submitted"}],
    "at": "2026-03-10T09:30",
    "focus": ["近期工作积极性明显下降"],
    "status": "submitted",
    "occasion": None,
    "preparations": [],
}
RECORD = {"id": "T-2aa3kk", "held_at": "2026-03-10T09:30", "follow_ups": [{"what": "培训"}]}
PROFILE = {"id": "C-001tsk", "name": "吴菁", "events": [{"date": "2025-11-08"}]}
ROWS = [
    ("profile", PROFILE),
    ("plan", PLAN),
    ("record", RECORD),
    ("plan", {"id": "T-3bb4ll", "status": "draft"}),  # nothing to split
    ["record", None, [[2, "held_at", "缺少"]], "", ""],  # the long form: kept whole
]


def test_a_chunk_gives_back_its_rows_keys_in_their_order() -> None:
    back = indexchunks.rows(indexchunks.encode(ROWS))
    assert back == ROWS
    assert [list(row[1]) for row in back[:3]] == [list(PROFILE), list(PLAN), list(RECORD)]


def test_the_head_holds_a_talks_scalars_and_the_names_of_its_lists() -> None:
    heads, _ = indexchunks.heads(indexchunks.encode(ROWS))
    assert heads[0] == ("profile", PROFILE)  # a profile is read whole
    waiting = {k: v for k, v in PLAN.items() if k not in ("focus", "preparations")}
    assert heads[1] == ("plan", waiting, ("focus", "preparations"))  # its decisions read by due
    assert heads[2] == ("record", RECORD)  # its follow-ups stay in the head: nothing to split
    assert heads[3] == ROWS[3] and heads[4] == ROWS[4]
    approved = {**PLAN, "status": "approved"}
    [(kind, head, tail_keys)], _ = indexchunks.heads(indexchunks.encode([("plan", approved)]))
    assert tail_keys == ("decisions", "focus", "preparations") and "decisions" not in head


def test_an_item_answers_its_scalars_without_decoding_the_lists() -> None:
    heads, tail = indexchunks.heads(indexchunks.encode(ROWS))
    tails = indexchunks.Tails([0], [len(heads)], [tail])
    kind, head, keys = heads[1]
    item = Item(kind, "talks/2026/T-2aa3kk/plan.md.age", None, None, head, None, tails, 1, keys)
    assert (item.get("status"), item.get("occasion"), item.get("missing", "-")) == (
        "submitted",
        None,
        "-",
    )
    assert item.get("decisions") == PLAN["decisions"]  # a waiting plan's: in the head
    assert tails.decoded == {}
    assert item.get("focus") == ["近期工作积极性明显下降"]
    assert tails.decoded and item.meta == PLAN and list(item.meta) == list(PLAN)


@pytest.mark.parametrize(
    "chunk",
    [
        b"not marshal",
        marshal.dumps([["plan", {}]]),  # a list of rows: not this format's chunk
        marshal.dumps(([("plan", {"id": "T"}, ("focus",))], marshal.dumps([]))),  # tail short
        marshal.dumps(([("plan", {"id": "T"}, ("focus",))], marshal.dumps([None]))),
    ],
)
def test_a_chunk_that_is_not_one_is_a_value_error(chunk: bytes) -> None:
    with pytest.raises(ValueError):
        indexchunks.rows(chunk)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo workspace (plans and records with decisions, focus, follow-ups)."""
    base = tmp_path_factory.mktemp("chunks")
    with pytest.MonkeyPatch.context() as patch:  # module scope: isolate the home here too
        patch.setenv("HOME", str(base / "home"))
        for var in [k for k in os.environ if k.startswith("TALKBOOK_")]:
            patch.delenv(var)
        ok(run("demo", base / "ws", "--cadres", "4", "--talks", "12"))
    return base / "ws"


def split(found: Catalog) -> list[Item]:
    """The talks whose lists are in the index's tail, still undecoded."""
    return [i for i in [*found.plans.values(), *found.records.values()] if i._tails is not None]


def opened(items: list[Item]) -> list[str]:
    """Those of these talks whose lists were decoded since (their whole front matter asked)."""
    return [i.rel for i in items if i._tails is None]


def test_a_listing_decodes_no_talks_lists(demo: Path) -> None:
    app = App(demo, demo.parent / "ws.keys" / "P-01.txt")
    index.refresh(app)
    typed = dict.fromkeys(["status", "occasion", "talk_type", "speaker", "cadre", "unit"])
    typed |= dict.fromkeys(["since", "until", "text"])

    def listed(found: Catalog) -> tuple[list[str], int]:
        talks = split(found)
        rows = listing.listed_cadres(app, found, "all", dict(typed))[0]
        rows += listing.listed_talks(app, found, dict(typed))[0]
        assert rows
        return opened(talks), len(talks)

    decoded, talks = catalog.load_into(app, listed)
    assert decoded == [] and talks
    asked = catalog.load_into(app, lambda found: [p.meta for p in found.plans.values()])
    assert asked and all("decisions" in meta for meta in asked)


def test_follow_ups_are_read_without_a_records_tail(demo: Path) -> None:
    """due and the follow-up reports read every record's follow-ups: they stay in the head."""
    app = App(demo, demo.parent / "ws.keys" / "P-01.txt")
    index.refresh(app)

    def owed(found: Catalog) -> tuple[int, list[str], int]:
        talks = split(found)
        upcoming = obligations.followup_obligations(found, dt.date(2030, 1, 1), upcoming=True)
        return len(upcoming), opened(talks), len(talks)

    count, decoded, talks = catalog.load_into(app, owed)
    assert count and decoded == [] and talks


def test_noted_entries_go_among_the_heads_and_each_split_one_keeps_its_tail() -> None:
    """After a write the notes go over the index (overlay): its chunks stay as loaded, the
    noted readings go in whole, and each split row still finds its own tail."""
    rels = [f"talks/2026/T-{n}/plan.md.age" for n in "bdf"]
    plans = [("plan", {"id": f"T-{n}", "focus": [f"要点{n}"], "status": "held"}) for n in "bdf"]
    columns = indexfile.Columns(rels, b"", [b""] * 3, ["ok"] * 3, None)
    columns._chunks = [indexchunks.encode(plans)]
    noted = indexfile.Columns(
        ["talks/2026/T-a/plan.md.age", rels[1]], [None] * 2, [b"a", b"D"], ["ok"] * 2
    )
    noted._readings = [("plan", {"id": "T-a", "focus": []}), ("plan", {"id": "T-d", "focus": []})]
    columns.overlay(noted)
    rows, tails, places = columns.heads()
    assert tails is not None and places == [-1, 0, -1, 2]
    whole = [
        tails.meta(at, row[1]) if len(row) == 3 else row[1]
        for row, at in zip(rows, places, strict=True)
    ]
    assert whole == [noted._readings[0][1], plans[0][1], noted._readings[1][1], plans[2][1]]
    assert [row[1] for row in columns.readings()] == whole
