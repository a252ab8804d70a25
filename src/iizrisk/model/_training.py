"""Training: monthly snapshots, labels, a temporal split, the held-out report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import _time
from .._progress import Steps
from .._results import OutputFigure, OutputTable, ResultMixin
from ..features import PointInTimeFeatures
from ..outcomes import _check_horizon, compute_outcome, get_outcome, observed_until
from ..schema import data_fingerprint
from ..schema import input_info as _input_info
from ..spells import as_of_day, check_spells_frame
from ._estimator import BfsRuleBaseline, RiskModel
from ._metrics import evaluate
from ._reference import feature_reference
from ._split import _days_of, temporal_split

logger = logging.getLogger("iizrisk")


@dataclass
class TrainingReport(ResultMixin):
    """What :func:`train` did and how well the model does on the held-out later period.

    Attributes
    ----------
    metrics : DataFrame
        One row per scorer (the model, the other model kind, the BFS rule):
        ROC AUC, average precision, Brier score, ECE, precision and recall at k.
    periods : dict
        ``train``, ``calibration`` and ``validation`` as-of date ranges.
    info : dict
        Outcome, horizon, row counts, prevalence, data fingerprint.
    """

    metrics: pd.DataFrame
    periods: dict[str, list[str]]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {k: {m: (None if pd.isna(v) else float(v)) for m, v in row.items()}
                            for k, row in self.metrics.to_dict(orient="index").items()},
                "periods": self.periods, "info": self.info}

    # ------------------------------------------------ the result protocol (iizrisk._results)
    @property
    def summary(self) -> pd.DataFrame:
        """The held-out metrics, one row per scorer (the model, the other model kind, the BFS rule)."""
        return self.metrics

    def _title(self) -> str:
        per = ", ".join(f"{k}: {v[0]} to {v[1]}" for k, v in self.periods.items())
        return (f"Training report: outcome {self.info.get('outcome')}, horizon "
                f"{self.info.get('horizon_months')} months; {per}")

    def _repr_html_(self) -> str:
        per = ", ".join(f"{k}: {v[0]} to {v[1]}" for k, v in self.periods.items())
        return (f"<b>Training report</b> — outcome <i>{self.info.get('outcome')}</i>, horizon "
                f"{self.info.get('horizon_months')} months; {per}{self.metrics.round(4).to_html()}")

    def plot(self, ax=None, *, metrics: tuple[str, ...] = ("roc_auc", "average_precision")):
        """The held-out metrics of every scorer side by side; returns the axes."""
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 3.2)).subplots()
        shown = [m for m in metrics if m in self.metrics.columns]
        table = self.metrics[shown]
        width = 0.8 / max(len(table.index), 1)
        for i, (scorer, row) in enumerate(table.iterrows()):
            ax.bar(np.arange(len(shown)) + i * width, row.to_numpy(dtype=float), width, label=str(scorer))
        ax.set_xticks(np.arange(len(shown)) + width * (len(table.index) - 1) / 2, shown)
        ax.set_ylim(0, 1)
        ax.set_ylabel("held-out value (higher is better)")
        ax.set_title(f"Held-out period {self.periods.get('validation', ['', ''])[0]} to "
                     f"{self.periods.get('validation', ['', ''])[-1]}")
        ax.legend(frameon=False)
        return ax

    def _output_tables(self, k: int) -> list[OutputTable]:
        # metrics over the whole held-out period: no cell counts people, nothing to suppress; ``n`` counts
        # the held-out snapshots (a person at each month end), not people: named so in the files
        table = self.metrics.reset_index().rename(columns={"n": "n_snapshots"})
        decimals = {c: 3 for c in table.columns if pd.api.types.is_float_dtype(table[c])} | {"prevalence": 4}
        return [OutputTable("training_metrics", table, rounding=decimals)]

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        return [OutputFigure("training_metrics", self.plot().figure)]


def train(spells: pd.DataFrame, *, interventions: pd.DataFrame | None = None,
          outcome: str = "revolving_door", horizon_months: int = 12, model: str = "boosting",
          first_as_of=None, last_as_of=None, burn_in_months: int = 24, train_months: int = 36,
          validation_months: int = 6,
          calibration_months: int = 6, gap_months: int | None = None, calibration: str | None = "isotonic",
          capacity: int = 50, max_train_rows: int | None = None, observed_until_date=None,
          features: PointInTimeFeatures | None = None, compare: bool = True, random_state: int = 0,
          progress: bool | None = None, max_persons: int | None = None, snapshots=None,
          drop_groups: Sequence[str] = (), **model_params) -> tuple[RiskModel, TrainingReport]:
    """Train a risk model on monthly snapshots with a temporal split; report on a held-out later period.

    Parameters
    ----------
    spells : DataFrame
        Canonical spells of the whole export.
    interventions : DataFrame, optional
        Interventions (features count only those dated <= T).
    outcome : str, default "revolving_door"
        A registered outcome (:func:`iizrisk.outcomes.outcome_names`).
    horizon_months : int, default 12
    model : {"boosting", "logistic"}, default "boosting"
    first_as_of, last_as_of : date-like, optional
        Range of month-end snapshot dates; default from ``burn_in_months`` after
        the first start date to the last month end whose horizon is observed.
    burn_in_months : int, default 24
        History needed before the first snapshot.
    train_months : int, default 36
        With no ``first_as_of``: months of training dates before the calibration
        slice (older snapshots are left out).
    validation_months, calibration_months : int, default 6
        Held-out period at the end, and calibration slice before it.
    gap_months : int, optional
        Gap before each later slice; default ``horizon_months``.
    calibration : {"isotonic", "sigmoid", None}
    capacity : int, default 50
        k for precision and recall at k (people reviewed per as-of date).
    max_train_rows : int, optional
        Random subsample of the earlier rows (speed).
    observed_until_date : date-like, optional
        Last observed day of the data; default from the data.
    features : PointInTimeFeatures, optional
    compare : bool, default True
        Also fit the other model kind and the BFS rule and report them on the held-out
        months; the other model kind learns from a random sample of at most
        :data:`COMPARE_MAX_ROWS` of the training rows.
    random_state : int, default 0
    progress : bool, optional
        Show the training steps as a progress bar on stderr; default only when
        stderr is a terminal (never in cron or tests). Log lines are written
        above the bar, never into it.
    max_persons : int, optional
        Train on a fixed random sample of about this many persons, with all
        their snapshots, chosen *before* any feature is built
        (:func:`iizrisk.snapshots.sample_spells`): memory and time then depend
        on the sample, not on the population. The sample is recorded in the
        model's manifest (``training.sample``). Calibration and held-out
        metrics stay unbiased: a random sample of persons is a random sample
        of (person, date) snapshots, clustered by person; precision and recall
        at k are taken at ``k = capacity x fraction`` per date (the same share
        of the people at risk as ``capacity`` in the whole population).
    snapshots : SnapshotSet or path, optional
        Read features and labels from a snapshot dataset
        (:func:`iizrisk.snapshots.build_snapshots`) instead of building them;
        ``spells`` may then be None. With ``max_persons`` only the buckets
        needed for the sample are read.
    drop_groups : sequence of str, default ()
        Feature groups the model leaves out (:func:`iizrisk.features.feature_catalogue` ``group``;
        an ablation of ``iizrisk select``). The features are still built; the model, its
        comparison model and its monitoring reference use the others (the BFS rule keeps its
        column). Recorded in the manifest (``training.dropped_feature_groups``).
    **model_params
        Further :class:`RiskModel` parameters (``max_iter``, ``C``...).

    Returns
    -------
    (RiskModel, TrainingReport)
    """
    get_outcome(outcome)
    _check_horizon(horizon_months)
    if spells is not None:
        check_spells_frame(spells)
    if snapshots is not None:
        from ..snapshots import SnapshotSet

        snapshots = snapshots if isinstance(snapshots, SnapshotSet) else SnapshotSet.open(snapshots)
        _check_snapshots(snapshots, outcome, horizon_months, features)
    elif spells is None:
        raise ValueError("train needs spells, or a snapshot dataset (snapshots=...)")
    steps = ["features", "labels", f"fit {model}"]
    if compare:
        steps += [f"fit {'logistic' if model == 'boosting' else 'boosting'}", "BFS rule"]
    with Steps(steps + ["evaluate"], progress, label="train") as bar:
        return _train(spells, interventions, outcome, horizon_months, model, first_as_of, last_as_of,
                      burn_in_months, train_months, validation_months, calibration_months, gap_months,
                      calibration, capacity, max_train_rows, observed_until_date, features, compare,
                      random_state, bar, model_params, max_persons, snapshots, tuple(drop_groups))


#: Training rows the comparison model (the other model kind) learns from at most: it is reported, not used.
COMPARE_MAX_ROWS = 300_000


def _at_most(n: int, cap: int, random_state: int) -> np.ndarray:
    """Positions of a random sample of at most ``cap`` of ``n`` rows, in their order (all when ``n <= cap``)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=cap, replace=False))


def _bounded(rows: np.ndarray, cap: int, random_state: int) -> np.ndarray:
    """The boolean mask ``rows`` with a random sample of at most ``cap`` of its True rows left True."""
    where = np.flatnonzero(rows)
    out = np.zeros(len(rows), dtype=bool)
    out[where[_at_most(len(where), cap, random_state)]] = True
    return out


def without_groups(ft: PointInTimeFeatures, drop_groups) -> PointInTimeFeatures:
    """A fitted copy of ``ft`` that leaves out the feature groups ``drop_groups`` as well.

    Raises
    ------
    ConfigError
        A group :func:`~iizrisk.features.feature_catalogue` does not know.

    Examples
    --------
    >>> ft = without_groups(PointInTimeFeatures(), ["history"])
    >>> cols = list(ft.feature_names_out_)
    >>> "n_spells_12m" in cols, "open_alv" in cols, ft.exclude_groups
    (False, True, ('history',))
    """
    from sklearn.base import clone

    from ..errors import ConfigError

    drop = tuple(dict.fromkeys([*(ft.exclude_groups or ()), *drop_groups]))
    try:
        return clone(ft).set_params(exclude_groups=drop).fit()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def columns_without(ft: PointInTimeFeatures, columns, drop_groups) -> list[str]:
    """``columns`` without those of the feature groups ``drop_groups`` (order kept; see :func:`without_groups`)."""
    keep = set(without_groups(ft, drop_groups).feature_names_out_)
    return [c for c in columns if c in keep]


def _check_snapshots(snaps, outcome: str, horizon_months: int, features) -> None:
    want = {"outcome": outcome, "horizon_months": int(horizon_months)}
    got = {k: snaps.meta.get(k) for k in want}
    if got != want:
        raise ValueError(f"the snapshot dataset {snaps.path} holds {got['outcome']!r} over "
                         f"{got['horizon_months']} months, not {outcome!r} over {horizon_months}; build "
                         "snapshots for this outcome and horizon")
    if features is not None and snaps.features().get_params() != features.get_params():
        raise ValueError(f"the snapshot dataset {snaps.path} was built with other feature parameters; "
                         "train with its features (features=None) or rebuild it")


def _snapshot_frame(snaps, dates, max_persons, random_state):
    """Features and labels of ``dates`` from a snapshot dataset; with ``max_persons`` a person sample."""
    from ..snapshots import person_fraction

    X, lab = snaps.read(as_of=dates)
    sample = None
    ids = X.index.get_level_values("person_id")
    n = int(ids.nunique())
    if max_persons is not None and n > max_persons:
        f = max_persons / n
        codes, uniques = pd.factorize(ids)
        keep = (person_fraction(uniques) < f)[codes]
        X, lab = X.loc[keep], lab.loc[keep]
        sample = {"persons": int(X.index.get_level_values("person_id").nunique()), "of_persons": n,
                  "fraction": f, "method": f"person_fraction(person_id) < {f:.6g} (snapshot persons)"}
    return X, lab, sample


def _train(spells, interventions, outcome, horizon_months, model, first_as_of, last_as_of, burn_in_months,
           train_months, validation_months, calibration_months, gap_months, calibration, capacity,
           max_train_rows, observed_until_date, features, compare, random_state, bar,
           model_params, max_persons=None, snapshots=None,
           drop_groups: tuple[str, ...] = ()) -> tuple[RiskModel, TrainingReport]:
    gap = horizon_months if gap_months is None else int(gap_months)
    if snapshots is not None:
        last_day = as_of_day(observed_until_date or snapshots.meta["observed_until"])
        first_day = int(_time.add_months(_time.day(snapshots.dates[0]), -burn_in_months))
    else:
        last_day = observed_until(spells) if observed_until_date is None else as_of_day(observed_until_date)
        start = _time.to_days(spells["start_date"])
        first_day = int(start[start != _time.MISSING_DAY].min())
    if first_as_of is None:
        # enough history before the first snapshot, and no more than train_months of training
        # dates before the calibration slice (older snapshots describe another labour market)
        last_lab = int(_time.add_months(last_day, -horizon_months))
        span = train_months + gap + calibration_months + gap + validation_months
        lo_day = max(int(_time.add_months(first_day, burn_in_months)), int(_time.add_months(last_lab, -span)))
        lo = pd.Timestamp(_time.to_date(lo_day))
    else:
        lo = pd.Timestamp(first_as_of)
    latest = [d for d in pd.date_range(lo, pd.Timestamp(_time.to_date(last_day)), freq="ME")
              if int(_time.add_months(_time.day(d), horizon_months)) <= last_day]
    if last_as_of is not None:
        latest = [d for d in latest if d <= pd.Timestamp(last_as_of)]
    if len(latest) < 3:
        raise ValueError(f"too few labelled month ends between {lo.date()} and the last observed day "
                         f"{_time.to_date(last_day)} for horizon {horizon_months}: need a longer export")
    days_all = np.array([_time.day(d) for d in latest], dtype=np.int64)
    early, late = temporal_split(days_all, holdout_months=validation_months, gap_months=gap)
    dates = [d for d, keep in zip(latest, early | late, strict=True) if keep]
    sample: dict[str, Any] | None = None
    if snapshots is not None:
        dates = [d for d in dates if d in set(snapshots.dates)]
        if len(dates) < 3:
            raise ValueError(f"the snapshot dataset {snapshots.path} holds too few of the labelled month ends "
                             "training needs; build snapshots for more month ends")
        ft = snapshots.features()
        bar.step("features")
        X, lab, sample = _snapshot_frame(snapshots, dates, max_persons, random_state)
        bar.step("labels")
        fingerprint = snapshots.meta["data_fingerprint"]
        input_info = snapshots.meta.get("input_info") or {}
        n_rows = snapshots.meta.get("spells_rows")
    else:
        fingerprint, n_rows = data_fingerprint(spells), int(len(spells))
        input_info = _input_info(spells, interventions)
        if max_persons is not None:
            from ..snapshots import sample_spells

            spells, sample = sample_spells(spells, max_persons)
            if interventions is not None and len(interventions):
                interventions = interventions[interventions["person_id"].isin(pd.unique(spells["person_id"]))]
            logger.info("train: a sample of %d of %d persons (%s)", sample["persons"], sample["of_persons"],
                        sample["method"])
        ft = features if features is not None else PointInTimeFeatures()
        ft = ft.fit(spells, as_of=dates) if not hasattr(ft, "feature_names_out_") else ft
        logger.info("train: building features at %d month ends (%s to %s)", len(dates),
                    dates[0].date(), dates[-1].date())
        bar.step("features")
        X = ft.transform(spells, as_of=dates, interventions=interventions)
        bar.step("labels")
        lab = compute_outcome(spells, outcome=outcome, horizon_months=horizon_months, pairs=X.index,
                              observed_until=last_day)
    if not lab["observed"].all():  # pragma: no cover - dates were chosen observed
        raise AssertionError("unobserved labels among training snapshots")
    y = lab["outcome"].to_numpy(dtype=bool)
    k = capacity if sample is None else max(1, int(round(capacity * sample["fraction"])))
    d = _days_of(X.index.get_level_values("as_of"))
    first_val = int(days_all[late].min())
    val = d >= first_val
    positives = int(y[val].sum())
    if not 0 < positives < int(val.sum()):  # a model nobody can judge is not fitted, nor written
        from ..errors import ValidationError

        raise ValidationError(
            f"the held-out period (from {_time.to_date(first_val)}) holds {int(val.sum()):,} snapshots with "
            f"{positives:,} outcome(s): the model's ranking cannot be judged on it, so no model is trained; "
            "train on more persons (--max-persons) or a longer export")
    fit_rows = ~val
    fit_sample = None
    if max_train_rows is not None and fit_rows.sum() > max_train_rows:
        fit_sample = {"rows": int(max_train_rows), "of_rows": int(fit_rows.sum()), "max_train_rows": int(max_train_rows)}
        fit_rows = _bounded(fit_rows, max_train_rows, random_state)
    common = dict(calibration=calibration, calibration_months=calibration_months, gap_months=gap,
                  outcome=outcome, horizon_months=horizon_months, features=ft, random_state=random_state)
    Xall = X
    if drop_groups:  # an ablation: the model, and the features it builds every night, leave the groups out
        ft = without_groups(ft, drop_groups)
        common["features"] = ft
        X = X[list(ft.feature_names_out_)]
    Xf, yf, df_ = X.loc[fit_rows], y[fit_rows], d[fit_rows]
    bar.step(f"fit {model}")
    main = RiskModel(model=model, **common, **model_params).fit(Xf, yf, as_of=df_)
    # the training reference for monitoring: the most recent training slice, the calibration months
    recent = df_ >= _time.day(main.fit_info_["calibration_period"][0]) if "calibration_period" in main.fit_info_ \
        else np.ones(len(df_), dtype=bool)
    main.reference_ = feature_reference(Xf.loc[recent], risk=main.predict_proba(Xf.loc[recent])[:, 1],
                                        random_state=random_state)
    Xv, yv, dv = X.loc[val], y[val], d[val]
    scores = {model: main.predict_proba(Xv)[:, 1]}
    if compare:
        other = "logistic" if model == "boosting" else "boosting"
        bar.step(f"fit {other}")
        few = _at_most(len(Xf), COMPARE_MAX_ROWS, random_state)  # a comparison, not the model: bounded
        alt = RiskModel(model=other, **common, n_threads=model_params.get("n_threads")).fit(
            Xf.iloc[few], yf[few], as_of=df_[few])
        scores[other] = alt.predict_proba(Xv)[:, 1]
        bar.step("BFS rule")
        bw = int(ft.bfs_window_months)
        rule = BfsRuleBaseline(column=f"revolving_door_{bw}m")
        tr = df_ <= _time.day(main.fit_info_["train_period"][1])
        rule.fit(Xall.loc[fit_rows].loc[tr], yf[tr])
        scores["bfs_rule"] = rule.predict_proba(Xall.loc[val])[:, 1]
    bar.step("evaluate")
    metrics = evaluate(yv, scores, dv, k=k)
    periods = {k[:-7]: v for k, v in main.fit_info_.items() if k.endswith("_period")}
    periods["validation"] = [_time.to_date(dv.min()).isoformat(), _time.to_date(dv.max()).isoformat()]
    info = {
        "outcome": outcome, "horizon_months": horizon_months, "model": model,
        "gap_months": gap, "capacity": capacity, "observed_until": _time.to_date(last_day).isoformat(),
        "snapshots": int(len(X)), "train_rows": main.fit_info_["train_rows"],
        "calibration_rows": main.fit_info_["calibration_rows"], "validation_rows": int(val.sum()),
        "prevalence_train": float(yf.mean()), "prevalence_validation": float(yv.mean()),
        "data_fingerprint": fingerprint, "spells_rows": n_rows,
    }
    if drop_groups:
        info["dropped_feature_groups"] = list(drop_groups)
    if sample is not None:
        info["sample"] = sample
        info["capacity_in_sample"] = k
    if fit_sample is not None:  # the rows the model was fitted and calibrated on: a random sample of these
        info["fit_sample"] = fit_sample
    report = TrainingReport(metrics=metrics, periods=periods, info=info)
    main.metrics_ = report.to_dict()["metrics"]
    main.training_ = {"periods": periods, **info}
    main.input_info_ = input_info
    logger.info("held-out metrics:\n%s", metrics.round(4).to_string())
    return main, report
