"""Spells: merging, the point-in-time view and the BFS monthly mode.

The fast implementation is compared with a slow reference written straight
from docs/domain.md section 5: each row is expanded to the set of days it
registers, spells are the runs of registered days (runs separated by at most
the merge gap are joined), and a spell is open at T when a row in it ends
after T or has no end.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iizrisk import _time
from iizrisk.errors import ValidationError
from iizrisk.spells import (
    DEFAULT_INSTITUTIONS,
    EXIT_REASONS,
    Timeline,
    as_of_day,
    build_timeline,
    monthly_spells,
    point_in_time,
)

# --------------------------------------------------------------------------- reference
ONE = dt.timedelta(days=1)


@dataclass(frozen=True)
class Row:
    """One canonical row, dates as ``datetime.date`` (``end=None``: open at export)."""

    person: str
    inst: str
    start: dt.date
    end: dt.date | None
    rec: dt.date | None = None
    reason: str | None = None
    case: str | None = None


@dataclass(frozen=True)
class RefSpell:
    inst: str
    start: dt.date
    end: dt.date | None  # None: open


def ref_visible(rows: list[Row], T: dt.date | None) -> list[Row]:
    """Rows of the point-in-time view: start <= T; recorded_date is the day the row, or its
    end, became known: an open row recorded after T was unknown at T."""
    if T is None:
        return list(rows)
    return [r for r in rows if r.start <= T and not (r.end is None and r.rec is not None and r.rec > T)]


def ref_is_open(r: Row, T: dt.date | None) -> bool:
    """Open at T: no end, an end after T, or an end recorded after T."""
    return r.end is None or (T is not None and (r.end > T or (r.rec is not None and r.rec > T)))


def ref_horizon(rows: list[Row], T: dt.date | None, gap: int) -> dt.date:
    """Last day an open row is expanded to: T, or a day after every date in the data."""
    if T is not None:
        return T
    days = [r.start for r in rows] + [r.end for r in rows if r.end is not None]
    return max(days) + (gap + 2) * ONE


def ref_days(r: Row, T: dt.date | None, horizon: dt.date) -> set[dt.date]:
    """The days a row registers, as known at T (open rows run to the horizon)."""
    last = horizon if ref_is_open(r, T) else r.end
    out, d = set(), r.start
    while d <= last:
        out.add(d)
        d += ONE
    return out


def ref_spells(rows: list[Row], T: dt.date | None = None, gap: int = 0) -> list[RefSpell]:
    """Merged spells of ONE person, sorted by institution code order and start."""
    vis = ref_visible(rows, T)
    horizon = ref_horizon(rows, T, gap)
    out = []
    for inst in sorted({r.inst for r in vis}):
        mine = [r for r in vis if r.inst == inst]
        days = sorted(set().union(*(ref_days(r, T, horizon) for r in mine)))
        runs = [[days[0], days[0]]]
        for d in days[1:]:
            unregistered = (d - runs[-1][1]).days - 1
            if unregistered <= gap:
                runs[-1][1] = d
            else:
                runs.append([d, d])
        for first, last in runs:
            is_open = any(ref_is_open(r, T) and first <= r.start <= last for r in mine)
            out.append(RefSpell(inst, first, None if is_open else last))
    return out


def ref_counts(rows: list[Row], T: dt.date | None, gap: int) -> dict[str, int]:
    """Merge report counts of ONE person's rows."""
    vis = ref_visible(rows, T)
    keys = [(r.inst, r.start, None if ref_is_open(r, T) else r.end) for r in vis]
    duplicates = len(keys) - len(set(keys))
    spells = len(ref_spells(rows, T, gap)) if vis else 0
    return {"rows_after_as_of": len(rows) - len(vis), "duplicate_rows": duplicates,
            "rows_merged": len(vis) - duplicates - spells, "spells": spells}


def ref_last_values(rows: list[Row], spell: RefSpell, T, gap, attr: str) -> set:
    """Acceptable exit reason / case of a spell: those of the rows holding its latest end."""
    mine = [r for r in ref_visible(rows, T) if r.inst == spell.inst and spell.start <= r.start
            and (spell.end is None or r.start <= spell.end)]
    if spell.end is None:  # the latest end is the open one; its reason is not known
        return {None} if attr == "reason" else {getattr(r, attr) for r in mine if ref_is_open(r, T)}
    latest = max(r.end for r in mine)
    return {getattr(r, attr) for r in mine if r.end == latest}


def month_last(y: int, m: int) -> dt.date:
    return dt.date(y, m, calendar.monthrange(y, m)[1])


def ref_monthly(rows: list[Row], T: dt.date | None = None, gap: int = 0) -> list[RefSpell]:
    """BFS monthly mode of ONE person: months with a registered day, runs of such months."""
    horizon = ref_horizon(rows, T, gap)
    out = []
    daily = ref_spells(rows, T, gap)
    for inst in sorted({s.inst for s in daily}):
        months: set[tuple[int, int]] = set()
        open_months: set[tuple[int, int]] = set()
        for s in (s for s in daily if s.inst == inst):
            d = s.start
            while d <= (s.end or horizon):
                months.add((d.year, d.month))
                if s.end is None:
                    open_months.add((d.year, d.month))
                d += ONE
        ordered = sorted(months)
        runs = [[ordered[0], ordered[0]]]
        for ym in ordered[1:]:
            py, pm = runs[-1][1]
            if (ym[0] * 12 + ym[1]) - (py * 12 + pm) == 1:
                runs[-1][1] = ym
            else:
                runs.append([ym, ym])
        for first, last in runs:
            members = [ym for ym in ordered if first <= ym <= last]
            is_open = any(ym in open_months for ym in members)
            out.append(RefSpell(inst, dt.date(first[0], first[1], 1),
                                None if is_open else month_last(*last)))
    return out


# --------------------------------------------------------------------------- data
BASE = dt.date(2023, 12, 20)  # offsets 0..120 cover the leap day 2024-02-29 and month ends
INSTS = ["ALV", "SH", "IV", "ZZX"]  # ZZX: a deployment's own code


def to_frame(rows: list[Row], *, with_rec: bool = True, with_extra: bool = False) -> pd.DataFrame:
    """Canonical DataFrame of rows (dates as datetime64[s])."""
    def dates(values):
        return pd.Series(pd.to_datetime([v if v is not None else None for v in values]),
                         dtype="datetime64[s]")
    df = pd.DataFrame({
        "person_id": pd.Series([r.person for r in rows], dtype="str"),
        "institution": pd.Series([r.inst for r in rows], dtype="str"),
        "start_date": dates([r.start for r in rows]),
        "end_date": dates([r.end for r in rows]),
    })
    if with_rec:
        df["recorded_date"] = dates([r.rec for r in rows])
    if with_extra:
        df["exit_reason"] = pd.Series([r.reason for r in rows], dtype="str")
        df["case_id"] = pd.Series([r.case for r in rows], dtype="str")
    return df


@st.composite
def rows_strategy(draw, max_rows: int = 12, persons: str = "abc") -> list[Row]:
    """Rows with open ends, same-day, touching, overlapping and duplicated rows."""
    n = draw(st.integers(0, max_rows))
    out: list[Row] = []
    for _ in range(n):
        if out and draw(st.integers(0, 5)) == 0:  # exact duplicate of an earlier row
            out.append(draw(st.sampled_from(out)))
            continue
        person = draw(st.sampled_from(persons))
        inst = draw(st.sampled_from(INSTS))
        kind = draw(st.integers(0, 5)) if out else 5
        if kind == 0:  # same person, same start day, maybe another institution (simultaneous)
            other = draw(st.sampled_from(out))
            person, s = other.person, other.start
        elif kind == 1:  # touching/overlapping an earlier row of the same person and institution
            other = draw(st.sampled_from(out))
            person, inst = other.person, other.inst
            anchor = other.end or other.start
            s = anchor + draw(st.integers(-3, 3)) * ONE
            s = max(s, BASE)
        elif kind == 2:  # another institution around an earlier row's end (transition gaps)
            other = draw(st.sampled_from(out))
            person = other.person
            s = (other.end or other.start) + draw(st.sampled_from([-1, 0, 1, 2, 5, 6, 30, 31, 90, 91])) * ONE
            s = max(s, BASE)
        else:
            s = BASE + draw(st.integers(0, 120)) * ONE
        length = draw(st.one_of(st.none(), st.integers(0, 45)))
        e = None if length is None else s + length * ONE
        rec = draw(st.one_of(st.none(), st.just(e or s), st.integers(0, 140).map(lambda k: BASE + k * ONE)))
        if rec is not None and rec < s:
            rec = s
        reason = None if e is None else draw(st.sampled_from([*EXIT_REASONS[:3], None]))
        case = draw(st.sampled_from(["c1", "c2", None]))
        out.append(Row(person, inst, s, e, rec, reason, case))
    return out


as_of_strategy = st.integers(-10, 150).map(lambda k: BASE + k * ONE)
gap_strategy = st.sampled_from([0, 0, 1, 3, 10])


def near(dates, far: st.SearchStrategy) -> st.SearchStrategy:
    """An as-of date: about half the time one of ``dates`` (the rows' own ends, starts, recorded dates),
    as it is or moved by -1 or +1 day, else one drawn from ``far``.

    An end on T is closed at T and an end on T+1 open: only dates on such a boundary tell ``end > T``
    from ``end >= T``, and a T drawn independently of the rows almost never lies on one.
    """
    dates = sorted({d for d in dates if d is not None})
    if not dates:
        return far
    return st.one_of(far, st.tuples(st.sampled_from(dates), st.sampled_from([0, 0, -1, 1])).map(
        lambda pair: pair[0] + dt.timedelta(days=pair[1])))


def row_dates(rows: list[Row]) -> list[dt.date]:
    """Every date of the rows: the days an as-of date is most telling on (:func:`near`)."""
    return [d for r in rows for d in (r.end, r.start, r.rec)]


def near_ends(rows: list[Row], far: st.SearchStrategy) -> st.SearchStrategy:
    """An as-of date half the time on or next to an end of the rows, a quarter next to another of their
    dates, else from ``far`` (:func:`near`)."""
    return near([r.end for r in rows], near(row_dates(rows), far))


@st.composite
def rows_and_as_of(draw, allow_none: bool = True) -> tuple[list[Row], dt.date | None, bool]:
    """Rows, an as-of date (often on or next to a date of the rows, :func:`near_ends`) and whether the frame
    carries a ``recorded_date`` column; without one the rows' ``rec`` are None (the reference reads them)."""
    rows = draw(rows_strategy())
    with_rec = draw(st.booleans())
    if not with_rec:
        rows = [replace(r, rec=None) for r in rows]
    far = st.one_of(st.none(), as_of_strategy) if allow_none else as_of_strategy
    return rows, draw(near_ends(rows, far)), with_rec


def frame_spells(tl: Timeline) -> dict[str, list[RefSpell]]:
    """The fast timeline as reference spells per person."""
    f = tl.to_frame()
    out: dict[str, list[RefSpell]] = {}
    for p, inst, s, e in zip(f["person_id"], f["institution"], f["start_date"], f["end_date"],
                             strict=True):
        out.setdefault(p, []).append(RefSpell(inst, s.date(), None if pd.isna(e) else e.date()))
    return {p: sorted(v, key=lambda x: (x.inst, x.start)) for p, v in out.items()}


def ref_all(rows: list[Row], T, gap, fn=ref_spells) -> dict[str, list[RefSpell]]:
    out = {}
    for p in sorted({r.person for r in ref_visible(rows, T)}):
        out[p] = sorted(fn([r for r in rows if r.person == p], T, gap), key=lambda x: (x.inst, x.start))
    return out


# --------------------------------------------------------------------------- reference comparisons
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_and_as_of(), gap=gap_strategy)
def test_build_timeline_matches_reference(drawn, gap):
    rows, T, with_rec = drawn  # with and without a recorded_date column: two paths of the view
    tl = build_timeline(to_frame(rows, with_rec=with_rec), as_of=T, merge_gap_days=gap)
    assert frame_spells(tl) == ref_all(rows, T, gap)
    # persons are those of the view, nobody known only later
    assert sorted(tl.person_ids) == sorted({r.person for r in ref_visible(rows, T)})
    expected = Counter()
    for p in {r.person for r in rows}:
        expected.update(ref_counts([r for r in rows if r.person == p], T, gap))
    rep = tl.merge_report
    assert rep.rows_in == len(rows)
    assert (rep.rows_after_as_of, rep.duplicate_rows, rep.rows_merged, rep.spells) == (
        expected["rows_after_as_of"], expected["duplicate_rows"], expected["rows_merged"],
        expected["spells"])
    assert tl.as_of == (None if T is None else (T - dt.date(1970, 1, 1)).days)
    assert tl.merge_gap_days == gap and tl.mode == "daily"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), T=st.one_of(st.none(), as_of_strategy), data=st.data())
def test_a_timeline_of_some_persons_is_theirs_from_the_whole(rows, T, data):
    tl = build_timeline(to_frame(rows), as_of=T)
    codes = data.draw(st.permutations(range(tl.n_persons)))[: data.draw(st.integers(0, tl.n_persons))]
    sub = tl.of_persons(codes)
    assert list(sub.person_ids) == [tl.person_ids[c] for c in codes]
    mine = sub.to_frame()
    whole = tl.to_frame()
    want = pd.concat([whole[whole["person_id"] == tl.person_ids[c]] for c in codes]) if codes else whole.iloc[:0]
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), want.reset_index(drop=True))
    assert (np.diff(sub.person) >= 0).all()  # still sorted by person
    pd.testing.assert_frame_equal(sub.persons, tl.persons.iloc[list(codes)].reset_index(drop=True)
                                  .rename_axis(tl.persons.index.name))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_and_as_of(), gap=gap_strategy)
def test_exit_reason_and_case_come_from_the_row_with_the_latest_end(drawn, gap):
    rows, T, with_rec = drawn
    tl = build_timeline(to_frame(rows, with_rec=with_rec, with_extra=True), as_of=T, merge_gap_days=gap)
    f = tl.to_frame()
    for p, inst, s, e, reason, case in zip(f["person_id"], f["institution"], f["start_date"],
                                           f["end_date"], f["exit_reason"], f["case_id"], strict=True):
        spell = RefSpell(inst, s.date(), None if pd.isna(e) else e.date())
        mine = [r for r in rows if r.person == p]
        assert (None if pd.isna(reason) else reason) in ref_last_values(mine, spell, T, gap, "reason")
        assert (None if pd.isna(case) else case) in ref_last_values(mine, spell, T, gap, "case")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_and_as_of(), gap=gap_strategy)
def test_monthly_mode_matches_reference(drawn, gap):
    rows, T, with_rec = drawn
    tl = build_timeline(to_frame(rows, with_rec=with_rec), as_of=T, merge_gap_days=gap)
    m = monthly_spells(tl)
    assert frame_spells(m) == ref_all(rows, T, gap, fn=ref_monthly)
    assert m.mode == "monthly" and m.as_of == tl.as_of
    assert monthly_spells(m) is m
    via_option = build_timeline(to_frame(rows, with_rec=with_rec), as_of=T, merge_gap_days=gap, mode="monthly")
    assert frame_spells(via_option) == frame_spells(m)
    assert m.merge_report.spells == len(m)
    assert m.merge_report.rows_merged == tl.merge_report.rows_merged + len(tl) - len(m)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_and_as_of(allow_none=False))
def test_point_in_time_rows_give_the_same_timeline(drawn):
    rows, T, with_rec = drawn
    df = to_frame(rows, with_rec=with_rec, with_extra=True)
    pit = point_in_time(df, T)
    # the rows of the reference view, in input order: an end (and its exit reason) known at T stays,
    # one after T or recorded after T is empty
    vis = ref_visible(rows, T)
    want = [(r.person, r.inst, r.start, None if ref_is_open(r, T) else r.end,
             None if ref_is_open(r, T) else r.reason) for r in vis]
    got = [(p, i, s.date(), None if pd.isna(e) else e.date(), None if pd.isna(x) else x)
           for p, i, s, e, x in zip(pit["person_id"], pit["institution"], pit["start_date"], pit["end_date"],
                                    pit["exit_reason"], strict=True)]
    assert got == want
    t = (T - dt.date(1970, 1, 1)).days
    ends = _time.to_days(pit["end_date"], missing=int(_time.OPEN_END))
    assert ((ends <= t) | (ends == _time.OPEN_END)).all()
    # rows known at T, merged without as-of, are the point-in-time timeline
    assert frame_spells(build_timeline(pit.drop(columns="recorded_date", errors="ignore"))) == \
        frame_spells(build_timeline(df, as_of=T))


# --------------------------------------------------------------------------- examples by hand
def _rows(*spec, person="p"):
    """Rows from (institution, 'start', 'end' or None) tuples."""
    return pd.DataFrame({
        "person_id": [person] * len(spec),
        "institution": [s[0] for s in spec],
        "start_date": pd.to_datetime([s[1] for s in spec]),
        "end_date": pd.to_datetime([s[2] for s in spec]),
    })


def test_touching_rows_merge_and_a_one_day_gap_splits():
    tl = build_timeline(_rows(("ALV", "2024-02-01", "2024-02-28"), ("ALV", "2024-02-29", "2024-03-10"),
                              ("ALV", "2024-03-12", "2024-03-20")))
    assert [(_time.to_date(s).isoformat(), _time.to_date(e).isoformat()) for s, e in zip(
        tl.start, tl.end, strict=True)] == [("2024-02-01", "2024-03-10"), ("2024-03-12", "2024-03-20")]
    assert len(build_timeline(tl.to_frame(), merge_gap_days=1)) == 1


def test_ends_after_as_of_are_open_and_rows_recorded_later_are_unknown():
    df = _rows(("SH", "2024-01-01", "2024-12-31"), ("IV", "2024-03-01", "2024-03-31"),
               ("ALV", "2024-03-20", None))
    df["recorded_date"] = pd.to_datetime(["2024-01-05", "2024-04-02", "2024-04-03"])
    tl = build_timeline(df, as_of="2024-04-01")
    # the IV end was recorded after T: at T the IV spell was known and open;
    # the open ALV row was recorded after T: unknown at T
    assert sorted(tl.institutions[i] for i in tl.inst) == ["IV", "SH"]
    assert tl.is_open().tolist() == [True, True]
    assert tl.merge_report.rows_after_as_of == 1
    pit = point_in_time(df, "2024-04-01")
    assert pit["institution"].tolist() == ["SH", "IV"] and pit["end_date"].isna().all()


@pytest.mark.parametrize("recorded", [None, "2024-03-31", "2024-01-01"])
def test_an_end_on_the_as_of_date_is_closed_and_keeps_its_exit_reason(recorded):
    """The evening of T: a spell ending on T has ended, its exit reason known; one ending on T+1 is open.

    With and without a ``recorded_date`` column (the two paths of the view), in ``build_timeline`` and
    in ``point_in_time``.
    """
    df = _rows(("ALV", "2024-01-01", "2024-03-31"))
    df["exit_reason"] = pd.Series(["employment"], dtype="str")
    if recorded is not None:
        df["recorded_date"] = pd.to_datetime([recorded])
    on_t = build_timeline(df, as_of="2024-03-31")
    assert on_t.is_open().tolist() == [False]
    assert on_t.to_frame()[["end_date", "exit_reason"]].astype(str).values.tolist() == [["2024-03-31", "employment"]]
    pit = point_in_time(df, "2024-03-31")
    assert pit["end_date"].tolist() == [pd.Timestamp("2024-03-31")] and pit["exit_reason"].tolist() == ["employment"]
    before = build_timeline(df, as_of="2024-03-30")  # the evening before: the end is not known yet
    assert before.is_open().tolist() == [True] and before.to_frame()["exit_reason"].isna().all()
    pit = point_in_time(df, "2024-03-30")
    assert pit["end_date"].isna().all() and pit["exit_reason"].isna().all()


def test_monthly_mode_joins_adjacent_months_and_keeps_open():
    df = _rows(("SH", "2024-01-31", "2024-01-31"), ("SH", "2024-02-01", "2024-02-01"),
               ("SH", "2024-04-15", None))
    m = build_timeline(df, mode="monthly")
    assert [_time.to_date(s).isoformat() for s in m.start] == ["2024-01-01", "2024-04-01"]
    assert _time.to_date(m.end[0]).isoformat() == "2024-02-29"
    assert m.is_open().tolist() == [False, True]


def test_person_attributes_latest_known_value():
    df = _rows(("ALV", "2020-01-01", "2020-02-01"), ("SH", "2021-01-01", None),
               ("IV", "2019-01-01", None))
    df["birth_year"] = [1980, 1981, 1979]  # int64 column, every person has a value
    df["education"] = pd.Series(["compulsory", None, "tertiary"], dtype="str")
    df2 = pd.concat([df, _rows(("ALV", "2020-01-01", None), person="q")], ignore_index=True)
    df2.loc[3, "birth_year"] = np.nan
    tl = build_timeline(df2, as_of="2020-12-31")
    persons = tl.persons.set_axis(list(tl.person_ids))
    # p at 2020-12-31: rows starting 2019 and 2020 are known, the latest start wins
    assert persons.loc["p", "birth_year"] == 1980
    assert persons.loc["p", "education"] == "compulsory"
    assert pd.isna(persons.loc["q", "birth_year"]) and pd.isna(persons.loc["q", "education"])


def test_bad_rows_are_refused_with_every_problem_named():
    df = _rows(("ALV", "2024-01-10", "2024-01-01"), ("", "2024-01-01", None), ("SH", None, None))
    df.loc[0, "person_id"] = None
    with pytest.raises(ValidationError) as exc:
        build_timeline(df)
    msg = str(exc.value)
    for part in ["without person_id", "without institution", "without start_date",
                 "end_date before start_date"]:
        assert part in msg
    with pytest.raises(ValidationError, match="required column"):
        build_timeline(df.drop(columns="start_date"))
    with pytest.raises(ValidationError, match="not in"):
        build_timeline(_rows(("XYZ", "2024-01-01", None)), institutions=DEFAULT_INSTITUTIONS)
    with pytest.raises(ValueError, match="merge_gap_days"):
        build_timeline(_rows(("ALV", "2024-01-01", None)), merge_gap_days=-1)
    with pytest.raises(ValueError, match="mode"):
        build_timeline(_rows(("ALV", "2024-01-01", None)), mode="weekly")


def test_extra_institution_codes_follow_the_defaults():
    tl = build_timeline(_rows(("ZZB", "2024-01-01", None), ("AAX", "2024-01-01", None),
                              ("ALV", "2024-01-01", None)))
    assert tl.institutions == (*DEFAULT_INSTITUTIONS, "AAX", "ZZB")
    # codes seen only after the as-of date are not part of the view
    assert "AAX" not in build_timeline(
        pd.concat([_rows(("ALV", "2024-01-01", None)), _rows(("AAX", "2025-01-01", None))]),
        as_of="2024-06-30").institutions


def test_empty_input_and_empty_view():
    empty = build_timeline(_rows(("ALV", "2024-01-01", None)).iloc[:0])
    assert len(empty) == 0 and empty.n_persons == 0
    before = build_timeline(_rows(("ALV", "2024-01-01", None)), as_of="2023-12-31")
    assert len(before) == 0 and before.merge_report.rows_after_as_of == 1
    assert len(monthly_spells(before)) == 0


def test_dates_in_any_form():
    a = _rows(("ALV", "2024-01-01", "2024-01-31"), ("ALV", "2024-02-01", None))
    b = a.assign(start_date=a["start_date"].dt.strftime("%Y-%m-%d"))
    c = a.assign(start_date=a["start_date"].astype("datetime64[ms]"))
    expected = frame_spells(build_timeline(a))
    assert frame_spells(build_timeline(b)) == expected == frame_spells(build_timeline(c))


def test_an_end_date_column_without_a_value_is_every_spell_open():
    """pandas gives a column with nothing in it as float64 NaN: every end is empty, not a column of numbers."""
    from types import SimpleNamespace

    from iizrisk import compute_flags
    from iizrisk.errors import InputMismatchError
    from iizrisk.model._scoring import check_input

    dated = _rows(("ALV", "2024-01-01", None), ("SH", "2024-03-01", None), ("IV", "2024-07-01", None))
    dated["exit_reason"] = None
    empty = dated.assign(end_date=np.nan)
    assert empty["end_date"].dtype == np.float64
    got, want = point_in_time(empty, "2024-06-30"), point_in_time(dated, "2024-06-30")
    assert got["end_date"].isna().all()
    pd.testing.assert_frame_equal(got.drop(columns="end_date"), want.drop(columns="end_date"))
    tl = build_timeline(empty, as_of="2024-06-30")
    assert tl.is_open().all() and len(tl) == 2
    pd.testing.assert_frame_equal(tl.to_frame(), build_timeline(dated, as_of="2024-06-30").to_frame())
    pd.testing.assert_frame_equal(compute_flags(empty, "2024-06-30"), compute_flags(dated, "2024-06-30"))
    model = SimpleNamespace(input_info_={"columns": {"end_date": "date"}})  # trained on dates
    check_input(model, spells=empty)  # scoring reads it as dates too
    with pytest.raises(ValidationError, match="column 'end_date' holds numbers, not dates"):
        point_in_time(empty.assign(end_date=[np.nan, 19_800.0, np.nan]), "2024-06-30")
    with pytest.raises(InputMismatchError, match="'end_date': model date, input number"):
        check_input(model, spells=empty.assign(end_date=[np.nan, 19_800.0, np.nan]))


def test_as_of_day_forms():
    assert as_of_day("2024-02-29") == as_of_day(dt.date(2024, 2, 29)) == \
        as_of_day(pd.Timestamp("2024-02-29 13:00")) == (dt.date(2024, 2, 29) - dt.date(1970, 1, 1)).days
    with pytest.raises(ValueError):
        as_of_day(None)


def test_repr_html_mentions_counts():
    tl = build_timeline(_rows(("ALV", "2024-01-01", None)), as_of="2024-02-01")
    assert "1 spells of 1 persons" in tl._repr_html_()


def test_categorical_columns_give_the_same_timeline():
    """iizrisk.io gives institution and enumerations as categoricals; pseudonyms may be too."""
    df = _rows(("SH", "2024-01-01", None), ("ALV", "2024-01-01", "2024-02-01"), ("SH", "2024-01-05", None))
    df["exit_reason"] = pd.Series([None, "employment", None], dtype="str")
    cat = df.assign(person_id=df["person_id"].astype("category"),
                    institution=pd.Categorical(df["institution"], categories=DEFAULT_INSTITUTIONS),
                    exit_reason=pd.Categorical(df["exit_reason"], categories=EXIT_REASONS))
    a, b = build_timeline(df, as_of="2024-06-30"), build_timeline(cat, as_of="2024-06-30")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert str(b.person_ids.dtype) == "str"
    assert b.to_frame()["exit_reason"].tolist()[0] == "employment"


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.text("abc", max_size=3), unique=True, max_size=12),
       values=st.lists(st.one_of(st.text("abcd", max_size=3), st.none()), max_size=20))
def test_positions_equal_get_indexer(ids, values):
    from iizrisk.spells import positions

    index = pd.Index(ids, dtype="str")
    want = index.get_indexer(pd.Index(values, dtype="str"))
    np.testing.assert_array_equal(positions(index, values), want)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.text("0a9f\x01", min_size=3, max_size=3), unique=True, max_size=40),
       values=st.one_of(st.lists(st.text("0a9f\x01", min_size=3, max_size=3), max_size=40),
                        st.lists(st.one_of(st.text("0a9fé", min_size=3, max_size=3), st.text("0a", max_size=4)),
                                 max_size=40)),
       shuffled=st.booleans())
@example(ids=["faa", "aaa"], values=["aaa", "0a9"], shuffled=True)
@example(ids=["aaa", "faa"], values=["aaé", "faa"], shuffled=False)
def test_positions_by_binary_search_equal_get_indexer(ids, values, shuffled):
    import iizrisk.spells as S

    ids = sorted(ids, key=lambda v: v.encode(), reverse=shuffled)  # a timeline's ids are in byte order
    index = pd.Index(ids, dtype="str")
    want = index.get_indexer(pd.Index(values, dtype="str"))
    least, S._SORTED_MIN_VALUES = S._SORTED_MIN_VALUES, 0
    try:
        np.testing.assert_array_equal(S.positions(index, values), want)
    finally:
        S._SORTED_MIN_VALUES = least
    same_width = all(len(v.encode()) == 3 for v in ids + values)
    searched = S._sorted_positions(index, pd.Index(values, dtype="str"))
    if len(ids) and len(values) and same_width and (not shuffled or len(ids) == 1):
        assert searched is not None  # the binary search decides
        np.testing.assert_array_equal(searched, want)
    elif not same_width or (shuffled and len(ids) > 1):
        assert searched is None


def test_repr_shows_counts_not_pseudonyms():
    rows = pd.DataFrame({"person_id": ["secret-pseudonym"], "institution": ["SH"],
                         "start_date": pd.to_datetime(["2024-01-01"]), "end_date": [pd.NaT]})
    text = repr(build_timeline(rows, as_of="2024-06-30"))
    assert "secret-pseudonym" not in text
    assert "1 spells of 1 persons, 1 open" in text and "as of 2024-06-30" in text


# --------------------------------------------------------------------------- boundaries of the input checks
def test_a_row_without_a_start_is_not_in_the_point_in_time_view():
    """A row without a start date has no day on which it became known: it is not in the view at any T."""
    df = _rows(("ALV", "2024-01-01", None), ("SH", None, "2024-01-31"), ("IV", "2024-02-01", None))
    for T in ("2024-01-15", "2024-03-01"):
        pit = point_in_time(df, T)
        assert pit["start_date"].notna().all()
        assert pit["institution"].tolist() == [i for i, s in (("ALV", "2024-01-01"), ("IV", "2024-02-01"))
                                               if s <= T]


def test_the_merge_gap_may_be_as_long_as_the_largest_gap_allowed():
    from iizrisk.config import MAX_DAYS
    from iizrisk.errors import ConfigError

    df = _rows(("ALV", "2024-01-01", "2024-01-31"), ("ALV", "2024-03-01", None))
    assert len(build_timeline(df, merge_gap_days=MAX_DAYS)) == 1
    assert len(build_timeline(df, merge_gap_days=0)) == 2
    for bad in (MAX_DAYS + 1, -1):
        with pytest.raises(ConfigError, match="merge_gap_days must be a whole number of days"):
            build_timeline(df, merge_gap_days=bad)


def test_as_of_day_numbers_on_the_first_and_last_day_allowed():
    from iizrisk.errors import ConfigError

    first, last = as_of_day(_time.EARLIEST_DATE.isoformat()), as_of_day(_time.LATEST_DATE.isoformat())
    assert first == (_time.EARLIEST_DATE - dt.date(1970, 1, 1)).days
    assert as_of_day(first) == first and as_of_day(last) == last  # day numbers on the bounds are dates
    for outside in (first - 1, last + 1):
        with pytest.raises(ConfigError, match="read as a day number"):
            as_of_day(outside)


@given(after=st.integers(-3, 30), recorded=st.booleans())
@settings(max_examples=60, deadline=None)
def test_an_as_of_date_is_refused_exactly_when_more_than_the_allowed_days_after_the_data(after, recorded):
    from iizrisk.spells import AS_OF_AFTER_DATA_DAYS, refuse_as_of_after_data

    df = _rows(("ALV", "2024-01-01", "2024-01-31"), ("SH", "2024-02-01", None))
    last = dt.date(2024, 3, 10)
    df["recorded_date"] = pd.to_datetime(["2024-02-01", last.isoformat()])
    t = as_of_day(last + dt.timedelta(days=after))
    kwargs = {} if recorded else {"data_end": last.isoformat()}
    data = df if recorded else df.drop(columns="recorded_date")
    if after > AS_OF_AFTER_DATA_DAYS:
        with pytest.raises(ValidationError, match=f"lies {after} days after"):
            refuse_as_of_after_data(data, t, **kwargs)
    else:
        refuse_as_of_after_data(data, t, **kwargs)


def test_the_last_observed_day_is_the_last_recorded_one_when_recorded_dates_are_given():
    from iizrisk.spells import observed_until

    df = _rows(("ALV", "2024-01-01", "2024-03-31"), ("SH", "2024-02-01", None))
    assert _time.to_date(observed_until(df)) == dt.date(2024, 3, 31)  # no recorded date: the latest end
    df["recorded_date"] = pd.to_datetime(["2024-04-15", "2024-02-03"])
    assert _time.to_date(observed_until(df)) == dt.date(2024, 4, 15)
    df["recorded_date"] = pd.to_datetime(["2024-02-10", None])  # the end, known later, is not yet known
    assert _time.to_date(observed_until(df)) == dt.date(2024, 2, 10)


@pytest.mark.parametrize("column", ["start_date", "end_date", "recorded_date"])
def test_a_date_column_of_true_false_values_is_refused_by_name(column):
    df = _rows(("ALV", "2024-01-01", "2024-01-31"), ("SH", "2024-02-01", None))
    df[column] = [True, False]
    with pytest.raises(ValidationError, match=f"column '{column}' holds true/false values, not dates"):
        build_timeline(df)


def test_at_most_127_institution_codes():
    rows = _rows(("ALV", "2024-01-01", None))
    codes = DEFAULT_INSTITUTIONS + tuple(f"X{i:03d}" for i in range(127 - len(DEFAULT_INSTITUTIONS)))
    rows_last = rows.assign(institution=codes[-1])
    tl = build_timeline(rows_last, institutions=codes)
    assert len(codes) == 127 and tl.to_frame()["institution"].tolist() == [codes[-1]]
    with pytest.raises(ValidationError, match="128 institution codes; at most 127"):
        build_timeline(rows, institutions=(*codes, "X999"))


def test_point_in_time_keeps_an_exit_reason_only_where_the_end_is_known_at_t():
    """An exit reason belongs to a known end: cleared for ends after T, ends recorded after T, and rows
    without an end (an open row has not been left, whatever the export wrote beside it)."""
    df = _rows(("ALV", "2024-01-01", "2024-01-31"), ("SH", "2024-01-01", "2024-05-31"),
               ("IV", "2024-01-01", None), ("ALV", "2024-02-01", "2024-02-29"), ("SH", "2024-02-01", "2024-03-01"))
    df["exit_reason"] = "employment"
    df["recorded_date"] = pd.to_datetime(["2024-02-02", "2024-06-01", "2024-01-02", "2024-04-02", "2024-03-02"])
    pit = point_in_time(df, "2024-03-15")
    assert pit["exit_reason"].isna().tolist() == [False, True, True, True, False]
    assert pit["exit_reason"].dropna().tolist() == ["employment", "employment"]
    assert pit["end_date"].isna().tolist() == [False, True, True, True, False]
