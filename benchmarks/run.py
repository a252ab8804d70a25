"""The national-scale benchmark: every stage of the nightly job, timed, with peak memory.

    .venv/bin/python benchmarks/run.py                        # 1M, 3M and 10M spells
    .venv/bin/python benchmarks/run.py --sizes 1000000        # one size
    .venv/bin/python benchmarks/run.py --compare-only         # the 200k comparisons only
    .venv/bin/python benchmarks/run.py --skip-compare --sizes 10000000 --random-persons-per-spell 0.2
                                                              # 10M random spells of 2M persons

For each size it generates (and caches under ``benchmarks/.cache/``) a
synthetic Swiss population with ``iizrisk.synth`` (persons chosen from a pilot's
spells per person, so that the size is close to the number of spells asked for),
trains a small model once (cached), then times each stage on the whole data:
read, validate, point-in-time spells, flags, features, score, explain the
worklist rows (5,000), write; and the whole ``iizrisk run`` in a fresh process.
Peak memory is the resident set size sampled every 20 ms during the stage
(``run`` reports the process's maximum). Results are printed as a table and
written to ``benchmarks/results/latest.json``.

Comparisons on the same data (200k spells): the features computed the way a
notebook would (``groupby("person_id").apply`` per person) against
iizrisk's vectorised features, on the same feature subset, checking that both
give the same values; featuretools' deep feature synthesis with cutoff times
when it can be installed (``--featuretools-python PATH`` names a separate
environment's interpreter).

Targets (2 cores): 10M spells / ~2M persons — ingest and validate <= 15 s,
flags <= 20 s and <= 4 GiB, features <= 30 s, scoring <= 15 s more,
explaining 5,000 rows <= 10 s, the whole nightly run <= 60 s and <= 6 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CACHE, cached, machine, print_table, save_json, stage, stamp  # noqa: E402

AS_OF = "2024-06-30"
START, END = "2015-01-01", "2024-12-31"


def population(n_spells: int, seed: int = 11) -> Path:
    """A cached synthetic population with about ``n_spells`` spells."""
    from iizrisk.synth import generate

    d = CACHE / f"pop_{n_spells}"
    if cached(d):
        return d
    pilot = generate(20_000, START, END, seed=seed)
    n_persons = max(1000, int(n_spells * 20_000 / len(pilot.spells)))
    t = time.perf_counter()
    pop = generate(n_persons, START, END, seed=seed)
    pop.to_dir(d)
    stamp(d)
    print(f"generated {len(pop.spells):,} spells of {n_persons:,} persons in {time.perf_counter() - t:.0f} s",
          file=sys.stderr)
    return d


def random_population(n_spells: int, persons_per_spell: float, seed: int = 12) -> Path:
    """Cached random spells of the issue's shape (``iizrisk.synth.random_spells``).

    With the columns the benchmark model was trained on: ``recorded_date`` (the
    end, or the start of an open row, known a week later) and an empty
    interventions file.
    """
    from iizrisk.store import write_parquet_atomic
    from iizrisk.synth import random_spells

    d = CACHE / f"random_{n_spells}_{persons_per_spell:g}"
    if not cached(d):
        spells = random_spells(n_spells, seed=seed, persons_per_spell=persons_per_spell,
                               first="2015-01-01", days=3650)
        spells["recorded_date"] = spells["end_date"].fillna(spells["start_date"]) + pd.Timedelta(days=7)
        d.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(spells, d / "spells.parquet")
        write_parquet_atomic(pd.DataFrame({"person_id": pd.Series([], dtype="str"),
                                           "date": pd.Series([], dtype="datetime64[s]"),
                                           "type": pd.Series([], dtype="str")}), d / "interventions.parquet")
        stamp(d)
    return d


BENCH_KEY = b"the benchmarks' model signing key, 32 bytes or more"  # not a secret: synthetic data only


def _pattern(pop: Path) -> str:
    """The pseudonym pattern of a cached population: random spells carry toy ids (``p123``)."""
    return "p[0-9]+" if pop.name.startswith("random_") else "[0-9a-f]{64}"


def model_dir() -> Path:
    """A cached model trained on a small population."""
    from iizrisk.io import read_canonical, read_canonical_table
    from iizrisk.model import save_model, train
    from iizrisk.store import write_bytes_atomic

    d = CACHE / "model"
    write_bytes_atomic(BENCH_KEY, CACHE / "model.key", private=True)  # a key only its owner may read
    if (d / "manifest.json").exists() and (d / "model.skops").exists():
        return d
    pop = population(250_000, seed=5)
    spells = read_canonical(pop / "spells.parquet")
    model, _ = train(spells, interventions=read_canonical_table(pop / "interventions.parquet"),
                     outcome="revolving_door", compare=False, max_train_rows=150_000)
    save_model(model, d, key=BENCH_KEY)
    return d


def stages(n_spells: int, persons_per_spell: float | None = None) -> list[dict]:
    from iizrisk.explain import explain, reason_codes
    from iizrisk.flags import compute_flags
    from iizrisk.io import ingest, read_canonical
    from iizrisk.model import load_model
    from iizrisk.spells import build_timeline
    from iizrisk.store import write_parquet_atomic

    pop = population(n_spells) if persons_per_spell is None else random_population(n_spells, persons_per_spell)
    mdl = load_model(model_dir(), key=BENCH_KEY)
    rows: list = []
    size = {"spells": n_spells}
    with stage(rows, "read (Parquet)", **size):
        spells = read_canonical(pop / "spells.parquet")
    del spells
    with stage(rows, "read + validate", **size):
        spells = ingest(pop / "spells.parquet", pseudonym_pattern=_pattern(pop)).spells
    size["persons"] = int(spells["person_id"].nunique())
    with stage(rows, "point-in-time spells", **size):
        tl = build_timeline(spells, as_of=AS_OF)
    with stage(rows, "flags", **size):
        compute_flags(tl, AS_OF)
    with stage(rows, "features", **size):
        X = mdl.features.transform(spells, as_of=AS_OF)
    with stage(rows, "score", **size):
        risk = mdl.predict_proba(X)[:, 1]
    top = np.argsort(-risk, kind="stable")[:5000]
    with stage(rows, "explain 5,000 rows", **size):
        reason_codes(explain(mdl, X.iloc[top]), language="de")
    out = CACHE / "scores_tmp.parquet"
    with stage(rows, "write scores", **size):
        write_parquet_atomic(pd.DataFrame({"person_id": X.index.get_level_values("person_id").astype(str),
                                           "risk": risk}), out)
    out.unlink(missing_ok=True)
    rows.append(nightly_run(pop, n_spells, size))
    return rows


def nightly_run(pop: Path, n_spells: int, size: dict) -> dict:
    """``iizrisk run`` end to end in a fresh process; wall time, stage times and peak RSS."""
    from iizrisk.config import Settings

    root = CACHE / f"deploy_{pop.name}"
    iv = pop / "interventions.parquet"
    cfg = Settings.from_dict({"sources": [{"name": "all", "path": str(pop / "spells.parquet")}],
                              "model": {"dir": str(model_dir()), "signing_key_file": str(CACHE / "model.key")},
                              "deployment": {"interventions": str(iv) if iv.exists() else "",
                                             "pseudonym_pattern": _pattern(pop)},
                              "output": {"dir": str(root / "runs"), "history_dir": str(root / "history")}},
                             base_dir=root).save(root / "iizrisk.toml")
    code = ("import resource, sys; from iizrisk.cli import main; rc = main(['-q', 'run', sys.argv[1], "
            "'--as-of', sys.argv[2], '--no-progress']); "
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, str(cfg), AS_OF], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"iizrisk run failed ({p.returncode}):\n{p.stderr[-3000:]}")
    maxrss = int(p.stderr.rsplit("MAXRSS", 1)[1].split()[0]) / 1024
    timings = json.loads((root / "runs" / AS_OF / "timings.json").read_text())["timings_seconds"]
    return {"stage": "iizrisk run (whole, fresh process)", "seconds": round(wall, 2),
            "peak_rss_mib": round(maxrss), **size,
            "detail": ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if k != "total")}


# ------------------------------------------------------------------ comparisons
def notebook_features(spells: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """A feature subset the way a notebook would compute it: one Python call per person."""
    t = pd.Timestamp(as_of)
    lo = t - pd.DateOffset(months=24) + pd.Timedelta(days=1)

    def per_person(g: pd.DataFrame) -> pd.Series:
        late = g["recorded_date"] > t  # recorded after T: the row, or its end, unknown at T
        g = g[(g["start_date"] <= t) & ~(late & g["end_date"].isna())]
        end = g["end_date"].where((g["end_date"] <= t) & ~late[g.index])
        # merge rows of one institution that overlap or touch into spells
        far = pd.Timestamp("2200-01-01")
        g = g.assign(end_=end.fillna(far)).sort_values(["institution", "start_date"])
        prev = g.groupby("institution")["end_"].transform(lambda e: e.cummax().shift()).astype("datetime64[s]")
        new = prev.isna() | (g["start_date"] > prev + pd.Timedelta(days=1))
        g = g.assign(spell=new.cumsum()).groupby(["institution", "spell"], as_index=False).agg(
            start_date=("start_date", "min"), end_=("end_", "max"))
        end = g["end_"].where(g["end_"] != far)
        is_open = end.isna()
        in_window = (g["start_date"] <= t) & (end.isna() | (end >= lo))
        start_w = g["start_date"].clip(lower=lo)
        end_w = end.fillna(t).clip(upper=t)
        days = ((end_w - start_w).dt.days + 1).where(in_window, 0)
        return pd.Series({
            "n_registered_now": int(g.loc[is_open, "institution"].nunique()),
            "spells_24m": int(in_window.sum()),
            "institutions_24m": int(g.loc[in_window, "institution"].nunique()),
            "days_registered_24m_sum": int(days.sum()),
        })

    return spells.groupby("person_id", observed=True).apply(per_person, include_groups=False)


def vectorised_features(spells: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """The same subset from iizrisk's timeline arrays (whole columns at once)."""
    from iizrisk import _time
    from iizrisk.spells import build_timeline

    tl = build_timeline(spells, as_of=as_of)
    t = _time.day(as_of)
    lo = int(_time.window_start(t, 24))
    end = np.minimum(tl.end.astype(np.int64), t)
    in_w = end >= lo
    n = tl.n_persons
    key = tl.person.astype(np.int64) * 256 + tl.inst
    open_ = tl.is_open()

    def distinct(mask):
        k = key[mask]
        k = np.sort(k)
        first = np.r_[True, k[1:] != k[:-1]] if len(k) else np.zeros(0, bool)
        return np.bincount((k[first] // 256).astype(np.int64), minlength=n)

    days = np.where(in_w, end - np.maximum(tl.start, lo) + 1, 0)
    out = pd.DataFrame({
        "n_registered_now": distinct(open_),
        "spells_24m": np.bincount(tl.person, weights=in_w, minlength=n).astype(np.int64),
        "institutions_24m": distinct(in_w),
        "days_registered_24m_sum": np.bincount(tl.person, weights=days, minlength=n).astype(np.int64),
    }, index=tl.person_ids.rename("person_id"))
    return out


def comparisons(n_spells: int = 200_000, featuretools_python: str | None = None) -> list[dict]:
    from iizrisk.io import read_canonical

    # the columns the subset needs (featuretools reads the same, without recorded_date)
    spells = read_canonical(population(n_spells) / "spells.parquet",
                            columns=["person_id", "institution", "start_date", "end_date", "recorded_date"])
    rows: list = []
    with stage(rows, "features subset: iizrisk vectorised", spells=n_spells):
        fast = vectorised_features(spells, AS_OF)
    with stage(rows, "features subset: groupby().apply per person", spells=n_spells):
        slow = notebook_features(spells, AS_OF)
    slow.index = slow.index.astype(str)
    fast = fast.reindex(slow.index, fill_value=0)
    same = bool((fast[slow.columns].to_numpy() == slow.to_numpy()).all())
    rows[-1]["detail"] = f"speed-up {rows[-1]['seconds'] / max(rows[-2]['seconds'], 1e-3):.0f}x; same values: {same}"
    if featuretools_python:
        rows.append(_featuretools(featuretools_python, n_spells))
    else:
        rows.append({"stage": "features subset: featuretools DFS", "seconds": None, "peak_rss_mib": None,
                     "spells": n_spells, "detail": "skipped: pass --featuretools-python (see README)"})
    return rows


def _featuretools(python: str, n_spells: int) -> dict:
    script = HERE / "featuretools_dfs.py"
    src = population(n_spells) / "spells.parquet"
    p = subprocess.run([python, str(script), str(src), AS_OF], capture_output=True, text=True)
    if p.returncode:
        return {"stage": "features subset: featuretools DFS", "seconds": None, "peak_rss_mib": None,
                "spells": n_spells, "detail": f"failed: {p.stderr.strip().splitlines()[-1][:200]}"}
    return {"stage": "features subset: featuretools DFS", **json.loads(p.stdout), "spells": n_spells}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,3000000,10000000",
                    help="spell counts, comma-separated (default %(default)s)")
    ap.add_argument("--compare-size", type=int, default=200_000)
    ap.add_argument("--compare-only", action="store_true")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--featuretools-python", help="interpreter of an environment with featuretools")
    ap.add_argument("--random-persons-per-spell", type=float, metavar="R",
                    help="use random spells (iizrisk.synth.random_spells) with R persons per spell "
                         "instead of the synthetic Swiss population (0.2: 10M spells of 2M persons)")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    a = ap.parse_args()
    os.environ.setdefault("IIZRISK_N_THREADS", "2")
    result = {"machine": machine(), "command": " ".join(sys.argv), "stages": [], "comparisons": []}
    if not a.skip_compare:
        result["comparisons"] = comparisons(a.compare_size, a.featuretools_python)
        print_table(result["comparisons"], f"Comparisons on {a.compare_size:,} spells")
    if not a.compare_only:
        for n in [int(x) for x in a.sizes.split(",") if x]:
            rows = stages(n, a.random_persons_per_spell)
            result["stages"] += rows
            shape = "" if a.random_persons_per_spell is None else f" (random, {a.random_persons_per_spell:g} persons per spell)"
            print_table(rows, f"{n:,} spells{shape}")
    save_json(result, a.json)
    print(f"\nwritten {a.json}")


if __name__ == "__main__":
    main()
