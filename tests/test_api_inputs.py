"""Wrong, hostile or missing inputs to the public functions: clear errors of iizrisk's own classes.

Found by fuzzing the public API (``iizrisk.__all__``): raw pandas/numpy exceptions (KeyError, TypeError,
OverflowError, "Error parsing datetime string"), float dates silently read as day numbers, plain
ValueErrors for bad options. Data problems are :class:`ValidationError` (exit 1), bad options
:class:`ConfigError` (exit 2); both are ValueErrors, so ``except ValueError`` still catches them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iizrisk
from iizrisk.errors import ConfigError, ValidationError

AHV = "7561234567897"


def _rows() -> pd.DataFrame:
    return pd.DataFrame({"person_id": ["a", "a", "b"], "institution": ["ALV", "SH", "IV"],
                         "start_date": pd.to_datetime(["2023-01-01", "2023-03-01", "2023-02-01"]),
                         "end_date": pd.to_datetime(["2023-02-28", None, None])})


#: the public functions taking a spells frame and an as-of date
CALLS = {
    "compute_flags": lambda s, as_of="2023-06-30": iizrisk.compute_flags(s, as_of),
    "point_in_time": lambda s, as_of="2023-06-30": iizrisk.point_in_time(s, as_of),
    "build_timeline": lambda s, as_of="2023-06-30": iizrisk.build_timeline(s, as_of=as_of),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("column, values, words", [
    ("start_date", "garbage", "column 'start_date' holds values that are not dates"),
    ("start_date", AHV, "column 'start_date' holds values that are not dates"),
    ("end_date", "2023-13-45", "column 'end_date' holds values that are not dates"),
    ("recorded_date", "x", "column 'recorded_date' holds values that are not dates"),
    ("start_date", 1.5, "column 'start_date' holds numbers, not dates"),
    ("start_date", 19_000, "column 'start_date' holds numbers, not dates"),
    ("end_date", True, "column 'end_date' holds true/false values, not dates"),
])
def test_a_date_column_that_is_not_dates_is_refused_naming_it(call, column, values, words):
    with pytest.raises(ValidationError, match=words) as exc:
        call(_rows().assign(**{column: values}))
    msg = str(exc.value)
    assert "iizrisk.ingest" in msg and f"pandas.to_datetime(spells[{column!r}]" in msg
    assert AHV not in msg


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_dates_as_datetime64_text_or_date_objects_are_read_alike(call):
    rows = _rows()
    text = rows.assign(start_date=rows["start_date"].dt.strftime("%Y-%m-%d"))
    objects = rows.assign(start_date=[d.date() for d in rows["start_date"]])
    zoned = rows.assign(start_date=rows["start_date"].dt.tz_localize("UTC"))
    want = call(rows)
    for other in (text, objects, zoned, rows.assign(start_date=rows["start_date"].astype("datetime64[ms]"))):
        got = call(other)
        assert len(got) == len(want)


def test_a_zoned_timestamp_counts_on_its_local_day():
    """00:30 on 2 January in Zurich is 23:30 on 1 January in UTC: the spell starts on the 2nd, as ingestion reads it."""
    from iizrisk.spells import point_in_time

    zoned = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
                          "start_date": pd.to_datetime(["2020-01-02 00:30", "2019-05-01 00:00"])
                          .tz_localize("Europe/Zurich")})
    assert point_in_time(zoned, "2020-01-01")["person_id"].tolist() == ["b"]
    assert point_in_time(zoned, "2020-01-02")["person_id"].tolist() == ["a", "b"]


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_missing_or_doubled_column_and_a_multiindex_are_refused(call):
    with pytest.raises(ValidationError, match=r"required column\(s\) \['start_date'\] missing"):
        call(_rows().drop(columns="start_date"))
    multi = _rows()
    multi.columns = pd.MultiIndex.from_tuples([(c, "x") for c in multi.columns])
    with pytest.raises(ValidationError, match="2 levels \\(a MultiIndex\\)"):
        call(multi)
    doubled = pd.concat([_rows(), _rows()[["start_date"]]], axis=1)
    with pytest.raises(ValidationError, match=r"\['start_date'\] appear more than once"):
        call(doubled)


def test_a_header_holding_an_ahv_number_is_not_echoed():
    rows = _rows().rename(columns={"start_date": AHV})
    with pytest.raises(ValidationError, match="missing") as exc:
        iizrisk.build_timeline(rows)
    assert AHV not in str(exc.value)


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("as_of, words", [
    ("2025-02-30", "not a calendar day"),
    ("garbage", "not in the form YYYY-MM-DD"),
    ("30.06.2025", "write 2025-06-30"),
    (20250630, "for that date write '2025-06-30'"),
    (int(AHV), "value withheld"),
    (10**30, "value withheld"),
    (float("nan"), "as_of is missing"),
    (True, "not a bool"),
    (pd.NaT, "no date"),
    (dt.date(1066, 10, 14), "outside 1900-01-01 to 2199-12-31"),
])
def test_a_bad_as_of_is_a_config_error(call, as_of, words):
    with pytest.raises(ConfigError, match=words) as exc:
        call(_rows(), as_of)
    assert exc.value.exit_code == 2 and AHV not in str(exc.value)


@pytest.mark.parametrize("name", ["compute_flags", "point_in_time"])
def test_as_of_none_is_a_config_error_where_a_date_is_needed(name):
    with pytest.raises(ConfigError, match="as_of is missing"):
        CALLS[name](_rows(), None)
    assert len(iizrisk.build_timeline(_rows(), as_of=None)) == 3  # the full data


def test_as_of_in_every_date_form_gives_one_day():
    want = iizrisk.as_of_day("2023-06-30")
    for form in (dt.date(2023, 6, 30), dt.datetime(2023, 6, 30, 13), pd.Timestamp("2023-06-30"),
                 np.datetime64("2023-06-30"), " 2023-06-30 ", want, np.int32(want)):
        assert iizrisk.as_of_day(form) == want


@pytest.mark.parametrize("kwargs, words", [
    ({"window_months": 0}, "window_months must be a whole number of months from 1 to 1200"),
    ({"window_months": 10**6}, "window_months must be"),
    ({"window_months": 1.5}, "window_months must be"),
    ({"transition_gap_days": -1}, "transition_gap_days must be a whole number of days from 0"),
    ({"transition_gap_days": 1.5}, "transition_gap_days must be an int"),
    ({"merge_gap_days": 10**12}, "merge_gap_days must be a whole number of days"),
])
def test_bad_flag_options_are_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        iizrisk.compute_flags(_rows(), "2023-06-30", **kwargs)


def test_a_timeline_of_another_day_is_a_config_error():
    with pytest.raises(ConfigError, match="point-in-time view"):
        iizrisk.compute_flags(iizrisk.build_timeline(_rows()), "2023-06-30")
    with pytest.raises(ConfigError, match="mode must be one of"):
        iizrisk.build_timeline(_rows(), mode="weekly")


@pytest.mark.parametrize("horizon", [0, -12, 1201, 1.5, True, "12"])
def test_compute_outcome_refuses_a_horizon_that_is_no_whole_positive_number_of_months(horizon):
    with pytest.raises(ConfigError, match="horizon_months must be a whole number of months from 1 to 1200"):
        iizrisk.compute_outcome(_rows(), "2023-03-31", horizon_months=horizon)


def test_compute_outcome_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="unknown outcome 'nope'; registered: revolving_door"):
        iizrisk.compute_outcome(_rows(), "2023-03-31", outcome="nope")
    with pytest.raises(ConfigError, match="unknown outcome '<withheld>'"):
        iizrisk.compute_outcome(_rows(), "2023-03-31", outcome=AHV)
    with pytest.raises(ConfigError, match="as_of is missing"):
        iizrisk.compute_outcome(_rows())
    with pytest.raises(ConfigError, match="observed_until"):
        iizrisk.compute_outcome(iizrisk.build_timeline(_rows()), "2023-03-31")
    assert len(iizrisk.compute_outcome(_rows(), "2023-03-31", horizon_months=1)) == 2


def test_ingest_reads_a_zoned_date_column_on_its_local_day():
    zoned = _rows().assign(start_date=_rows()["start_date"].dt.tz_localize("Europe/Zurich"))
    got = iizrisk.ingest(zoned, pseudonym_pattern=None).spells
    assert got["start_date"].tolist() == _rows()["start_date"].tolist()


@pytest.mark.parametrize("source", [None, 5, ["a.csv"], {"person_id": ["a"]}])
def test_ingest_refuses_a_source_that_is_no_path_or_frame_naming_it(source):
    with pytest.raises(TypeError, match="source must be a path .* got "):
        iizrisk.ingest(source)


def test_ingest_refusal_names_the_column_rows_and_fix_without_values():
    with pytest.raises(ValidationError) as exc:
        iizrisk.ingest(_rows().assign(institution="alv", person_id=AHV[:-1] + "x"), pseudonym_pattern=None)
    msg = str(exc.value)
    assert "column 'institution': unknown institution code: 3 rows, rows 1, 2, 3" in msg and "Fix: use one of" in msg
    assert "(e.g." not in msg and AHV[:-1] not in msg


def _features(interventions):
    return iizrisk.PointInTimeFeatures().fit(None).transform(_rows(), as_of="2023-06-30",
                                                             interventions=interventions)


def _interventions(**columns) -> pd.DataFrame:
    return pd.DataFrame({"person_id": ["a"], "date": pd.to_datetime(["2023-04-01"]), "type": ["joint_assessment"],
                         **columns})


@pytest.mark.parametrize("date, words", [
    (19_000, "holds numbers, not dates"),
    (True, "holds true/false values, not dates"),
    ("01.04.2023", "holds values that are not dates"),
])
def test_interventions_dates_that_are_not_dates_are_refused_not_read_as_day_numbers(date, words):
    with pytest.raises(ValidationError, match=f"interventions: column 'date' {words}.*read_interventions"):
        _features(_interventions(date=[date]))


def test_interventions_that_are_no_frame_are_refused_naming_the_argument():
    with pytest.raises(TypeError, match="interventions must be a pandas DataFrame .* got str"):
        _features("interventions.csv")
    multi = _interventions()
    multi.columns = pd.MultiIndex.from_tuples([(c, "x") for c in multi.columns])
    with pytest.raises(ValidationError, match="interventions: the column names have 2 levels"):
        _features(multi)
    text = _interventions(date=["2023-04-01"])  # YYYY-MM-DD text still reads
    assert _features(text).equals(_features(_interventions()))


@pytest.mark.parametrize("windows", [(0,), (6.5,), (float("nan"),), "12", (True,)])
def test_window_months_that_are_no_whole_positive_months_are_config_errors(windows):
    with pytest.raises(ConfigError, match="window_months must be positive month counts"):
        iizrisk.PointInTimeFeatures(window_months=windows).fit(None)


def test_score_refuses_a_path_or_a_frame_as_the_model_without_echoing_the_frame():
    rows = _rows().assign(person_id="p" + "0" * 60 + "ab")
    with pytest.raises(TypeError, match=r"got a path; load a saved model first: model = iizrisk.load_model"):
        iizrisk.score("models/current", rows, as_of="2023-06-30")
    with pytest.raises(TypeError, match="got DataFrame; the spells are the second argument") as exc:
        iizrisk.score(rows, rows, as_of="2023-06-30")
    assert "0" * 60 not in str(exc.value)


def test_score_and_train_refuse_spells_that_are_no_frame():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="spells must be a pandas DataFrame of canonical rows, got str"):
        iizrisk.score(LogisticRegression(), "spells.csv", as_of="2023-06-30")
    with pytest.raises(TypeError, match="spells must be a pandas DataFrame of canonical rows, got str"):
        iizrisk.train("spells.csv")


@pytest.mark.parametrize("horizon", [float("nan"), 12.0, 0])
def test_train_refuses_a_bad_horizon_before_any_work(horizon):
    with pytest.raises(ConfigError, match="horizon_months must be a whole number of months"):
        iizrisk.train(_rows(), horizon_months=horizon)


def _year_rows() -> pd.DataFrame:
    return pd.DataFrame({"person_id": list("aabbc"), "institution": ["ALV", "SH", "SH", "ALV", "IV"],
                         "start_date": pd.to_datetime(["2020-01-01", "2020-09-01", "2020-01-01", "2020-01-01",
                                                       "2019-06-01"]),
                         "end_date": pd.to_datetime(["2020-08-01", None, None, "2020-03-31", "2021-12-31"])})


@pytest.mark.parametrize("k", [float("nan"), -1, 2.5, True, None])
@pytest.mark.parametrize("call", [iizrisk.bfs_indicators, iizrisk.transition_matrix])
def test_a_min_cell_size_that_would_publish_small_cells_is_a_config_error(call, k):
    """nan compares false with every count: it published every small cell."""
    with pytest.raises(ConfigError, match="min_cell_size must be a whole number of people from 0"):
        call(_year_rows(), 2020, min_cell_size=k)


@pytest.mark.parametrize("gap", [float("nan"), -1, 1.5])
@pytest.mark.parametrize("call", [iizrisk.bfs_indicators, iizrisk.transition_matrix])
def test_a_bad_transition_gap_is_a_config_error(call, gap):
    with pytest.raises(ConfigError, match="gap_days must be"):
        call(_year_rows(), 2020, gap_days=gap, min_cell_size=0)


def test_result_objects_refuse_bad_output_options_naming_them(tmp_path):
    res = iizrisk.bfs_indicators(_year_rows(), 2020, min_cell_size=0)
    with pytest.raises(TypeError, match="output folder must be a path .* got DataFrame"):
        res.to_dir(_year_rows())
    report = iizrisk.ingest(_rows(), pseudonym_pattern=None).report
    with pytest.raises(TypeError, match="output folder must be a path .* got NoneType"):
        report.to_dir(None)
    with pytest.raises(ConfigError, match="min_cell_size must be a whole number"):
        report.to_dir(tmp_path, min_cell_size=float("nan"))


class _Result:
    """The least a result object needs for the shared :meth:`~iizrisk._results.ResultMixin.summary_text`."""

    summary = pd.DataFrame({"share": [0.5]})

    def _title(self) -> str:
        return "shares"


@pytest.mark.parametrize("decimals", [float("nan"), -1, 2.5, None])
def test_print_summary_refuses_decimals_that_are_no_digit_count(decimals):
    from iizrisk._results import ResultMixin

    assert ResultMixin.summary_text(_Result(), 2) == "shares\n   share\n0   0.50"
    with pytest.raises(ConfigError, match="decimals must be a whole number of digits from 0 to 15"):
        ResultMixin.summary_text(_Result(), decimals)


# ------------------------------------------------------------------ FairnessAudit, AssessmentStudy, risk_set_table
def _audit_data(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n),
                         "person_id": [f"p{i}" for i in range(n)]})
    data["label"] = rng.random(n) < data["score"]
    return data


def _audit(data: pd.DataFrame, **options):
    import warnings

    from iizrisk.fairness import FairnessAudit, FairnessGapWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessGapWarning)  # the random data's gaps are not the point here
        return FairnessAudit(**{"groups": ["sex"], "capacity": 20, "n_bootstrap": 5, **options}).fit(data)


@pytest.mark.parametrize("label", [np.array(["no", "yes"] * 100), np.array(["False", "True"] * 100),
                                   np.array([-1, 1] * 100), np.array([0, 2] * 100), np.full(200, 0.5)])
@pytest.mark.parametrize("column", ["label", "flagged"])
def test_fairness_labels_and_flags_that_are_no_true_false_are_refused_not_read_as_true(label, column):
    """"no", "False", -1, 2 and 0.5 all read as True: every person had the outcome (or was flagged)."""
    data = _audit_data().assign(**{column: label})
    before = data.copy()
    with pytest.raises(ValidationError, match=f"column {column!r} .* must hold true/false or 0/1") as exc:
        _audit(data, flagged_column="flagged" if column == "flagged" else None)
    assert "'yes'" not in str(exc.value) and "'no'" not in str(exc.value)  # values are not echoed
    pd.testing.assert_frame_equal(data, before)
    ok = _audit(_audit_data().assign(label=lambda d: d["label"].astype(int)))  # 0/1 numbers still read
    assert ok.summary["n_positive"].iloc[0] == _audit_data()["label"].sum()


@pytest.mark.parametrize("options, words", [
    ({"n_bootstrap": float("nan")}, "n_bootstrap must be a whole number"),
    ({"n_bootstrap": 2.5}, "n_bootstrap must be a whole number"),
    ({"n_bootstrap": True}, "n_bootstrap must be a whole number"),
    ({"n_bootstrap": float("inf")}, "n_bootstrap must be a whole number"),
    ({"min_cell_size": 2.5}, "min_cell_size must be a whole number of people"),
    ({"min_cell_size": float("nan")}, "min_cell_size must be a whole number of people"),
    ({"min_cell_size": True}, "min_cell_size must be a whole number of people"),
    ({"calibration_bins": 2.5}, "calibration_bins must be a whole number"),
    ({"calibration_bins": float("nan")}, "calibration_bins must be a whole number"),
    ({"confidence": "0.9"}, "confidence must be a number between 0 and 1"),
    ({"random_state": "a"}, "random_state must be a whole number"),
    ({"reference": "M"}, "reference must be a dict"),
    ({"intersections": "all"}, "intersections must be 'pairs', None or a list"),
    ({"gap_metrics": "flag_rate"}, "gap_metrics must be a list of metric names"),
])
def test_fairness_bad_options_are_config_errors_naming_them(options, words):
    with pytest.raises(ConfigError, match=words):
        _audit(_audit_data(), **options)


@pytest.mark.parametrize("capacity", [float("nan"), float("inf"), "20"])
def test_fairness_a_capacity_that_is_no_finite_number_is_refused(capacity):
    with pytest.raises(ValueError, match="capacity must be a positive number of people or a share"):
        _audit(_audit_data(), capacity=capacity)


def test_fairness_max_gap_that_is_no_number_is_refused_naming_it():
    with pytest.raises(ValueError, match="max_gap must be a number above 0"):
        _audit(_audit_data(), max_gap="0.1")


@pytest.mark.parametrize("option", ["capacity", "max_gap", "random_state", "n_bootstrap", "confidence"])
def test_fairness_an_ahv_number_typed_into_an_option_is_not_echoed(option):
    with pytest.raises(ValueError) as exc:
        _audit(_audit_data(), **{option: AHV})
    assert AHV not in str(exc.value) and option in str(exc.value)


def test_fairness_empty_data_doubled_columns_and_missing_person_ids_are_refused():
    with pytest.raises(ValidationError, match="data has no rows"):
        _audit(_audit_data().iloc[:0])
    doubled = pd.concat([_audit_data(), _audit_data()[["score"]]], axis=1)
    with pytest.raises(ValidationError, match=r"column name\(s\) \['score'\] appear more than once"):
        _audit(doubled)
    # every replicate would draw the one "person" of all the missing ids: intervals of width zero
    with pytest.raises(ValidationError, match="'person_id' .* 200 missing value.*cluster_column=None"):
        _audit(_audit_data().assign(person_id=None))
    assert _audit(_audit_data().assign(person_id=None), cluster_column=None).n_ == 200


def test_fairness_one_group_name_is_one_column_not_its_letters():
    assert list(_audit(_audit_data(), groups="sex").summary["group"]) == ["all", "F", "M"]


def _study_inputs(**columns):
    spells = _rows()
    interventions = pd.DataFrame({"person_id": ["a"], "date": pd.to_datetime(["2023-04-01"]),
                                  "type": ["joint_assessment"], **columns})
    return spells, interventions


@pytest.mark.parametrize("date, words", [
    ("01.04.2023", "holds values that are not dates"),
    (20230401, "holds numbers, not dates"),
])
def test_risk_set_table_refuses_intervention_dates_that_are_not_dates(date, words):
    """dd.mm.yyyy text raised pandas' "Error parsing datetime string"; numbers were read as day counts."""
    from iizrisk.evaluation import risk_set_table

    spells, interventions = _study_inputs(date=[date])
    with pytest.raises(ValidationError, match=f"interventions: column 'date' {words}"):
        risk_set_table(spells, interventions, observed_until="2024-12-31")


@pytest.mark.parametrize("options, words", [
    ({"controls_per_treated": float("nan")}, "controls_per_treated must be a whole number"),
    ({"controls_per_treated": 2.5}, "controls_per_treated must be a whole number"),
    ({"controls_per_treated": True}, "controls_per_treated must be a whole number"),
    ({"controls_per_treated": "3"}, "controls_per_treated must be a whole number"),
    ({"horizon_months": 2.5}, "horizon_months must be a whole number of months"),
    ({"horizon_months": 0}, "horizon_months must be a whole number of months"),
    ({"horizon_months": True}, "horizon_months must be a whole number of months"),
    ({"exit_months": 0}, "exit_months must be a whole number"),
    ({"exit_months": -2}, "exit_months must be a whole number"),
    ({"exit_months": float("nan")}, "exit_months must be a whole number"),
    ({"episode_days": (float("nan"), 10)}, "episode_days must be"),
    ({"random_state": "x"}, "random_state must be a whole number"),
])
def test_risk_set_table_bad_whole_numbers_are_config_errors(options, words):
    from iizrisk.evaluation import risk_set_table

    spells, interventions = _study_inputs()
    with pytest.raises(ConfigError, match=words):
        risk_set_table(spells, interventions, **options)


@pytest.mark.parametrize("options, words", [
    ({"method": None}, "method must be one of"),
    ({"method": "psm"}, "method must be one of"),
    ({"caliper": float("nan")}, "caliper must be a number >= 0"),
    ({"caliper": "0.2"}, "caliper must be a number >= 0"),
    ({"followup_months": float("nan")}, "followup_months must be a number of months above 0"),
    ({"followup_months": -1}, "followup_months must be a number of months above 0"),
    ({"n_bootstrap": 2.5}, "n_bootstrap must be a whole number"),
    ({"alpha": "0.05"}, "alpha must be a number between 0 and 1"),
    ({"horizon_months": 0}, "horizon_months must be a whole number of months"),
])
def test_assessment_study_bad_options_are_config_errors_before_any_work(options, words):
    """A nan caliper matched without one, a None method failed with an AttributeError after the table was built."""
    from iizrisk.evaluation import AssessmentStudy

    spells, interventions = _study_inputs()
    with pytest.raises(ConfigError, match=words):
        AssessmentStudy(**options).fit(spells, interventions)
    with pytest.raises(ConfigError, match=words):
        AssessmentStudy(**options).fit_table(pd.DataFrame())


def test_a_single_study_outcome_name_is_one_outcome_not_its_letters():
    from iizrisk.evaluation import study_outcome_columns

    assert study_outcome_columns("revolving_door", 12) == {"revolving_door": "revolving_door_next_12m"}


# --------------------------------------------------------------------------- one rule for numbers
_ANY_VALUE = st.one_of(
    st.integers(-10**15, 10**15), st.integers(-300, 300).map(np.int64), st.integers(0, 255).map(np.uint8),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5).map(float), st.booleans(),
    st.booleans().map(np.bool_), st.text(max_size=5), st.none(), st.just(Decimal("3")),
    st.floats(-5, 5).map(np.float32))


@settings(max_examples=400, deadline=None)
@given(value=_ANY_VALUE, low=st.integers(-3, 3), span=st.one_of(st.none(), st.integers(0, 20)), none=st.booleans())
def test_whole_number_accepts_exactly_the_integers_in_range(value, low, span, none):
    """Slow reference: an int or numpy integer (never a bool, a float such as 3.0, text or a Decimal) from low
    to high; None only where allowed. The value comes back as a plain int."""
    from iizrisk._checks import whole_number

    high = None if span is None else low + span
    integer = type(value) is int or type(value) in (np.int64, np.uint8)
    expected_ok = (value is None and none) or (
        integer and int(value) >= low and (high is None or int(value) <= high))
    if expected_ok:
        got = whole_number(value, "opt", low, high, none=none)
        assert got == (None if value is None else int(value))
        assert got is None or type(got) is int
    else:
        with pytest.raises(ConfigError, match="opt must be a whole number") as err:
            whole_number(value, "opt", low, high, none=none)
        assert (f"from {low}" in str(err.value)) and ((high is None) or f"to {high}" in str(err.value))


@settings(max_examples=300, deadline=None)
@given(value=_ANY_VALUE)
def test_is_real_is_a_finite_number_that_is_not_a_bool(value):
    from iizrisk._checks import is_real

    number = type(value) in (int, float, np.int64, np.uint8, np.float32)
    assert is_real(value) == (number and math.isfinite(float(value)))


def test_a_long_number_given_as_an_option_is_withheld_from_the_message():
    from iizrisk._checks import whole_number

    with pytest.raises(ConfigError, match="value withheld") as err:
        whole_number(float(AHV), "n_bootstrap", 0)
    assert AHV not in str(err.value) and "7.561234567897e+12" not in str(err.value)


@pytest.mark.parametrize("who, dates, period, words", [
    (["z", "y"], ["2019-05-01", "2019-06-01"], None, "none of the 2 'joint_assessment' row(s) belongs to a person"),
    (["a", "b"], ["2019-05-01", "2019-06-01"], ("2021-01-01", "2021-12-31"),
     "falls from 2019-05-01 to 2019-06-01, outside the period 2021-01-01 to 2021-12-31"),
    (["a", "b"], ["2024-05-01", "2024-06-01"], None, "after the last day the spells observe (2022-12-31)"),
])
def test_a_study_without_anyone_to_study_says_why(who, dates, period, words):
    """One message ("no person has a first 'joint_assessment' inside the period and the data") stood for three
    causes with three fixes: other pseudonyms, a period beside the assessments, interventions newer than the
    spells."""
    from iizrisk.evaluation import risk_set_table

    spells = pd.DataFrame({"person_id": ["a", "b", "c"], "institution": ["ALV", "SH", "IV"],
                           "start_date": pd.to_datetime(["2019-01-01", "2019-02-01", "2019-03-01"]),
                           "end_date": pd.to_datetime(["2020-06-30", None, None]),
                           "recorded_date": pd.to_datetime(["2020-06-30", "2019-02-01", "2022-12-31"])})
    iv = pd.DataFrame({"person_id": who, "date": pd.to_datetime(dates), "type": "joint_assessment"})
    with pytest.raises(ValidationError, match=re.escape(words)):
        risk_set_table(spells, iv, period=period)


@pytest.mark.parametrize("values", [[1, "1", 2], ["F", "(missing)", None]])
def test_fairness_groups_that_read_the_same_are_refused(values):
    """The number 1 and the text "1" (or a value written like the label of missing values) were counted as one
    group without a word."""
    from iizrisk.fairness import FairnessAudit

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"score": rng.random(300), "label": rng.random(300) < 0.3,
                         "g": pd.Series(values * 100, dtype=object)})
    with pytest.raises(ValidationError, match="group column 'g': different values read the same"):
        FairnessAudit(groups=["g"], capacity=0.2, n_bootstrap=0).fit(data)
    if values[0] == 1:  # the same column in one type is audited
        data["g"] = data["g"].astype(str)
        assert set(FairnessAudit(groups=["g"], capacity=0.2, n_bootstrap=0).fit(data).summary["group"]) >= {"1", "2"}


def test_a_group_column_of_many_values_is_said_to_need_bands():
    from iizrisk.fairness import MANY_GROUPS, FairnessAudit

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"score": rng.random(2000), "label": rng.random(2000) < 0.3,
                         "age": rng.integers(18, 18 + MANY_GROUPS + 1, 2000)})
    with pytest.warns(UserWarning, match=f"group column 'age' holds {MANY_GROUPS + 1} different values"):
        FairnessAudit(groups=["age"], capacity=0.2, n_bootstrap=0).fit(data)
    data["age"] = data["age"] % MANY_GROUPS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FairnessAudit(groups=["age"], capacity=0.2, n_bootstrap=0).fit(data)
