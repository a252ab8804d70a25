"""A hostile and careless operator's corpus: one small deployment, mutated in many ways.

Each case copies a published deployment (exports, configuration, signed model,
one published run and its history), breaks one thing and runs the nightly
job for the same as-of date through the command line. For every case it
checks the exit code, that the message names what is wrong and the fix, what
was published, that the run published before is byte-identical afterwards
(unless the case is meant to publish), and that no planted raw identifier
appears in any output, log, message or manifest.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from iizrisk.cli import main
from iizrisk.config import Settings

pytestmark = pytest.mark.slow

D0 = "2024-12-31"
KEY = b"0123456789abcdef0123456789abcdef-corpus-signing-key"
# valid AHV numbers (756 prefix, EAN-13 check digit), planted in the inputs; never to be seen again
AHV = "756.1234.5678.97"
AHV_DIGITS = "7561234567897"
AHV2 = "756.9217.0769.85"


def _check_digit_ok(digits: str) -> bool:
    d = [int(c) for c in digits]
    return (10 - sum(x * (1 if i % 2 == 0 else 3) for i, x in enumerate(d[:12])) % 10) % 10 == d[12]


assert _check_digit_ok(AHV_DIGITS) and _check_digit_ok(AHV2.replace(".", ""))


def _spellings(ahv: str) -> list[str]:
    digits = ahv.replace(".", "")
    return [digits, ahv, f"{digits[:3]}-{digits[3:7]}-{digits[7:11]}-{digits[11:]}",
            f"{digits[:3]} {digits[3:7]} {digits[7:11]} {digits[11:]}", digits[:3] + "." + digits[3:]]


PLANTED = _spellings(AHV) + _spellings(AHV2) + ["".join(chr(0xFF10 + int(c)) for c in AHV_DIGITS)]


# ------------------------------------------------------------------ the deployment
@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    from iizrisk.io import ingest
    from iizrisk.model import save_model, train
    from iizrisk.synth import generate

    d = tmp_path_factory.mktemp("corpus") / "base"
    pop = generate(2500, "2019-01-01", D0, seed=11, canton="BE")
    pop.to_dir(d / "data", exports=True)
    (d / "secrets").mkdir()
    (d / "secrets" / "model.key").write_bytes(KEY)
    cfg = d / "data" / "iizrisk.toml"
    s = Settings.load(cfg)
    s.model.dir, s.model.signing_key_file = "../model", "../secrets/model.key"
    s.output.dir, s.output.history_dir = "../runs", "../history"
    s.deployment.interventions = "interventions.parquet"
    s.save(cfg)
    s = Settings.load(cfg)
    ing = ingest(s)
    model, _ = train(ing.spells, outcome=s.model.outcome, horizon_months=s.model.horizon_months,
                     compare=False, model="logistic", max_train_rows=20_000, progress=False)
    save_model(model, d / "model", key=KEY)
    assert main(["-q", "run", str(cfg), "--as-of", D0]) == 0
    return d


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in {"timings.json", "run.log"}}


@dataclasses.dataclass
class Case:
    id: str
    mutate: Callable[[Path], list[str] | None]  # returns extra command-line arguments
    exit: int
    words: tuple[str, ...] = ()  # each must appear in the message (case-insensitive)
    publishes: bool = False
    argv: tuple[str, ...] | None = None  # replaces ["run", CONFIG, "--as-of", D0]


# ------------------------------------------------------------------ mutation helpers
def cfg_of(d: Path) -> Path:
    return d / "data" / "iizrisk.toml"


def settings(d: Path, **changes) -> None:
    """Edit the TOML as an operator would: section -> {key: value} (None deletes the key)."""
    import tomllib

    import tomli_w

    raw = tomllib.loads(cfg_of(d).read_text())
    for section, values in changes.items():
        for k, v in values.items():
            if v is None:
                raw.setdefault(section, {}).pop(k, None)
            else:
                raw.setdefault(section, {})[k] = v
    cfg_of(d).write_bytes(tomli_w.dumps(raw).encode())


def alv(d: Path) -> Path:
    return d / "data" / "exports" / "alv_rav_export.csv"


def edit_alv(d: Path, fn: Callable[[list[list[str]]], None]) -> None:
    text = alv(d).read_bytes().decode("cp1252")
    rows = [line.split(";") for line in text.splitlines()]
    fn(rows)
    alv(d).write_bytes(("\n".join(";".join(r) for r in rows) + "\n").encode("cp1252"))


def sh(d: Path) -> Path:
    return d / "data" / "exports" / "aide_sociale.csv"


def set_sh_cell(column: str, value: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        text = sh(d).read_text(encoding="utf-8-sig")
        rows = [line.split(";") for line in text.splitlines()]
        rows[1][rows[0].index(column)] = value
        sh(d).write_text("\n".join(";".join(r) for r in rows) + "\n", encoding="utf-8-sig")
    return mutate


def raising(mutate: Callable[[Path], None]) -> Callable[[Path], None]:
    """The same mutation under errors = "raise": any bad row refuses the input."""
    def both(d: Path) -> None:
        settings(d, deployment={"errors": "raise"})
        mutate(d)
    return both


def set_cell(column: str, value: str, rows: tuple[int, ...] = (1,)) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        def fn(table):
            j = table[0].index(column)
            for i in rows:
                table[i][j] = value
        edit_alv(d, fn)
    return mutate


def model_file(d: Path) -> Path:
    files = [p for p in (d / "model").iterdir() if p.name != "manifest.json" and p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def plant_pickle(d: Path) -> None:
    """A pickle that writes a marker when loaded, with the manifest's hash recomputed."""
    import hashlib
    import json
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {d / 'PWNED'}",))

    target = d / "model" / "model.joblib"
    target.write_bytes(pickle.dumps(Boom()))
    m = json.loads((d / "model" / "manifest.json").read_text())
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    for k in list(m):
        if k.endswith("sha256") and isinstance(m[k], str):
            m[k] = digest
    (d / "model" / "manifest.json").write_text(json.dumps(m))


def unsign(d: Path) -> None:
    """The same model saved again without a signature, the key setting removed."""
    from iizrisk.model import load_model, save_model

    model = load_model(d / "model", key=KEY)
    shutil.rmtree(d / "model")
    save_model(model, d / "model")
    settings(d, model={"signing_key_file": None})


def hold_lock(d: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from iizrisk.publish import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)",
         str(d / "runs" / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    _HOLDERS.append(holder)


_HOLDERS: list[subprocess.Popen] = []


def ahv_file_name(d: Path) -> None:
    shutil.copy(alv(d), alv(d).with_name(f"alv_{AHV_DIGITS}.csv"))
    import tomllib

    import tomli_w

    raw = tomllib.loads(cfg_of(d).read_text())
    raw["sources"][0]["path"] = "exports/alv_*.csv"
    cfg_of(d).write_bytes(tomli_w.dumps(raw).encode())


FULL_WIDTH = "".join(chr(0xFF10 + int(c)) for c in AHV_DIGITS)


CASES = [
    # ---------------------------------------------------------------- inputs: raw identifiers
    Case("ahv_in_case_id", set_cell("FALL_NR", AHV), 1, ("alv_rav_export.csv", "case_id", "AHV", "pseudonymise")),
    Case("ahv_digits_in_case_id", set_cell("FALL_NR", AHV_DIGITS, rows=(1, 2, 3)), 1, ("alv_rav_export.csv", "case_id", "AHV")),
    Case("ahv_dashes_in_office", set_cell("RAV_BUERO", "756-9217-0769-85"), 1, ("alv_rav_export.csv", "rav_office", "AHV")),
    Case("ahv_spaces_in_office", set_cell("RAV_BUERO", "RAV 756 9217 0769 85"), 1, ("alv_rav_export.csv", "rav_office", "AHV")),
    Case("ahv_glued_to_letters", set_cell("FALL_NR", "RAV" + AHV_DIGITS), 1, ("alv_rav_export.csv", "case_id", "AHV")),
    Case("ahv_after_a_dot", set_cell("RAV_BUERO", "Nr." + AHV), 1, ("alv_rav_export.csv", "rav_office", "AHV")),
    Case("ahv_excel_notation", set_cell("FALL_NR", "7.561234567897E+12"), 1, ("alv_rav_export.csv", "case_id", "AHV")),
    Case("ahv_as_person_id", set_cell("PERS_PSEUDO", AHV_DIGITS), 1, ("alv_rav_export.csv", "person_id", "AHV")),
    Case("ahv_in_a_header", lambda d: edit_alv(d, lambda t: t[0].__setitem__(t[0].index("RAV_BUERO"), AHV)),
         1, ("alv", "AHV")),
    Case("ahv_in_a_file_name", ahv_file_name, 1, ("alv", "AHV")),
    Case("ahv_in_full_width_digits", set_sh_cell("no_dossier", FULL_WIDTH), 1, ("aide_sociale.csv", "case_id", "AHV")),
    # ---------------------------------------------------------------- inputs: pseudonyms and codes
    Case("name_as_person_id", raising(set_cell("PERS_PSEUDO", "Muster Hans")), 1, ("alv_rav_export.csv", "person_id", "pseudonym")),
    Case("birth_date_as_person_id", raising(set_cell("PERS_PSEUDO", "12.03.1975")), 1, ("alv_rav_export.csv", "person_id", "pseudonym")),
    Case("upper_case_pseudonym", raising(lambda d: edit_alv(d, lambda t: t[1].__setitem__(0, t[1][0].upper()))),
         1, ("alv_rav_export.csv", "person_id", "pseudonym")),
    Case("unknown_institution_code", raising(set_cell("STELLE", "Sozialdienst")), 1,
         ("alv_rav_export.csv", "institution", "unknown institution code")),
    Case("institution_not_allowed_for_the_source", raising(set_cell("STELLE", "IV")), 1,
         ("alv_rav_export.csv", "institution", "IV")),
    Case("name_as_person_id_quarantined", set_cell("PERS_PSEUDO", "Muster Hans"), 0, (), publishes=True),
    Case("duplicated_header", lambda d: edit_alv(d, lambda t: t[0].__setitem__(t[0].index("KANTON"), "PERS_PSEUDO")),
         1, ("PERS_PSEUDO", "alv")),
    Case("nul_byte_late_in_case_id", raising(set_cell("FALL_NR", "RAV-1\x00", rows=(400,))), 1,
         ("alv_rav_export.csv", "case_id", "NUL")),
    Case("one_megabyte_case_id", raising(set_cell("FALL_NR", "X" * 1_000_000)), 1,
         ("alv_rav_export.csv", "case_id", "64")),
    Case("one_megabyte_case_id_quarantined", set_cell("FALL_NR", "X" * 1_000_000), 0, (), publishes=True),
    Case("csv_injection_is_neutralised", set_cell("FALL_NR", "=HYPERLINK(\"http://x\")", rows=tuple(range(1, 200))),
         0, (), publishes=True),
    # ---------------------------------------------------------------- inputs: missing, empty, stale, partial
    Case("export_missing", lambda d: alv(d).unlink(), 1, ("alv", "not found", "path")),
    Case("export_empty", lambda d: edit_alv(d, lambda t: t.__delitem__(slice(1, None))), 1, ("ALV", "no accepted rows")),
    Case("export_half_gone", lambda d: edit_alv(d, lambda t: t.__delitem__(slice(2, None, 2)) or
                                                t.__delitem__(slice(2, None, 2))), 1, ("max_row_drop_percent", "ALV")),
    Case("export_binary", lambda d: alv(d).write_bytes(os.urandom(5000)), 1, ("alv",)),
    Case("export_is_a_folder", lambda d: (alv(d).unlink(), alv(d).mkdir()) and None, 1, ("alv",)),
    Case("export_is_a_fifo", lambda d: (alv(d).unlink(), os.mkfifo(alv(d))) and None, 1, ("alv",)),
    Case("export_a_loop_of_links", lambda d: (alv(d).unlink(), os.symlink(d / "x2", alv(d)),
                                              os.symlink(alv(d), d / "x2")) and None, 6,
         ("alv", "cannot be read", "permissions")),
    Case("most_rows_quarantined", set_cell("ANMELDUNG", "31.02.2020", rows=tuple(range(1, 300))), 1,
         ("max_quarantine_percent", "alv")),
    # ---------------------------------------------------------------- configuration
    Case("capacity_zero", lambda d: settings(d, worklist={"capacity": 0}), 2, ("capacity",)),
    Case("capacity_text", lambda d: settings(d, worklist={"capacity": "25"}), 2, ("capacity", "int")),
    Case("language_unknown", lambda d: settings(d, worklist={"language": "rm"}), 2, ("language", "de, fr, it, en")),
    Case("risk_bands_descending", lambda d: settings(d, worklist={"risk_bands": [0.5, 0.2]}), 2, ("risk_bands",)),
    Case("risk_bands_empty", lambda d: settings(d, worklist={"risk_bands": []}), 2, ("risk_bands",)),
    Case("risk_bands_three", lambda d: settings(d, worklist={"risk_bands": [0.1, 0.2, 0.3]}), 2, ("risk_bands", "two")),
    Case("risk_band_outside", lambda d: settings(d, worklist={"risk_bands": [0.1, 1.5]}), 2, ("risk_bands",)),
    Case("capacity_unknown_institution", lambda d: settings(d, worklist={"capacity_per_institution": {"XYZ": 3}}),
         2, ("capacity_per_institution", "XYZ")),
    Case("disclose_unknown_institution", lambda d: settings(d, worklist={"disclose_institutions": ["RAV"]}),
         2, ("disclose_institutions",)),
    Case("window_zero", lambda d: settings(d, deployment={"window_months": 0}), 2, ("window_months",)),
    Case("history_keep_zero", lambda d: settings(d, output={"history_keep_days": 0}), 2, ("history_keep_days",)),
    Case("mode_world_readable", lambda d: settings(d, output={"mode": "0644"}), 2, ("mode", "0640")),
    Case("history_inside_runs", lambda d: settings(d, output={"history_dir": "../runs/h"}), 2, ("overlap",)),
    Case("runs_inside_the_model", lambda d: settings(d, output={"dir": "../model/runs"}), 2,
         ("overlap", "[model] dir")),
    Case("runs_in_the_settings_folder", lambda d: settings(d, output={"dir": "."}), 2,
         ("overlap", "the settings file", "[[sources]]")),
    Case("history_holds_the_exports", lambda d: settings(d, output={"history_dir": "../data"}), 2,
         ("overlap", "[output] history_dir")),
    Case("runs_a_loop_of_links", lambda d: (os.symlink(d / "l2", d / "l1"), os.symlink(d / "l1", d / "l2"),
                                             settings(d, output={"dir": str(d / "l1")})) and None, 6,
         ("l1",)),
    Case("unknown_setting", lambda d: settings(d, worklist={"capacty": 3}), 2, ("capacty",)),
    Case("toml_broken", lambda d: cfg_of(d).write_text("[worklist\ncapacity = 3"), 2, ("not valid TOML",)),
    Case("config_missing", lambda d: cfg_of(d).unlink(), 2, ("does not exist",)),
    Case("outcome_mismatch", lambda d: settings(d, model={"outcome": "disintegration"}), 3, ("outcome",)),
    Case("horizon_mismatch", lambda d: settings(d, model={"horizon_months": 6}), 3, ("horizon_months",)),
    # ---------------------------------------------------------------- dates and flags
    Case("as_of_in_the_future", lambda d: ["--as-of", "2199-01-01"], 2, ("after today",)),
    Case("as_of_beyond_the_calendar", lambda d: ["--as-of", "2999-01-01"], 2, ("1900-01-01 to 2199-12-31",)),
    Case("as_of_month_first", lambda d: ["--as-of", "12/31/2024"], 2, ("YYYY-MM-DD",)),
    Case("as_of_not_a_day", lambda d: ["--as-of", "2024-02-30"], 2, ("2024-02-30",)),
    Case("as_of_long_after_data", lambda d: ["--as-of", "2025-06-30"], 2, ("newest date in the data", "--force")),
    Case("force_without_reason", lambda d: ["--force"], 2, ("--reason",)),
    Case("forced_with_reason", lambda d: settings(d, health={"min_persons_scored": 10**8}) or
         ["--force", "--reason", "checked by the operator"], 0, (), publishes=True),
    Case("gate_without_force", lambda d: settings(d, health={"min_persons_scored": 10**8}), 1,
         ("min_persons_scored", "--force")),
    # ---------------------------------------------------------------- file system
    Case("date_folder_is_plain", lambda d: (os.unlink(d / "runs" / D0), (d / "runs" / D0).mkdir()) and None,
         6, (D0, "move it out")),
    Case("latest_is_plain", lambda d: (os.unlink(d / "runs" / "latest"), (d / "runs" / "latest").mkdir()) and None,
         6, ("latest", "move it out")),
    Case("date_link_points_outside", lambda d: (os.unlink(d / "runs" / D0), (d / "precious").mkdir(),
                                                (d / "precious" / "keep").write_text("x"),
                                                os.symlink(d / "precious", d / "runs" / D0)) and None,
         6, ("move it out",)),
    Case("runs_under_a_file", lambda d: ((d / "afile").write_text("x"),
                                         settings(d, output={"dir": "../afile/runs"})) and None, 6, ("afile",)),
    Case("history_is_a_file", lambda d: (shutil.rmtree(d / "history"), (d / "history").write_text("x")) and None,
         6, ("history",)),
    # ---------------------------------------------------------------- model files
    Case("model_missing", lambda d: shutil.rmtree(d / "model"), 3, ("model",)),
    Case("model_byte_flipped", lambda d: model_file(d).write_bytes(model_file(d).read_bytes() + b"\0"), 3, ("model",)),
    Case("model_planted_pickle", plant_pickle, 3, ("model",)),
    Case("model_key_not_configured", lambda d: settings(d, model={"signing_key_file": None}), 3,
         ("signing_key_file",)),
    Case("model_unsigned_not_allowed", unsign, 3, ("allow_unsigned_model",)),
    Case("signing_key_short", lambda d: (d / "secrets" / "model.key").write_bytes(b"short"), 2, ("model.key",)),
    Case("signing_key_wrong", lambda d: (d / "secrets" / "model.key").write_bytes(b"another key, long enough!!" * 2),
         3, ("signature",)),
    Case("signing_key_missing", lambda d: (d / "secrets" / "model.key").unlink(), 2, ("model.key",)),
    # ---------------------------------------------------------------- concurrency
    Case("lock_held", hold_lock, 4, ("another run holds the lock",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus(case: Case, base: Path, tmp_path: Path, capsys):
    d = tmp_path / "dep"
    shutil.copytree(base, d, symlinks=True)
    before = _files(base / "runs" / D0)
    extra = case.mutate(d)
    extra = extra if isinstance(extra, list) else []
    argv = ["run", str(cfg_of(d)), "--as-of", D0, *extra]

    def hung(*_):
        raise TimeoutError(f"{case.id}: the run hung")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(180)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses an option before iizrisk starts
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        for h in _HOLDERS:
            h.kill()
            h.wait()
            h.stdout.close()
        _HOLDERS.clear()
    out, err = capsys.readouterr()
    message = out + err
    assert code == case.exit, message
    for w in case.words:
        assert w.lower() in message.lower(), (w, message)
    runs = d / "runs"
    if case.publishes:
        assert (runs / D0 / "manifest.json").is_file()
    elif runs.is_dir() and (runs / D0).is_symlink() and os.path.realpath(runs / D0).startswith(str(runs)):
        assert _files(runs / D0) == before, "the run published before changed"
    assert not (d / "PWNED").exists(), "a planted pickle ran"
    if case.id == "date_link_points_outside":
        assert (d / "precious" / "keep").read_text() == "x"
    # no planted raw identifier anywhere iizrisk writes or says
    haystacks = {"message": message}
    for folder in (d / "runs", d / "history"):
        if folder.is_dir():
            for p in folder.rglob("*"):
                if p.is_file() and not p.is_symlink():
                    haystacks[str(p)] = p.read_bytes().decode("utf-8", "replace")
    for where, text in haystacks.items():
        for s in PLANTED:
            assert s not in text, f"{case.id}: a planted AHV number reached {where}"
    if case.id == "csv_injection_is_neutralised":
        wl = pd.read_csv(runs / D0 / "worklists" / "ALV.csv", sep=";", encoding="utf-8-sig", dtype=str)
        cells = wl.stack()
        assert not cells.str.match(r"^[=+\-@\t\r]").any()
    if case.publishes and case.id.endswith("_quarantined"):
        q = pd.read_parquet(runs / D0 / "quarantine.parquet")
        assert len(q) >= 1 and not q.astype(str).apply(lambda c: c.str.contains("Muster|XXXXXXXXXX")).any().any()
        assert "withheld" in q.astype(str).to_csv()
    if case.id == "forced_with_reason":
        import json

        m = json.loads((runs / D0 / "manifest.json").read_text())
        assert m["health"]["forced"]["reason"] == "checked by the operator"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
