"""The demo: raw synthetic exports to published worklists through the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from iizrisk import demo
from iizrisk.cli import main
from iizrisk.demo import MAX_YEARS, MIN_PERSONS, MIN_YEARS, run_demo
from iizrisk.errors import ConfigError


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--persons", "4000", "--years", "6", "--end", "2024-12-31"]) == 0
    printed = capsys.readouterr().out
    assert "summary.html" in printed and "never a decision" in printed
    listed = next(line for line in printed.splitlines() if line.strip().startswith("worklists"))
    assert "(ALV, " in listed and "ALV_20" not in listed  # the latest lists, not their dated copies
    # the summary's words stay left-aligned and may wrap (a verdict beside the ratios was cut off), its counts not
    html = (out / "runs" / "2025-01-07" / "summary.html").read_text(encoding="utf-8")
    assert "<td>ALV</td>" in html and '<td class="n">25 von 25</td>' in html
    assert "<td>Datenfehler</td>" in html and '<td class="n">Datenfehler</td>' not in html
    assert "<td>ausserhalb der Regel</td>" in html or "<td>nicht beurteilt</td>" in html
    assert '<th class="n">Urteil</th>' not in html and "<th>Urteil</th>" in html
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
    # the model card beside the model speaks the deployment's language and names its protected attributes
    from iizrisk._texts import text
    from iizrisk.config import Settings

    settings = Settings.load(out / "data" / "iizrisk.toml")
    card = (out / "model" / "model_card.md").read_text(encoding="utf-8")
    assert settings.worklist.language == "de" and card.startswith("# " + text("card.title", "de"))
    assert len(settings.privacy.protected_attributes) > 2
    assert all(text(f"card.attributes.{a}", "de") in card for a in settings.privacy.protected_attributes)


# ------------------------------------------------------------------ options refused before anything is written
@pytest.fixture
def nothing_simulated(monkeypatch):
    """The demo must refuse before its first step: simulating fails the test (instead of running for ages)."""
    import iizrisk.synth

    def never(*args, **kwargs):
        raise AssertionError("the demo started: the option should have been refused before")

    monkeypatch.setattr(iizrisk.synth, "generate", never)


def _main(argv: list[str]) -> int:
    """The exit code, also of a usage error argparse refuses."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize("extra", [["--persons", "0"], ["--persons", "1"], ["--persons", str(MIN_PERSONS - 1)],
                                   ["--persons", "10000001"], ["--years", "0"], ["--years", str(MIN_YEARS - 1)],
                                   ["--years", str(MAX_YEARS + 1)], ["--end", "2024-02-30"], ["--end", "2199-12-31"],
                                   ["--seed", "-2"]])  # a negative seed: an internal error (exit 5) after the work
def test_a_demo_that_could_not_run_is_refused_before_anything_is_written(tmp_path, capsys, nothing_simulated, extra):
    out = tmp_path / "demo"
    assert _main(["demo", "--out", str(out), "--persons", str(MIN_PERSONS), *extra]) == 2
    assert extra[0] in capsys.readouterr().err
    assert not out.exists()


def test_run_demo_refuses_too_small_a_canton_for_python_callers(tmp_path, nothing_simulated):
    for kwargs in ({"persons": 0}, {"persons": 1}, {"years": 1}, {"persons": True}, {"end": "31.12.2024"},
                   {"seed": -2}):
        with pytest.raises(ConfigError, match="--persons|--years|--end|--seed"):
            run_demo(tmp_path / "demo", **kwargs)
    assert not (tmp_path / "demo").exists()


def test_a_folder_holding_other_files_is_refused_untouched(tmp_path, capsys, nothing_simulated):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "data").mkdir()  # a folder of the user's named like the demo's, without an earlier demo in it
    (mine / "data" / "export.csv").write_text("a;b\n")
    for out in (mine, mine / "data"):
        assert _main(["demo", "--out", str(out), "--persons", "1000"]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "not empty" in err and "new or empty folder" in err
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == ["data", "data/export.csv",
                                                                               "notes.txt"]
    assert _main(["demo", "--out", str(mine / "notes.txt"), "--persons", "1000"]) == 2
    assert "a file, not a folder" in capsys.readouterr().err


def test_an_earlier_demo_or_an_empty_folder_is_accepted(tmp_path):
    earlier = tmp_path / "earlier"
    (earlier / "data").mkdir(parents=True)
    (earlier / "data" / "synth.json").write_text("{}")
    for name in ("secrets", "model", "runs", "history", "reviews"):
        (earlier / name).mkdir()
    (tmp_path / "empty").mkdir()
    for out in (earlier, tmp_path / "empty", tmp_path / "new"):
        folder, start, end = demo._check_arguments(out, persons=MIN_PERSONS, years=MIN_YEARS, end="2024-12-31")
        assert folder == out.resolve() and (start, end) == (dt.date(2025 - MIN_YEARS, 1, 1), dt.date(2024, 12, 31))
    # the period of a leap day's export: from the day after 28 February
    assert demo._check_arguments(tmp_path / "new", persons=MIN_PERSONS, years=5, end="2024-02-29")[1] == dt.date(2019, 3, 1)


@pytest.mark.slow
def test_the_smallest_demo_runs_and_runs_again_in_its_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    for _ in range(2):
        assert main(["demo", "--out", str(out), "--persons", str(MIN_PERSONS), "--years", str(MIN_YEARS),
                     "--end", "2024-12-31", "--seed", "7"]) == 0
        assert "never a decision" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(demo._DEMO_ENTRIES)


def _an_earlier_demo(out):
    (out / "data").mkdir(parents=True)
    (out / "data" / "synth.json").write_text('{"seed": 1}')
    (out / "runs").mkdir()
    (out / "runs" / "2024-12-31").write_text("the earlier night")
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))


@pytest.mark.parametrize("failure", [RuntimeError("the training failed"), KeyboardInterrupt()])
@pytest.mark.parametrize("start", ["earlier", "empty", "new"])
def test_a_failed_demo_leaves_its_folder_as_it_was(tmp_path, monkeypatch, failure, start):
    """A demo failing after the synthesis (the training, the night, Ctrl-C) left --out half replaced: new
    exports beside the earlier demo's model and runs, which looked like a finished demo."""
    import iizrisk.model

    out = tmp_path / "demo"
    before: list[str] = []
    if start == "earlier":
        before = _an_earlier_demo(out)
    elif start == "empty":
        out.mkdir()

    def fail(*args, **kwargs):
        assert (out / "data" / "iizrisk.toml").is_file()  # the new demo had written its exports
        raise failure

    monkeypatch.setattr(iizrisk.model, "train", fail)
    with pytest.raises(type(failure)):
        run_demo(out, persons=MIN_PERSONS, years=MIN_YEARS, end="2024-12-31", reviews=False)
    if start == "new":
        assert not out.exists()
    else:
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    if start == "earlier":
        assert (out / "data" / "synth.json").read_text() == '{"seed": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == (["demo"] if start != "new" else [])


def test_a_folder_in_the_way_of_the_earlier_demo_is_refused_untouched(tmp_path, nothing_simulated):
    out = tmp_path / "demo"
    before = _an_earlier_demo(out)
    (tmp_path / ".demo.earlier-demo").mkdir()
    (tmp_path / ".demo.earlier-demo" / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"\.demo\.earlier-demo is in the way of the earlier demo.*move it away"):
        run_demo(out, persons=MIN_PERSONS, years=MIN_YEARS, end="2024-12-31")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert (tmp_path / ".demo.earlier-demo" / "mine.txt").read_text() == "keep me"
