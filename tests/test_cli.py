"""The command line: exit codes (6 for the operating system, never 5 for user input), -q/-v anywhere,
ISO as-of dates, output formats chosen by the file ending."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import logging
import os

import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from iizrisk._commands._args import parse_as_of
from iizrisk.cli import build_parser, main
from iizrisk.errors import EXIT_INTERNAL, EXIT_OS, ConfigError

AS_OF = "2021-06-30"


def flags_args(cli_data, out):
    return ["flags", "--spells", str(cli_data / "spells.parquet"), "--as-of", AS_OF, "--out", str(out)]


# ---------------------------------------------------------------- exit code 6: the operating system
def test_exit_codes_are_documented():
    parser = build_parser()
    assert "6 operating-system failure" in parser.epilog
    import iizrisk.cli
    import iizrisk.errors

    for doc in (iizrisk.cli.__doc__, iizrisk.errors.__doc__):
        assert "\n6     operating-system failure" in doc


def test_the_console_umask_takes_the_stores_bits_and_loads_no_pandas(tmp_path, capsys, monkeypatch):
    """The bits nothing gets are defined once (iizrisk.store.NOT_FOR_EVERYONE); the store the command line
    imports for them loads no pandas, so a command starts as fast as before."""
    import subprocess
    import sys

    import iizrisk.store

    monkeypatch.setattr(iizrisk.store, "NOT_FOR_EVERYONE", 0o070)  # a value of its own: the literal would give 0o027
    old = os.umask(0o022)
    try:
        # the command fails (no settings file): the umask is set before it runs
        main(["case", str(tmp_path / "none.toml"), "--institution", "ALV", "--case-id", "1"], own_process=True)
        assert os.umask(0o022) == 0o072
    finally:
        os.umask(old)
    loaded = subprocess.run([sys.executable, "-c", "import sys, iizrisk.cli, iizrisk.store; "
                             "print(sorted({'pandas', 'numpy'} & set(sys.modules)))"],
                            capture_output=True, text=True, timeout=120, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_folder_where_the_output_file_should_be_is_exit_6(cli_data, tmp_path, capsys):
    out = tmp_path / "flags.parquet"
    out.mkdir()
    code, err = run_main(flags_args(cli_data, out), capsys)
    assert code == EXIT_OS
    assert str(out) in err and "is a folder where a file is expected" in err
    assert "internal error" not in err


def test_a_file_where_the_output_folder_should_be_is_exit_6(cli_data, tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    code, err = run_main(flags_args(cli_data, tmp_path / "plain" / "flags.parquet"), capsys)
    assert code == EXIT_OS and str(tmp_path / "plain") in err and "not a folder" in err


@pytest.mark.parametrize("argv", [
    ["indicators", "--spells", "{data}/spells.parquet", "--year", "2021"],
    ["synth", "--persons", "5", "--start", "2020-01-01", "--end", "2020-12-31"],
    ["evaluate", "--spells", "{data}/spells.parquet", "--interventions", "{data}/interventions.parquet"],
    ["policy", "--spells", "{data}/spells.parquet", "--interventions", "{data}/interventions.parquet"],
    ["score", "--spells", "{data}/spells.parquet", "--model", "{tmp}/m", "--as-of", AS_OF],
])
def test_a_file_given_as_the_output_folder_is_refused_before_any_work(cli_data, tmp_path, capsys, argv):
    """The whole computation ran, then failed writing (exit 6): a usage error (exit 2) found by the parser."""
    (tmp_path / "plain").write_text("x")
    code, err = run_main([*(a.format(data=cli_data, tmp=tmp_path) for a in argv), "--out", str(tmp_path / "plain")],
                         capsys)
    assert code == 2 and "is a file, not a folder: give an output folder" in err, err
    assert "read" not in err  # nothing was read: the refusal comes first
    assert (tmp_path / "plain").read_text() == "x"


@pytest.mark.parametrize(("error", "fix"), [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/iizrisk/out/flags.parquet"),
     "writable by the service account"),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/iizrisk/out/flags.parquet"), "free disk space"),
    (OSError(errno.EROFS, "Read-only file system", "/srv/iizrisk/out/flags.parquet"), "read-only"),
    # pyarrow's errors carry no errno attribute, only text
    (OSError("Failed to open local file '/srv/iizrisk/out/flags.parquet'. Detail: [errno 13] Permission denied"),
     "writable by the service account"),
])
def test_operating_system_errors_name_the_path_and_the_fix(cli_data, tmp_path, capsys, monkeypatch, error, fix):
    import iizrisk.store

    def fail(df, path):
        raise error

    monkeypatch.setattr(iizrisk.store, "write_parquet_atomic", fail)
    code, err = run_main(flags_args(cli_data, tmp_path / "flags.parquet"), capsys)
    assert code == EXIT_OS
    assert "/srv/iizrisk/out/flags.parquet" in err and fix in err
    assert "internal error" not in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_exit_6(cli_data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = run_main(flags_args(cli_data, ro / "flags.csv"), capsys)
    finally:
        ro.chmod(0o755)
    assert code == EXIT_OS and str(ro) in err and "service account" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_device_as_input_is_exit_6_not_a_hang(cli_data, tmp_path, capsys):
    fifo = tmp_path / "spells.parquet"
    os.mkfifo(fifo)
    code, err = run_main(["flags", "--spells", str(fifo), "--as-of", AS_OF, "--out", str(tmp_path / "o.parquet")],
                         capsys)
    assert code == EXIT_OS and "a FIFO, not a regular file" in err and str(fifo) in err
    code, err = run_main(["features", "--spells", str(cli_data / "spells.parquet"), "--interventions", os.devnull,
                          "--as-of", AS_OF, "--out", str(tmp_path / "f.parquet")], capsys)
    assert code == EXIT_OS and "a device" in err


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_link_loop_or_a_file_on_the_path_is_a_clear_error_not_a_traceback(cli_data, tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "afile").write_text("x")
    code, err = run_main(["flags", "--spells", str(tmp_path / "a"), "--as-of", AS_OF, "--out",
                          str(tmp_path / "o.parquet")], capsys)
    assert code == EXIT_OS and "a loop of symbolic links" in err and str(tmp_path / "a") in err
    for out, why in ((tmp_path / "a", "a loop of symbolic links"),
                     (tmp_path / "afile" / "sub", "a part of the path is a file")):
        code, err = run_main(["synth", "--persons", "10", "--start", "2020-01-01", "--end", "2020-12-31",
                              "--out", str(out)], capsys)  # --out DIR: checked as the arguments are read
        assert code == EXIT_OS and why in err and str(out) in err and "Traceback" not in err
        code, err = run_main(flags_args(cli_data, out / "o.parquet"), capsys)  # --out FILE: when it is written
        assert code == EXIT_OS and str(out) in err and "Traceback" not in err


def test_memory_error_is_exit_6(cli_data, tmp_path, capsys, monkeypatch):
    import iizrisk._commands.flags as flags_command

    def fail(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(flags_command, "compute_flags", fail)
    code, err = run_main(flags_args(cli_data, tmp_path / "o.parquet"), capsys)
    assert code == EXIT_OS and "not enough memory" in err


def test_a_real_bug_is_still_exit_5(cli_data, tmp_path, capsys, monkeypatch):
    import iizrisk._commands.flags as flags_command

    def fail(*args, **kwargs):
        raise KeyError("756.1234.5678.97")  # a value in a bug's message never reaches the user

    monkeypatch.setattr(flags_command, "compute_flags", fail)
    code, err = run_main(flags_args(cli_data, tmp_path / "o.parquet"), capsys)
    assert code == EXIT_INTERNAL and "internal error (KeyError)" in err and "756" not in err


# ---------------------------------------------------------------- no user input gives exit code 5
@pytest.mark.parametrize("argv", [
    ["indicators", "--year", "0", "--out", "{tmp}/i"],
    ["indicators", "--year", "99999", "--out", "{tmp}/i"],
    ["indicators", "--year", "2021", "--out", "{tmp}/i", "--merge-gap-days", "-5"],
    ["indicators", "--year", "2021", "--out", "{tmp}/i", "--transition-gap-days", "-1"],
    ["indicators", "--year", "2021", "--out", "{tmp}/i", "--min-cell-size", "0"],
    ["evaluate", "--interventions", "{data}/interventions.parquet", "--out", "{tmp}/e", "--seed", "-1"],
    ["evaluate", "--interventions", "{data}/interventions.parquet", "--out", "{tmp}/e", "--caliper", "nan"],
    ["evaluate", "--interventions", "{data}/interventions.parquet", "--out", "{tmp}/e", "--bootstrap", "-2"],
    ["evaluate", "--interventions", "{data}/interventions.parquet", "--out", "{tmp}/e",
     "--from", "2022-01-01", "--to", "2019-01-01"],
    ["flags", "--as-of", AS_OF, "--out", "{tmp}/flags.xlsx"],
    ["features", "--as-of", AS_OF, "--out", "{tmp}/features"],
    ["flags", "--as-of", AS_OF, "--out", "{tmp}/f.parquet", "--window-months", "zwölf"],
    # numbers so large that the date arithmetic overflowed (OverflowError, ValueError: exit 5)
    ["flags", "--as-of", AS_OF, "--out", "{tmp}/f.parquet", "--window-months", "99999999999999999999"],
    ["flags", "--as-of", AS_OF, "--out", "{tmp}/f.parquet", "--transition-gap-days", "99999999999999999999"],
    ["indicators", "--year", "2021", "--out", "{tmp}/i", "--transition-gap-days", "99999999999999999999"],
    ["evaluate", "--interventions", "{data}/interventions.parquet", "--out", "{tmp}/e",
     "--horizon-months", "99999999999"],
    # counts that mean nothing below 1 (or 0): refused, not "explained the top 0" or k silently 1
    ["score", "--model", "{tmp}/m", "--as-of", AS_OF, "--out", "{tmp}/s", "--explain-top", "-1"],
    ["train", "--outcome", "revolving_door", "--out", "{tmp}/m", "--capacity", "0"],
    ["train", "--outcome", "revolving_door", "--out", "{tmp}/m", "--max-train-rows", "0"],
    # periods checked before the features of every month end are built (they were checked after)
    ["train", "--outcome", "revolving_door", "--out", "{tmp}/m", "--horizon-months", "0"],
    ["train", "--outcome", "revolving_door", "--out", "{tmp}/m", "--horizon-months", "-12"],
    ["train", "--outcome", "revolving_door", "--out", "{tmp}/m", "--validation-months", "0"],
    ["train", "--outcome", "revolving_door", "--out", "{tmp}/m", "--calibration-months", "0"],
])
def test_bad_options_are_usage_errors(cli_data, tmp_path, capsys, argv):
    argv = [a.format(tmp=tmp_path, data=cli_data) for a in argv]
    argv[1:1] = ["--spells", str(cli_data / "spells.parquet")]
    code, err = run_main(argv, capsys)
    assert code == 2, err
    assert "internal error" not in err
    if argv[0] == "train":  # refused by the parser, before any data is read
        assert f"iizrisk train: error: argument {argv[-2]}" in err, err


def test_synth_and_pseudonymise_options_are_usage_errors(tmp_path, capsys):
    synth = ["synth", "--start", "2020-01-01", "--end", "2021-01-01", "--out", str(tmp_path / "s")]
    for extra in (["--persons", "-1"], ["--persons", "5", "--effect", "nan"], ["--persons", "5", "--effect", "2"],
                  ["--persons", "5", "--seed", "-2"]):
        code, err = run_main([*synth, *extra], capsys)
        assert code == 2 and "internal error" not in err
    src = tmp_path / "in.csv"
    src.write_text("AHV_NR;x\n756.1234.5678.97;1\n")
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32).hex().encode())
    base = ["pseudonymise", "--key-file", str(key), "--id-column", "AHV_NR", str(src)]
    code, err = run_main([*base, str(tmp_path / "out.xlsx")], capsys)
    assert code == 2 and "ending in .parquet" in err
    code, err = run_main([*base, str(tmp_path / "out.csv"), "--out-column", "x"], capsys)
    assert code == 2 and "already a column" in err and "756" not in err, err
    assert not (tmp_path / "out.csv").exists()
    code, err = run_main([*base, str(tmp_path / "out.csv"), "--out-column", " "], capsys)
    assert code == 2 and "--out-column is empty" in err


def test_evaluate_turns_the_librarys_value_errors_into_invalid_input(cli_data, tmp_path, capsys, monkeypatch):
    from iizrisk.evaluation import AssessmentStudy, study_outcome_columns

    def own_check(self, spells, interventions):
        study_outcome_columns(["nope"], 12)  # iizrisk's own ValueError: its message is safe to show

    monkeypatch.setattr(AssessmentStudy, "fit", own_check)
    args = ["evaluate", "--spells", str(cli_data / "spells.parquet"), "--interventions",
            str(cli_data / "interventions.parquet"), "--out", str(tmp_path / "e")]
    code, err = run_main(args, capsys)
    assert code == 1 and "unknown study outcome 'nope'" in err

    def third_party(self, spells, interventions):
        pd.to_datetime(pd.Series(["756.1234.5678.97"]), format="%Y-%m-%d")  # pandas quotes the value

    monkeypatch.setattr(AssessmentStudy, "fit", third_party)
    code, err = run_main(args, capsys)
    assert code == 1 and "ValueError in pandas" in err and "756" not in err


def test_the_forest_plot_takes_an_estimate_outside_its_bootstrap_interval(tmp_path):
    # a percentile interval need not contain the estimate: errorbar raised "'xerr' must not contain
    # negative values" (exit 5 after the whole study); without bootstrap the bounds are missing
    from iizrisk._commands.evaluate import _plot_estimates

    est = pd.DataFrame({"suppressed": [False, False], "estimate": [0.3, -0.1],
                        "lower_95": [0.1, np.nan], "upper_95": [0.2, np.nan], "naive": [0.5, 0.0],
                        "naive_lower_95": [0.4, np.nan], "naive_upper_95": [0.45, np.nan]},
                       index=["revolving_door_next_12m", "days_registered_next_12m"])
    _plot_estimates(est, tmp_path / "estimates.png")
    assert (tmp_path / "estimates.png").stat().st_size > 0


# ---------------------------------------------------------------- -q and -v before or after the command
@pytest.mark.parametrize(("where", "level"), [
    ([], logging.INFO), (["-q"], logging.WARNING), (["-v", "-v"], logging.DEBUG), (["-vv"], logging.DEBUG)])
def test_log_options_before_or_after_the_command(cli_data, tmp_path, capsys, where, level):
    for i, argv in enumerate(([*where, *flags_args(cli_data, tmp_path / "a.parquet")],
                              [*flags_args(cli_data, tmp_path / "b.parquet"), *where])):
        assert main(argv) == 0, i
        assert logging.getLogger("iizrisk").level == level, argv
        err = capsys.readouterr().err
        assert ("INFO flags at" in err) == (level <= logging.INFO), argv


def test_verbose_counts_on_both_sides(cli_data, tmp_path, capsys):
    assert main(["-v", *flags_args(cli_data, tmp_path / "a.parquet"), "-v"]) == 0
    assert logging.getLogger("iizrisk").level == logging.DEBUG


# ---------------------------------------------------------------- as-of dates: ISO only
@pytest.mark.parametrize(("text", "hint"), [
    ("01.02.2025", "for 1 February 2025 write 2025-02-01"),
    ("2025-02-30", "not a calendar day"),
    ("yesterday", "YYYY-MM-DD"),
    ("", "YYYY-MM-DD"),
    ("02/01/2025", "ambiguous"),
    ("20250201", "YYYY-MM-DD"),
    ("2025-02-01 15:00", "holds a time of day: dates are whole days; give 2025-02-01 (YYYY-MM-DD)"),
    ("2025-02-01T15:00:00+01:00", "holds a time of day"),
])
def test_as_of_must_be_iso(cli_data, tmp_path, capsys, text, hint):
    for command in (["flags", "--spells", str(cli_data / "spells.parquet"), "--out", str(tmp_path / "o.parquet")],
                    ["run", str(tmp_path / "none.toml")]):
        code, err = run_main([*command, "--as-of", text], capsys)
        assert code == 2 and hint in err and "--as-of" in err
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_as_of(text)


def test_parse_as_of_for_python_callers():
    assert parse_as_of("2025-02-01") == dt.date(2025, 2, 1)
    assert parse_as_of(" 2025-02-01\n") == dt.date(2025, 2, 1)
    assert parse_as_of(dt.date(2025, 2, 1)) == dt.date(2025, 2, 1)
    assert parse_as_of(pd.Timestamp("2025-02-01 23:00")) == dt.date(2025, 2, 1)
    assert parse_as_of(np.datetime64("2025-02-01")) == dt.date(2025, 2, 1)
    for bad in (pd.NaT, np.datetime64("NaT"), None, 20250201):
        with pytest.raises(ConfigError):
            parse_as_of(bad)


# ---------------------------------------------------------------- --out: the ending chooses the format
def _spreadsheet_rows(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel opens umlauts right
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


@pytest.mark.parametrize("command", ["flags", "features"])
def test_out_csv_is_csv_and_out_parquet_is_parquet(cli_data, tmp_path, command):
    base = [command, "--spells", str(cli_data / "spells.parquet"), "--as-of", AS_OF, "--out"]
    assert main([*base, str(tmp_path / "x.parquet")]) == 0
    assert main([*base, str(tmp_path / "x.csv")]) == 0
    assert main([*base, str(tmp_path / "y.CSV")]) == 0
    want = pd.read_parquet(tmp_path / "x.parquet")
    assert (tmp_path / "x.parquet").read_bytes()[:4] == b"PAR1"
    rows = _spreadsheet_rows(tmp_path / "x.csv")
    assert rows[0] == list(want.columns) and len(rows) == len(want) + 1
    got = pd.read_csv(tmp_path / "x.csv", sep=";", encoding="utf-8-sig")
    assert got["person_id"].tolist() == want["person_id"].astype(str).tolist()
    assert (got["as_of"] == AS_OF).all()
    numeric = [c for c in want.columns if pd.api.types.is_numeric_dtype(want[c]) and not pd.api.types.is_bool_dtype(want[c])]
    np.testing.assert_allclose(got[numeric].to_numpy(dtype=float), want[numeric].to_numpy(dtype=float),
                               rtol=1e-12, equal_nan=True)
    assert (tmp_path / "y.CSV").read_bytes() == (tmp_path / "x.csv").read_bytes()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_evaluate_without_any_estimate_says_why_and_writes_nothing(cli_data, tmp_path, capsys):
    # the empty summary had no columns: KeyError 'n_treated' in write_outputs, exit 5
    out = tmp_path / "e"
    code, err = run_main(["evaluate", "--spells", str(cli_data / "spells.parquet"), "--interventions",
                          str(cli_data / "interventions.parquet"), "--out", str(out), "--caliper", "0",
                          "--controls-per-treated", "1", "--bootstrap", "0"], capsys)
    assert code == 1 and "no outcome could be estimated" in err and "caliper" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["flags", "features", "indicators"])
def test_an_export_without_rows_is_invalid_input_not_a_crash(cli_data, tmp_path, capsys, command):
    """Columns but no rows: exit 1 naming the file (indicators crashed with exit 5)."""
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(cli_data / "spells.parquet").iloc[:0].to_parquet(empty)
    argv = {"flags": ["flags", "--spells", str(empty), "--as-of", AS_OF, "--out", str(tmp_path / "f.parquet")],
            "features": ["features", "--spells", str(empty), "--as-of", AS_OF, "--out", str(tmp_path / "x.parquet")],
            "indicators": ["indicators", "--spells", str(empty), "--year", "2021", "--out", str(tmp_path / "i")]}
    code, err = run_main(argv[command], capsys)
    assert code == 1 and "no spells" in err and str(empty) in err, err


@pytest.mark.parametrize("command", ["score", "dpia", "indicators", "audit", "demo"])
def test_an_empty_output_path_is_a_usage_error(cli_data, tmp_path, capsys, command, monkeypatch):
    """``--out ''`` wrote into the current folder with exit 0."""
    monkeypatch.chdir(tmp_path)
    argv = {"score": ["score", "--model", "m", "--spells", "s", "--as-of", AS_OF, "--out", ""],
            "dpia": ["dpia", "cfg.toml", "--out", " "],
            "indicators": ["indicators", "--spells", "s", "--year", "2021", "--out", ""],
            "audit": ["audit", "--model", "m", "--spells", "s", "--as-of", AS_OF, "--out", ""],
            "demo": ["demo", "--out", ""]}[command]
    code, err = run_main(argv, capsys)
    assert code == 2 and "an empty path" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["oversight", "monitor"])
def test_a_period_that_ends_before_it_starts_is_refused(tmp_path, capsys, command):
    code, err = run_main([command, str(tmp_path / "cfg.toml"), "--from", "2026-01-01", "--to", "2025-01-01"],
                         capsys)
    assert code == 2 and "--from 2026-01-01 lies after --to 2025-01-01" in err, err


@pytest.mark.parametrize("value", ["7561234567897", "756.1234.5678.97", "756 1234 5678 97", "７５６１２３４５６７８９７"])
def test_an_identifier_typed_into_an_option_is_never_echoed(cli_data, tmp_path, capsys, value):
    for argv in (["flags", "--spells", str(cli_data / "spells.parquet"), "--as-of", value, "--out", str(tmp_path / "f.csv")],
                 ["features", "--spells", "s", "--as-of", AS_OF, "--out", f"{value}.txt"],
                 ["indicators", "--spells", "s", "--year", value, "--out", str(tmp_path)]):
        code, err = run_main(argv, capsys)
        assert code == 2 and "withheld" in err, err
        digits = "".join(c for c in err if c.isdigit())
        assert "7561234567897" not in digits.translate(str.maketrans("０１２３４５６７８９", "0123456789"))


def test_a_choice_or_a_code_holding_an_identifier_is_never_echoed(cli_data, tmp_path, capsys):
    """argparse's 'invalid choice' and the commands' 'unknown code' messages repeat the value given."""
    ahv = "756.1234.5678.97"
    for argv, code in ((["indicators", "--spells", "s", "--year", "2021", "--out", str(tmp_path), "--language", ahv], 2),
                       (["evaluate", "--spells", str(cli_data / "spells.parquet"), "--interventions",
                         str(cli_data / "interventions.parquet"), "--out", str(tmp_path / "ev"), "--outcome", ahv], 2)):
        got, err = run_main(argv, capsys)
        assert got == code and "<withheld>" in err, err
        assert "1234" not in err, err


@pytest.mark.parametrize("outcome", ["days_registered_next_0m", "new_spells_next_99999999m"])
def test_a_study_outcome_over_no_months_or_beyond_the_calendar_is_refused(cli_data, tmp_path, capsys, outcome):
    """An outcome over 0 months (or past the calendar) gave an all-zero estimate with exit 0."""
    code, err = run_main(["evaluate", "--spells", str(cli_data / "spells.parquet"), "--interventions",
                          str(cli_data / "interventions.parquet"), "--out", str(tmp_path / "ev"), "--outcome", outcome],
                         capsys)
    assert code == 2 and "from 1 to 1200" in err, err


# ---------------------------------------------------------------- as-of dates outside the data (D10)
@pytest.mark.parametrize("command", ["flags", "features"])
def test_an_as_of_date_long_before_the_data_is_refused_with_the_period(cli_data, tmp_path, capsys, command):
    out = tmp_path / "o.parquet"
    code, err = run_main([command, "--spells", str(cli_data / "spells.parquet"), "--as-of", "1950-01-01",
                          "--out", str(out)], capsys)
    spells = pd.read_parquet(cli_data / "spells.parquet")
    first = pd.Timestamp(spells["start_date"].min()).date().isoformat()
    assert code == 1 and "nobody to" in err and "1950-01-01" in err and f"cover {first} to " in err
    assert not out.exists()


def test_features_refuse_an_as_of_date_long_after_the_data(cli_data, tmp_path, capsys):
    out = tmp_path / "o.parquet"
    code, err = run_main(["features", "--spells", str(cli_data / "spells.parquet"), "--as-of", "2024-06-30",
                          "--out", str(out)], capsys)
    assert code == 1 and "--as-of 2024-06-30 lies" in err and "days after" in err and not out.exists()


# ---------------------------------------------------------------- values validate refuses (D23, D24)
@pytest.mark.parametrize(("column", "value", "says"), [
    ("end_date", pd.Timestamp("9999-12-31"), "leave the end empty for an open registration"),
    ("institution", "RAV", "unknown institution code"),
])
@pytest.mark.parametrize("command", ["flags", "features"])
def test_commands_reading_canonical_spells_refuse_what_validate_refuses(cli_data, tmp_path, capsys, command,
                                                                       column, value, says):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(cli_data / "spells.parquet")
    df = table.to_pandas()
    if column == "end_date":
        end = [None if v is None else v for v in table.column("end_date").to_pylist()]
        end = [dt.date(9999, 12, 31) if v is None else v for v in end]
        table = table.set_column(table.schema.get_field_index("end_date"), "end_date", pa.array(end, pa.date32()))
    else:
        df["institution"] = df["institution"].astype(str).replace({"ALV": value})
        table = pa.Table.from_pandas(df, preserve_index=False)
    src = tmp_path / "bad.parquet"
    pq.write_table(table, src)
    out = tmp_path / "o.parquet"
    code, err = run_main([command, "--spells", str(src), "--as-of", AS_OF, "--out", str(out)], capsys)
    assert code == 1 and str(src) in err and f"column {column!r}" in err and says in err
    assert "rows " in err and not out.exists()


def test_a_deployments_own_institution_codes_are_read_with_its_config(cli_data, tmp_path, capsys, monkeypatch):
    """`snapshots --config` (and `evaluate --config`) read the spells with [deployment] extra_institutions."""
    import pyarrow.parquet as pq

    import iizrisk.snapshots

    df = pq.read_table(cli_data / "spells.parquet").to_pandas()
    df["institution"] = df["institution"].astype(str).replace({"ALV": "RAV"})
    src = tmp_path / "own.parquet"
    df.to_parquet(src)
    toml = tmp_path / "iizrisk.toml"
    toml.write_text('[deployment]\nextra_institutions = ["RAV"]\n', encoding="utf-8")
    seen = []

    def stop(spells, out, **kwargs):
        seen.append(sorted(set(spells["institution"].astype(str))))
        raise ConfigError("stopped by the test before building")

    monkeypatch.setattr(iizrisk.snapshots, "build_snapshots", stop)
    argv = ["snapshots", "--spells", str(src), "--outcome", "revolving_door", "--out", str(tmp_path / "s")]
    code, err = run_main(argv, capsys)
    assert code == 1 and "unknown institution code" in err and not seen
    code, err = run_main([*argv, "--config", str(toml)], capsys)
    assert code == 2 and "stopped by the test" in err and "RAV" in seen[0] and "ALV" not in seen[0]
    # audit --config too (its model and key stubbed: the reading is what is tested)
    import iizrisk._commands.audit
    import iizrisk.model

    monkeypatch.setattr(iizrisk.model, "model_key", lambda settings: b"k" * 32)
    monkeypatch.setattr(iizrisk.model, "load_model", lambda *a, **k: object())

    def places(settings, spells, as_of):
        seen.append(sorted(set(spells["institution"].astype(str))))
        raise ConfigError("stopped by the test before auditing")

    monkeypatch.setattr(iizrisk._commands.audit, "_places", places)
    audit = ["audit", "--model", str(tmp_path), "--spells", str(src), "--as-of", "2023-06-30",
             "--out", str(tmp_path / "a"), "--config", str(toml)]
    code, err = run_main(audit, capsys)
    assert code == 2 and "stopped by the test before auditing" in err and "RAV" in seen[-1], err


# ---------------------------------------------------------------- an AHV number in a path or a message (D9)
_AHV_SPELLINGS = ["756.1234.5678.97", "7561234567897", "756_6604_8764_70", "756·6604·8764·70", "756,1234,5678,97"]


@pytest.mark.parametrize("number", _AHV_SPELLINGS)
def test_a_path_holding_an_ahv_number_is_refused_without_echoing_it(cli_data, tmp_path, capsys, number):
    """--out FILE, --out DIR and input paths: refused before anything is read or written (exit 2)."""
    spells = str(cli_data / "spells.parquet")
    cases = [
        ["features", "--spells", spells, "--as-of", AS_OF, "--out", str(tmp_path / f"{number}.csv")],
        ["flags", "--spells", spells, "--as-of", AS_OF, "--out", str(tmp_path / number / "f.parquet")],
        ["score", "--model", str(tmp_path / "m"), "--spells", spells, "--as-of", AS_OF,
         "--out", str(tmp_path / "sc" / number)],
        ["monitor", str(tmp_path / "x.toml"), "--out", str(tmp_path / "mon" / number)],
        ["information-request", str(tmp_path / "x.toml"), "--person", "a" * 64, "--institution", "ALV",
         "--out", str(tmp_path / "ir" / number)],
        ["reviews", "import", str(tmp_path / "x.toml"), str(tmp_path / f"{number}.xlsx")],
        ["features", "--spells", str(tmp_path / f"{number}.parquet"), "--as-of", AS_OF,
         "--out", str(tmp_path / "f.csv")],
    ]
    for argv in cases:
        code, err = run_main(argv, capsys)
        assert code == 2 and "shaped like an AHV number" in err, (argv, err)
        assert number not in err and number.replace("·", "") not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_information_request_refuses_an_out_folder_named_by_the_pseudonym(tmp_path, capsys):
    person = "ab12" * 16
    code, err = run_main(["information-request", str(tmp_path / "x.toml"), "--person", person,
                          "--institution", "ALV", "--out", str(tmp_path / "ir" / person)], capsys)
    assert code == 2 and "pseudonym" in err and person not in err
    assert not (tmp_path / "ir").exists()


def test_reports_os_errors_and_log_lines_never_show_an_ahv_number(cli_data, tmp_path, capsys, monkeypatch):
    """Whatever a command prints through the command line -- a validation report naming a file, an
    operating-system error naming a path, a log line -- has its AHV numbers withheld, in any spelling."""
    import iizrisk._commands.flags as flags_command
    from iizrisk.errors import ValidationError

    class Report:
        def to_text(self):
            return "[error] Rückruf_756_6604_8764_70.csv: column 'decision': rows 2, 3; 756·1234·5678·97"

    def invalid(*args, **kwargs):
        logging.getLogger("iizrisk").warning("reading 756_6604_8764_70.csv and 756 . 1234 . 5678 . 97")
        raise ValidationError("invalid", report=Report())

    monkeypatch.setattr(flags_command, "compute_flags", invalid)
    code, err = run_main(flags_args(cli_data, tmp_path / "o.parquet"), capsys)
    assert code == 1 and "column 'decision': rows 2, 3" in err and "reading" in err
    assert "6604" not in err and "1234" not in err, err

    def oserror(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/756_6604_8764_70/x.parquet")

    monkeypatch.setattr(flags_command, "compute_flags", oserror)
    code, err = run_main(flags_args(cli_data, tmp_path / "o.parquet"), capsys)
    assert code == EXIT_OS and "/data/" in err and "6604" not in err, err


# ---------------------------------------------------------------- published tables keep their cells (D11)
def test_audit_refuses_a_min_cell_size_below_1_as_indicators_and_policy_do(cli_data, tmp_path, capsys):
    base = ["--spells", str(cli_data / "spells.parquet"), "--out", str(tmp_path / "a"), "--min-cell-size", "0"]
    for argv in (["audit", "--model", str(tmp_path / "m"), "--as-of", AS_OF, *base],
                 ["policy", "--interventions", str(cli_data / "interventions.parquet"), *base]):
        code, err = run_main(argv, capsys)
        assert code == 2 and "--min-cell-size" in err and "minimum 1" in err, err
    assert not (tmp_path / "a").exists()


def test_interventions_whose_pseudonyms_match_nobody_are_refused(cli_data, tmp_path, capsys):
    """Upper-cased by a spreadsheet (or made with another key): every intervention feature would be 0 without a
    word. Refused (exit 1) naming the file; the same interventions as written are read."""
    import pandas as pd

    from iizrisk.store import write_parquet_atomic

    interventions = pd.read_parquet(cli_data / "interventions.parquet")
    upper = write_parquet_atomic(interventions.assign(person_id=interventions["person_id"].astype(str).str.upper()),
                                 tmp_path / "upper.parquet")
    argv = ["features", "--spells", str(cli_data / "spells.parquet"), "--as-of", "2021-06-30",
            "--out", str(tmp_path / "f.parquet"), "--interventions"]
    code, err = run_main([*argv, str(upper)], capsys)
    assert code == 1 and "upper.parquet: none of the" in err and "same key" in err, err
    assert not (tmp_path / "f.parquet").exists()
    assert run_main([*argv, str(cli_data / "interventions.parquet")], capsys)[0] == 0


def test_a_study_of_a_type_the_interventions_lack_names_the_file_and_its_types(cli_data, tmp_path, capsys):
    """'--intervention-type foo' and a header-only file said 'no person has a first ... inside the period':
    neither the file nor what to do."""
    import pandas as pd

    from iizrisk.store import write_parquet_atomic

    interventions = pd.read_parquet(cli_data / "interventions.parquet")
    empty = write_parquet_atomic(interventions.iloc[:0], tmp_path / "empty.parquet")
    spells = ["--spells", str(cli_data / "spells.parquet")]
    code, err = run_main(["evaluate", *spells, "--interventions", str(cli_data / "interventions.parquet"),
                          "--intervention-type", "foo", "--out", str(tmp_path / "e")], capsys)
    assert code == 1 and "interventions.parquet: no intervention of type 'foo'" in err, err
    assert "the file holds 'joint_assessment'" in err and "--intervention-type" in err, err
    assert "case_management, integration_plan" in err, err  # the schema's types
    for command in (["evaluate", "--out", str(tmp_path / "e")], ["policy", "--out", str(tmp_path / "p")]):
        code, err = run_main([*command, *spells, "--interventions", str(empty)], capsys)
        assert code == 1 and "empty.parquet: no interventions: the file has its columns but no rows" in err, err
        assert "holds no interventions" not in err  # no warning that the features would be 0 before the refusal
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()


# ---------------------------------------------------------------- ingest: exports -> canonical spells
def _ingest_deployment(tmp_path, spells: pd.DataFrame, **deployment) -> object:
    from iizrisk.config import Settings
    from iizrisk.store import write_parquet_atomic

    write_parquet_atomic(spells, tmp_path / "exports" / "all.parquet")
    cfg = {"sources": [{"name": "all", "path": "exports"}], "deployment": deployment,
           "model": {"dir": "model"}}
    return Settings.from_dict(cfg, base_dir=tmp_path).save(tmp_path / "iizrisk.toml")


def test_ingest_writes_the_spells_a_night_reads_for_the_commands_that_take_spells(cli_data, tmp_path, capsys):
    """An error message sent users to `iizrisk ingest`, which did not exist: the command line had no way from a
    deployment's exports to the canonical spells that train, audit and evaluate read."""
    from iizrisk.io import ingest

    spells = pd.read_parquet(cli_data / "spells.parquet")
    cfg = _ingest_deployment(tmp_path, spells)
    out = tmp_path / "canonical" / "spells.parquet"
    code, err = run_main(["ingest", str(cfg), "--out", str(out)], capsys)
    assert code == 0, err
    def same_units(frame: pd.DataFrame) -> pd.DataFrame:  # the dates' unit and the pseudonyms' categories aside
        frame = frame.reset_index(drop=True).assign(person_id=frame["person_id"].astype(str).to_numpy())
        return frame.astype({c: "datetime64[ns]" for c in frame.columns if frame[c].dtype.kind == "M"})

    expected = ingest(str(cfg)).spells
    assert len(expected) == len(spells)
    pd.testing.assert_frame_equal(same_units(pd.read_parquet(out)), same_units(expected), check_dtype=False)
    assert out.stat().st_mode & 0o007 == 0  # the owner and (by the umask) the group, never everyone
    # the file is what the commands reading spells take
    code, err = run_main(["flags", "--spells", str(out), "--as-of", AS_OF, "--out", str(tmp_path / "f.parquet")],
                         capsys)
    assert code == 0, err
    # a data file works too, and --institution only with one
    code, err = run_main(["ingest", str(cli_data / "spells.parquet"), "--out", str(tmp_path / "b.parquet")], capsys)
    assert code == 0 and len(pd.read_parquet(tmp_path / "b.parquet")) == len(spells), err
    code, err = run_main(["ingest", str(cfg), "--institution", "ALV", "--out", str(tmp_path / "c.parquet")], capsys)
    assert code == 2 and "--institution is for a single data file" in err


def test_ingest_writes_nothing_for_invalid_or_empty_exports_or_into_the_deployment(cli_data, tmp_path, capsys):
    spells = pd.read_parquet(cli_data / "spells.parquet")
    # an export folder: a new file there would be read as an export by the next night
    cfg = _ingest_deployment(tmp_path, spells)
    for place in (tmp_path / "exports" / "spells.parquet", tmp_path / "model" / "s.parquet",
                  tmp_path / "exports" / "all.parquet"):
        code, err = run_main(["ingest", str(cfg), "--out", str(place)], capsys)
        assert code == 2 and "--out" in err, (place, err)
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["all.parquet"]
    # invalid rows under errors = "raise" (the default): exit 1, nothing written
    bad = spells.copy()
    bad.loc[bad.index[:3], "start_date"] = pd.Timestamp("1800-01-01")
    cfg = _ingest_deployment(tmp_path / "bad", bad)
    out = tmp_path / "bad.parquet"
    code, err = run_main(["ingest", str(cfg), "--out", str(out)], capsys)
    assert code == 1 and "start_date" in err and not out.exists(), err
    # a header without rows: no spells, nothing written
    cfg = _ingest_deployment(tmp_path / "empty", spells.iloc[:0])
    code, err = run_main(["ingest", str(cfg), "--out", str(out)], capsys)
    assert code == 1 and not out.exists(), err


def test_interventions_without_rows_are_read_with_a_warning(cli_data, tmp_path, capsys):
    """A header-only interventions file may be a new deployment's or an export written too early: the features are
    built (every intervention feature 0, as the night would) and the log says so, naming the file."""
    import pandas as pd

    from iizrisk.store import write_parquet_atomic

    interventions = pd.read_parquet(cli_data / "interventions.parquet")
    empty = write_parquet_atomic(interventions.iloc[:0], tmp_path / "empty.parquet")
    argv = ["features", "--spells", str(cli_data / "spells.parquet"), "--as-of", "2021-06-30",
            "--interventions", str(empty), "--out", str(tmp_path / "f.parquet")]
    code, err = run_main(argv, capsys)
    assert code == 0 and f"{empty} holds no interventions (its columns, no rows)" in err, err
    features = pd.read_parquet(tmp_path / "f.parquet")
    counted = features.filter(regex="assessment|intervention")
    assert len(features) and counted.shape[1] >= 3 and (counted.fillna(0) == 0).all().all()
    code, err = run_main([*argv[:5], "--interventions", str(cli_data / "interventions.parquet"),
                          "--out", str(tmp_path / "g.parquet")], capsys)
    assert code == 0 and "holds no interventions" not in err
