"""Package, schemas, settings and command-line plumbing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iizrisk
from iizrisk import _time
from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import ConfigError
from iizrisk.schema import load_schema, schema_names

REPO = Path(__file__).resolve().parents[1]


def test_schema_files_are_the_package_data():
    repo_files = sorted(p.name for p in (REPO / "data" / "schemas").glob("*.json"))
    assert repo_files == sorted(n + ".json" for n in schema_names())
    for code in ["ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG"]:
        assert f"spells_{code.lower()}" in schema_names()


def test_spells_schema_matches_domain_contract():
    s = load_schema("spells")
    assert s.required == ["person_id", "institution", "start_date"]
    assert s.protected == ["sex", "nationality_group"]
    assert s.names_of_type("date") == ["start_date", "end_date", "recorded_date"]
    for path in (REPO / "data" / "schemas").glob("*.json"):
        raw = json.loads(path.read_text())
        assert {"name", "fields"} <= set(raw)


def test_public_api_has_all():
    for name in iizrisk.__all__:
        assert hasattr(iizrisk, name), name


@pytest.mark.parametrize(
    ("as_of", "months", "expected"),
    [("2024-06-30", 24, "2022-07-01"), ("2024-02-29", 12, "2023-03-01"), ("2024-03-31", 1, "2024-03-01"),
     ("2023-01-15", 1, "2022-12-16")],
)
def test_window_start(as_of, months, expected):
    assert _time.to_date(_time.window_start(_time.day(as_of), months)).isoformat() == expected


def test_add_months_clips_to_month_end():
    d = _time.add_months(np.array([_time.day("2024-01-31"), _time.day("2023-03-31")]), np.array([1, -1]))
    assert [_time.to_date(x).isoformat() for x in d] == ["2024-02-29", "2023-02-28"]


def test_settings_roundtrip(tmp_path):
    s = Settings.from_dict(
        {"sources": [{"name": "alv", "institution": "ALV", "path": "alv.csv", "columns": {"PID": "person_id"}}],
         "worklist": {"capacity": 7}}
    )
    p = s.save(tmp_path / "iizrisk.toml")
    back = Settings.load(p)
    assert back == s
    assert back.resolve("alv.csv") == tmp_path / "alv.csv"


def test_settings_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_dict({"worklist": {"capacty": 3}})
    with pytest.raises(ConfigError, match="extra_institutions"):
        Settings.from_dict({"sources": [{"name": "x", "institution": "XYZ", "path": "x.csv"}]})
    bad = tmp_path / "bad.toml"
    bad.write_text("[deployment\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml")


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "iizrisk" in capsys.readouterr().out


def test_annotated_example_configuration_loads():
    s = Settings.load(REPO / "examples" / "iizrisk.toml")
    assert [x.name for x in s.sources] == ["alv", "sh", "iv"]
    assert s.worklist.capacity_per_institution == {"ALV": 40, "SH": 20}
    # every setting of the dataclasses appears in the annotated example
    import dataclasses
    import tomllib

    raw = tomllib.loads((REPO / "examples" / "iizrisk.toml").read_text())
    for section in ("deployment", "model", "worklist", "output", "privacy", "health", "reviews", "monitoring"):
        names = {f.name for f in dataclasses.fields(getattr(s, section))}
        # settings shown commented out (no value that suits every deployment)
        documented = set(raw[section]) | {"signing_key_file", "signing_key_env", "group", "corrections"}
        assert names <= documented, (section, names - documented)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), unit=st.sampled_from(["s", "ms", "us", "ns"]))
def test_to_days_of_a_date_column_equals_the_cast_to_days(data, unit):
    """The fast path (the column's integers floor-divided) against numpy's own cast: negatives, NaT, any unit."""
    import pandas as pd

    per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}[unit]
    bound = 100 * 366 * per_day  # 1870..2070: within every unit's range
    ticks = data.draw(st.lists(st.one_of(st.none(), st.integers(-bound, bound),
                                         st.integers(-3, 3).map(lambda d: d * per_day - 1)), max_size=40))
    raw = np.array([np.datetime64("NaT") if v is None else np.datetime64(v, unit) for v in ticks],
                   dtype=f"datetime64[{unit}]")
    want = (raw.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    want[np.isnat(raw)] = -7
    for values in (pd.Series(raw), pd.Index(raw)):
        got = _time.to_days(values, missing=-7)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want.astype(np.int32))


_FAULTS = """
import resource, sys
import numpy as np
from iizrisk._memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
a = np.ones(64 * 2**20 // 8)  # 64 MiB: above glibc's largest mmap threshold
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(64 * 2**20 // 8)  # the same size again: served from what was freed, or mapped anew
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_freed_memory_is_reused_instead_of_faulted_in_again():
    """With keep_freed_memory, a second array of the size just freed costs (almost) no page faults;
    without it, glibc unmaps the first and faults every page of the second in anew."""
    import subprocess
    import sys

    def faults(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True)
        applied, n = out.stdout.split()
        return applied, int(n)

    applied, kept = faults("keep")
    if applied != "True":
        pytest.skip("not glibc: keep_freed_memory changes nothing here")
    _, fresh = faults("default")
    assert fresh > 0
    assert kept * 4 < fresh, (kept, fresh)


def test_release_memory_runs_after_keeping():
    """The nightly's release after ingestion works also once freed memory is kept (best effort, no error)."""
    import subprocess
    import sys

    code = ("from iizrisk._memory import keep_freed_memory, release_memory\n"
            "import numpy as np\nkeep_freed_memory(); a = np.ones(2**24); del a; release_memory(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_keep_freed_memory_takes_arrows_jemalloc_where_pyarrow_has_it():
    import subprocess
    import sys

    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
        want = "jemalloc"
    except NotImplementedError:
        want = pa.default_memory_pool().backend_name  # unchanged
    code = ("import pyarrow as pa\nfrom iizrisk._memory import keep_freed_memory\nkeep_freed_memory()\n"
            "print(pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == want


_POOL_AFTER_AUDIT = """
import os
import sys
import pyarrow as pa
from iizrisk import cli
sys.argv = ["iizrisk", "-q", "audit", "--model", sys.argv[2], "--spells", sys.argv[2], "--as-of", "2023-12-31",
            "--out", sys.argv[2]]
code = cli.console() if os.environ["HOW"] == "console" else cli.main(sys.argv[1:])
print(code, pa.default_memory_pool().backend_name)
"""


@pytest.mark.parametrize("how", ["console", "main"])
def test_only_the_console_script_tunes_the_process_memory(tmp_path, how):
    """The audit as a command of its own keeps freed memory (Arrow on jemalloc where pyarrow has it);
    the same audit called from Python (a notebook, a service) leaves the process as it was."""
    import os
    import subprocess
    import sys

    import pyarrow as pa

    default = pa.default_memory_pool().backend_name
    try:
        pa.jemalloc_memory_pool()
        tuned = "jemalloc"
    except NotImplementedError:
        tuned = default
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | {"HOW": how}
    out = subprocess.run([sys.executable, "-c", _POOL_AFTER_AUDIT, "x", str(tmp_path / "missing")],
                         capture_output=True, text=True, env=env, check=True)
    code, pool = out.stdout.split()
    assert code != "0"  # no model there: refused, whatever the memory settings
    assert pool == (tuned if how == "console" else default)


def test_the_commands_that_keep_freed_memory_are_the_measured_ones():
    """Only commands whose whole-process measurement showed the gain opt in (the audit, the nightly run, training)."""
    from iizrisk.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    keeping = sorted(name for name, p in sub.choices.items() if p.get_default("_keeps_freed_memory"))
    assert keeping == ["audit", "run", "train"]


@pytest.mark.parametrize("table, key, value", [
    ("deployment", "merge_gap_days", 10**30), ("deployment", "transition_gap_days", 10**30),
    ("deployment", "window_months", 10**30), ("model", "horizon_months", 10**6),
    ("worklist", "exclude_assessed_months", 100_000), ("worklist", "capacity", 10**30),
    ("output", "history_keep_days", 10_000_000), ("privacy", "min_cell_size", 10**30),
    ("health", "max_export_age_days", 10**30), ("health", "max_as_of_after_data_days", 10**30),
])
def test_periods_and_counts_beyond_the_calendar_are_refused_by_name(table, key, value):
    """Whole numbers too large for the date arithmetic (they passed the check and overflowed later: exit 5)."""
    with pytest.raises(ConfigError, match=rf"\[{table}\] {key}"):
        Settings.from_dict({table: {key: value}})


def test_a_mistyped_outcome_is_refused_when_the_settings_are_read():
    """'revolving-door' passed the settings and surfaced late (or never: dpia, monitor and case ran with it)."""
    from iizrisk.config import BUILTIN_OUTCOMES
    from iizrisk.outcomes import outcome_names, register_outcome

    assert set(BUILTIN_OUTCOMES) <= set(outcome_names())
    with pytest.raises(ConfigError, match=r"\[model\] outcome = 'revolving-door'.*revolving_door, disintegration"):
        Settings.from_dict({"model": {"outcome": "revolving-door"}})
    for name in BUILTIN_OUTCOMES:
        assert Settings.from_dict({"model": {"outcome": name}}).model.outcome == name
    register_outcome("own_outcome_cfg", lambda tl, codes, days, h, **o: np.zeros(len(codes), dtype=bool),
                     overwrite=True)
    assert Settings.from_dict({"model": {"outcome": "own_outcome_cfg"}}).model.outcome == "own_outcome_cfg"


@pytest.mark.parametrize("fmt, ok", [("%d.%m.%Y", True), ("%Y-%m-%d", True), ("%d/%m/%y", True), ("%Q", False),
                                     ("%", False), ("%d.%m", False), ("", False)])
def test_a_sources_date_format_must_give_back_its_day(fmt, ok):
    src = {"name": "alv", "path": "alv.csv", "institution": "ALV", "date_format": fmt}
    if ok:
        Settings.from_dict({"sources": [src]})
    else:
        with pytest.raises(ConfigError, match="date_format"):
            Settings.from_dict({"sources": [src]})


# ------------------------------------------------------------- misspelt settings that switched safeguards off
def test_the_known_protected_attributes_are_what_the_nightly_fairness_check_computes():
    """config.PROTECTED_ATTRIBUTES (config imports no pandas) is the audit's default set and education: each
    one computed by list_fairness (age_band and disability derived, the others the persons' columns of a view)
    and named in the reports of every language."""
    from iizrisk._texts import LANGUAGES, text
    from iizrisk.config import PROTECTED_ATTRIBUTES, PrivacySettings
    from iizrisk.fairness import GROUP_COLUMNS
    from iizrisk.spells import _PERSON_ATTRS

    assert set(PROTECTED_ATTRIBUTES) == set(GROUP_COLUMNS) | {"education"}
    assert set(PROTECTED_ATTRIBUTES) <= {"age_band", "disability"} | set(_PERSON_ATTRS)
    assert set(PrivacySettings().protected_attributes) <= set(PROTECTED_ATTRIBUTES)
    for lang in LANGUAGES:
        assert all(text(f"card.attributes.{a}", lang) for a in PROTECTED_ATTRIBUTES)


@pytest.mark.parametrize("attributes, words", [
    (["religion", "sexe"], ["['religion', 'sexe'] are not attributes", "age_band"]),
    (["sex", "sex:age_band"], ["['sex:age_band'] are not attributes"]),
    ([], ["protected_attributes = []", "cannot be switched off", "leave the key out"]),
    (["sex", "sex"], ["['sex'] named more than once"]),
])
def test_unknown_or_no_protected_attributes_are_refused(attributes, words):
    """Unknown names were dropped without a word: the nightly fairness check compared nothing (exit 0)."""
    with pytest.raises(ConfigError, match=r"\[privacy\] protected_attributes") as exc:
        Settings.from_dict({"privacy": {"protected_attributes": attributes}})
    assert all(w in str(exc.value) for w in words), str(exc.value)
    for ok in (["sex"], ["education", "canton", "disability"]):
        assert Settings.from_dict({"privacy": {"protected_attributes": ok}}).privacy.protected_attributes == ok


@pytest.mark.parametrize("capacities, shown", [({"zh": 3}, "['zh'] are not canton codes"),
                                               ({"ZH": 3, "Zürich": 2}, "['Zürich']"), ({"XX": 1}, "['XX']")])
def test_a_capacity_per_canton_names_cantons_by_their_codes(capacities, shown):
    """A lower-case or unknown canton's limit was ignored (ALV listed 25 instead of 3)."""
    with pytest.raises(ConfigError, match=r"\[worklist\] capacity_per_canton") as exc:
        Settings.from_dict({"worklist": {"capacity_per_canton": capacities}})
    assert shown in str(exc.value) and "AG, AI" in str(exc.value) and "ZH" in str(exc.value)
    if "zh" in capacities:
        assert "ZH for 'zh'" in str(exc.value)
    assert Settings.from_dict({"worklist": {"capacity_per_canton": {"ZH": 3, "AG": 2}}}).worklist.capacity_per_canton


def _source(**kw):
    return {"name": "alv", "institution": "ALV", "path": "alv.csv", **kw}


@pytest.mark.parametrize("source, words", [
    (_source(columns={"ERFASST_AM": "recorded_dat"}), ["[sources.columns] {'ERFASST_AM': 'recorded_dat'}",
                                                        "recorded_date", "drop_columns"]),
    (_source(columns={"MASSNAHME": "iv_measure"}), ["{'MASSNAHME': 'iv_measure'}", "rav_office"]),  # IV's, not ALV's
    (_source(values={"exit_reasn": {"Stellenantritt": "employment"}}), ["[sources.values] tables ['exit_reasn']"]),
])
def test_a_source_maps_onto_canonical_columns_only(source, words):
    """A misspelt target dropped the canonical column for that source (ERFASST_AM = "recorded_dat": no recorded
    date, another point-in-time rule), a misspelt [sources.values.<column>] mapped nothing."""
    with pytest.raises(ConfigError, match=r"\[\[sources\]\] alv") as exc:
        Settings.from_dict({"sources": [source]})
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_the_columns_of_an_institutions_extension_schema_may_be_mapped():
    """Extension columns (iv_measure for IV, rav_office for ALV) are canonical for their institution, and for a
    source whose rows name their institution without a list of codes."""
    Settings.from_dict({"sources": [
        _source(columns={"M": "rav_office", "A": "recorded_date"}, values={"exit_reason": {"a": "employment"}}),
        {"name": "iv", "institution": "IV", "path": "iv.csv", "columns": {"M": "iv_measure"},
         "values": {"iv_measure": {"BM": "vocational"}}},
        {"name": "mixed", "path": "m.csv", "institutions": ["IV", "SH"],
         "columns": {"I": "institution", "M": "iv_measure", "H": "household_type"}}]})


@pytest.mark.parametrize("table, key, value", [
    ("monitoring", "flow_z", float("inf")), ("monitoring", "flow_min_count", float("inf")),
    ("monitoring", "flow_z", float("nan")), ("health", "max_row_drop_percent", float("nan")),
    ("privacy", "fairness_max_differences", {"calibration_gap": float("inf")}),
])
def test_infinite_or_nan_numbers_are_refused(table, key, value):
    """TOML writes inf and nan: flow_z = inf passed the check (a warning that can never fire)."""
    with pytest.raises(ConfigError, match=rf"\[{table}\] {key}\S* = (inf|nan) is not a finite number"):
        Settings.from_dict({table: {key: value}})


# ------------------------------------------------------------- empty texts where a file, key or pattern is named
@pytest.mark.parametrize("data, words", [
    ({"deployment": {"interventions": ""}}, "[deployment] interventions = '' is empty: give the interventions "
                                            "file (CSV or Parquet), or leave the key out"),
    ({"deployment": {"corrections": "  "}}, "[deployment] corrections = '  ' is blank"),
    ({"deployment": {"name": ""}}, "[deployment] name = '' is empty: give the deployment's name, which reports, "
                                   "model cards and messages show, or leave the key out (default 'iizrisk "
                                   "deployment')"),
    ({"deployment": {"pseudonym_pattern": ""}}, "[deployment] pseudonym_pattern = '' is empty"),
    ({"deployment": {"pseudonym_pattern": " "}}, "[deployment] pseudonym_pattern = ' ' is blank"),
    ({"model": {"signing_key_file": ""}}, "[model] signing_key_file = '' is empty: give the file holding the "
                                          "model signing key, or leave the key out"),
    ({"model": {"signing_key_env": " "}}, "[model] signing_key_env = ' ' is blank"),
    ({"model": {"dir": ""}}, "[model] dir = '' is empty: give the model folder, or leave the key out (default "
                             "'model')"),
    ({"output": {"dir": ""}}, "[output] dir = '' is empty"),
    ({"output": {"history_dir": " "}}, "[output] history_dir = ' ' is blank"),
    ({"output": {"group": ""}}, "[output] group = '' is empty"),
    ({"worklist": {"benefit_model": " "}}, "[worklist] benefit_model = ' ' is blank"),
    ({"sources": [_source(path="")]}, "[[sources]] alv: path = '' is empty: give a file, a glob or a folder"),
    ({"sources": [_source(name=" ")]}, "[[sources]] #1: name = ' ' is blank"),
    ({"sources": [_source(separator="")]}, "[[sources]] alv: separator = '' is empty"),
    ({"sources": [_source(encoding="")]}, "[[sources]] alv: encoding = '' is empty"),
])
def test_empty_paths_keys_and_patterns_are_refused_by_name(data, words):
    """An empty text meant "no interventions file", "no key", the configuration's folder as the export, or a
    pattern no pseudonym matches: each failed later with a wrong exit code and a wrong fix."""
    with pytest.raises(ConfigError) as exc:
        Settings.from_dict(data)
    assert words in str(exc.value), str(exc.value)
    assert "overlap" not in str(exc.value)  # an empty path is named once, not as a folder overlapping the runs


def test_a_tab_separator_and_the_examples_empty_benefit_model_are_no_empty_texts():
    s = Settings.from_dict({"sources": [_source(separator="\t")], "worklist": {"benefit_model": ""}})
    assert s.sources[0].separator == "\t"


# ------------------------------------------------------------- the settings file itself
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_the_configuration_is_exit_6_not_a_hang(tmp_path):
    """`iizrisk validate FIFO` blocked in read_text for ever (a nightly `run` would have held its lock)."""
    import subprocess
    import sys

    fifo = tmp_path / "iizrisk.toml"
    os.mkfifo(fifo)
    try:
        out = subprocess.run([sys.executable, "-m", "iizrisk", "validate", str(fifo)], capture_output=True,
                             text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("iizrisk validate FIFO hung")
    assert out.returncode == 6, out.stderr
    assert str(fifo) in out.stderr and "a named pipe (FIFO), not a regular file" in out.stderr


def test_a_folder_or_device_as_the_configuration_is_an_operating_system_error(tmp_path, capsys):
    """As a folder was already (exit 6); a device was read as an empty file: every default, exit 0."""
    from iizrisk.errors import EXIT_OS, OperatingSystemError

    folder = tmp_path / "iizrisk.toml"
    folder.mkdir()
    for path, what in ((folder, "a folder"), (Path(os.devnull), "a device")):
        with pytest.raises(OperatingSystemError, match=f"{what}, not a regular file") as exc:
            Settings.load(path)
        assert str(path) in str(exc.value) and exc.value.exit_code == EXIT_OS
    assert main(["validate", str(folder)]) == EXIT_OS
    assert "a folder, not a regular file" in capsys.readouterr().err
    ok = tmp_path / "ok.toml"
    ok.write_bytes(b"[worklist]\r\ncapacity = 7\r\n")
    assert Settings.load(ok).worklist.capacity == 7


# ------------------------------------------------------------------ the trust settings, on their boundaries
def test_output_mode_is_accepted_exactly_when_owner_only_or_group_at_most():
    """Every one of the 512 modes against the rule: nothing for others, read and write for the owner."""
    for m in range(0o1000):
        ok = m & 0o007 == 0 and m & 0o600 == 0o600
        text = f"0{m:03o}"
        if ok:
            assert Settings.from_dict({"output": {"mode": text}}).output.mode == text
        else:
            with pytest.raises(ConfigError, match=r"\[output\] mode"):
                Settings.from_dict({"output": {"mode": text}})


def test_folders_get_the_search_bit_exactly_where_files_get_the_read_bit():
    from iizrisk.config import dir_mode, file_mode

    for m in range(0o1000):
        want = m
        for shift in (6, 3, 0):
            if m >> shift & 0o4:
                want |= 0o1 << shift
        assert dir_mode(m) == want, oct(m)
        assert file_mode(f"0{m:03o}") == m == file_mode(m)
    for bad in (0o1000, 0o4640, -1, "0644x", "8640", True):
        with pytest.raises(ValueError):
            file_mode(bad)


@pytest.mark.parametrize("table, key, low, high", [
    ("output", "history_keep_days", 1, 36_525),
    ("deployment", "merge_gap_days", 0, 36_525),
    ("deployment", "window_months", 1, 1200),
    ("model", "horizon_months", 1, 1200),
    ("worklist", "capacity", 1, 10_000_000),
    ("worklist", "exclude_assessed_months", 0, 1200),
    ("privacy", "min_cell_size", 1, 10_000_000),
    ("health", "min_persons_scored", 1, 10**9),
    ("health", "max_row_drop_percent", 0, 100),
    ("health", "max_quarantine_percent", 0, 100),
    ("health", "max_export_age_days", 0, 36_525),
    ("monitoring", "flow_window_days", 7, 366),
    ("dask", "workers", 1, 1024),
])
def test_numeric_settings_are_accepted_on_their_bounds_and_refused_beyond(table, key, low, high):
    for v in (low, high):
        assert getattr(getattr(Settings.from_dict({table: {key: v}}), table), key) == v
    for v in (low - 1, high + 1):
        if table == "health" and key == "min_persons_scored" and v > high:
            continue  # no upper bound
        with pytest.raises(ConfigError, match=key):
            Settings.from_dict({table: {key: v}})


@pytest.mark.parametrize("days, ok", [(0, False), (1, True), (36_525, True), (36_526, False)])
def test_review_keep_off_days_bounds(days, ok):
    data = {"reviews": {"keep_off_days": {"not_suitable": days}}}
    if ok:
        assert Settings.from_dict(data).reviews.keep_off_days == {"not_suitable": days}
    else:
        with pytest.raises(ConfigError, match="keep_off_days"):
            Settings.from_dict(data)


@pytest.mark.parametrize("bands", [[0.0, 0.25], [0.1, 1.0], [0.25, 0.25], [0.3, 0.2], [0.1], [0.1, True]])
def test_risk_bands_must_be_two_increasing_probabilities_strictly_inside_0_and_1(bands):
    with pytest.raises(ConfigError, match="risk_bands"):
        Settings.from_dict({"worklist": {"risk_bands": bands}})


@pytest.mark.parametrize("data, words", [
    ({"worklist": {"capacity": True}}, r"capacity = True \(expected int\)"),
    ({"output": {"history_keep_days": 30.0}}, r"history_keep_days = 30.0 \(expected int\)"),
    ({"sources": [{"name": "alv", "institution": "ALV"}]}, "path"),
    ({"sources": [{"path": "alv.csv", "institution": "ALV"}]}, "name"),
    ({"output": {"modes": "0640"}}, r"unknown setting\(s\) \['modes'\]"),
])
def test_wrong_types_and_missing_required_keys_are_refused(data, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_dict(data)


@pytest.mark.parametrize("output, model", [("runs", "runs/model"), ("m/runs", "m"), ("same", "same")])
def test_the_run_folder_and_the_model_folder_never_contain_each_other(tmp_path, output, model):
    with pytest.raises(ConfigError, match=r"\[output\] dir .*overlap"):
        Settings.from_dict({"output": {"dir": output}, "model": {"dir": model}}, base_dir=tmp_path)
    assert Settings.from_dict({"output": {"dir": "runs"}, "model": {"dir": "model"}}, base_dir=tmp_path)


def test_a_missing_configuration_file_is_a_usage_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as exc:
        Settings.load(tmp_path / "none.toml")
    assert exc.value.exit_code == 2


# ------------------------------------------------------------------ the view at T
@pytest.mark.parametrize("kw, ok", [
    ({"window_months": 1}, True), ({"window_months": 0}, False), ({"merge_gap_days": 0}, True),
    ({"merge_gap_days": -1}, False), ({"transition_gap_days": 0}, True), ({"transition_gap_days": -1}, False),
    ({"window_months": True}, False), ({"merge_gap_days": 1.0}, False), ({"window_months": np.int64(12)}, True),
])
def test_definitions_are_whole_numbers_from_their_least_value(kw, ok):
    from iizrisk.view import Definitions

    if ok:
        assert {k: getattr(Definitions(**kw), k) for k in kw} == kw
    else:
        with pytest.raises(ConfigError, match=f"{next(iter(kw))} must be a whole number"):
            Definitions(**kw)


def _view_rows():
    import pandas as pd

    return pd.DataFrame({
        "person_id": ["a", "a", "b", "c"], "institution": ["ALV", "IV", "SH", "ALV"],
        "start_date": pd.to_datetime(["2024-01-01", "2024-06-30", "2024-03-01", "2024-07-01"]),
        "end_date": pd.to_datetime([None, None, "2024-06-30", None]),
    })


def test_a_view_is_at_its_own_day_only_and_refuses_the_full_data():
    import datetime as dt

    from iizrisk.spells import build_timeline
    from iizrisk.view import Definitions, View

    t = dt.date(2024, 6, 30)
    v = View.at(_view_rows(), t, Definitions())
    assert v.is_at(t) and v.is_at("2024-06-30") and v.as_of == t
    assert not v.is_at(t - dt.timedelta(days=1)) and not v.is_at(t + dt.timedelta(days=1))
    with pytest.raises(ValueError, match="the full data"):
        View(build_timeline(_view_rows()), Definitions())


def test_features_refuse_a_view_of_another_day():
    """A view of a later day would hand the features what was not known at T."""
    import datetime as dt

    from iizrisk.features import PointInTimeFeatures
    from iizrisk.view import Definitions, View

    ft = PointInTimeFeatures().fit(None)
    defs = Definitions.of_features(ft)
    for day in (dt.date(2024, 7, 1), dt.date(2024, 6, 29)):
        with pytest.raises(ValueError, match="is not the view at 2024-06-30"):
            ft.transform(_view_rows(), as_of="2024-06-30", view=View.at(_view_rows(), day, defs))


def test_the_view_at_t_holds_the_spells_started_up_to_and_including_t():
    """Point in time: a spell starting on T is known on the evening of T; one starting the day after is not;
    an end after T is unknown (open)."""
    import datetime as dt

    from iizrisk.view import Definitions, View

    rows = _view_rows()
    for t in (dt.date(2024, 6, 29), dt.date(2024, 6, 30), dt.date(2024, 7, 1)):
        v = View.at(rows, t, Definitions())
        known = rows[rows["start_date"].dt.date <= t]
        end_known = known["end_date"].where(known["end_date"].dt.date <= t)  # an end after T: open at T
        want = sorted(zip(known["person_id"], known["institution"], known["start_date"].dt.date,
                          end_known.dt.date.astype(object).where(end_known.notna(), None), strict=True))
        got = v.timeline.to_frame()
        assert sorted(zip(got["person_id"], got["institution"], got["start_date"].dt.date,
                          got["end_date"].dt.date.astype(object).where(got["end_date"].notna(), None),
                          strict=True)) == want, t
        assert v.timeline.n_persons == known["person_id"].nunique(), t
        flags = v.flags.set_index("person_id")["multi_registered"].to_dict()
        assert flags.get("a", False) == (t >= dt.date(2024, 6, 30)), t  # IV from June 30, ALV open all along


_OPENMP_AFTER_COMMAND = """
import os
import sys
from iizrisk import cli
sys.argv = ["iizrisk", "-q", "flags", "--spells", sys.argv[1], "--as-of", "2023-12-31", "--out", sys.argv[1]]
code = cli.console() if os.environ["HOW"] == "console" else cli.main(sys.argv[1:])
import sklearn.ensemble  # loads libgomp, which reads the policy now
print(code, os.environ.get("OMP_WAIT_POLICY", "unset"))
"""


@pytest.mark.parametrize(("how", "given", "want"), [("console", None, "PASSIVE"), ("console", "ACTIVE", "ACTIVE"),
                                                    ("main", None, "unset")])
def test_the_console_script_lets_waiting_openmp_threads_sleep(tmp_path, how, given, want):
    """OpenMP threads that spin while waiting take the cores from the process's other threads and from other
    jobs (the demo's nightly check on a loaded machine: 11-13 s passive against 15-17 s by default): the
    console script sets OMP_WAIT_POLICY=PASSIVE before anything loads OpenMP, an operator's own setting
    wins, and a call from Python leaves the process's environment as it was."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"HOW": how}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", _OPENMP_AFTER_COMMAND, str(tmp_path / "missing.parquet")],
                         capture_output=True, text=True, env=env, check=True)
    code, policy = out.stdout.split()
    assert code != "0" and policy == want
