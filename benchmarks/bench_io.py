"""Ingestion benchmark: canonical Parquet (full validation) and Swiss-style CSV.

Targets (issue 3): 10 million canonical rows from Parquet in <= 15 s; 1 million
rows of Swiss-style CSV (``;``, Windows-1252, ``dd.mm.yyyy``) in <= 10 s, on 2 cores.

    .venv/bin/python benchmarks/bench_io.py --parquet-rows 10000000 --csv-rows 1000000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE, cached, machine, print_table, save_json, stage, stamp
from iizrisk.config import Settings
from iizrisk.io import ingest, read_canonical
from iizrisk.store import write_parquet_atomic
from iizrisk.synth import random_spells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parquet-rows", type=int, default=10_000_000)
    ap.add_argument("--csv-rows", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "io.json")
    a = ap.parse_args()
    rows: list = []
    pq_path = CACHE / f"spells_{a.parquet_rows}.parquet"
    if not cached(pq_path):
        stamp(write_parquet_atomic(random_spells(a.parquet_rows, seed=1), pq_path))
    with stage(rows, "parquet: read_canonical", rows=a.parquet_rows):
        df = read_canonical(pq_path)
    del df
    with stage(rows, "parquet: ingest (full validation)", rows=a.parquet_rows):
        res = ingest(pq_path, pseudonym_pattern=None)  # random spells carry toy ids
    assert len(res.spells) == a.parquet_rows
    del res

    csv_path = CACHE / f"alv_{a.csv_rows}.csv"
    if not csv_path.exists():
        d = random_spells(a.csv_rows, seed=2)
        out = d.rename(columns={"person_id": "PERS_PSEUDO", "case_id": "FALL_NR", "start_date": "BEGINN",
                                "end_date": "ENDE", "exit_reason": "ABGANGSGRUND"}).drop(columns="institution")
        for c in ["BEGINN", "ENDE"]:
            out[c] = out[c].dt.strftime("%d.%m.%Y")
        out["BEMERKUNG"] = "Zürich; Büro Nord"
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(csv_path, sep=";", index=False, encoding="cp1252")
    settings = Settings.from_dict({"deployment": {"pseudonym_pattern": "p[0-9]+"}, "sources": [{
        "name": "alv", "path": str(csv_path), "institution": "ALV",
        "columns": {"PERS_PSEUDO": "person_id", "FALL_NR": "case_id", "BEGINN": "start_date",
                    "ENDE": "end_date", "ABGANGSGRUND": "exit_reason"}}]})
    with stage(rows, "csv: ingest (cp1252, ';', dd.mm.yyyy)", rows=a.csv_rows):
        res = ingest(settings)
    assert len(res.spells) == a.csv_rows
    print_table(rows, "Ingestion")
    save_json({"machine": machine(), "stages": rows}, a.json)


if __name__ == "__main__":
    main()
