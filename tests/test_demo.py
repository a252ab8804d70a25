"""The demo: raw synthetic exports to published worklists through the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from iizrisk.cli import main


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--persons", "4000", "--years", "6", "--end", "2024-12-31"]) == 0
    printed = capsys.readouterr().out
    assert "summary.html" in printed and "never a decision" in printed
    run = out / "runs" / "2024-12-31"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["persons_scored"] > 0
    # the raw exports are messy on purpose: duplicates reported, invalid rows quarantined, none lost
    rows = manifest["rows"]
    assert rows["read"] == rows["accepted"] + rows["quarantined"] and rows["quarantined"] > 0
    assert any("duplicate" in w for w in rows["warnings"])
    q = pd.read_parquet(run / "quarantine.parquet")
    assert len(q) == rows["quarantined"] and q["_reason"].str.len().gt(0).all()
    lists = sorted(p.stem for p in (run / "worklists").glob("*.csv"))
    assert {"ALV", "SH", "IV"} <= set(lists)
    assert (run / "summary.html").read_text().count("data:image/png;base64,") == 1
    # the coordinator's loop: reviews filled in, imported, and a second night a week later respects them
    assert "reviews" in printed and "second night" in printed
    second = out / "runs" / "2025-01-07"
    m2 = json.loads((second / "manifest.json").read_text())
    assert sum(m2["reviews_since_last_run"].values()) > 0
    assert sum(v["left_off_reviewed"] for v in m2["worklists"].values()) > 0
    reviewed = pd.read_parquet(out / "history" / "reviews" / "reviews.parquet")
    assert (~reviewed["listed"]).sum() > 0  # overrides: cases that were not on the list
    alv = pd.read_parquet(second / "worklists" / "ALV.parquet")
    assert (alv["times_listed"] >= 1).all() and alv["last_decision"].notna().any()
    assert (out / "runs" / "latest").resolve() == second.resolve()
