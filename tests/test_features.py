"""Point-in-time features: fast vectorised code against a slow per-person reference.

The reference works on the raw rows with plain Python loops, straight from
docs/domain.md section 5 (point-in-time view, merging, windows, transitions,
re-entries, BFS revolving door); it shares no code with the library except
the calendar helper it checks separately.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import months_before
from iizrisk import _time
from iizrisk.features import (
    FeatureSpec,
    PointInTimeFeatures,
    ProtectedAttributeWarning,
    _union_days,
    as_of_dates,
    feature_catalogue,
    feature_specs,
)
from test_spells import near

BASE = dt.date(2018, 1, 1)
INSTS = ["ALV", "IV", "SH", "BB"]
REASONS = ["employment", "benefit_exhausted", "transfer", "pension", "other", None]
EDU = ["compulsory", "upper_secondary", "tertiary", None]


def D(n: int) -> dt.date:
    return BASE + dt.timedelta(days=int(n))


# ---------------------------------------------------------------- data strategies
@st.composite
def spell_rows(draw, max_persons: int = 4, max_rows: int = 12, span: int = 2200):
    n_persons = draw(st.integers(1, max_persons))
    attrs = {
        f"p{i}": (draw(st.one_of(st.none(), st.integers(1950, 2005))), draw(st.sampled_from(EDU)))
        for i in range(n_persons)
    }
    n = draw(st.integers(1, max_rows))
    rows = []
    for _ in range(n):
        p = f"p{draw(st.integers(0, n_persons - 1))}"
        inst = draw(st.sampled_from(INSTS))
        s = draw(st.integers(0, span))
        # 364-366 days: around the day an SH spell reaches 12 months (outcomes)
        length = draw(st.sampled_from([364, 365, 366]) | st.integers(0, 500))
        open_ = draw(st.booleans()) and draw(st.booleans())
        e = None if open_ else s + length
        # the exit reason is a function of (institution, end): rows merged into one spell
        # with the same latest end agree on it, so the reference needs no tie rule
        reason = None if e is None else REASONS[(e + INSTS.index(inst)) % len(REASONS)]
        rec = draw(st.one_of(st.none(), st.integers(0, 60)))
        by, edu = attrs[p]
        rows.append({
            "person_id": p, "institution": inst, "start_date": D(s),
            "end_date": None if e is None else D(e), "exit_reason": reason,
            "recorded_date": None if rec is None else D(s + rec),
            "birth_year": by, "education": edu,
        })
    return rows


@st.composite
def interventions_rows(draw, n_persons: int = 4, span: int = 2200, as_of: dt.date | None = None):
    """Interventions; given the as-of date, many fall on the days where counting starts or stops:
    T+1, T, and the first day of the 12- and 60-month windows ending at T and the day before each."""
    dates = st.integers(0, span).map(D)
    if as_of is not None:
        edges = [as_of + dt.timedelta(days=1), as_of]
        for w in (12, 60):
            first = months_back_plus_one(as_of, w)
            edges += [first, first - dt.timedelta(days=1)]
        dates = dates | st.sampled_from(edges)
    n = draw(st.integers(0, 5))
    return [{"person_id": f"p{draw(st.integers(0, n_persons - 1))}", "date": draw(dates),
             "type": draw(st.sampled_from(["joint_assessment", "case_management", "other"]))}
            for _ in range(n)]


def row_dates(rows: list[dict]) -> list[dt.date]:
    """Every date of the rows: the days an as-of date is most telling on (:func:`test_spells.near`)."""
    return [r[c] for r in rows for c in ("end_date", "start_date", "recorded_date")]


@st.composite
def rows_as_of_interventions(draw, span: int = 2200, t_range: tuple[int, int] = (0, 2400)):
    """Rows with or without a ``recorded_date`` column, an as-of date often on or next to one of their dates,
    and interventions often on the edges of T's windows: (rows, frame, T, interventions)."""
    rows = draw(spell_rows(span=span))
    frame = to_frame(rows)
    if not draw(st.booleans()):  # no recorded_date column: the other path of the point-in-time view
        rows = [dict(r, recorded_date=None) for r in rows]
        frame = frame.drop(columns="recorded_date")
    # half the time on or next to an end (closed on T, open on T+1), a quarter next to another date
    t = draw(near([r["end_date"] for r in rows], near(row_dates(rows), st.integers(*t_range).map(D))), label="as_of")
    n_persons = 1 + max(int(r["person_id"][1:]) for r in rows)  # interventions of the rows' persons
    return rows, frame, t, draw(interventions_rows(n_persons, span=span, as_of=t), label="interventions")


def to_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in ("start_date", "end_date", "recorded_date"):
        if c in df:
            df[c] = pd.to_datetime(df[c])
    if "birth_year" in df:
        df["birth_year"] = df["birth_year"].astype("Int64")
    return df


def iv_frame(rows: list[dict]) -> pd.DataFrame | None:
    if not rows:
        return pd.DataFrame({"person_id": pd.Series([], dtype=str), "date": pd.to_datetime([]),
                             "type": pd.Series([], dtype=str)})
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    return df


# ---------------------------------------------------------------- slow reference
def months_back_plus_one(t: dt.date, w: int) -> dt.date:
    """T minus w calendar months (clipped to the month's end) plus one day."""
    y, m = t.year, t.month - w
    while m < 1:
        y, m = y - 1, m + 12
    d = min(t.day, calendar.monthrange(y, m)[1])
    return dt.date(y, m, d) + dt.timedelta(days=1)


@functools.cache
def ref_shortest(w: int) -> int:
    """Days in the shortest window of w calendar months ending on any day of 2001-2028, by brute force."""
    t, best = dt.date(2001, 1, 1), 10**9
    while t < dt.date(2029, 1, 1):
        best = min(best, (t - months_back_plus_one(t, w)).days + 1)
        t += dt.timedelta(days=1)
    return best


def ref_capped(f: dict, windows, lookback: int, bw: int) -> dict:
    """Day counts stop at the shortest window of their length; days since, one day before it."""
    out = dict(f)
    for name, v in f.items():
        if isinstance(v, float) and math.isnan(v):
            continue
        if name.startswith("current_days_"):
            out[name] = min(v, ref_shortest(lookback))
        elif name in ("days_since_last_start", "days_since_last_exit", "days_since_joint_assessment"):
            out[name] = min(v, ref_shortest(lookback) - 1)
        elif name.startswith("days_registered_"):
            out[name] = min(v, ref_shortest(int(name.removeprefix("days_registered_").removesuffix("m"))))
        elif name in {f"days_{i}_{bw}m" for i in ("alv", "iv", "sh")}:
            out[name] = min(v, ref_shortest(bw))
    return out


def ref_view(rows: list[dict], t: dt.date) -> list[dict]:
    out = []
    for r in rows:
        # recorded_date: the day the row, or its end, became known
        late = r.get("recorded_date") is not None and r["recorded_date"] > t
        if r["start_date"] > t or (r["end_date"] is None and late):
            continue
        r = dict(r)
        if r["end_date"] is None or r["end_date"] > t or late:
            r["end_date"], r["exit_reason"] = None, None
        out.append(r)
    return out


def ref_merge(rows: list[dict]) -> list[dict]:
    """Merged spells: rows of one person at one institution that overlap or touch."""
    spells = []
    keys = sorted({(r["person_id"], r["institution"]) for r in rows})
    for p, inst in keys:
        mine = sorted((r for r in rows if r["person_id"] == p and r["institution"] == inst),
                      key=lambda r: r["start_date"])
        cur = None
        for r in mine:
            end = r["end_date"]
            if cur is not None and (cur["end"] is None or r["start_date"] <= cur["end"] + dt.timedelta(days=1)):
                if cur["end"] is not None and (end is None or end > cur["end"]):
                    cur["end"], cur["reason"] = end, r["exit_reason"]
                elif cur["end"] is not None and end == cur["end"] and cur["reason"] is None:
                    cur["reason"] = r["exit_reason"]
                continue
            cur = {"person": p, "inst": inst, "start": r["start_date"], "end": end, "reason": r["exit_reason"]}
            spells.append(cur)
    return spells


BIG = dt.date(9999, 12, 31)


def end_or_big(s):
    return BIG if s["end"] is None else s["end"]


def is_transition(s, mine, gap=90):
    return any(a["inst"] != s["inst"] and a["start"] < s["start"]
               and (a["end"] is None or s["start"] <= a["end"] + dt.timedelta(days=gap)) for a in mine)


def is_reentry(s, mine):
    return any(a["inst"] == s["inst"] and a["start"] < s["start"] for a in mine)


def ref_features(rows, t: dt.date, interventions=(), windows=(6, 12, 24, 60), lookback=60,
                 bw=24) -> dict[str, dict]:
    view = ref_view(rows, t)
    spells = ref_merge(view)
    w_look = months_back_plus_one(t, lookback)
    out = {}
    for p in sorted({s["person"] for s in spells}):
        # features expire: spells that ended before the look-back window are forgotten
        mine = [s for s in spells if s["person"] == p and end_or_big(s) >= w_look]
        if not any(s["end"] is None for s in mine):
            continue  # population: a spell open at T
        f: dict[str, float] = {}
        reg = [s for s in mine if end_or_big(s) >= t]
        for inst in ["ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG"]:
            f[f"open_{inst.lower()}"] = float(any(s["inst"] == inst for s in reg))
        f["n_institutions_now"] = len({s["inst"] for s in reg})
        for inst in ["ALV", "IV", "SH"]:
            f[f"current_days_{inst.lower()}"] = sum((t - max(s["start"], w_look)).days + 1
                                                    for s in reg if s["inst"] == inst)
        f["current_days_max"] = max((t - max(s["start"], w_look)).days + 1 for s in reg)
        f["days_since_last_start"] = (t - max(max(s["start"], w_look) for s in mine)).days
        for w in windows:
            w0 = months_back_plus_one(t, w)
            f[f"n_spells_{w}m"] = sum(s["start"] >= w0 for s in mine)
            f[f"n_institutions_{w}m"] = len({s["inst"] for s in mine if min(end_or_big(s), t) >= w0})
            days = set()
            for s in mine:
                a, b = max(s["start"], w0), min(end_or_big(s), t)
                days.update(range(a.toordinal(), b.toordinal() + 1))
            f[f"days_registered_{w}m"] = len(days)
            f[f"n_transitions_{w}m"] = sum(s["start"] >= w0 and is_transition(s, mine) for s in mine)
            f[f"n_reentries_{w}m"] = sum(s["start"] >= w0 and is_reentry(s, mine) for s in mine)
        w0 = months_back_plus_one(t, bw)
        w60 = months_back_plus_one(t, max(windows))
        for inst in ["ALV", "IV", "SH"]:
            f[f"days_{inst.lower()}_{bw}m"] = sum(
                max(0, (min(end_or_big(s), t) - max(s["start"], w0)).days + 1) for s in mine if s["inst"] == inst)
            f[f"n_spells_{inst.lower()}_{max(windows)}m"] = sum(s["inst"] == inst and s["start"] >= w60 for s in mine)
        per_inst: dict[str, int] = {}
        for s in mine:
            if min(end_or_big(s), t) >= w0:
                per_inst[s["inst"]] = per_inst.get(s["inst"], 0) + 1
        n_inst, mx = len(per_inst), max(per_inst.values(), default=0)
        f[f"max_spells_one_institution_{bw}m"] = mx
        f[f"revolving_door_{bw}m"] = float(n_inst >= 2 and mx >= 2)
        f[f"bfs_profile_{bw}m"] = 0 if n_inst == 0 else (4 if n_inst >= 2 and mx >= 2 else 3 if n_inst >= 2
                                                     else 2 if mx >= 2 else 1)
        closed = [s for s in mine if s["end"] is not None]
        for r in ["benefit_exhausted", "employment", "transfer"]:
            f[f"n_exits_{r}"] = sum(s["reason"] == r for s in closed)
        f["n_exits_other"] = sum(s["reason"] not in ("benefit_exhausted", "employment", "transfer") for s in closed)
        f["days_since_last_exit"] = (t - max(s["end"] for s in closed)).days if closed else math.nan
        # latest attributes among the visible rows (constant per person in these data)
        prow = [r for r in view if r["person_id"] == p]
        by = [r["birth_year"] for r in prow if r["birth_year"] is not None]
        f["age"] = t.year - by[-1] if by else math.nan
        edu = [r["education"] for r in prow if r["education"] is not None]
        for lv in ["compulsory", "upper_secondary", "tertiary"]:
            f[f"education_{lv}"] = float(bool(edu) and edu[-1] == lv)
        mine_iv = [i for i in interventions if i["person_id"] == p and w_look <= i["date"] <= t]
        joint = [i["date"] for i in mine_iv if i["type"] == "joint_assessment"]
        f["n_joint_assessments"] = len(joint)
        f["days_since_joint_assessment"] = (t - max(joint)).days if joint else math.nan
        w12 = months_back_plus_one(t, 12)
        f["n_interventions_12m"] = sum(i["date"] >= w12 for i in mine_iv)
        out[p] = ref_capped(f, windows, lookback, bw)
    return out


def assert_same_features(fast: pd.DataFrame, ref: dict[str, dict], t: dt.date):
    got_ids = list(fast.index.get_level_values("person_id"))
    assert sorted(got_ids) == sorted(ref) and len(set(got_ids)) == len(got_ids), (got_ids, sorted(ref))
    for p, feats in ref.items():
        row = fast.loc[(p, pd.Timestamp(t))]
        for name, want in feats.items():
            got = float(row[name])
            if isinstance(want, float) and math.isnan(want):
                assert math.isnan(got), (p, name, got)
            else:
                assert got == pytest.approx(float(want)), (p, name, got, want)


# ---------------------------------------------------------------- tests
def test_reference_calendar_agrees_with_library():
    for t in [dt.date(2024, 6, 30), dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2023, 1, 15)]:
        for w in (1, 6, 12, 24, 60):
            assert _time.to_date(_time.window_start(_time.day(t), w)) == months_back_plus_one(t, w)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_as_of_interventions())
def test_features_match_reference(drawn):
    rows, frame, t, ivs = drawn
    X = PointInTimeFeatures(include_age=True).fit_transform(frame, as_of=t, interventions=iv_frame(ivs))
    ref = ref_features(rows, t, ivs)
    assert_same_features(X, ref, t)
    assert list(X.columns) == [s.name for s in feature_specs(include_age=True)]
    assert "age" not in PointInTimeFeatures().fit().get_feature_names_out()  # a protected ground: off by default


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(), ivs=interventions_rows(), t_off=st.integers(100, 2200), data=st.data())
def test_nothing_after_as_of_changes_a_feature(rows, ivs, t_off, data):
    """Rows starting later, ends moved beyond T, rows recorded later, later interventions: no change."""
    t = D(t_off)
    ft = PointInTimeFeatures()
    before = ft.fit_transform(to_frame(rows), as_of=t, interventions=iv_frame(ivs))
    changed = []
    for r in rows:
        r = dict(r)
        late = r["recorded_date"] is not None and r["recorded_date"] > t
        if late and r["end_date"] is not None:  # its end was learnt after T: any end, any reason
            if data.draw(st.booleans()):
                r["end_date"] = r["start_date"] + dt.timedelta(days=data.draw(st.integers(0, 900)))
            r["exit_reason"] = data.draw(st.sampled_from(REASONS))
        elif not late and (r["end_date"] is None or r["end_date"] > t):  # end unknown at T: move it
            if data.draw(st.booleans()):
                r["end_date"] = None if data.draw(st.booleans()) else max(t, r["start_date"]) + \
                    dt.timedelta(days=data.draw(st.integers(1, 900)))
            r["exit_reason"] = data.draw(st.sampled_from(REASONS)) if r["end_date"] is not None else None
        if r["recorded_date"] is not None and r["recorded_date"] > t:
            r["recorded_date"] = r["recorded_date"] + dt.timedelta(days=data.draw(st.integers(0, 300)))
        changed.append(r)
    for _ in range(data.draw(st.integers(0, 4))):  # new rows: start after T, or recorded after T
        s = t + dt.timedelta(days=data.draw(st.integers(-400, 600)))
        rec = t + dt.timedelta(days=data.draw(st.integers(1, 200)))
        changed.append({"person_id": f"p{data.draw(st.integers(0, 6))}",
                        "institution": data.draw(st.sampled_from(INSTS)), "start_date": s,
                        "end_date": None, "exit_reason": None,
                        "recorded_date": rec if s <= t else None, "birth_year": 1970, "education": "tertiary"})
    later_ivs = ivs + [{"person_id": f"p{data.draw(st.integers(0, 6))}",
                        "date": t + dt.timedelta(days=data.draw(st.just(1) | st.integers(1, 400))),
                        "type": "joint_assessment"} for _ in range(data.draw(st.integers(0, 3)))]
    after = ft.transform(to_frame(changed), as_of=t, interventions=iv_frame(later_ivs))
    pd.testing.assert_frame_equal(before, after)


def test_union_days_matches_sets():
    rng = np.random.default_rng(3)
    person = np.sort(rng.integers(0, 30, 400))
    a = rng.integers(-50, 500, 400)
    b = a + rng.integers(0, 60, 400)
    order = np.lexsort((a, person))
    person, a, b = person[order], a[order], b[order]
    got = _union_days(person, a, b, 30)
    for p in range(30):
        days = set()
        for i in np.flatnonzero(person == p):
            days.update(range(a[i], b[i] + 1))
        assert got[p] == len(days)


def test_many_dates_loop_over_dates_and_keep_order():
    rows = to_frame([
        {"person_id": "b", "institution": "ALV", "start_date": dt.date(2020, 1, 1), "end_date": None},
        {"person_id": "a", "institution": "SH", "start_date": dt.date(2020, 3, 1), "end_date": None},
    ])
    X = PointInTimeFeatures().fit_transform(rows, as_of=as_of_dates("2020-01-01", "2020-04-30"))
    idx = [(p, d.date().isoformat()) for p, d in X.index]
    # by date, then by first appearance in the input (b's row comes first)
    assert idx == [("b", "2020-01-31"), ("b", "2020-02-29"), ("b", "2020-03-31"), ("a", "2020-03-31"),
                   ("b", "2020-04-30"), ("a", "2020-04-30")]
    assert X.loc[("b", pd.Timestamp("2020-02-29")), "current_days_alv"] == 60
    assert (X.dtypes == np.float32).all()


def test_one_date_gives_the_rows_and_index_of_many_dates(random_spells):
    """One as-of date builds its index from the person codes (no hashing): the same index, rows and
    lookups as the general path, which hashes the ids of every date."""
    ft = PointInTimeFeatures().fit(None)
    one = ft.transform(random_spells, as_of="2023-06-30")
    many = ft.transform(random_spells, as_of=["2023-05-31", "2023-06-30"])
    at = many.xs(pd.Timestamp("2023-06-30"), level="as_of", drop_level=False)
    pd.testing.assert_frame_equal(one, at)
    rebuilt = pd.MultiIndex.from_arrays([one.index.get_level_values(0), one.index.get_level_values(1)],
                                        names=["person_id", "as_of"])
    pd.testing.assert_index_equal(one.index, rebuilt, exact=True)
    for got, want in zip(one.index.levels, rebuilt.levels, strict=True):  # the same levels, in the same order
        pd.testing.assert_index_equal(got, want, exact=True)
    for got, want in zip(one.index.codes, rebuilt.codes, strict=True):
        np.testing.assert_array_equal(got, want)
    assert one.index.is_unique and one.index.levels[0].is_unique
    first = one.index[len(one) // 2]
    pd.testing.assert_series_equal(one.loc[first], at.loc[first])
    assert (one.index.get_level_values(0).tolist() == one.index.droplevel(1).tolist())


def test_protected_attributes_only_when_enabled():
    rows = to_frame([{"person_id": "a", "institution": "ALV", "start_date": dt.date(2020, 1, 1),
                      "end_date": None, "sex": "F", "nationality_group": "THIRD"}])
    X = PointInTimeFeatures().fit_transform(rows, as_of="2020-06-30")
    assert not {"sex_female", "nationality_third"} & set(X.columns)
    with pytest.warns(ProtectedAttributeWarning, match="protected"):
        ft = PointInTimeFeatures(include_protected=True).fit(rows)
    X = ft.transform(rows, as_of="2020-06-30")
    assert X[["sex_female", "nationality_eu_efta", "nationality_third"]].iloc[0].tolist() == [1.0, 0.0, 1.0]


def test_sklearn_contract_and_names():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    ft = PointInTimeFeatures(window_months=(3, 24), population="all")
    assert clone(ft).get_params() == ft.get_params()
    with pytest.raises(NotFittedError):
        ft.get_feature_names_out()
    with pytest.raises(NotFittedError):
        ft.transform(pd.DataFrame(), as_of="2020-01-01")
    names = ft.fit().get_feature_names_out()
    assert "n_transitions_3m" in names and "n_spells_alv_24m" in names
    with pytest.raises(ValueError, match="population"):
        PointInTimeFeatures(population="some").fit()
    with pytest.raises(ValueError, match="duplicate"):
        PointInTimeFeatures(window_months=(12, 12)).fit()


def test_population_all_includes_closed_persons():
    rows = to_frame([
        {"person_id": "a", "institution": "ALV", "start_date": dt.date(2020, 1, 1), "end_date": dt.date(2020, 2, 1)},
        {"person_id": "b", "institution": "SH", "start_date": dt.date(2020, 1, 1), "end_date": None},
    ])
    assert list(PointInTimeFeatures().fit_transform(rows, as_of="2020-06-30").index.get_level_values(0)) == ["b"]
    X = PointInTimeFeatures(population="all").fit_transform(rows, as_of="2020-06-30")
    assert list(X.index.get_level_values(0)) == ["a", "b"]
    assert X.loc[("a", pd.Timestamp("2020-06-30")), "days_since_last_exit"] == (dt.date(2020, 6, 30)
                                                                                 - dt.date(2020, 2, 1)).days


def test_interventions_count_from_the_first_day_of_their_window_to_t():
    """Interventions dated T count at T, those dated T+1 do not; the 12-month count starts on the window's
    first day (2023-07-01 for T = 2024-06-30), the joint assessments on the 60-month look-back's."""
    rows = to_frame([{"person_id": "a", "institution": "ALV", "start_date": dt.date(2019, 1, 1), "end_date": None}])
    dates = ["2024-07-01", "2024-06-30", "2023-07-01", "2023-06-30", "2019-07-01", "2019-06-30"]
    ivs = pd.DataFrame({"person_id": "a", "date": pd.to_datetime(dates), "type": "joint_assessment"})
    X = PointInTimeFeatures().fit_transform(rows, as_of="2024-06-30", interventions=ivs)
    got = X[["n_interventions_12m", "n_joint_assessments", "days_since_joint_assessment"]].iloc[0].tolist()
    assert got == [2, 4, 0]
    # the evening before: 2024-06-30 is T+1 and left out; the windows now open on 2023-06-30 and 2019-06-30
    X = PointInTimeFeatures().fit_transform(rows, as_of="2024-06-29", interventions=ivs)
    got = X[["n_interventions_12m", "n_joint_assessments", "days_since_joint_assessment"]].iloc[0].tolist()
    assert got == [2, 4, 364]


def test_catalogue_has_four_languages_and_renders_every_feature():
    cat = feature_catalogue(include_protected=True)
    assert len(cat) >= 30
    for lang in ("de", "fr", "it", "en"):
        assert cat[f"description_{lang}"].str.len().min() > 10
        assert cat[f"template_{lang}"].str.len().min() > 3
    # the descriptions differ between languages (translated, not copied)
    assert (cat["description_de"] != cat["description_en"]).all()
    for spec in feature_specs(include_protected=True):
        for lang in ("de", "fr", "it", "en"):
            for value in (0.0, 1.0, 7.0, float("nan")):
                text = spec.sentence(value, lang)
                assert text and "{" not in text
            if spec.unit in {"count", "days", "years"}:
                assert "7" in spec.sentence(7.0, lang)


def test_reason_sentence_example_from_the_issue():
    spec = next(s for s in feature_specs() if s.name == "n_transitions_24m")
    assert spec.sentence(3, "de") == "3 Wechsel zwischen Institutionen in den letzten 24 Monaten"
    assert spec.sentence(3, "fr") == "3 passages entre institutions au cours des 24 derniers mois"
    assert spec.sentence(3, "it") == "3 passaggi tra istituzioni negli ultimi 24 mesi"
    assert spec.sentence(3, "en") == "3 moves between institutions in the last 24 months"
    with pytest.raises(ValueError, match="language"):
        spec.sentence(3, "rm")


def test_a_shared_view_gives_the_same_features(random_spells):
    from iizrisk.view import Definitions, View

    # spells that ended before the look-back window expire: the features build their own cut view
    expiring = PointInTimeFeatures(merge_gap_days=3, transition_gap_days=30, bfs_window_months=12).fit()
    view = View.at(random_spells, "2023-03-31", Definitions(3, 30, 12))
    assert (view.timeline.end < _time.window_start(_time.day(dt.date(2023, 3, 31)), 60)).any()
    pd.testing.assert_frame_equal(expiring.transform(random_spells, as_of="2023-03-31", view=view),
                                  expiring.transform(random_spells, as_of="2023-03-31"))
    # when nothing expires, the shared view's masks are computed once and kept for the next stage
    ft = PointInTimeFeatures(merge_gap_days=3, transition_gap_days=30, bfs_window_months=12,
                             max_lookback_months=600).fit()
    direct = ft.transform(random_spells, as_of="2023-03-31")
    view = View.at(random_spells, "2023-03-31", Definitions(3, 30, 12))
    pd.testing.assert_frame_equal(ft.transform(random_spells, as_of="2023-03-31", view=view), direct)
    assert "transitions" in view.__dict__ and "flags" in view.__dict__
    # a view of other transition/window definitions shares its timeline only
    other = View.at(random_spells, "2023-03-31", Definitions(3, 90, 24))
    pd.testing.assert_frame_equal(ft.transform(random_spells, as_of="2023-03-31", view=other), direct)
    with pytest.raises(ValueError, match="merge_gap_days=3"):
        ft.transform(random_spells, as_of="2023-03-31", view=View.at(random_spells, "2023-03-31"))
    with pytest.raises(ValueError, match="2023-03-30"):
        ft.transform(random_spells, as_of="2023-03-31",
                     view=View.at(random_spells, "2023-03-30", Definitions(merge_gap_days=3)))
    with pytest.raises(ValueError, match="one as-of date"):
        ft.transform(random_spells, as_of=["2023-03-31", "2023-04-30"], view=view)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-30000, 60000)), max_size=60))
def test_person_start_order_equals_lexsort(pairs):
    from iizrisk._arrays import order_by_person_start as _order_by_person_start

    p = np.array([a for a, _ in pairs], dtype=np.int64)
    s = np.array([b for _, b in pairs], dtype=np.int64)
    np.testing.assert_array_equal(_order_by_person_start(p, s), np.lexsort((s, p)))


# ---------------------------------------------------------------- features expire
@st.composite
def rows_with_a_window_edge_on_a_row(draw, windows=(6, 12, 24, 60)):
    """Rows and an as-of date T whose window of ``w`` months starts on, or next to, a start or end of a row.

    :func:`rows_as_of_interventions` puts T next to the rows' dates; the first day of a window
    (T minus w months plus one day) then almost never meets one, and only there does ``end >= w0``
    differ from ``end > w0`` (or ``start >= w0`` from ``start > w0``).
    """
    rows = draw(spell_rows(span=1500))
    edge_row = draw(st.sampled_from(rows))
    edge = draw(st.sampled_from([d for d in (edge_row["start_date"], edge_row["end_date"]) if d is not None]))
    w0 = edge + dt.timedelta(days=draw(st.sampled_from([0, 0, -1, 1])))
    w = draw(st.sampled_from([*windows, 24, 60]))  # the BFS and the longest window's own counts: more often
    t = months_before(w0 - dt.timedelta(days=1), -w)  # the window of w months ending at t starts on w0
    # the row's person is scored at t: a registration open then (at another institution, or merged with it)
    rows = [*rows, {"person_id": edge_row["person_id"], "institution": draw(st.sampled_from(INSTS)),
                    "start_date": t - dt.timedelta(days=draw(st.integers(0, 200))), "end_date": None,
                    "exit_reason": None, "recorded_date": None, "birth_year": edge_row["birth_year"],
                    "education": edge_row["education"]}]
    frame = to_frame(rows)
    if not draw(st.booleans()):
        rows = [dict(r, recorded_date=None) for r in rows]
        frame = frame.drop(columns="recorded_date")
    return rows, frame, t


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_with_a_window_edge_on_a_row())
def test_features_match_the_reference_when_a_window_starts_on_a_row(drawn):
    """Counts over a window (institutions, days registered, spells per institution) at its first day."""
    rows, frame, t = drawn
    X = PointInTimeFeatures(include_age=True).fit_transform(frame, as_of=t)
    assert_same_features(X, ref_features(rows, t), t)


def test_a_spell_ending_on_the_first_day_of_a_window_counts_in_it():
    """T = 2024-06-30: the 6-month window starts on 2023-12-31, the 60-month one on 2019-07-01."""
    rows = to_frame([
        {"person_id": "a", "institution": "SH", "start_date": dt.date(2023, 10, 1), "end_date": dt.date(2023, 12, 31),
         "exit_reason": "employment"},
        {"person_id": "a", "institution": "ALV", "start_date": dt.date(2024, 3, 1), "end_date": None},
        {"person_id": "a", "institution": "IV", "start_date": dt.date(2019, 7, 1), "end_date": dt.date(2019, 7, 31),
         "exit_reason": "other"},
        {"person_id": "b", "institution": "SH", "start_date": dt.date(2023, 10, 1), "end_date": dt.date(2023, 12, 30),
         "exit_reason": "employment"},
        {"person_id": "b", "institution": "ALV", "start_date": dt.date(2024, 3, 1), "end_date": None},
        {"person_id": "b", "institution": "IV", "start_date": dt.date(2019, 6, 30), "end_date": dt.date(2019, 7, 31),
         "exit_reason": "other"},
    ])
    X = PointInTimeFeatures().fit_transform(rows, as_of="2024-06-30")
    a, b = X.xs("a", level="person_id").iloc[0], X.xs("b", level="person_id").iloc[0]
    assert (a["n_institutions_6m"], b["n_institutions_6m"]) == (2, 1)  # SH ended on the window's first day
    assert (a["days_registered_6m"], b["days_registered_6m"]) == (1 + 122, 122)  # 2023-12-31 + March to June
    assert (a["n_spells_iv_60m"], b["n_spells_iv_60m"]) == (1, 0)  # IV started on the window's first day


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=rows_as_of_interventions(t_range=(400, 2400)))
def test_features_with_a_short_lookback_match_the_reference(drawn):
    """A 12-month maximum look-back cuts the random spans often: the reference forgets alike."""
    rows, frame, t, ivs = drawn
    ft = PointInTimeFeatures(window_months=(6, 12), bfs_window_months=12, max_lookback_months=12,
                             include_age=True)
    X = ft.fit_transform(frame, as_of=t, interventions=iv_frame(ivs))
    ref = ref_features(rows, t, ivs, windows=(6, 12), lookback=12, bw=12)
    assert_same_features(X, ref, t)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(max_persons=3, max_rows=24, span=1200), ivs=interventions_rows(),
       t_off=st.integers(700, 1300), lookback=st.sampled_from([12, 24]))
def test_a_view_with_its_rules_computed_gives_the_reference_features(rows, ivs, t_off, lookback):
    """The nightly run has computed the view's transitions and flags before scoring: the features take
    them, deciding again only the transitions a forgotten spell could have made (a spell starting within
    the gap after the look-back window's start; a 12-month look-back cuts often): the reference's."""
    from iizrisk.view import Definitions, View

    t = D(t_off)
    ft = PointInTimeFeatures(window_months=(6, 12), bfs_window_months=12, max_lookback_months=lookback,
                             include_age=True).fit()
    frame = to_frame(rows)
    view = View.at(frame, t, Definitions(ft.merge_gap_days, ft.transition_gap_days, ft.bfs_window_months))
    _ = view.flags  # the flags stage runs before scoring (computes and caches them)
    assert view.has_rules()
    X = ft.transform(frame, as_of=t, interventions=iv_frame(ivs), view=view)
    assert_same_features(X, ref_features(rows, t, ivs, windows=(6, 12), lookback=lookback, bw=12), t)


@pytest.mark.parametrize("lookback", [12, 24, 36])
def test_the_rules_of_the_nightly_view_give_the_features_of_a_fresh_one(random_spells, lookback):
    """12,000 random spells: features from a view whose transitions and flags the flags stage computed
    equal those of a fresh build, at look-backs that forget more or less."""
    from iizrisk.view import Definitions, View

    ft = PointInTimeFeatures(window_months=(6, 12), bfs_window_months=12, max_lookback_months=lookback).fit()
    as_of = "2023-03-31"
    view = View.at(random_spells, as_of, Definitions(ft.merge_gap_days, ft.transition_gap_days, 12))
    assert (view.timeline.end < _time.window_start(_time.day(dt.date(2023, 3, 31)), lookback)).any()
    assert view.flags is not None and view.has_rules()
    pd.testing.assert_frame_equal(ft.transform(random_spells, as_of=as_of, view=view),
                                  ft.transform(random_spells, as_of=as_of))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=spell_rows(span=2400), ivs=interventions_rows(span=2400), t_off=st.integers(1900, 2600),
       data=st.data())
def test_nothing_before_the_lookback_changes_a_feature(rows, ivs, t_off, data):
    """Spells that ended before the 60-month window, and interventions before it, may change freely,
    appear or vanish: no feature at T changes (the person's attributes stay as they are)."""
    t = D(t_off)
    w_look = months_back_plus_one(t, 60)
    ft = PointInTimeFeatures()
    before = ft.fit_transform(to_frame(rows), as_of=t, interventions=iv_frame(ivs))
    old_end = w_look - dt.timedelta(days=2)  # merged spells must not touch the window either
    kept = [r for r in rows if not (r["end_date"] is not None and r["end_date"] < old_end
                                    and (r["recorded_date"] is None or r["recorded_date"] <= t))]
    # rows wholly before the window that do not touch a kept row of the same person and institution
    def free(r):
        return all(k["person_id"] != r["person_id"] or k["institution"] != r["institution"]
                   or k["start_date"] > r["end_date"] + dt.timedelta(days=1) for k in kept)
    changed = [r for r in rows if r in kept or (free(r) and data.draw(st.booleans()))]
    for _ in range(data.draw(st.integers(0, 3))):
        p = data.draw(st.sampled_from(sorted({r["person_id"] for r in rows})))
        attrs = next(r for r in rows if r["person_id"] == p)
        inst = data.draw(st.sampled_from(INSTS))
        e = old_end - dt.timedelta(days=data.draw(st.integers(0, 900)))
        s = e - dt.timedelta(days=data.draw(st.integers(0, 400)))
        new = {"person_id": p, "institution": inst, "start_date": s, "end_date": e,
               "exit_reason": data.draw(st.sampled_from(REASONS)), "recorded_date": None,
               "birth_year": attrs["birth_year"], "education": attrs["education"]}
        if free(new) and all(r["person_id"] != p or r["start_date"] > s for r in rows):
            changed.insert(0, new)  # earlier rows: the person's latest attributes stay the latest
    assume(kept)  # somebody is in the population at T
    old_ivs = [{"person_id": f"p{data.draw(st.integers(0, 3))}", "type": "joint_assessment",
                "date": w_look - dt.timedelta(days=data.draw(st.integers(1, 900)))}
               for _ in range(data.draw(st.integers(0, 3)))]
    after = ft.transform(to_frame(changed), as_of=t, interventions=iv_frame(
        [i for i in ivs if i["date"] >= w_look] + old_ivs))
    # rows come in order of first appearance, which earlier rows may change: compare by person
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


@pytest.mark.parametrize("kw", [{}, {"window_months": (3, 36), "bfs_window_months": 12, "max_lookback_months": 36},
                                {"include_protected": True, "include_age": False}])
def test_every_feature_looks_back_at_most_the_maximum(kw):
    """The catalogue walk: every feature states its look-back, none beyond the maximum, no "ever" feature."""
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("ignore", ProtectedAttributeWarning)
        ft = PointInTimeFeatures(**kw).fit()
    maximum = ft.max_lookback_months
    cat = ft.catalogue()
    assert list(cat.index) == list(ft.get_feature_names_out())
    assert cat["lookback_months"].between(0, maximum).all()
    for spec in ft.specs_:
        window = spec.param_dict.get("window")
        if window is not None:
            assert window <= spec.lookback_months <= maximum, spec
        if spec.group != "person" and spec.group != "protected":
            assert spec.lookback_months >= 1, spec  # history is bounded by a window, never "ever"
        else:
            assert spec.lookback_months == 0, spec
    assert not [n for n in cat.index if "first" in n or n.endswith("_ever")]
    assert ("age" in cat.index) == kw.get("include_age", False)
    with pytest.raises(ValueError, match="max_lookback_months=24"):
        PointInTimeFeatures(window_months=(12, 60), max_lookback_months=24).fit()


def test_a_long_registration_counts_from_the_window():
    """An IV registration open for 20 years: its duration is capped at the look-back window."""
    rows = to_frame([{"person_id": "a", "institution": "IV", "start_date": dt.date(2004, 1, 1), "end_date": None},
                     {"person_id": "a", "institution": "ALV", "start_date": dt.date(2005, 1, 1),
                      "end_date": dt.date(2005, 6, 30), "exit_reason": "benefit_exhausted"}])
    X = PointInTimeFeatures().fit_transform(rows, as_of="2024-06-30")
    w0 = months_back_plus_one(dt.date(2024, 6, 30), 60)
    assert (dt.date(2024, 6, 30) - w0).days + 1 == 1827  # this window holds two 29 Februaries
    cap = ref_shortest(60)  # ... but the count stops at the shortest 60-month window
    assert cap == 1826
    assert X["current_days_iv"].iloc[0] == cap == X["days_since_last_start"].iloc[0] + 1


def test_registered_all_along_counts_the_same_in_a_leap_year():
    """A leap day does not move a person registered every day: the day counts stop at the shortest window.

    Before the cap, days_registered_12m was 366 while a window held 29 February and 365 otherwise,
    and a stable canton's score drifted from 29 February 2020 on (issue: monitoring's false warnings).
    """
    rows = to_frame([{"person_id": "a", "institution": "SH", "start_date": dt.date(2010, 1, 1), "end_date": None},
                     {"person_id": "a", "institution": "ALV", "start_date": dt.date(2012, 1, 1), "end_date": None}])
    days = pd.date_range("2019-12-31", "2021-03-31", freq="D")
    X = pd.concat([PointInTimeFeatures().fit_transform(rows, as_of=d) for d in days[::7].append(days[-1:])])
    day_cols = [c for c in X.columns if c.startswith(("days_", "current_days"))]
    varying = {c: sorted(X[c].unique().tolist()) for c in day_cols if X[c].nunique() > 1}
    assert not varying, varying
    assert X["days_registered_12m"].iloc[0] == 365 and X["days_registered_6m"].iloc[0] == 181
    assert X["days_sh_24m"].iloc[0] == 730 and X["current_days_sh"].iloc[0] == 1826
    assert X["n_exits_benefit_exhausted"].iloc[0] == 0 and np.isnan(X["days_since_last_exit"].iloc[0])


@pytest.mark.parametrize("lookback, windows", [(60, (6, 12, 24, 60)), (36, (6, 12, 24))])
def test_counts_over_the_lookback_say_it_in_every_language(lookback, windows):
    """Exits and joint assessments count over the look-back: their texts name it, never "so far"."""
    from iizrisk._texts import LANGUAGES

    specs = [s for s in feature_specs(window_months=windows, max_lookback_months=lookback)
             if s.family in {"n_exits", "days_since_last_exit", "n_joint_assessments", "days_since_joint_assessment"}]
    assert len(specs) >= 4 and all(s.lookback_months == lookback for s in specs)
    for s in specs:
        for lang in LANGUAGES:
            texts = [s.description(lang), s.sentence(3, lang), s.sentence(1, lang), s.sentence(float("nan"), lang)]
            counted = [t for t in texts if not re.search(r"\d+ (days|Tagen|jours|giorni)", t)]
            assert counted and all(str(lookback) in t for t in counted), (s.name, lang, texts)
            low = " ".join(texts).lower()
            assert not any(w in low for w in ("so far", "bisher", "jusqu'ici", "finora", "bis zum stichtag"))
    # a spec pickled with a model fitted before the texts named the look-back renders it too
    old = FeatureSpec("n_joint_assessments", "n_joint_assessments", "count", "interventions", (), lookback)
    assert str(lookback) in old.sentence(2, "de")
