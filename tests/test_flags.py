"""Flags at an as-of date, transitions and re-entries, and ``iizrisk flags``.

A slow reference written from docs/domain.md section 5 (plain loops over one
person's spells, as built by the reference in ``test_spells``) is compared
with the vectorised implementation on random rows; property tests show that
nothing after the as-of date changes a flag at the as-of date.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import os
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iizrisk import _time
from iizrisk.cli import main
from iizrisk.flags import FLAG_COLUMNS, compute_flags, reentry_mask, transition_mask
from iizrisk.spells import build_timeline, monthly_spells
from test_spells import (
    BASE,
    INSTS,
    ONE,
    RefSpell,
    Row,
    as_of_strategy,
    gap_strategy,
    ref_all,
    ref_days,
    ref_horizon,
    ref_is_open,
    ref_monthly,
    ref_spells,
    ref_visible,
    rows_strategy,
    to_frame,
)


# --------------------------------------------------------------------------- reference
def ref_window_start(T: dt.date, months: int) -> dt.date:
    """T minus W calendar months (clipped to the month's last day), plus one day."""
    k = T.year * 12 + (T.month - 1) - months
    y, m = divmod(k, 12)
    m += 1
    d = min(T.day, calendar.monthrange(y, m)[1])
    return dt.date(y, m, d) + ONE


def ref_is_transition(s: RefSpell, spells: list[RefSpell], gap: int) -> bool:
    """A spell at B starting while a spell at another institution A, started strictly
    earlier, is open, or at most ``gap`` days after such a spell ended."""
    x = s.start
    for a in spells:
        if a.inst == s.inst or not a.start < x:
            continue
        open_at_x = a.end is None or x <= a.end
        ended_recently = a.end is not None and 0 < (x - a.end).days <= gap
        if open_at_x or ended_recently:
            return True
    return False


def ref_is_reentry(s: RefSpell, spells: list[RefSpell]) -> bool:
    """Starts after an earlier merged spell of the same person at the same institution."""
    return any(a.inst == s.inst and a.start < s.start and a.end is not None and a.end < s.start
               for a in spells)


def ref_flags(rows: list[Row], T: dt.date, window: int, tgap: int, mgap: int,
              spells_fn=ref_spells) -> dict | None:
    """Flags of ONE person at T, or None when no spell overlaps the window."""
    spells = spells_fn(rows, T, mgap)
    w0 = ref_window_start(T, window)
    in_window = [s for s in spells if s.start <= T and (s.end is None or s.end >= w0)]
    if not in_window:
        return None
    if spells_fn is ref_spells:  # registered on day T: T is one of the days of a row
        vis = ref_visible(rows, T)
        horizon = ref_horizon(rows, T, mgap)
        n_reg = len({r.inst for r in vis if T in ref_days(r, T, horizon)})
    else:  # monthly mode: the monthly spell covers day T
        n_reg = len({s.inst for s in spells if s.start <= T and (s.end is None or T <= s.end)})
    per_inst = Counter(s.inst for s in in_window)
    starting = [s for s in spells if w0 <= s.start <= T]
    n_inst = len(per_inst)
    most = max(per_inst.values())
    return {
        "n_registered": n_reg,
        "multi_registered": n_reg >= 2,
        "n_institutions_window": n_inst,
        "multi_agency_window": n_inst >= 2,
        "n_spells_window": len(in_window),
        "max_spells_one_institution_window": most,
        "n_transitions_window": sum(ref_is_transition(s, spells, tgap) for s in starting),
        "n_reentries_window": sum(ref_is_reentry(s, spells) for s in starting),
        "revolving_door": n_inst >= 2 and most >= 2,
    }


def ref_flag_frame(rows, T, window, tgap, mgap, spells_fn=ref_spells) -> dict[str, dict]:
    out = {}
    for p in sorted({r.person for r in rows}):
        f = ref_flags([r for r in rows if r.person == p], T, window, tgap, mgap, spells_fn)
        if f is not None:
            out[p] = f
    return out


def fast_flag_frame(flags: pd.DataFrame) -> dict[str, dict]:
    recs = flags.drop(columns=["person_id", "as_of"]).to_dict("records")
    return dict(zip(flags["person_id"], recs, strict=True))


def spell_key_masks(tl, gap):
    """{(person, inst, start): (transition, re-entry)} of the fast implementation."""
    f = tl.to_frame()
    tr, re = transition_mask(tl, gap_days=gap), reentry_mask(tl)
    return {(p, i, s.date()): (bool(a), bool(b)) for p, i, s, a, b in zip(
        f["person_id"], f["institution"], f["start_date"], tr, re, strict=True)}


window_strategy = st.sampled_from([1, 2, 3, 24])
tgap_strategy = st.sampled_from([0, 1, 5, 30, 90])


# --------------------------------------------------------------------------- reference comparisons
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), T=st.one_of(st.none(), as_of_strategy), mgap=gap_strategy,
       tgap=tgap_strategy)
def test_transition_and_reentry_masks_match_reference(rows, T, mgap, tgap):
    tl = build_timeline(to_frame(rows), as_of=T, merge_gap_days=mgap)
    got = spell_key_masks(tl, tgap)
    expected = {}
    for p, spells in ref_all(rows, T, mgap).items():
        for s in spells:
            expected[(p, s.inst, s.start)] = (ref_is_transition(s, spells, tgap), ref_is_reentry(s, spells))
    assert got == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), T=as_of_strategy, window=window_strategy, tgap=tgap_strategy,
       mgap=gap_strategy)
def test_compute_flags_matches_reference(rows, T, window, tgap, mgap):
    # the rows are an export taken at T (data_end): their recorded dates are random, not the export's day
    flags = compute_flags(to_frame(rows), T, window_months=window, transition_gap_days=tgap,
                          merge_gap_days=mgap, data_end=T)
    assert tuple(flags.columns) == FLAG_COLUMNS
    assert fast_flag_frame(flags) == ref_flag_frame(rows, T, window, tgap, mgap)
    assert (flags["as_of"] == pd.Timestamp(T)).all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), T=as_of_strategy, window=window_strategy, tgap=tgap_strategy,
       mgap=gap_strategy)
def test_the_views_cached_rules_match_the_reference(rows, T, window, tgap, mgap):
    from iizrisk.view import Definitions, View

    view = View.at(to_frame(rows), T, Definitions(mgap, tgap, window))
    # the view's flags use its transition mask over every spell, compute_flags a restricted one
    assert fast_flag_frame(view.flags) == ref_flag_frame(rows, T, window, tgap, mgap)
    f = view.timeline.to_frame()
    got = {(p, i, s.date()): (bool(a), bool(b)) for p, i, s, a, b in zip(
        f["person_id"], f["institution"], f["start_date"], view.transitions, view.reentries, strict=True)}
    assert got == {(p, s.inst, s.start): (ref_is_transition(s, spells, tgap), ref_is_reentry(s, spells))
                   for p, spells in ref_all(rows, T, mgap).items() for s in spells}
    assert view.flags is view.flags  # computed once
    with pytest.raises(ValueError):
        view.transitions[:1] = True  # shared between stages: read-only


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), T=as_of_strategy, window=window_strategy, tgap=tgap_strategy,
       mgap=gap_strategy)
def test_monthly_flags_match_reference(rows, T, window, tgap, mgap):
    tl = monthly_spells(build_timeline(to_frame(rows), as_of=T, merge_gap_days=mgap))
    flags = compute_flags(tl, T, window_months=window, transition_gap_days=tgap)
    assert fast_flag_frame(flags) == ref_flag_frame(rows, T, window, tgap, mgap, spells_fn=ref_monthly)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(max_rows=30, persons="abcdefgh"), T=as_of_strategy, window=window_strategy)
def test_flags_on_a_timeline_equal_flags_on_rows(rows, T, window):
    df = to_frame(rows)
    a = compute_flags(df, T, window_months=window, merge_gap_days=3, data_end=T)
    b = compute_flags(build_timeline(df, as_of=T, merge_gap_days=3), T, window_months=window)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- nothing after T matters
@st.composite
def after_T_changes(draw):
    """Rows, an as-of date T, and the same rows changed only after T."""
    rows = draw(rows_strategy(max_rows=14))
    T = draw(as_of_strategy)
    changed = []
    for r in rows:
        known = r.start <= T and not (r.end is None and r.rec is not None and r.rec > T)
        end_unknown = known and r.end is not None and r.rec is not None and r.rec > T
        if not known:  # unknown at T: change anything that stays after T
            if r.start > T and draw(st.booleans()):
                r = dataclasses.replace(r, start=r.start + draw(st.integers(0, 9)) * ONE, end=None)
            elif r.rec is not None and r.rec > T:  # an open row recorded after T stays one
                r = dataclasses.replace(r, rec=r.rec + draw(st.integers(0, 9)) * ONE,
                                        reason=draw(st.sampled_from(["other", None])))
        elif end_unknown and draw(st.booleans()):  # its end was learnt after T: any end, any reason
            r = dataclasses.replace(r, end=r.start + draw(st.integers(0, 90)) * ONE,
                                    rec=r.rec + draw(st.integers(0, 9)) * ONE,
                                    reason=draw(st.sampled_from(["employment", "other", None])))
        elif ref_is_open(r, T) and draw(st.booleans()):  # an end after T moves later, or is learnt
            later = max(r.end or T, T) + draw(st.integers(1, 60)) * ONE
            r = dataclasses.replace(r, end=later, reason=draw(st.sampled_from(["employment", None])))
        if draw(st.booleans()) and r.rec is None and r.start > T:
            r = dataclasses.replace(r, rec=T + draw(st.integers(1, 20)) * ONE)
        changed.append(r)
    for _ in range(draw(st.integers(0, 4))):  # new rows starting after T
        s = T + draw(st.integers(1, 60)) * ONE
        changed.append(Row(draw(st.sampled_from("abcz")), draw(st.sampled_from(INSTS)), s,
                           draw(st.one_of(st.none(), st.just(s + 5 * ONE)))))
    for _ in range(draw(st.integers(0, 4))):  # open rows about the past, recorded after T
        s = max(BASE, T - draw(st.integers(0, 60)) * ONE)
        changed.append(Row(draw(st.sampled_from("abcy")), draw(st.sampled_from(INSTS)), s, None,
                           rec=T + draw(st.integers(1, 9)) * ONE))
    shuffle = draw(st.booleans())
    if shuffle:
        order = draw(st.permutations(range(len(changed))))
        changed = [changed[i] for i in order]
    return rows, T, changed, shuffle


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=after_T_changes(), window=window_strategy, tgap=tgap_strategy, mgap=gap_strategy)
def test_nothing_after_as_of_changes_a_flag(case, window, tgap, mgap):
    rows, T, changed, shuffled = case
    kw = {"window_months": window, "transition_gap_days": tgap, "merge_gap_days": mgap, "data_end": T}
    a = compute_flags(to_frame(rows, with_extra=True), T, **kw)
    b = compute_flags(to_frame(changed, with_extra=True), T, **kw)
    if shuffled:  # row order changes the order of persons, nothing else
        a, b = (x.sort_values("person_id", ignore_index=True) for x in (a, b))
    pd.testing.assert_frame_equal(a, b)
    ta = build_timeline(to_frame(rows, with_extra=True), as_of=T, merge_gap_days=mgap)
    tb = build_timeline(to_frame(changed, with_extra=True), as_of=T, merge_gap_days=mgap)
    assert spell_key_masks(ta, tgap) == spell_key_masks(tb, tgap)
    if not shuffled:  # the same arrays, persons, exit reasons and cases
        fa, fb = ta.to_frame(), tb.to_frame()
        pd.testing.assert_frame_equal(fa, fb)
        for name in ["person", "inst", "start", "end", "exit_reason"]:
            np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name))
        assert list(ta.person_ids) == list(tb.person_ids)


# --------------------------------------------------------------------------- examples by hand
def _rows(*spec, person="p"):
    return pd.DataFrame({
        "person_id": [person] * len(spec),
        "institution": [s[0] for s in spec],
        "start_date": pd.to_datetime([s[1] for s in spec]),
        "end_date": pd.to_datetime([s[2] for s in spec]),
    })


def _masks(df, gap=90):
    tl = build_timeline(df)
    f = tl.to_frame()
    tr, re = transition_mask(tl, gap_days=gap), reentry_mask(tl)
    return {(i, s.date().isoformat()): (bool(a), bool(b))
            for i, s, a, b in zip(f["institution"], f["start_date"], tr, re, strict=True)}


def test_transition_gap_boundary_is_inclusive():
    # ALV ends 2024-01-31; SH starts 90 days later (2024-04-30), IV 91 days later (2024-05-01)
    m = _masks(_rows(("ALV", "2024-01-01", "2024-01-31"), ("SH", "2024-04-30", None),
                     ("IV", "2024-05-01", "2024-05-02")))
    assert m[("SH", "2024-04-30")][0] is True
    # IV starts while SH (started earlier) is open
    assert m[("IV", "2024-05-01")][0] is True
    m = _masks(_rows(("ALV", "2024-01-01", "2024-01-31"), ("IV", "2024-05-01", None)))
    assert m[("IV", "2024-05-01")][0] is False
    m = _masks(_rows(("ALV", "2024-01-01", "2024-01-31"), ("IV", "2024-02-01", None)), gap=0)
    assert m[("IV", "2024-02-01")][0] is False  # gap 0: only while ALV is open


def test_same_day_starts_are_not_transitions_and_same_institution_is_not_a_transition():
    m = _masks(_rows(("ALV", "2024-01-01", None), ("SH", "2024-01-01", None)))
    assert m == {("ALV", "2024-01-01"): (False, False), ("SH", "2024-01-01"): (False, False)}
    m = _masks(_rows(("ALV", "2024-01-01", "2024-01-31"), ("ALV", "2024-02-05", None)))
    assert m[("ALV", "2024-02-05")] == (False, True)


def test_a_spell_started_later_but_open_is_no_source():
    # SH starts before IV; ALV starts after IV: IV is a transition only because of SH
    m = _masks(_rows(("SH", "2024-01-01", "2024-01-10"), ("IV", "2024-06-01", None),
                     ("ALV", "2024-06-02", None)))
    assert m[("IV", "2024-06-01")][0] is False
    assert m[("ALV", "2024-06-02")][0] is True


def test_window_and_revolving_door_by_hand():
    df = pd.concat([
        # p: ALV twice and SH once inside the window ending 2024-06-30 (from 2022-07-01)
        _rows(("ALV", "2022-06-01", "2022-07-01"), ("SH", "2023-01-01", "2023-02-01"),
              ("ALV", "2024-06-30", None)),
        # q: only a spell that ended the day before the window starts
        _rows(("IV", "2020-01-01", "2022-06-30"), person="q"),
        # r: two institutions, one spell each, both open on T
        _rows(("IV", "2024-01-01", None), ("SH", "2024-03-01", "2024-06-30"), person="r"),
    ], ignore_index=True)
    f = compute_flags(df, "2024-06-30").set_index("person_id")
    assert list(f.index) == ["p", "r"]
    assert f.loc["p", "n_spells_window"] == 3 and f.loc["p", "max_spells_one_institution_window"] == 2
    assert bool(f.loc["p", "revolving_door"]) and not bool(f.loc["r", "revolving_door"])
    assert f.loc["p", "n_reentries_window"] == 1 and f.loc["p", "n_transitions_window"] == 0
    assert f.loc["r", "n_registered"] == 2 and bool(f.loc["r", "multi_registered"])
    assert f.loc["r", "n_transitions_window"] == 1


def test_leap_day_window():
    # 12 months ending 2024-02-29 start on 2023-03-01
    df = _rows(("ALV", "2023-02-28", "2023-02-28"), ("SH", "2023-03-01", "2023-03-01"))
    f = compute_flags(df, "2024-02-29", window_months=12)
    assert f["n_spells_window"].tolist() == [1]
    assert f["n_transitions_window"].tolist() == [1]  # SH starts 1 day after ALV ended


def test_output_types():
    f = compute_flags(_rows(("ALV", "2024-01-01", None)), "2024-06-30")
    assert str(f["as_of"].dtype) == "datetime64[s]"
    for c in FLAG_COLUMNS[2:]:
        kind = "b" if c in {"multi_registered", "multi_agency_window", "revolving_door"} else "i"
        assert f[c].dtype.kind == kind, c
    empty = compute_flags(_rows(("ALV", "2024-01-01", None)), "2023-06-30")
    assert tuple(empty.columns) == FLAG_COLUMNS and len(empty) == 0


def test_timeline_of_another_date_is_refused():
    df = _rows(("ALV", "2024-01-01", None))
    with pytest.raises(ValueError, match="point-in-time"):
        compute_flags(build_timeline(df), "2024-06-30")
    with pytest.raises(ValueError, match="point-in-time"):
        compute_flags(build_timeline(df, as_of="2024-06-29"), "2024-06-30")
    with pytest.raises(ValueError, match="merge_gap_days"):
        compute_flags(build_timeline(df, as_of="2024-06-30"), "2024-06-30", merge_gap_days=5)
    with pytest.raises(ValueError, match="window_months"):
        compute_flags(df, "2024-06-30", window_months=0)
    with pytest.raises(ValueError, match="gap_days"):
        transition_mask(build_timeline(df), gap_days=-1)
    with pytest.raises(TypeError):
        compute_flags([1, 2], "2024-06-30")


def test_unsorted_timeline_is_refused():
    tl = build_timeline(_rows(("ALV", "2024-01-01", None), ("SH", "2024-01-01", None)))
    swapped = dataclasses.replace(tl, inst=tl.inst[::-1].copy(), start=tl.start.copy(), end=tl.end.copy(),
                                  person=np.array([1, 0], dtype=np.int32))
    with pytest.raises(ValueError, match="sorted"):
        transition_mask(swapped)


# --------------------------------------------------------------------------- command line
def _write_parquet(df: pd.DataFrame, path, *, date32: bool = True):
    table = pa.Table.from_pandas(df, preserve_index=False)
    if date32:
        table = table.cast(pa.schema([
            pa.field(f.name, pa.date32()) if pa.types.is_timestamp(f.type) else f for f in table.schema]))
    pq.write_table(table, path)


def _cli_rows():
    return pd.concat([
        _rows(("ALV", "2023-01-01", "2023-03-31"), ("SH", "2023-04-15", None), ("ALV", "2024-01-01", None)),
        _rows(("IV", "2024-02-01", "2024-02-29"), person="q"),
        _rows(("SH", "2010-01-01", "2010-02-01"), person="old"),
    ], ignore_index=True)


def test_cli_writes_the_contract(tmp_path):
    src = tmp_path / "spells.parquet"
    _write_parquet(_cli_rows(), src)
    out = tmp_path / "out" / "flags.parquet"
    assert main(["flags", "--spells", str(src), "--as-of", "2024-06-30", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert tuple(table.column_names) == FLAG_COLUMNS
    assert table.schema.field("as_of").type == pa.date32()
    for name in FLAG_COLUMNS[2:]:
        t = table.schema.field(name).type
        assert pa.types.is_boolean(t) if name in {"multi_registered", "multi_agency_window",
                                                  "revolving_door"} else pa.types.is_integer(t), name
    got = table.to_pandas().set_index("person_id")
    expected = compute_flags(_cli_rows(), "2024-06-30").set_index("person_id")
    assert sorted(got.index) == ["p", "q"]
    for c in FLAG_COLUMNS[2:]:
        assert got.loc[expected.index, c].tolist() == expected[c].tolist(), c
    assert [p.name for p in out.parent.iterdir()] == ["flags.parquet"]  # no temporary file left


def test_cli_reads_a_folder_and_options(tmp_path):
    rows = _cli_rows()
    folder = tmp_path / "spells"
    folder.mkdir()
    _write_parquet(rows.iloc[:2], folder / "a.parquet")
    part = rows.iloc[2:].assign(recorded_date=pd.to_datetime(["2024-01-02", "2024-07-01", "2010-03-01"]))
    _write_parquet(part, folder / "b.parquet", date32=False)
    out = tmp_path / "f.parquet"
    code = main(["flags", "--spells", str(folder), "--as-of", "2024-06-30", "--window-months", "12",
                 "--transition-gap-days", "10", "--merge-gap-days", "3", "--out", str(out)])
    assert code == 0
    got = pd.read_parquet(out).set_index("person_id")
    combined = pd.concat([rows.iloc[:2], part], ignore_index=True)
    expected = compute_flags(combined, "2024-06-30", window_months=12, transition_gap_days=10,
                             merge_gap_days=3).set_index("person_id")
    assert list(got.index) == list(expected.index) == ["p", "q"]  # q's IV end was recorded after T: open at T
    assert got["n_transitions_window"].tolist() == expected["n_transitions_window"].tolist()


@pytest.mark.parametrize("problem", ["missing file", "missing column", "bad rows", "not parquet",
                                     "empty folder"])
def test_cli_bad_input_exits_1_and_keeps_old_output(tmp_path, capsys, problem):
    out = tmp_path / "flags.parquet"
    out.write_bytes(b"previous output")
    src = tmp_path / "spells.parquet"
    if problem == "missing column":
        _write_parquet(_cli_rows().drop(columns="start_date"), src)
    elif problem == "bad rows":
        df = _cli_rows()
        df.loc[1, "end_date"] = pd.Timestamp("2000-01-01")
        _write_parquet(df, src)
    elif problem == "not parquet":
        src.write_text("person_id;institution\n")
    elif problem == "empty folder":
        src = tmp_path / "nothing"
        src.mkdir()
    code = main(["flags", "--spells", str(src), "--as-of", "2024-06-30", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "iizrisk flags: error:" in err
    expected = {"missing file": "does not exist", "missing column": "start_date",
                "bad rows": f"{src}: column 'end_date': end before start (1 row: 2;", "not parquet": "Parquet",
                "empty folder": "no .parquet"}[problem]
    assert expected in err
    assert out.read_bytes() == b"previous output"
    assert sorted(os.listdir(tmp_path)) == sorted(["flags.parquet"] + (
        [src.name] if problem != "missing file" else []))


def test_cli_refuses_raw_identifiers(tmp_path, capsys):
    df = _cli_rows()
    df["person_id"] = "756.1234.5678.97"
    src = tmp_path / "s.parquet"
    _write_parquet(df, src)
    code = main(["flags", "--spells", str(src), "--as-of", "2024-06-30", "--out", str(tmp_path / "o.parquet")])
    assert code == 1
    assert "AHV" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("args", [["--as-of", "2024-13-01"], ["--as-of", "2024-06-30", "--window-months", "0"],
                                  ["--as-of", "2024-06-30", "--merge-gap-days", "-1"]])
def test_cli_usage_errors_exit_2(tmp_path, args):
    with pytest.raises(SystemExit) as exc:
        main(["flags", "--spells", str(tmp_path), "--out", str(tmp_path / "o.parquet"), *args])
    assert exc.value.code == 2


def test_random_dates_cover_a_leap_day_and_window_start_agrees_with_reference():
    assert BASE <= dt.date(2024, 2, 29) <= BASE + 120 * ONE
    assert _time.to_date(_time.window_start(_time.day("2024-03-31"), 1)) == ref_window_start(
        dt.date(2024, 3, 31), 1)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(alphabet="756 a.ü", max_size=12)), max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=3), block=st.sampled_from([1, 2, 3, 7, 1 << 24]))
def test_byte_scan_finds_every_value_containing_the_needle(values, cuts, block):
    from iizrisk import pseudonym as cmd

    bounds = sorted({0, len(values), *(c for c in cuts if c <= len(values))})
    whole = pa.array(values, type=pa.large_string())  # slices: chunks with a non-zero offset
    col = pa.chunked_array([whole.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)],
                           type=pa.large_string())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cmd, "_BLOCK", block)
        got = set(cmd.rows_containing(col, b"756").tolist())
    must = {i for i, v in enumerate(values) if v is not None and "756" in v}
    text = [v or "" for v in values]
    may = {i for i in range(len(values)) if "756" in "".join(text[i:])[: len(text[i]) + 2] and text[i]}
    assert must <= got <= may


def test_cli_names_the_rows_with_raw_identifiers(tmp_path):
    from iizrisk.errors import RawIdentifierError
    from iizrisk.io import read_canonical

    df = _cli_rows()
    df.loc[3, "person_id"] = " 7561234567897"  # leading space, undotted
    src = tmp_path / "s.parquet"
    _write_parquet(df, src)
    with pytest.raises(RawIdentifierError) as exc:
        read_canonical(src, columns=["person_id", "institution", "start_date"])
    [problem] = exc.value.report.problems
    assert problem.column == "person_id" and problem.rows == (4,) and problem.example == ""
    assert "7561234567897" not in str(exc.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(max_rows=20), T=as_of_strategy, mgap=gap_strategy, tgap=tgap_strategy)
def test_unpacked_sort_paths_give_the_same_results(rows, T, mgap, tgap):
    """The lexsort/argsort fallbacks (keys too wide for one int64) agree with the packed sorts."""
    import iizrisk.flags as flags_mod
    import iizrisk.spells as spells_mod

    df = to_frame(rows, with_extra=True)
    packed = build_timeline(df, as_of=T, merge_gap_days=mgap)
    packed_flags = compute_flags(packed, T, transition_gap_days=tgap, window_months=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spells_mod, "_PACKED_BITS", 0)
        mp.setattr(flags_mod, "_PACKED_BITS", 0)
        wide = build_timeline(df, as_of=T, merge_gap_days=mgap)
        wide_flags = compute_flags(wide, T, transition_gap_days=tgap, window_months=2)
        wide_tr = transition_mask(wide, gap_days=tgap)
    pd.testing.assert_frame_equal(packed.to_frame(), wide.to_frame())
    assert packed.merge_report == wide.merge_report
    np.testing.assert_array_equal(transition_mask(packed, gap_days=tgap), wide_tr)
    pd.testing.assert_frame_equal(packed_flags, wide_flags)


def test_an_as_of_date_long_after_the_data_is_refused_naming_the_last_recorded_day():
    """Spells open at the export are not taken as running on for years: an as-of date more than 14 days after
    the last recorded date is refused (flags of 2040 from an export of 2023 would be fiction); data_end says
    when the export was taken where the recorded dates do not tell it."""
    from iizrisk.errors import ValidationError

    rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
                         "start_date": pd.to_datetime(["2023-01-01", "2023-06-01"]), "end_date": pd.NaT,
                         "recorded_date": pd.to_datetime(["2023-01-03", "2023-12-31"])})
    assert compute_flags(rows, "2024-01-14")["n_registered"].tolist() == [1, 1]  # 14 days: an export's age
    with pytest.raises(ValidationError, match=r"2024-01-15 lies 15 days after the last recorded date of the "
                                              r"spells \(2023-12-31.*on or before 2024-01-14"):
        compute_flags(rows, "2024-01-15")
    with pytest.raises(ValidationError, match="2040-01-01 lies"):
        compute_flags(rows, "2040-01-01")
    assert len(compute_flags(rows, "2040-01-01", data_end="2040-01-01")) == 2  # the export says it was taken then
    with pytest.raises(ValidationError, match="after data_end"):
        compute_flags(rows, "2024-01-15", data_end="2023-12-01")
    no_record = rows.drop(columns="recorded_date")  # nothing tells the export's day: nothing refused
    assert len(compute_flags(no_record, "2030-01-01")) == 2  # taken as open: the caller knows its export


def test_a_view_refuses_a_timeline_built_with_another_merge_gap():
    from iizrisk.view import Definitions, View

    rows = _rows(("ALV", "2024-01-01", "2024-01-31"), ("ALV", "2024-02-10", None))
    tl = build_timeline(rows, as_of=dt.date(2024, 6, 30), merge_gap_days=0)
    assert View(tl, Definitions(merge_gap_days=0)).definitions.merge_gap_days == 0
    with pytest.raises(ValueError, match="merge_gap_days=30"):
        View(tl, Definitions(merge_gap_days=30))  # its spells are not merged as the definitions say
