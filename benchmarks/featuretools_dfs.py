"""The benchmark's feature subset with featuretools' deep feature synthesis and cutoff times.

Runs in its own environment (featuretools pins its own pandas); called by
``benchmarks/run.py --featuretools-python PATH`` with the spells file and the
as-of date; prints ``{"seconds": ..., "peak_rss_mib": ..., "detail": ...}``.

    python -m venv benchmarks/.cache/venv-ft
    benchmarks/.cache/venv-ft/bin/pip install featuretools pyarrow
"""

from __future__ import annotations

import json
import resource
import sys
import time

import featuretools as ft
import pandas as pd


def main() -> None:
    path, as_of = sys.argv[1], pd.Timestamp(sys.argv[2])
    spells = pd.read_parquet(path, columns=["person_id", "institution", "start_date", "end_date"])
    spells = spells.assign(person_id=spells["person_id"].astype(str),
                           institution=spells["institution"].astype(str),
                           start_date=pd.to_datetime(spells["start_date"]),
                           end_date=pd.to_datetime(spells["end_date"]))
    spells["spell_id"] = range(len(spells))
    spells["days"] = (spells["end_date"].fillna(as_of).clip(upper=as_of) - spells["start_date"]).dt.days + 1
    persons = pd.DataFrame({"person_id": spells["person_id"].unique()})
    t0 = time.perf_counter()
    es = ft.EntitySet("iiz")
    es = es.add_dataframe(dataframe_name="persons", dataframe=persons, index="person_id")
    es = es.add_dataframe(dataframe_name="spells", dataframe=spells, index="spell_id", time_index="start_date",
                          logical_types={"institution": "Categorical"})
    es = es.add_relationship("persons", "person_id", "spells", "person_id")
    cutoff = pd.DataFrame({"person_id": persons["person_id"], "time": as_of})
    fm, _ = ft.dfs(entityset=es, target_dataframe_name="persons", cutoff_time=cutoff,
                   agg_primitives=["count", "num_unique", "sum"], trans_primitives=[],
                   training_window="730 days", max_depth=1)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(secs, 2), "peak_rss_mib": round(rss),
                      "detail": f"featuretools {ft.__version__}, {fm.shape[1]} features, "
                                f"training_window 730 days, cutoff {as_of.date()}"}))


if __name__ == "__main__":
    main()
