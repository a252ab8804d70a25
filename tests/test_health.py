"""Run-health gates and the history store's retention and restore rules."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iizrisk.config import HealthSettings, Settings
from iizrisk.errors import ConfigError
from iizrisk.health import RunFacts, check_health
from iizrisk.history import HistoryStore

T = dt.date(2024, 6, 30)


def facts(**kw) -> RunFacts:
    base = dict(as_of=T, persons_scored=100, rows_per_institution={"ALV": 1000, "SH": 500},
                expected_institutions={"ALV": ["alv"], "SH": ["sh"]},
                previous_rows_per_institution={"ALV": 1000, "SH": 500}, previous_as_of=T - dt.timedelta(1),
                quarantine_per_source={"alv.csv": (1000, 10)},
                newest_date_per_source={"alv": T, "sh": T - dt.timedelta(days=3)},
                open_cases_per_institution={"ALV": 400, "SH": 200},
                worklist_rows_per_institution={"ALV": 25, "SH": 25})
    base.update(kw)
    return RunFacts(**base)


def gates(report) -> list[tuple[str, str]]:
    return [(f.gate, f.subject) for f in report.failures]


def test_a_healthy_run_passes():
    assert check_health(facts(), HealthSettings()).ok


@pytest.mark.parametrize("change, gate, subject", [
    (dict(persons_scored=0), "min_persons_scored", "the run"),
    (dict(rows_per_institution={"ALV": 1000}), "institution_rows", "institution SH (source 'sh')"),
    (dict(rows_per_institution={"ALV": 1000, "SH": 249}), "max_row_drop_percent", "institution SH (source 'sh')"),
    (dict(quarantine_per_source={"alv.csv": (1000, 51)}), "max_quarantine_percent", "source 'alv.csv'"),
    (dict(newest_date_per_source={"alv": T, "sh": T - dt.timedelta(days=61)}), "max_export_age_days",
     "source 'sh'"),
    (dict(worklist_rows_per_institution={"ALV": 25}), "require_worklists", "institution SH"),
    # rows, but none on or before the as-of date (a night long before the data published empty lists)
    (dict(newest_date_per_source={"alv": T, "sh": None}), "max_export_age_days", "source 'sh'"),
])
def test_each_gate_fails_on_its_own(change, gate, subject):
    report = check_health(facts(**change), HealthSettings())
    assert gates(report) == [(gate, subject)]
    text = report.to_text()
    assert "fix:" in text and "--force --reason" in text and "nothing is published" in text


def test_gates_at_their_bounds_pass():
    s = HealthSettings()
    ok = facts(rows_per_institution={"ALV": 1000, "SH": 250},  # exactly 50 % fewer
               quarantine_per_source={"alv.csv": (1000, 50)},  # exactly 5 %
               newest_date_per_source={"alv": T, "sh": T - dt.timedelta(days=60)})
    assert check_health(ok, s).ok
    assert check_health(facts(worklist_rows_per_institution={"ALV": 25}),
                        HealthSettings(require_worklists=False)).ok


@pytest.mark.parametrize("section, values, words", [
    ("health", {"min_persons_scored": 0}, "min_persons_scored must be >= 1"),
    ("health", {"max_quarantine_percent": 120.0}, "between 0 and 100"),
    ("health", {"max_export_age_days": -1}, "max_export_age_days must be between 0 and 36,525 days"),
    ("health", {"require_worklists": "yes"}, "expected bool"),
])
def test_gate_settings_are_checked(section, values, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_dict({section: values})


def _scores(n: int) -> pd.DataFrame:
    return pd.DataFrame({"person_id": [f"p{i}" for i in range(n)], "risk": [0.1] * n})


def test_retention_never_removes_tonight_or_newer(tmp_path):
    h = HistoryStore(tmp_path)
    days = [T - dt.timedelta(days=d) for d in (10, 2, 1, 0)] + [T + dt.timedelta(days=3)]
    for d in days:
        h.write(d, scores=_scores(2))
    removed = h.prune(1, today=T)
    assert removed == days[:2] and h.as_of_dates() == days[2:]  # tonight, the day before, the newer one


def test_retention_with_a_future_date_cannot_wipe_the_store(tmp_path):
    h = HistoryStore(tmp_path)
    today = dt.date.today()
    h.write(today - dt.timedelta(days=3), scores=_scores(1))
    assert h.prune(30, today=today + dt.timedelta(days=4000)) == []  # counts from the real today
    assert len(h.as_of_dates()) == 1


@pytest.mark.parametrize("keep", [0, -5, 1.5, True])
def test_retention_needs_at_least_one_day(tmp_path, keep):
    h = HistoryStore(tmp_path)
    h.write(T, scores=_scores(1))
    with pytest.raises(ConfigError, match="keep at least 1 day"):
        h.prune(keep, today=T)
    assert h.as_of_dates() == [T]


def test_restore_copies_a_runs_own_entry_once(tmp_path):
    run = tmp_path / "run"
    entry = {"scores": _scores(3),
             "worklists": pd.DataFrame({"institution": ["ALV"], "person_id": ["p1"]}),
             "runs": pd.DataFrame({"institution": ["ALV"], "rows": [3], "run": ["0123456789"]})}
    for name, df in entry.items():
        (run / "history").mkdir(parents=True, exist_ok=True)
        df.to_parquet(run / "history" / f"{name}.parquet")
    h = HistoryStore(tmp_path / "history")
    assert h.restore(T, run) and h.run_token(T) == "0123456789" and len(h.read("scores", as_of=T)) == 3
    assert not h.restore(T, run)  # already there


def test_an_institution_the_last_run_had_is_watched_even_without_a_configured_code():
    """A canonical export names its institutions in a column: the last run's rows tell what to expect."""
    f = facts(expected_institutions={}, rows_per_institution={"ALV": 1000})
    assert gates(check_health(f, HealthSettings())) == [("institution_rows", "institution SH")]
    f = facts(expected_institutions={}, rows_per_institution={"ALV": 1000, "SH": 100})
    assert gates(check_health(f, HealthSettings())) == [("max_row_drop_percent", "institution SH")]


def test_a_source_whose_rows_all_lie_after_the_as_of_date_has_no_newest_date():
    """Such a source was left out of the export-age gate: the night scored 2 people and published with exit 0."""
    from iizrisk.batch import _newest_per_source
    from iizrisk.config import Settings

    s = Settings.from_dict({"sources": [{"name": "alv", "institution": "ALV", "path": "a.csv"},
                                        {"name": "sh", "institution": "SH", "path": "s.csv"},
                                        {"name": "iv", "institution": "IV", "path": "i.csv"}]})
    assert _newest_per_source(s, {"ALV": T, "SH": None}) == {"alv": T, "sh": None}  # IV: no rows at all


def test_min_persons_scored_fails_only_below_its_bound():
    s = HealthSettings(min_persons_scored=100)
    assert check_health(facts(persons_scored=100), s).ok
    assert gates(check_health(facts(persons_scored=99), s)) == [("min_persons_scored", "the run")]


# ------------------------------------------------------------------ the history store against a reference
_B = dt.date(2024, 6, 1)


@settings(max_examples=40, deadline=None)
@given(held=st.sets(st.integers(0, 30), max_size=5), q=st.integers(-2, 32), span=st.integers(0, 12),
       keep=st.integers(1, 40))
@example(held={5, 10, 20, 25}, q=20, span=5, keep=10)  # each comparison on its boundary
def test_history_dates_previous_read_and_prune_follow_the_calendar(held, q, span, keep):
    """previous, read (as_of, since, until) and prune agree with the obvious set arithmetic on dates."""
    import tempfile

    dates = sorted(_B + dt.timedelta(days=d) for d in held)
    at, until = _B + dt.timedelta(days=q), _B + dt.timedelta(days=q + span)
    with tempfile.TemporaryDirectory() as folder:
        h = HistoryStore(folder)
        for d in dates:
            h.write(d, scores=_scores(1))
        assert h.as_of_dates() == dates
        earlier = [d for d in dates if d < at]
        assert h.previous(at) == (earlier[-1] if earlier else None)

        def read_dates(**kw) -> list[dt.date]:
            df = h.read("scores", **kw)
            return sorted({ts.date() for ts in df["as_of"]}) if len(df) else []

        assert read_dates(as_of=at) == [d for d in dates if d == at]
        assert read_dates(since=at, until=until) == [d for d in dates if at <= d <= until]
        assert read_dates(since=at) == [d for d in dates if d >= at]
        assert read_dates(until=at) == [d for d in dates if d <= at]
        limit = at - dt.timedelta(days=keep)  # at lies in 2024: before the real today
        assert h.prune(keep, today=at) == [d for d in dates if d < limit]
        assert h.as_of_dates() == [d for d in dates if d >= limit]


def test_the_runs_entry_is_written_last_whatever_the_order_given(tmp_path, monkeypatch):
    """The runs partition marks a date's entry as complete: a failure on another table leaves none."""
    import iizrisk.history as history

    h = HistoryStore(tmp_path)
    runs = pd.DataFrame({"institution": ["ALV"], "rows": [2], "run": ["0123456789"]})
    written = h.write(T, runs=runs, scores=_scores(2), worklists=_scores(1))
    assert [p.parent.parent.name for p in written] == ["scores", "worklists", "runs"]
    day = T + dt.timedelta(days=1)
    real = history.write_parquet_atomic

    def fails_on_scores(df, path, **kw):
        if path.parent.parent.name == "scores":
            raise OSError(28, "No space left on device", str(path))
        return real(df, path, **kw)

    monkeypatch.setattr(history, "write_parquet_atomic", fails_on_scores)
    with pytest.raises(OSError):
        h.write(day, runs=runs, scores=_scores(2))
    assert not h.has(day, "runs") and h.run_token(day) is None


def test_a_partition_folder_without_its_file_is_no_entry(tmp_path):
    """A crash between making the folder and renaming the file into it leaves a folder: no date is held."""
    h = HistoryStore(tmp_path)
    h.write(T - dt.timedelta(days=1), scores=_scores(1))
    half = tmp_path / "scores" / f"as_of={T.isoformat()}"
    half.mkdir()
    (half / ".part-0.parquet.x1y2.tmp").write_bytes(b"PAR1")
    assert h.as_of_dates() == [T - dt.timedelta(days=1)]
    assert h.previous(T + dt.timedelta(days=1)) == T - dt.timedelta(days=1)
    assert len(h.read("scores")) == 1


def _reviews(days: list[dt.date]) -> pd.DataFrame:
    from iizrisk.history import REVIEW_COLUMNS

    n = len(days)
    return pd.DataFrame({
        "institution": ["ALV"] * n, "person_id": [f"p{i}" for i in range(n)], "case_id": ["c"] * n,
        "review_date": pd.to_datetime(days).astype("datetime64[s]"), "decision": ["not_suitable"] * n,
        "decided_by": ["x"] * n, "note": [""] * n, "listed": [True] * n,
        "list_as_of": pd.to_datetime(days).astype("datetime64[s]"), "band_at_review": ["high"] * n,
    })[list(REVIEW_COLUMNS)]


def test_reviews_on_the_limit_day_are_kept_and_read_up_to_and_including_until(tmp_path):
    h = HistoryStore(tmp_path)
    keep = 10
    limit = T - dt.timedelta(days=keep)
    days = [limit - dt.timedelta(days=1), limit, limit + dt.timedelta(days=1), T]
    h.write_reviews(_reviews(days))
    assert [ts.date() for ts in h.reviews(until=limit)["review_date"]] == days[:2]
    h.prune(keep, today=T)
    assert [ts.date() for ts in h.reviews()["review_date"]] == days[1:]


def test_a_damaged_entry_is_written_anew_from_the_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "history").mkdir(parents=True)
    pd.DataFrame({"institution": ["ALV"], "rows": [3], "run": ["0123456789"]}).to_parquet(
        run / "history" / "runs.parquet")
    _scores(3).to_parquet(run / "history" / "scores.parquet")
    h = HistoryStore(tmp_path / "history")
    damaged = h._part("runs", T)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not parquet")
    assert h.restore(T, run)
    assert h.run_token(T) == "0123456789" and len(h.read("scores", as_of=T)) == 3
