"""Worklists: the vectorised selection against a plain per-institution reference.

The reference reads like the rule in the module docstring: for each
institution, the scored people with a case open there, minus the recently
assessed ones, by risk (highest first, ties by pseudonym), at most a per-canton
number, cut at the institution's capacity; each row shows that institution's
own case ids and how many other institutions are involved (named only when
disclosed).
"""

from __future__ import annotations

import csv
import datetime
import io
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import months_before
from iizrisk.spells import build_timeline
from iizrisk.worklist import BANDS, NOTICE, band_order, build_worklists, open_cases_at

INSTS = ["ALV", "IV", "SH", "BB"]
PEOPLE = [f"p{i:02d}" for i in range(12)]
NOTICE_DE = NOTICE["de"]


def reference(scores, oc, *, capacity, capacity_per_institution, capacity_per_canton, canton_of,
              exclude, disclose, keep_off=(), min_band="low", min_band_per_institution=None):
    order = {"low": 0, "medium": 1, "high": 2}
    min_band_per_institution = min_band_per_institution or {}
    risk = dict(zip(scores["person_id"], scores["risk"], strict=True))
    band = dict(zip(scores["person_id"], scores["risk_band"], strict=True))
    rows = list(zip(oc["person_id"], oc["institution"], oc["case_id"], strict=True))
    eligible, left_off, lists, reviewed, below = {}, {}, {}, {}, {}
    for inst in sorted({i for _, i, _ in rows}):
        people = sorted({p for p, i, _ in rows if i == inst and p in risk})
        if not people:
            continue
        eligible[inst] = len(people)
        left_off[inst] = sum(p in exclude for p in people)
        reviewed[inst] = sum(p not in exclude and (inst, p) in keep_off for p in people)
        lowest = order[min_band_per_institution.get(inst, min_band)]
        below[inst] = sum(p not in exclude and (inst, p) not in keep_off and order.get(band[p], 3) < lowest
                          for p in people)
        people = [p for p in people if (inst, p) not in keep_off and order.get(band[p], 3) >= lowest]
        ranked = sorted((p for p in people if p not in exclude), key=lambda p: (-risk[p], p))
        if capacity_per_canton:
            seen: dict = {}
            kept = []
            for p in ranked:
                c = canton_of.get(p)
                seen[c] = seen.get(c, 0) + 1
                if seen[c] <= capacity_per_canton.get(c, math.inf):
                    kept.append(p)
            ranked = kept
        chosen = ranked[: capacity_per_institution.get(inst, capacity)]
        if not chosen:
            continue
        out = []
        for rank, p in enumerate(chosen, start=1):
            cases = sorted({str(c) for q, i, c in rows if q == p and i == inst and pd.notna(c)})
            others = sorted({i for q, i, _ in rows if q == p and i != inst})
            out.append({"rank": rank, "person_id": p, "case_ids": ";".join(cases) if cases else None,
                        "risk": risk[p], "risk_band": band[p], "n_other_institutions": len(others),
                        "other_institutions_disclosed": "+".join(i for i in others if i in disclose)})
        lists[inst] = out
    return eligible, left_off, lists, reviewed, below


@st.composite
def worklist_inputs(draw):
    scored = draw(st.lists(st.sampled_from(PEOPLE), unique=True, max_size=len(PEOPLE)))
    risk = draw(st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.9]), min_size=len(scored), max_size=len(scored)))
    bands = draw(st.lists(st.sampled_from(["low", "medium", "high", "b0.5"]), min_size=len(scored),
                          max_size=len(scored)))
    scores = pd.DataFrame({"person_id": pd.Series(scored, dtype="str"), "risk": np.array(risk, dtype=float),
                           "risk_band": bands})
    n = draw(st.integers(0, 25))
    oc = pd.DataFrame({
        "person_id": draw(st.lists(st.sampled_from(PEOPLE), min_size=n, max_size=n)),
        "institution": draw(st.lists(st.sampled_from(INSTS), min_size=n, max_size=n)),
        "case_id": draw(st.lists(st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])),
                                 min_size=n, max_size=n)),
    })
    if draw(st.booleans()):  # as the nightly run gives them: a categorical, categories unsorted and some unused
        cats = draw(st.permutations([*INSTS, "ZZ"]))
        oc["institution"] = pd.Categorical(oc["institution"], categories=cats)
    exclude = draw(st.sets(st.sampled_from(PEOPLE), max_size=4))
    capacity = draw(st.integers(1, 4))
    per_inst = draw(st.dictionaries(st.sampled_from(INSTS), st.integers(0, 3), max_size=2))
    canton_of = {p: draw(st.sampled_from(["ZH", "BE", None])) for p in PEOPLE}
    per_canton = draw(st.one_of(st.just({}), st.dictionaries(st.sampled_from(["ZH", "BE"]),
                                                             st.integers(0, 2), max_size=2)))
    disclose = draw(st.sets(st.sampled_from(INSTS), max_size=2))
    keep_off = draw(st.sets(st.tuples(st.sampled_from(INSTS), st.sampled_from(PEOPLE)), max_size=5))
    min_band = draw(st.sampled_from(["low", "medium", "high"]))
    min_per = draw(st.dictionaries(st.sampled_from(INSTS), st.sampled_from(["low", "medium", "high"]), max_size=2))
    return scores, oc, dict(capacity=capacity, capacity_per_institution=per_inst,
                            capacity_per_canton=per_canton, canton_of=canton_of,
                            exclude=exclude, disclose=disclose, keep_off=keep_off, min_band=min_band,
                            min_band_per_institution=min_per)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=worklist_inputs())
def test_worklists_equal_reference(data):
    scores, oc, kw = data
    want_eligible, want_left, want_lists, want_reviewed, want_below = reference(scores, oc, **kw)
    keep = pd.DataFrame(sorted(kw["keep_off"]), columns=["institution", "person_id"])
    wl = build_worklists(scores, oc, capacity=kw["capacity"],
                         capacity_per_institution=kw["capacity_per_institution"],
                         capacity_per_canton=kw["capacity_per_canton"],
                         canton_of=pd.Series(kw["canton_of"]) if kw["capacity_per_canton"] else None,
                         exclude=np.array(sorted(kw["exclude"]), dtype=object),
                         disclose_institutions=sorted(kw["disclose"]), keep_off=keep,
                         min_band=kw["min_band"], min_band_per_institution=kw["min_band_per_institution"])
    assert wl.eligible == want_eligible
    assert wl.left_off_assessed == want_left
    assert wl.left_off_reviewed == want_reviewed and wl.below_min_band == want_below
    assert list(wl.lists) == list(want_lists)
    for inst, want in want_lists.items():
        got = wl[inst]
        assert (got["institution"] == inst).all()
        cols = list(want[0])
        records = got[cols].astype(object).where(got[cols].notna(), None).to_dict("records")
        assert records == want
        assert got["new_on_list"].all()


@given(st.lists(st.one_of(st.none(), st.sampled_from(["low", "medium", "high", "x", " low", "Low", ""])),
                max_size=30), st.sampled_from(["list", "object", "str", "category"]))
def test_band_order_equals_the_index_lookup(names, kind):
    want = pd.Index(BANDS).get_indexer(pd.Index(np.asarray(names, dtype=object)))
    want = np.where(want < 0, len(BANDS), want)
    values = {"list": names, "object": np.asarray(names, dtype=object), "str": pd.Series(names, dtype="str"),
              "category": pd.Series(names, dtype="category")}[kind]
    got = band_order(values)
    assert got.dtype == np.int64 and got.tolist() == want.tolist()


def test_worklists_marks_new_and_joins_flags():
    scores = pd.DataFrame({"person_id": ["a", "b", "c"], "risk": [0.9, 0.5, 0.1],
                           "risk_band": ["high", "medium", "low"]})
    oc = pd.DataFrame({"person_id": ["a", "b", "c"], "institution": ["SH"] * 3, "case_id": ["1", "2", "3"]})
    flags = pd.DataFrame({"person_id": ["c", "b", "a", "z"], "multi_registered": [False, True, False, True],
                          "as_of": pd.Timestamp("2024-06-30")})
    previous = pd.DataFrame({"institution": ["SH", "ALV"], "person_id": ["a", "b"]})
    wl = build_worklists(scores, oc, capacity=2, flags=flags, previous=previous)
    sh = wl["SH"]
    assert sh["person_id"].tolist() == ["a", "b"]
    assert sh["multi_registered"].tolist() == [False, True]
    assert sh["new_on_list"].tolist() == [False, True]
    assert "as_of" not in sh.columns


def test_worklists_refuse_repeated_scores():
    scores = pd.DataFrame({"person_id": ["a", "a"], "risk": [0.1, 0.2], "risk_band": ["low", "low"]})
    oc = pd.DataFrame({"person_id": ["a"], "institution": ["SH"], "case_id": ["1"]})
    try:
        build_worklists(scores, oc)
    except ValueError as exc:
        assert "one row per scored person" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("repeated person_id accepted")


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "ba", "b\u00e9", ""])), max_size=8))
def test_worklists_refuse_repeated_scores_exactly_when_an_id_repeats(ids):
    scores = pd.DataFrame({"person_id": pd.Series(ids, dtype="str"), "risk": np.linspace(0, 1, len(ids)),
                           "risk_band": "low"})
    oc = pd.DataFrame({"person_id": ["a"], "institution": ["SH"], "case_id": ["1"]})
    repeats = pd.Series(ids, dtype=object).duplicated().any()  # missing ids repeat too
    try:
        build_worklists(scores, oc)
    except ValueError as exc:
        assert repeats and "one row per scored person" in str(exc)
    else:
        assert not repeats


def test_open_cases_at_timeline():
    rows = pd.DataFrame({
        "person_id": ["a", "a", "b", "c"], "institution": ["ALV", "SH", "SH", "IV"],
        "case_id": ["A1", None, "S2", "I3"],
        "start_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2023-01-01", "2024-03-01"]),
        "end_date": pd.to_datetime([None, None, "2023-06-30", None]),
    })
    oc = open_cases_at(build_timeline(rows, as_of="2024-06-30"))
    got = sorted(zip(oc["person_id"], oc["institution"].astype(str), oc["case_id"], strict=True),
                 key=lambda r: (r[0], r[1]))
    assert [(p, i, None if pd.isna(c) else c) for p, i, c in got] == [
        ("a", "ALV", "A1"), ("a", "SH", None), ("c", "IV", "I3")]


# ---------------------------------------------------------------- privacy: only the institution's own case ids
@st.composite
def open_cases_across_institutions(draw):
    """Open cases of a few people at several institutions; ids often alike, some holding ';'."""
    n = draw(st.integers(0, 30))
    people = draw(st.lists(st.sampled_from(PEOPLE), min_size=n, max_size=n))
    insts = draw(st.lists(st.sampled_from(INSTS), min_size=n, max_size=n))
    suffix = st.sampled_from(["1", "2", "1;2", "x", ""])
    ids = [None if draw(st.booleans()) and draw(st.booleans()) else f"{i}-{draw(suffix)}" for i in insts]
    oc = pd.DataFrame({"person_id": people, "institution": insts, "case_id": ids})
    scored = sorted(set(people) | set(draw(st.lists(st.sampled_from(PEOPLE), max_size=3))))
    risk = draw(st.lists(st.floats(0, 1), min_size=len(scored), max_size=len(scored)))
    scores = pd.DataFrame({"person_id": scored, "risk": risk, "risk_band": "low"})
    return scores, oc, draw(st.integers(1, 5))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=open_cases_across_institutions())
def test_listed_case_ids_are_the_institutions_own_open_cases(data):
    scores, oc, capacity = data
    wl = build_worklists(scores, oc, capacity=capacity, disclose_institutions=["IV"])
    for inst in wl:
        for person, shown in zip(wl[inst]["person_id"], wl[inst]["case_ids"], strict=True):
            own = {c for p, i, c in zip(oc["person_id"], oc["institution"], oc["case_id"], strict=True)
                   if p == person and i == inst}
            assert own, f"{inst} lists a person without an open case there"
            ids = {c for c in own if pd.notna(c)}
            if pd.isna(shown):
                assert not ids
            else:
                assert shown == ";".join(sorted(ids))
                assert all(part.startswith(f"{inst}-") for part in shown.split(";") if not part.isdigit())


def test_own_case_check_refuses_a_foreign_case_id():
    from iizrisk.errors import EXIT_INTERNAL, InternalError
    from iizrisk.worklist import _check_own_cases

    scores = pd.DataFrame({"person_id": ["a", "b"], "risk": [0.9, 0.5], "risk_band": "high"})
    oc = pd.DataFrame({"person_id": ["a", "a", "b"], "institution": ["ALV", "SH", "SH"],
                       "case_id": ["A1", "S-secret", "S2"]})
    wl = build_worklists(scores, oc, capacity=5)
    _check_own_cases(wl.lists, oc)  # the real result passes
    leaked = {k: v.copy() for k, v in wl.lists.items()}
    leaked["ALV"]["case_ids"] = "A1;S-secret"
    with pytest.raises(InternalError) as exc:
        _check_own_cases(leaked, oc)
    assert exc.value.exit_code == EXIT_INTERNAL
    assert "ALV" in str(exc.value) and "S-secret" not in str(exc.value) and "'a'" not in str(exc.value)
    stranger = {k: v.copy() for k, v in wl.lists.items()}
    stranger["ALV"] = pd.concat([stranger["ALV"], stranger["SH"][stranger["SH"]["person_id"] == "b"]
                                 .assign(institution="ALV", case_ids=None)], ignore_index=True)
    with pytest.raises(InternalError, match="1 row"):
        _check_own_cases(stranger, oc)


# ---------------------------------------------------------------- CSV for spreadsheets, no formula injection
FORMULA_FIRST = ("=", "+", "-", "@", "\t", "\r")


def _read_like_a_spreadsheet(path):
    """Cells as a spreadsheet splits them: UTF-8 with BOM, ';' between cells."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.one_of(st.none(), st.text(max_size=6),
                                st.sampled_from(FORMULA_FIRST).flatmap(lambda c: st.text(max_size=5).map(c.__add__))),
                      min_size=1, max_size=8),
       numbers=st.lists(st.floats(-1e6, 1e6), min_size=8, max_size=8))
def test_write_worklist_csv_neutralises_formulas(tmp_path_factory, texts, numbers):
    from iizrisk.worklist import write_worklist_csv

    n = len(texts)
    df = pd.DataFrame({"case_ids": pd.Series(texts, dtype="str"),
                       "reason_1_text": pd.Series(texts[::-1], dtype=object),
                       "risk_band": pd.Categorical(texts),
                       "risk": numbers[:n], "rank": -np.arange(n), "new_on_list": True,
                       "-n": 1, "=SUM(A1)": "x"})
    path = write_worklist_csv(df, tmp_path_factory.mktemp("csv") / "ALV.csv")
    rows = _read_like_a_spreadsheet(path)
    assert len(rows) == n + 1  # a line break inside a cell never ends the row
    header, body = rows[0], rows[1:]
    assert header[:6] == ["case_ids", "reason_1_text", "risk_band", "risk", "rank", "new_on_list"]
    assert header[6:] == ["'-n", "'=SUM(A1)"]
    numeric = {"risk", "rank", "'-n"}
    for row in body:
        for name, cell in zip(header, row, strict=True):
            if name in numeric:
                float(cell)  # numbers stay numbers (negative ones too)
            else:
                assert not cell.startswith(FORMULA_FIRST), (name, cell)
    back = pd.read_csv(path, sep=";", encoding="utf-8-sig", keep_default_na=False, dtype=str)
    for col in ("case_ids", "reason_1_text", "risk_band"):
        want = ["" if pd.isna(t) else ("'" + t if t.startswith(FORMULA_FIRST) else t) for t in df[col]]
        assert back[col].tolist() == [w.replace("\r\n", "\n").replace("\r", "\n") for w in want]
    assert np.allclose(back["risk"].astype(float), df["risk"])
    assert (back["rank"].astype(int) == df["rank"]).all()


def test_write_worklist_csv_writes_like_the_run_folder(tmp_path):
    from iizrisk.worklist import write_worklist_csv

    df = pd.DataFrame({"institution": ["ALV", "ALV"], "rank": [1, 2], "case_ids": ["A1", "A2;A3"],
                       "risk": [0.5, -0.25], "notice": [NOTICE_DE, NOTICE_DE]})
    path = write_worklist_csv(df, tmp_path / "w" / "ALV.csv")
    df.to_csv(tmp_path / "plain.csv", index=False, sep=";", encoding="utf-8-sig", lineterminator="\n")
    assert path.read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert not [p.name for p in path.parent.iterdir() if p.name != "ALV.csv"]  # no temporary file left


# ------------------------------------------------------------------ ranks mean something (issue 17, item 4)
from sklearn.base import BaseEstimator  # noqa: E402 - the fake model of this section only


class _StepModel(BaseEstimator):
    """A fitted-looking model whose calibrated risk is a step function of its score, as isotonic calibration
    makes it: many people share a risk, while their uncalibrated scores (``decision_function``) differ."""

    outcome = "revolving_door"
    features = None
    estimator_ = True

    def fit(self, X=None, y=None):  # an estimator for scikit-learn's fitted check
        return self

    def __init__(self, weights, steps):
        self.weights, self.steps = np.asarray(weights, dtype=float), np.sort(np.asarray(steps, dtype=float))

    def decision_function(self, X):
        cols = X.to_numpy(dtype=float, na_value=0.0)[:, : len(self.weights)]
        return np.round(cols @ self.weights, 1)  # rounded: some people have truly equal scores

    def predict_proba(self, X):
        s = self.decision_function(X)
        p = (np.searchsorted(self.steps, s, side="right") + 1) / (len(self.steps) + 2)
        return np.c_[1 - p, p]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]), min_size=3, max_size=3),
       st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=4))
def test_ranks_tie_only_where_the_uncalibrated_scores_are_equal(random_spells, weights, steps):
    from iizrisk.model import score

    model = _StepModel(weights, steps)
    s, X = score(model, random_spells, as_of="2023-06-30", return_features=True)
    raw = model.decision_function(X)  # in rank order
    risk = s["risk"].to_numpy()
    assert (np.diff(risk) <= 0).all()
    equal_risk = np.diff(risk) == 0
    # equal risks are ordered by the uncalibrated score: a tie that remains is a tie of that score too
    assert (np.diff(raw)[equal_risk] <= 0).all()
    # the lists keep that order: within a list, equal risks follow the score's rank
    oc = open_cases_at(build_timeline(random_spells, as_of=pd.Timestamp("2023-06-30").date()))
    wl = build_worklists(s, oc, capacity=40, min_band="low")
    pos = pd.Series(np.arange(len(s)), index=s["person_id"])
    for df in wl.lists.values():
        assert (np.diff(pos.loc[df["person_id"]].to_numpy()) > 0).all()



@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(),
       as_of=st.one_of(st.sampled_from([datetime.date(2024, 2, 29), datetime.date(2024, 3, 31),
                                        datetime.date(2023, 12, 31), datetime.date(2024, 6, 30)]),
                       st.dates(datetime.date(2015, 1, 1), datetime.date(2030, 12, 31))),
       months=st.integers(-1, 25), types=st.sampled_from([("joint_assessment",),
                                                          ("joint_assessment", "case_review")]),
       as_text=st.booleans())
def test_recently_assessed_equals_the_slow_reference(data, as_of, months, types, as_text):
    """Assessed in the ``months`` months ending at T: after T minus ``months`` months, up to T itself.
    An assessment after T (the run's future) never takes a person off tonight's list."""
    from iizrisk.worklist import recently_assessed

    lo = months_before(as_of, months)  # the day before the window's first day
    day = st.one_of(st.sampled_from([as_of + datetime.timedelta(days=1), as_of, lo,
                                     lo + datetime.timedelta(days=1), lo - datetime.timedelta(days=1)]),
                    st.dates(lo - datetime.timedelta(days=60), as_of + datetime.timedelta(days=60)))
    rows = data.draw(st.lists(st.tuples(st.sampled_from(PEOPLE), day,
                                        st.sampled_from(["joint_assessment", "case_review", "phone_call"])),
                              max_size=20))
    iv = pd.DataFrame(rows, columns=["person_id", "date", "type"])
    iv["date"] = iv["date"].astype(str) if as_text else pd.to_datetime(iv["date"])
    got = recently_assessed(iv, pd.Timestamp(as_of), months, types)
    want = {p for p, d, ty in rows if lo < d <= as_of and ty in types}
    assert sorted(got) == sorted(want) and len(got) == len(set(got))
    assert recently_assessed(None, as_of, months).tolist() == []
