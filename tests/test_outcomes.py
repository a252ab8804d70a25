"""Outcomes against a per-person reference written from docs/domain.md section 5."""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iizrisk import _time, outcomes
from iizrisk.outcomes import (
    compute_outcome,
    observed_until,
    outcome_names,
    register_outcome,
    timeline_view,
)
from iizrisk.spells import build_timeline
from test_features import (
    BASE,
    INSTS,
    REASONS,
    D,
    end_or_big,
    is_reentry,
    is_transition,
    months_back_plus_one,
    ref_merge,
    row_dates,
    spell_rows,
    to_frame,
)
from test_spells import as_of_strategy, near, near_ends, rows_strategy
from test_spells import to_frame as spell_frame


def months_forward(t: dt.date, h: int) -> dt.date:
    y, m = t.year, t.month + h
    while m > 12:
        y, m = y + 1, m - 12
    return dt.date(y, m, min(t.day, calendar.monthrange(y, m)[1]))


def ref_outcome(rows, person: str, t: dt.date, h: int, kind: str, gap: int = 90) -> bool:
    full = [s for s in ref_merge(rows) if s["person"] == person]
    h_end = months_forward(t, h)
    if kind == "revolving_door":
        new = any(t < s["start"] <= h_end and (is_transition(s, full, gap) or is_reentry(s, full)) for s in full)
        w0 = months_back_plus_one(h_end, 24)
        per_inst: dict[str, int] = {}
        for s in full:
            if s["start"] <= h_end and end_or_big(s) >= w0:
                per_inst[s["inst"]] = per_inst.get(s["inst"], 0) + 1
        bfs = len(per_inst) >= 2 and max(per_inst.values()) >= 2
        return new and bfs
    for s in full:
        if s["end"] is not None and t < s["end"] <= h_end:
            if s["inst"] == "ALV" and s["reason"] == "benefit_exhausted":
                return True
            if s["inst"] == "IV" and s["reason"] == "pension":
                return True
        if s["inst"] == "SH":
            d12 = months_forward(s["start"], 12) - dt.timedelta(days=1)
            if t < d12 <= h_end and end_or_big(s) >= d12:
                return True
    return False


def on_t_or_horizon_end(days, h: int) -> list[dt.date]:
    """As-of dates that put an event on one of ``days`` on T (it does not count) or on T+H (it does):
    the days themselves and the days ``h`` months before them (for :func:`test_spells.near`)."""
    days = [d for d in days if d is not None]
    return days + [months_back_plus_one(d, h) - dt.timedelta(days=1) for d in days]


@st.composite
def sh_row_reaching_near(draw, rows, days):
    """An SH row of one of the persons whose 12-month day (add_months(start, 12) - 1) is one of ``days`` or
    next to it, open or ending on that day, the day before or the day after."""
    reach = draw(st.sampled_from(days)) + dt.timedelta(days=draw(st.sampled_from([0, 0, -1, 1])))
    start = months_back_plus_one(reach, 12)  # the 12 months ending on `reach` start here
    end = draw(st.sampled_from([None, reach, reach, reach - dt.timedelta(days=1), reach + dt.timedelta(days=1)]))
    reason = None if end is None else REASONS[((end - BASE).days + INSTS.index("SH")) % len(REASONS)]
    return dict(draw(st.sampled_from(rows)), institution="SH", start_date=start, end_date=end, exit_reason=reason,
                recorded_date=None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(max_persons=3, max_rows=14, span=1500), h=st.sampled_from([1, 6, 12, 18]),
       kind=st.sampled_from(["revolving_door", "disintegration"]), data=st.data())
def test_outcome_matches_reference(rows, h, kind, data):
    # T often puts an event on T or T+H: half the time the day an SH row would reach 12 months (on
    # add_months(start, 12) - 1, which the 364-366-day rows end on or next to), a quarter a date of the rows
    reach = [months_forward(r["start_date"], 12) - dt.timedelta(days=1) for r in rows if r["institution"] == "SH"]
    far = near(on_t_or_horizon_end(row_dates(rows), h), st.integers(0, 1500).map(D))
    t = data.draw(near(on_t_or_horizon_end(reach, h), far), label="as_of")
    if data.draw(st.booleans(), label="an SH row reaching 12 months on T or T+H"):
        rows = rows + [data.draw(sh_row_reaching_near(rows, [t, months_forward(t, h)]))]
    df = to_frame(rows)
    persons = sorted(df["person_id"].unique())
    pairs = pd.DataFrame({"person_id": persons, "as_of": pd.Timestamp(t)})
    got = compute_outcome(df, outcome=kind, horizon_months=h, pairs=pairs, observed_until="2099-12-31")
    want = [ref_outcome(rows, p, t, h, kind) for p in persons]
    assert got["outcome"].tolist() == want
    assert got["observed"].all()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(max_persons=8, max_rows=24, span=1500), h=st.sampled_from([1, 6, 12]),
       kind=st.sampled_from(["revolving_door", "disintegration"]), share=st.sampled_from([0.0, 0.25, 2.0]),
       data=st.data())
def test_pairs_on_many_days_match_the_reference(rows, h, kind, share, data):
    # the research study labels a few people on each of thousands of days: every pair is labelled from
    # its own day, the flags of a day's few people computed on their rows alone (share 2: always) or on
    # everyone's (share 0)
    outcomes._SUBSET_SHARE = share
    df = to_frame(rows)
    persons = sorted(df["person_id"].unique())
    n = data.draw(st.integers(1, 14))
    who = [data.draw(st.sampled_from(persons)) for _ in range(n)]
    when = [D(data.draw(st.sampled_from([0, 200, 365, 700, 701, 1100, 1460]))) for _ in range(n)]
    pairs = pd.DataFrame({"person_id": who, "as_of": pd.to_datetime(when)})
    try:
        got = compute_outcome(df, outcome=kind, horizon_months=h, pairs=pairs, observed_until="2099-12-31")
    finally:
        outcomes._SUBSET_SHARE = 0.25
    assert got["outcome"].tolist() == [ref_outcome(rows, p, t, h, kind) for p, t in zip(who, when, strict=True)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(max_persons=3, max_rows=10, span=1500), t_off=st.integers(0, 1200),
       kind=st.sampled_from(["revolving_door", "disintegration"]), data=st.data())
def test_outcome_ignores_rows_after_the_horizon(rows, t_off, kind, data):
    t = D(t_off)
    h_end = months_forward(t, 12)
    df = to_frame(rows)
    pairs = pd.DataFrame({"person_id": sorted(df["person_id"].unique()), "as_of": pd.Timestamp(t)})
    before = compute_outcome(df, outcome=kind, pairs=pairs, observed_until="2099-12-31")
    extra = [{"person_id": r["person_id"], "institution": data.draw(st.sampled_from(["ALV", "IV", "SH"])),
              # two days after T+H at least: a row touching a spell would merge with it
              "start_date": h_end + dt.timedelta(days=data.draw(st.integers(2, 400))), "end_date": None,
              "exit_reason": None, "recorded_date": None, "birth_year": None, "education": None}
             for r in rows[: data.draw(st.integers(0, len(rows)))]]
    after = compute_outcome(to_frame(rows + extra), outcome=kind, pairs=pairs, observed_until="2099-12-31")
    assert before["outcome"].tolist() == after["outcome"].tolist()


@st.composite
def short_spells_at_two_institutions(draw):
    """One or two persons with short, mostly closed spells at two institutions, far apart: many new spells are
    re-entries and no transitions (the random rows of :func:`spell_rows` overlap too much to tell)."""
    rows = []
    for _ in range(draw(st.integers(2, 7))):
        s = draw(st.integers(0, 1100))
        e = None if draw(st.integers(0, 5)) == 0 else s + draw(st.integers(0, 150))
        rows.append({"person_id": f"p{draw(st.integers(0, 1))}", "institution": draw(st.sampled_from(["ALV", "SH"])),
                     "start_date": D(s), "end_date": None if e is None else D(e),
                     "exit_reason": None if e is None else "other", "recorded_date": None,
                     "birth_year": None, "education": None})
    return rows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=short_spells_at_two_institutions(), h=st.sampled_from([6, 12, 18]), gap=st.sampled_from([0, 30, 90]),
       data=st.data())
def test_revolving_door_of_re_entries_and_transitions_matches_reference(rows, h, gap, data):
    """A new spell in the horizon is a transition or a re-entry: each counts on its own."""
    t = data.draw(near([months_back_plus_one(r["start_date"], h) for r in rows], st.integers(0, 1100).map(D)),
                  label="as_of")
    df = to_frame(rows)
    persons = sorted(df["person_id"].unique())
    pairs = pd.DataFrame({"person_id": persons, "as_of": pd.Timestamp(t)})
    got = compute_outcome(df, horizon_months=h, pairs=pairs, observed_until="2099-12-31", transition_gap_days=gap)
    assert got["outcome"].tolist() == [ref_outcome(rows, p, t, h, "revolving_door", gap) for p in persons]


def test_a_re_entry_that_is_no_transition_is_a_new_spell_of_the_revolving_door():
    rows = _rows(
        ("p", "IV", dt.date(2020, 1, 1), dt.date(2020, 3, 31), "other"),
        ("p", "ALV", dt.date(2020, 8, 1), dt.date(2020, 12, 31), "employment"),  # 4 months after IV: no transition
        ("p", "ALV", dt.date(2021, 3, 1), None, None),  # a re-entry, no transition, within T+1 ... T+H
        ("q", "ALV", dt.date(2021, 1, 1), None, None),
    )
    # the 24 months ending at T+H = 2022-01-31 hold IV and two ALV spells: the BFS revolving door
    out = compute_outcome(rows, pairs=pd.DataFrame({"person_id": ["p", "q"], "as_of": pd.to_datetime(["2021-01-31"] * 2)}),
                          horizon_months=12, observed_until="2024-06-30")
    assert out["outcome"].tolist() == [True, False]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(max_persons=4, max_rows=12, span=1500), data=st.data())
def test_with_as_of_dates_the_labelled_are_the_people_with_a_spell_open_at_t(rows, data):
    """Who is labelled at T: a merged spell starting on or before T that ends after T or not at all
    (a spell ending on T is closed at T, docs/domain.md section 5)."""
    t = data.draw(near([r["end_date"] for r in rows], st.integers(0, 1500).map(D)), label="as_of")
    df = to_frame(rows).drop(columns="recorded_date")
    rows = [dict(r, recorded_date=None) for r in rows]
    got = compute_outcome(df, t, outcome="disintegration", observed_until="2099-12-31")
    want = sorted({s["person"] for s in ref_merge(rows) if s["start"] <= t and end_or_big(s) > t})
    assert sorted(got["person_id"]) == want


def test_a_spell_ending_on_the_as_of_day_is_not_labelled_and_a_horizon_ending_on_the_last_day_is_observed():
    rows = _rows(("a", "ALV", dt.date(2022, 1, 1), dt.date(2022, 3, 31), "benefit_exhausted"),
                 ("b", "ALV", dt.date(2022, 1, 1), dt.date(2022, 4, 1), "benefit_exhausted"),
                 ("c", "SH", dt.date(2022, 1, 1), dt.date(2023, 3, 31), "other"))
    out = compute_outcome(rows, "2022-03-31", outcome="disintegration", observed_until="2023-03-31")
    assert out["person_id"].tolist() == ["b", "c"]  # a's spell ends on T: closed at T
    assert out["horizon_end"].tolist() == [pd.Timestamp("2023-03-31")] * 2
    assert out["observed"].tolist() == [True, True]  # the horizon ends on the last observed day
    assert out["outcome"].tolist() == [True, True]  # b exhausted on T+1, c's SH spell reaches 12 months on 2022-12-31
    late = compute_outcome(rows, "2022-03-31", outcome="disintegration", observed_until="2023-03-30")
    assert not late["observed"].any() and late["outcome"].isna().all()


def _rows(*spells):
    return to_frame([{"person_id": p, "institution": i, "start_date": s, "end_date": e, "exit_reason": r}
                     for p, i, s, e, r in spells])


def test_revolving_door_example():
    rows = _rows(
        ("p", "ALV", dt.date(2022, 1, 1), dt.date(2022, 6, 30), "transfer"),
        ("p", "SH", dt.date(2022, 7, 15), dt.date(2023, 1, 31), "other"),  # open at T
        ("p", "ALV", dt.date(2023, 3, 1), None, None),  # re-entry and transition in the horizon
        ("q", "ALV", dt.date(2022, 1, 1), None, None),
    )
    out = compute_outcome(rows, "2022-12-31", horizon_months=12, observed_until="2024-06-30")
    assert dict(zip(out["person_id"], out["outcome"], strict=True)) == {"p": True, "q": False}
    # the new spell lies after a 1-month horizon: no outcome yet
    out = compute_outcome(rows, "2022-12-31", horizon_months=1, observed_until="2024-06-30")
    assert not out["outcome"].any()


def test_events_on_the_horizon_ends_count_and_on_the_as_of_day_do_not():
    # T + 12 months is 2022-12-31 for T = 2021-12-31: an event on either end of T+1 ... T+H, per pair
    rows = _rows(
        ("a", "ALV", dt.date(2021, 1, 1), dt.date(2022, 12, 31), "benefit_exhausted"),  # on T+H: counts
        ("b", "ALV", dt.date(2021, 1, 1), dt.date(2021, 12, 31), "benefit_exhausted"),  # on T: does not
        ("c", "IV", dt.date(2021, 1, 1), dt.date(2022, 1, 1), "pension"),  # on T+1: counts
    )
    pairs = pd.DataFrame({"person_id": ["a", "b", "c", "a", "c"],
                          "as_of": pd.to_datetime(["2021-12-31"] * 3 + ["2022-12-31", "2022-01-01"])})
    out = compute_outcome(rows, outcome="disintegration", horizon_months=12, pairs=pairs,
                          observed_until="2024-12-31")
    assert out["outcome"].tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("share", [0.0, 2.0])
def test_revolving_door_of_a_few_people_on_their_rows_alone(share):
    rows = _rows(
        ("z", "SH", dt.date(2021, 1, 1), None, None),  # not labelled: the few are a subset
        ("p", "ALV", dt.date(2022, 1, 1), dt.date(2022, 6, 30), "transfer"),
        ("p", "SH", dt.date(2022, 7, 15), dt.date(2023, 1, 31), "other"),
        ("p", "ALV", dt.date(2023, 3, 1), None, None),  # re-entry and transition: a revolving door
        ("q", "ALV", dt.date(2022, 1, 1), dt.date(2022, 3, 31), "employment"),
        ("q", "ALV", dt.date(2023, 2, 1), None, None),  # a re-entry, but one institution only
    )
    pairs = pd.DataFrame({"person_id": ["q", "p", "q"],
                          "as_of": pd.to_datetime(["2022-12-31", "2022-12-31", "2023-06-30"])})
    outcomes._SUBSET_SHARE = share
    try:
        out = compute_outcome(rows, horizon_months=12, pairs=pairs, observed_until="2024-12-31")
    finally:
        outcomes._SUBSET_SHARE = 0.25
    assert out["outcome"].tolist() == [False, True, False]


def test_disintegration_events():
    rows = _rows(
        ("a", "ALV", dt.date(2021, 1, 1), dt.date(2022, 3, 31), "benefit_exhausted"),
        ("b", "SH", dt.date(2022, 6, 1), None, None),  # reaches 12 months on 2023-05-31
        ("c", "IV", dt.date(2021, 1, 1), dt.date(2022, 2, 28), "pension"),
        ("d", "ALV", dt.date(2021, 1, 1), dt.date(2022, 3, 31), "employment"),
        ("e", "SH", dt.date(2020, 1, 1), None, None),  # long-term already at T: does not *reach* it
    )
    out = compute_outcome(rows, "2021-12-31", outcome="disintegration", horizon_months=12,
                          observed_until="2024-12-31")
    got = dict(zip(out["person_id"], out["outcome"], strict=True))
    assert got == {"a": True, "c": True, "d": False, "e": False}  # b not yet registered at T
    out = compute_outcome(rows, "2022-06-30", outcome="disintegration", horizon_months=12,
                          observed_until="2024-12-31")
    assert bool(dict(zip(out["person_id"], out["outcome"], strict=True))["b"])
    out = compute_outcome(rows, "2022-06-30", outcome="disintegration", horizon_months=11,
                          observed_until="2024-12-31")  # T+H = 2023-05-30: one day short
    assert not dict(zip(out["person_id"], out["outcome"], strict=True))["b"]


@pytest.mark.parametrize("end, as_of, h, want", [
    ("2023-05-31", "2022-06-30", 12, True),   # lasts until its 12-month day 2023-05-31: reaches it
    ("2023-05-30", "2022-06-30", 12, False),  # ends the day before
    (None, "2022-05-31", 12, True),           # T+H = 2023-05-31 is the 12-month day: within T+1 ... T+H
    (None, "2022-05-31", 11, False),          # T+H = 2023-04-30
    (None, "2023-05-30", 1, True),            # the 12-month day is T+1
    (None, "2023-05-31", 12, False),          # reached on T itself: not within T+1 ... T+H
])
def test_sh_reaches_twelve_months_on_the_day_before_the_anniversary(end, as_of, h, want):
    """An SH spell from 2022-06-01 reaches 12 months' duration on 2023-05-31 (add_months(start, 12) - 1:
    the 12 months ending 2023-05-31 start on 2022-06-01, docs/domain.md's windows), if it lasts until then."""
    rows = _rows(("b", "SH", dt.date(2022, 6, 1), None if end is None else dt.date.fromisoformat(end),
                  None if end is None else "other"))
    pairs = pd.DataFrame({"person_id": ["b"], "as_of": pd.to_datetime([as_of])})
    out = compute_outcome(rows, outcome="disintegration", horizon_months=h, pairs=pairs,
                          observed_until="2024-12-31")
    assert out["outcome"].tolist() == [want]
    assert ref_outcome(_rows_as_dicts(rows), "b", dt.date.fromisoformat(as_of), h, "disintegration") == want


def _rows_as_dicts(frame: pd.DataFrame) -> list[dict]:
    """Rows of :func:`_rows` in the reference's form (dates as ``datetime.date``, no end as None)."""
    out = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for r in out:
        for c in ("start_date", "end_date"):
            r[c] = None if r[c] is None else pd.Timestamp(r[c]).date()
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), data=st.data())
def test_timeline_view_is_the_timeline_built_at_that_day(rows, data):
    """The full timeline seen on the evening of a day is the timeline of the rows (without recorded dates)
    built as of that day: an end on the day stays with its exit reason, an end after it is open.

    With merge gap 0 only, and without a row starting the day after: a row that starts after the day and
    continues a spell ending on it (the next day, at gap 0; within the gap, at a larger one) merges the full
    timeline's spell across the day (timeline_view keeps it open there: outcomes take the data as finally
    known), the rows known on the day do not."""
    df = spell_frame(rows, with_rec=False, with_extra=True)
    full = build_timeline(df)
    # half the time on or next to the end of a merged spell (a row's end may lie inside one)
    ends = [_time.to_date(e) for e in full.end[~full.is_open()]]
    day = data.draw(near(ends, near_ends(rows, as_of_strategy)), label="day")
    assume(all(r.start != day + dt.timedelta(days=1) for r in rows))  # the bridge the docstring describes
    n = _time.day(day)
    got = timeline_view(full, n)
    want = build_timeline(df, as_of=day)
    assert got.as_of == want.as_of == n and got.merge_report is None

    def spells(tl):
        f = tl.to_frame()
        return sorted((p, str(i), s.date(), "open" if pd.isna(e) else e.date().isoformat(), "" if pd.isna(r) else r)
                      for p, i, s, e, r in zip(f["person_id"], f["institution"], f["start_date"], f["end_date"],
                                               f["exit_reason"], strict=True))
    assert spells(got) == spells(want)
    assert int(got.is_open().sum()) == int(want.is_open().sum())


def test_timeline_view_keeps_an_end_on_the_day_and_opens_a_later_one():
    rows = _rows(("a", "ALV", dt.date(2024, 1, 1), dt.date(2024, 3, 31), "employment"),
                 ("a", "SH", dt.date(2024, 2, 1), dt.date(2024, 4, 1), "other"),
                 ("a", "IV", dt.date(2024, 4, 1), None, None))
    view = timeline_view(build_timeline(rows), _time.day("2024-03-31"))
    f = view.to_frame()
    assert f["institution"].astype(str).tolist() == ["ALV", "SH"]  # IV starts after the day
    assert f["end_date"].astype(object).where(f["end_date"].notna(), None).tolist() == [pd.Timestamp("2024-03-31"), None]
    assert f["exit_reason"].fillna("").tolist() == ["employment", ""]  # SH's end (and reason) lie after the day


def test_iv_measure_pension_start_counts():
    rows = _rows(("a", "IV", dt.date(2021, 1, 1), None, None), ("a", "IV", dt.date(2022, 5, 1), None, None))
    rows["iv_measure"] = ["integration", "pension"]
    out = compute_outcome(rows, "2021-12-31", outcome="disintegration", observed_until="2024-12-31")
    assert out["outcome"].tolist() == [True]
    out = compute_outcome(rows.drop(columns="iv_measure"), "2021-12-31", outcome="disintegration",
                          observed_until="2024-12-31")
    assert out["outcome"].tolist() == [False]


def test_unobserved_horizon_is_missing_never_false():
    rows = _rows(("a", "ALV", dt.date(2022, 1, 1), dt.date(2023, 1, 31), "benefit_exhausted"),
                 ("b", "SH", dt.date(2022, 1, 1), dt.date(2023, 3, 31), "employment"))
    assert observed_until(rows) == _day("2023-03-31")
    out = compute_outcome(rows, ["2022-02-28", "2022-06-30"], outcome="disintegration")
    got = {(p, str(d.date())): (v, o) for p, d, v, o in out[["person_id", "as_of", "outcome", "observed"]].itertuples(
        index=False)}
    assert got[("a", "2022-02-28")] == (True, True)  # horizon ends 2023-02-28 <= 2023-03-31
    v, o = got[("a", "2022-06-30")]  # horizon ends 2023-06-30, after the last observed day
    assert not o
    assert v is pd.NA


def _day(s):
    from iizrisk._time import day

    return day(s)


def test_recorded_date_sets_the_last_observed_day():
    rows = _rows(("a", "ALV", dt.date(2022, 1, 1), None, None))
    rows["recorded_date"] = pd.to_datetime(["2024-05-31"])
    assert observed_until(rows) == _day("2024-05-31")


def test_own_outcome_registry():
    def any_iv_start(tl, person_codes, as_of_days, horizon_months, **options):
        from iizrisk import _time

        out = np.zeros(len(person_codes), dtype=bool)
        iv = tl.inst == tl.inst_code("IV")
        for t in np.unique(as_of_days):
            h = int(_time.add_months(int(t), horizon_months))
            hit = np.bincount(tl.person[iv & (tl.start > t) & (tl.start <= h)], minlength=tl.n_persons) > 0
            out[as_of_days == t] = hit[person_codes[as_of_days == t]]
        return out

    register_outcome("test_iv_start", any_iv_start, description="an IV spell starts")
    try:
        assert "test_iv_start" in outcome_names()
        with pytest.raises(ValueError, match="already registered"):
            register_outcome("test_iv_start", any_iv_start)
        rows = _rows(("a", "ALV", dt.date(2022, 1, 1), None, None), ("a", "IV", dt.date(2022, 8, 1), None, None),
                     ("b", "ALV", dt.date(2022, 1, 1), None, None))
        out = compute_outcome(rows, "2022-06-30", outcome="test_iv_start", observed_until="2024-01-01")
        assert dict(zip(out["person_id"], out["outcome"], strict=True)) == {"a": True, "b": False}
    finally:
        outcomes._REGISTRY.pop("test_iv_start", None)
    with pytest.raises(ValueError, match="unknown outcome"):
        compute_outcome(rows, "2022-06-30", outcome="test_iv_start", observed_until="2024-01-01")


def test_full_timeline_required():
    from iizrisk.spells import build_timeline

    rows = _rows(("a", "ALV", dt.date(2022, 1, 1), None, None))
    with pytest.raises(ValueError, match="full timeline"):
        compute_outcome(build_timeline(rows, as_of="2022-06-30"), "2022-06-30", observed_until="2023-12-31")
