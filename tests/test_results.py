"""The result protocol (iizrisk._results): print_summary prints, to_dir writes suppressed files, errors."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from iizrisk._results import SWISS_CSV, CsvFormat, ResultMixin, write_csv_atomic
from iizrisk.errors import (
    ConfigError,
    IizriskError,
    InternalError,
    LockedError,
    ModelError,
    RawIdentifierError,
    ValidationError,
)
from iizrisk.evaluation import IPWEstimator, KaplanMeier, PropensityScoreMatching
from iizrisk.fairness import FairnessAudit
from iizrisk.validate import check_spells

PROTOCOL = ("summary", "print_summary", "_repr_html_", "plot", "to_dir")


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 800
    severity = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(1 - severity))
    return pd.DataFrame({"severity": severity, "flag": (rng.random(n) < 0.3).astype(float),
                         "rare": (np.arange(n) < 3).astype(float), "treated": t,
                         "y": (rng.random(n) < 0.3 + 0.1 * t).astype(float)})


def test_user_input_errors_are_value_errors_and_keep_their_exit_codes():
    for cls, code in ((ValidationError, 1), (RawIdentifierError, 1), (ConfigError, 2)):
        assert issubclass(cls, IizriskError) and issubclass(cls, ValueError) and cls.exit_code == code
    for cls in (ModelError, LockedError, InternalError):  # not about a bad value
        assert not issubclass(cls, ValueError)
    with pytest.raises(ValueError, match="bad"):
        raise ValidationError("bad", report=None)


def test_every_result_class_has_the_protocol():
    from iizrisk.evaluation import (
        AssessmentStudy,
        DifferenceInMeans,
        PropensityScoreStratification,
        RegressionAdjustment,
    )
    from iizrisk.validate import ValidationReport

    for cls in (FairnessAudit, DifferenceInMeans, RegressionAdjustment, IPWEstimator, PropensityScoreMatching,
                PropensityScoreStratification, KaplanMeier, AssessmentStudy, ValidationReport):
        assert issubclass(cls, ResultMixin), cls
        assert all(hasattr(cls, name) for name in PROTOCOL if name != "summary"), cls


def test_print_summary_prints_not_logs(table, capsys, caplog):
    est = PropensityScoreMatching(n_bootstrap=20, random_state=0).fit(table, "treated", "y", ["severity", "flag"])
    km = KaplanMeier().fit([1, 2, 2, 3, 5, 6, 7], [1, 1, 0, 1, 0, 1, 1], label="all")
    data = pd.DataFrame({"score": np.linspace(0, 1, 400), "sex": ["F", "M"] * 200})
    data["label"] = np.random.default_rng(1).random(400) < data["score"]
    audit = FairnessAudit(groups=["sex"], capacity=40, n_bootstrap=0, max_gap=1.0).fit(data)
    for obj, needle in ((est, "Balance:"), (km, "median"), (audit, "Fairness audit")):
        caplog.clear()
        obj.print_summary()
        out = capsys.readouterr().out
        assert needle in out, obj
        assert not caplog.records  # printed, not logged
        buf = io.StringIO()
        obj.print_summary(file=buf)
        assert needle in buf.getvalue()
        assert isinstance(obj.summary, pd.DataFrame) and "<" in obj._repr_html_()


def test_print_summary_shows_html_in_a_notebook(table, monkeypatch):
    import iizrisk._results as R

    shown = []
    monkeypatch.setattr(R, "in_notebook", lambda: True)
    display = pytest.importorskip("IPython.display")
    monkeypatch.setattr(display, "display", lambda obj: shown.append(obj))
    KaplanMeier().fit([1, 2, 3], [1, 1, 0]).print_summary()
    assert shown and "<table" in shown[0].data


def test_csv_formats(tmp_path):
    df = pd.DataFrame({"a": [1.5, np.nan], "b": ["x", "ü"]})
    swiss = write_csv_atomic(df, tmp_path / "s.csv", SWISS_CSV).read_bytes()
    assert swiss == "\ufeffa;b\n1.5;x\n;ü\n".encode()
    plain = write_csv_atomic(df, tmp_path / "p.csv", CsvFormat(sep=",", bom=False)).read_bytes()  # for machines
    assert plain == df.to_csv(index=False, lineterminator="\n").encode()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_estimator_to_dir_writes_suppressed_tables_and_a_readable_balance_plot(table, tmp_path):
    est = IPWEstimator(n_bootstrap=20, random_state=0).fit(table, "treated", "y", ["severity", "flag", "rare"])
    files = est.to_dir(tmp_path, min_cell_size=5)
    assert [f.name for f in files] == ["estimate.csv", "estimate.parquet", "balance.csv", "balance.parquet",
                                       "balance.png"]
    assert (tmp_path / "balance.csv").read_bytes().startswith(b"\xef\xbb\xbfcovariate;suppressed;")
    bal = pd.read_parquet(tmp_path / "balance.parquet").set_index("covariate")
    assert bal.loc["rare", "suppressed"] and np.isnan(bal.loc["rare", "smd_before"])  # 3 people: hidden
    assert not bal.loc["severity", "suppressed"]
    # with a huge cell size nothing is shown
    big = est.to_dir(tmp_path / "big", min_cell_size=10_000, plots=False)
    estimate = pd.read_parquet(big[1])
    assert estimate["suppressed"].all() and estimate["estimate"].isna().all()
    ax = est.plot()
    assert "inverse-probability weighting" in ax.get_title() and "IPWEstimator" not in ax.get_title()
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "|SMD| 0.1 after inverse-probability weighting" in texts


def test_balance_verdict_in_words():
    from iizrisk.evaluation._outputs import balance_verdict

    bal = pd.DataFrame({"smd_before": [0.5, 0.3, 0.2], "smd_after": [0.15, -0.12, 0.02]}, index=["a", "b", "c"])
    assert balance_verdict(bal, "matching") == ("2 of 3 covariates remain above |SMD| 0.1 after matching: "
                                                "a (0.15), b (0.12).")
    ok = bal.assign(smd_after=0.0)
    assert balance_verdict(ok, "matching").startswith("All 3 covariates shown are within |SMD| 0.1")


def test_kaplan_meier_to_dir_hides_small_counts(tmp_path):
    rng = np.random.default_rng(3)
    d = rng.integers(1, 30, 200).astype(float)
    km = KaplanMeier().fit(d, rng.random(200) < 0.7, label="arm")
    files = km.to_dir(tmp_path, min_cell_size=5)
    assert [f.name for f in files] == ["survival.csv", "survival.parquet", "survival.png"]
    tab = pd.read_parquet(tmp_path / "survival.parquet")
    shown = tab[~tab["suppressed"]]
    assert ((shown["events"] == 0) | (shown["events"] >= 5)).all() and (shown["at_risk"] % 5 == 0).all()
    assert km.summary.loc["arm", "n"] == 200


def test_fairness_to_dir_refuses_a_larger_cell_size_than_fitted(tmp_path):
    data = pd.DataFrame({"score": np.linspace(0, 1, 200), "sex": ["F", "M"] * 100})
    data["label"] = data["score"] > 0.5
    audit = FairnessAudit(groups=["sex"], capacity=20, n_bootstrap=0, max_gap=1.0, min_cell_size=5).fit(data)
    with pytest.raises(ConfigError, match="refit|fit FairnessAudit"):
        audit.to_dir(tmp_path, min_cell_size=10)
    files = audit.to_dir(tmp_path, plots=False)
    assert [f.name for f in files][:2] == ["fairness_summary.csv", "fairness_summary.parquet"]
    # a table people open: ';' and a BOM (it was ',' without a BOM before issue 17)
    assert files[0].read_bytes().startswith(b"\xef\xbb\xbfattribute;group;reference;")


def test_validation_report_to_dir_leaves_out_rows_and_examples(tmp_path):
    rows = pd.DataFrame({"person_id": ["p1", ""] + [f"p{i}" for i in range(10)],
                         "institution": ["ALV", "XYZ"] + ["ALV"] * 10,
                         "start_date": pd.to_datetime(["2024-01-05"] * 12),
                         "end_date": pd.to_datetime(["2024-01-01"] + [None] * 11)})
    report, _ = check_spells(rows, source="demo")
    assert len(report.summary) == len(report.problems)
    files = report.to_dir(tmp_path, min_cell_size=5)
    tab = pd.read_parquet(tmp_path / "validation_problems.parquet")
    assert "example" not in tab.columns and "rows" not in tab.columns
    assert tab["n_rows"].isna().all()  # each problem has 1 row: below 5
    assert (tmp_path / "validation_problems.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert any(f.suffix == ".png" for f in files)
    assert report.plot().has_data()


def test_to_dir_draws_the_figures_in_the_tables_language(tmp_path, monkeypatch):
    """The tables of ``to_dir(language="fr")`` had French headers while every figure stayed English (the
    fairness figures followed only the object's own default): the figures get the same language."""
    import pandas as pd
    from matplotlib.figure import Figure

    from iizrisk import _results
    from iizrisk._results import OutputFigure, OutputTable, ResultMixin

    seen = []

    class Toy(ResultMixin):
        summary = pd.DataFrame({"persons": [10]})
        output_language = None

        def plot(self, ax=None):
            return ax

        def _output_tables(self, k):
            return [OutputTable("toy", self.summary)]

        def _output_figures(self, tables, language="en"):
            seen.append(language)
            return [OutputFigure("toy", Figure())]

    monkeypatch.setattr(_results, "write_png_atomic", lambda fig, path, **kw: path)
    Toy().to_dir(tmp_path / "a", language="fr")
    Toy().to_dir(tmp_path / "b")  # no language: the tables keep their codes, the figures are English
    toy = Toy()
    toy.output_language = "it"  # the object's default, as a command sets it
    toy.to_dir(tmp_path / "c")
    assert seen == ["fr", "en", "it"]
