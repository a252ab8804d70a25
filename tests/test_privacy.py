"""Privacy: the disclosure policy of the worklists, and no raw identifier anywhere.

docs/domain.md section 6: each institution sees only its own case ids; other
institutions appear as a count unless the disclosure policy names them; the
published worklists hold no pseudonyms; input holding AHV numbers is refused
and no output, log or message ever shows one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iizrisk.batch import run_nightly
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import RawIdentifierError
from iizrisk.pseudonym import is_valid_ahv, pseudonymise_values
from iizrisk.store import write_parquet_atomic

AS_OF = "2023-06-30"
KEY = b"privacy test key, never a real one!"
MODEL_KEY = b"model signing key of the privacy tests, never a real one"
HEX64 = re.compile(rb"[0-9a-f]{64}")
CASE = re.compile(r"\b(?:ALV|IV|SH|BB|BSLB|MIG|UV|KTG)-\d+\b")


# --------------------------------------------------------------------------- data
def ahv_numbers(n: int, seed: int = 0) -> list[str]:
    """Valid 13-digit AHV numbers (756 prefix, EAN-13 check digit), undotted."""
    rng = np.random.default_rng(seed)
    body = np.char.add("756", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9))
    digits = np.array([[int(c) for c in b] for b in body])
    check = (10 - (digits @ np.array([1, 3] * 6)) % 10) % 10
    out = [f"{b}{c}" for b, c in zip(body, check, strict=True)]
    assert is_valid_ahv(out).all()
    return out


def dotted(number: str) -> str:
    return f"{number[:3]}.{number[3:7]}.{number[7:11]}.{number[11:]}"


@pytest.fixture(scope="module")
def raw_numbers(random_spells) -> dict[str, str]:
    """The (made-up) AHV number of every person of the random spells."""
    ids = pd.unique(random_spells["person_id"])
    return dict(zip(ids, ahv_numbers(len(ids), seed=1), strict=True))


@pytest.fixture(scope="module")
def spells(random_spells, raw_numbers) -> pd.DataFrame:
    """The random spells as a real export arrives: person_id is the keyed HMAC of the AHV number."""
    out = random_spells.copy()
    pseudo = dict(zip(raw_numbers, pseudonymise_values(list(raw_numbers.values()), KEY), strict=True))
    out["person_id"] = pd.Series(out["person_id"].map(pseudo), dtype="str")
    out["remark"] = pd.Series(np.where(np.arange(len(out)) % 7 == 0, "Termin verschoben", None), dtype="str")
    return out


@pytest.fixture(scope="module")
def model(spells):
    """A small model whose top reasons often concern *other* institutions (SH, IV history)."""
    from iizrisk.features import PointInTimeFeatures
    from iizrisk.model import RiskModel

    ft = PointInTimeFeatures()
    X = ft.fit_transform(spells, as_of=["2022-06-30", "2022-09-30", "2022-12-31"])
    signal = X["days_sh_24m"] / 730 + X["days_iv_24m"] / 730 + 0.3 * X["n_institutions_12m"]
    y = (signal + np.random.default_rng(0).normal(0, 0.3, len(X)) > np.quantile(signal, 0.8)).to_numpy()
    return RiskModel(model="logistic", calibration=None, features=ft).fit(X, y)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model):
    from iizrisk.model import save_model

    d = tmp_path_factory.mktemp("privacy")
    (d / "model.key").write_bytes(MODEL_KEY)  # signed: the nightly run and audit refuse unsigned models
    return save_model(model, d / "model", key=MODEL_KEY)


def deployment(tmp_path: Path, spells: pd.DataFrame, model_dir: Path, *, csv: bool = True, **extra) -> Path:
    """A deployment whose one source is a CSV export (as institutions send them) or Parquet."""
    exports = tmp_path / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    if csv:
        out = spells.copy()
        for c in ("start_date", "end_date"):
            out[c] = pd.to_datetime(out[c]).dt.strftime("%d.%m.%Y")
        out.to_csv(exports / "spells.csv", sep=";", index=False, encoding="utf-8")
        path = "exports/spells.csv"
    else:
        write_parquet_atomic(spells, exports / "spells.parquet")
        path = "exports/spells.parquet"
    cfg = {"sources": [{"name": "all", "path": path}],
           "model": {"dir": str(model_dir), "signing_key_file": str(Path(model_dir).parent / "model.key")},
           "worklist": {"capacity": 40, "language_per_institution": {"SH": "fr", "IV": "it"},
                        "disclose_institutions": ["ALV"]}}
    for k, v in extra.items():
        cfg.setdefault(k, {}).update(v)
    return Settings.from_dict(cfg, base_dir=tmp_path).save(tmp_path / "iizrisk.toml")


def open_cases(spells: pd.DataFrame, as_of: str) -> pd.DataFrame:
    t = pd.Timestamp(as_of)
    m = (spells["start_date"] <= t) & (spells["end_date"].isna() | (spells["end_date"] > t))
    return spells.loc[m, ["person_id", "institution", "case_id"]].astype(str)


def published_lists(folder: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, bytes]]:
    """Per institution: the CSV and Parquet worklists as read back, and the raw bytes of both files."""
    from iizrisk.tables import read_table

    out = {}
    for pq in sorted((folder / "worklists").glob("*.parquet")):  # the latest lists (dated copies are CSV/xlsx)
        inst = pq.stem
        csv = pq.with_suffix(".csv")
        out[inst] = (read_table(csv, dtype=str, keep_default_na=False), pd.read_parquet(pq),
                     csv.read_bytes() + pq.read_bytes())
    return out


# --------------------------------------------------------------------------- disclosure
@pytest.fixture(scope="module")
def run(tmp_path_factory, spells, model_dir):
    tmp = tmp_path_factory.mktemp("run")
    res = run_nightly(deployment(tmp, spells, model_dir), as_of=AS_OF, progress=False)
    return tmp, res


def test_each_institution_sees_only_its_own_case_ids(run, spells):
    tmp, res = run
    lists = published_lists(tmp / "runs" / AS_OF)
    assert set(lists) == set(res.worklists.lists) and len(lists) >= 3
    oc = open_cases(spells, AS_OF)
    all_cases = set(spells["case_id"].astype(str))
    for inst, (csv, pq, raw) in lists.items():
        assert len(csv) == len(pq) > 0
        own = set(oc.loc[oc["institution"] == inst, "case_id"])
        for table in (csv, pq):
            shown = set(table["case_ids"].astype(str).str.split(";").explode())
            assert shown <= own, (inst, shown - own)
        # no case id of another institution anywhere in either file, in any column
        found = set(CASE.findall(raw.decode("utf-8", errors="replace"))) & all_cases
        assert {c for c in found if not c.startswith(f"{inst}-")} == set(), inst


def test_other_institutions_are_a_count_and_named_only_when_disclosed(run, spells):
    tmp, res = run
    oc = open_cases(spells, AS_OF)
    insts_of = oc.groupby("person_id")["institution"].agg(set)
    lists = published_lists(tmp / "runs" / AS_OF)
    for inst, (csv, pq, _) in lists.items():
        mem = res.worklists[inst]  # same rows, in memory with the pseudonym
        assert len(mem) == len(csv)
        others = [insts_of[p] - {inst} for p in mem["person_id"]]
        assert csv["n_other_institutions"].astype(int).tolist() == [len(o) for o in others]
        want = ["ALV" if "ALV" in o else "" for o in others]  # ALV is the only disclosed institution
        assert csv["other_institutions_disclosed"].tolist() == want
        assert pq["other_institutions_disclosed"].fillna("").tolist() == want
    assert any(csv["other_institutions_disclosed"].eq("ALV").any() for i, (csv, _, _) in lists.items()
               if i != "ALV"), "the test needs people registered at ALV and elsewhere"


def test_nothing_is_named_without_a_disclosure_policy(tmp_path, spells, model_dir):
    res = run_nightly(deployment(tmp_path, spells, model_dir, worklist={"disclose_institutions": []}),
                      as_of=AS_OF, progress=False)
    lists = published_lists(tmp_path / "runs" / AS_OF)
    for inst, (csv, _, _) in lists.items():
        assert (csv["other_institutions_disclosed"] == "").all(), inst
    assert sum(int((csv["n_other_institutions"].astype(int) > 0).sum()) for csv, _, _ in lists.values()) > 0
    assert len(res.worklists) == len(lists)


def test_published_worklists_hold_no_pseudonyms(run, spells):
    tmp, _ = run
    folder = tmp / "runs" / AS_OF
    pseudonyms = set(spells["person_id"])
    for inst, (csv, pq, raw) in published_lists(folder).items():
        assert "person_id" not in csv.columns and "person_id" not in pq.columns
        assert not {m.decode() for m in HEX64.findall(raw)} & pseudonyms, inst
    for name in ("summary.md", "summary.html", "manifest.json"):
        text = (folder / name).read_bytes()
        assert not {m.decode() for m in HEX64.findall(text)} & pseudonyms, name


def test_reason_texts_name_only_the_own_or_disclosed_institutions(run):
    from iizrisk.explain import feature_spec_of

    _, res = run
    leaks = []
    for inst, df in res.worklists.lists.items():
        allowed = {inst, "ALV"}
        for k in (1, 2, 3):
            for code, text in zip(df[f"reason_{k}"], df[f"reason_{k}_text"], strict=True):
                spec = feature_spec_of(code) if isinstance(code, str) else None
                other = spec.param_dict.get("institution") if spec else None
                if other and other not in allowed:
                    leaks.append((inst, code, text))
    assert not leaks, leaks[:5]


# --------------------------------------------------------------------------- raw identifiers
def planted(spells: pd.DataFrame, raw_numbers: dict[str, str], where: str) -> tuple[pd.DataFrame, list[str]]:
    """The export with some persons' real AHV numbers planted in ``where``; returns the numbers."""
    df = spells.copy()
    rows = np.arange(3, 60, 7)
    persons = list(raw_numbers)[: len(rows)]
    numbers = [raw_numbers[p] for p in persons]
    forms = [dotted(n) if i % 2 else n for i, n in enumerate(numbers)]  # dotted and undotted
    if where == "person_id":
        col = np.array(df["person_id"].astype(object), dtype=object)
        col[rows] = forms
        df["person_id"] = pd.Series(col, dtype="str")
    elif where == "case_id":
        col = np.array(df["case_id"].astype(object), dtype=object)
        col[rows] = forms
        df["case_id"] = pd.Series(col, dtype="str")
    elif where == "remark":
        col = np.array(df["remark"].astype(object), dtype=object)
        col[rows] = [f" {f} " if i % 3 == 0 else f for i, f in enumerate(forms)]
        df["remark"] = pd.Series(col, dtype="str")
    elif where == "remark_sentence":
        col = np.array(df["remark"].astype(object), dtype=object)
        col[rows] = [f"Rückruf erbeten, AHV {f}" for f in forms]
        df["remark"] = pd.Series(col, dtype="str")
    else:  # pragma: no cover
        raise ValueError(where)
    return df, sorted(set(numbers) | set(forms) | {dotted(n) for n in numbers})


def leaked(numbers: list[str], text: str) -> list[str]:
    return [n for n in numbers if n in text]


def files_text(root: Path, *, skip: tuple[str, ...] = ("exports",)) -> dict[str, str]:
    """Every file under ``root`` (but the planted inputs) as text, Parquet files decoded."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part in skip for part in p.relative_to(root).parts):
            continue
        if p.suffix == ".parquet":
            out[str(p)] = pd.read_parquet(p).astype(str).to_csv()
        out[str(p) + ":bytes"] = p.read_bytes().decode("utf-8", errors="replace")
    return out


@pytest.mark.parametrize("where", ["person_id", "case_id", "remark"])
def test_run_refuses_raw_identifiers_and_shows_none(tmp_path, spells, raw_numbers, model_dir, where, caplog):
    bad, numbers = planted(spells, raw_numbers, where)
    cfg = deployment(tmp_path, bad, model_dir)
    caplog.set_level(logging.DEBUG, logger="iizrisk")
    with pytest.raises(RawIdentifierError) as exc:
        run_nightly(cfg, as_of=AS_OF, progress=False)
    column = "person_id" if where == "person_id" else where
    assert repr(column) in str(exc.value)
    messages = str(exc.value) + "\n" + exc.value.report.to_text() + "\n" + exc.value.report.to_frame().to_csv()
    assert not leaked(numbers, messages)
    assert not leaked(numbers, caplog.text)
    assert not (tmp_path / "runs" / AS_OF).exists()  # nothing published
    for name, text in files_text(tmp_path).items():
        assert not leaked(numbers, text), name
    # the same through the command line, in a separate process: exit 1, nothing on stdout or stderr
    proc = subprocess.run([sys.executable, "-m", "iizrisk", "-vv", "run", str(cfg), "--as-of", AS_OF],
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert proc.returncode == 1, proc.stderr
    assert "AHV" in proc.stderr and not leaked(numbers, proc.stdout + proc.stderr)
    for name, text in files_text(tmp_path).items():
        assert not leaked(numbers, text), name


@pytest.mark.parametrize("where", ["person_id", "remark"])
def test_cli_validate_flags_audit_refuse_raw_identifiers(tmp_path, spells, raw_numbers, model_dir, where,
                                                         capsys, caplog):
    bad, numbers = planted(spells, raw_numbers, where)
    caplog.set_level(logging.DEBUG, logger="iizrisk")
    cfg = deployment(tmp_path, bad, model_dir)
    write_parquet_atomic(bad, tmp_path / "exports" / "spells.parquet")
    report = tmp_path / "report.csv"
    codes = {
        "validate config": main(["validate", str(cfg), "--report", str(report)]),
        "validate file": main(["validate", str(tmp_path / "exports" / "spells.csv")]),
        "audit": main(["audit", "--model", str(model_dir), "--spells", str(tmp_path / "exports" / "spells.parquet"),
                       "--key-file", str(Path(model_dir).parent / "model.key"),
                       "--as-of", "2022-12-31", "--out", str(tmp_path / "audit"), "--bootstrap", "0"]),
        "features": main(["features", "--spells", str(tmp_path / "exports" / "spells.parquet"), "--as-of", AS_OF,
                          "--out", str(tmp_path / "features.parquet")]),
    }
    if where == "person_id":  # `iizrisk flags` reads only the columns it needs (see the xfail below)
        codes["flags"] = main(["flags", "--spells", str(tmp_path / "exports" / "spells.parquet"),
                               "--as-of", AS_OF, "--out", str(tmp_path / "flags.parquet")])
    assert codes == dict.fromkeys(codes, 1)
    out = capsys.readouterr()
    assert out.out.count("AHV") + out.err.count("AHV") >= len(codes)
    assert not leaked(numbers, out.out + out.err + caplog.text)
    assert not (tmp_path / "flags.parquet").exists() and not (tmp_path / "features.parquet").exists()
    assert not (tmp_path / "audit").exists() or not any((tmp_path / "audit").iterdir())
    for name, text in files_text(tmp_path).items():  # the --report CSV included, when written
        assert not leaked(numbers, text), name


def test_cli_flags_refuses_raw_identifiers_in_any_column(tmp_path, spells, raw_numbers):
    bad, _ = planted(spells, raw_numbers, "remark")
    write_parquet_atomic(bad, tmp_path / "spells.parquet")
    assert main(["flags", "--spells", str(tmp_path / "spells.parquet"), "--as-of", AS_OF,
                 "--out", str(tmp_path / "flags.parquet")]) == 1


def test_clean_export_passes_the_same_commands(tmp_path, spells, model_dir, capsys):
    """The planted-number tests fail for the right reason: the clean export is accepted."""
    cfg = deployment(tmp_path, spells, model_dir)
    assert main(["validate", str(cfg), "--as-of", AS_OF]) == 0  # the nightly run's verdict
    write_parquet_atomic(spells, tmp_path / "spells.parquet")
    assert main(["flags", "--spells", str(tmp_path / "spells.parquet"), "--as-of", AS_OF,
                 "--out", str(tmp_path / "flags.parquet")]) == 0
    assert (tmp_path / "flags.parquet").exists()
    capsys.readouterr()


def test_ahv_numbers_inside_free_text_are_refused(tmp_path, spells, raw_numbers, model_dir):
    bad, _ = planted(spells, raw_numbers, "remark_sentence")
    with pytest.raises(RawIdentifierError):
        run_nightly(deployment(tmp_path, bad, model_dir), as_of=AS_OF, progress=False)


def test_ahv_numbers_inside_free_text_reach_no_output(tmp_path, spells, raw_numbers, model_dir, caplog):
    """The refused run leaves nothing behind that holds them: no log line, no published file."""
    bad, numbers = planted(spells, raw_numbers, "remark_sentence")
    caplog.set_level(logging.DEBUG, logger="iizrisk")
    with pytest.raises(RawIdentifierError) as exc:
        run_nightly(deployment(tmp_path, bad, model_dir), as_of=AS_OF, progress=False)
    assert not leaked(numbers, caplog.text + str(exc.value) + exc.value.report.to_text())
    assert not (tmp_path / "runs" / AS_OF).exists()
    for name, text in files_text(tmp_path).items():
        assert not leaked(numbers, text), name


def test_quarantine_publishes_no_raw_identifier(tmp_path, spells, raw_numbers, model_dir):
    # embedded numbers are refused even under the quarantine policy: nothing is published
    bad, numbers = planted(spells, raw_numbers, "remark_sentence")
    bad["institution"] = bad["institution"].astype(str)
    bad.loc[bad["remark"].astype(str).str.contains("AHV"), "institution"] = "XYZ"  # rows set aside
    with pytest.raises(RawIdentifierError):
        run_nightly(deployment(tmp_path, bad, model_dir, deployment={"errors": "quarantine"}), as_of=AS_OF,
                    progress=False)
    assert not (tmp_path / "runs" / AS_OF).exists()
    # and a quarantine file never carries free text: only the schema's columns
    clean = spells.assign(remark="Rückruf erbeten")
    clean["institution"] = clean["institution"].astype(str)
    clean.loc[clean.index[:3], "institution"] = "XYZ"
    run_nightly(deployment(tmp_path / "b", clean, model_dir, deployment={"errors": "quarantine"}),
                as_of=AS_OF, progress=False)
    q = pd.read_parquet(tmp_path / "b" / "runs" / AS_OF / "quarantine.parquet")
    assert len(q) == 3 and "remark" not in q.columns and not leaked(numbers, q.astype(str).to_csv())


def test_error_messages_name_the_column_never_the_value(spells, raw_numbers):
    from iizrisk.io import ingest

    bad, numbers = planted(spells, raw_numbers, "case_id")
    with pytest.raises(RawIdentifierError) as exc:
        ingest(bad, errors="quarantine")
    text = str(exc.value) + exc.value.report.to_text() + exc.value.report._repr_html_()
    assert "'case_id'" in text and not leaked(numbers, text)
    rec = json.loads(exc.value.report.to_frame().to_json(orient="records"))
    assert all(r["example"] == "" for r in rec if "AHV" in r["problem"])
