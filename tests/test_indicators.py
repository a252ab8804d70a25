"""BFS indicators: fast vectorised versions against slow per-person references on random spells."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iizrisk import _time
from iizrisk import indicators as ind
from iizrisk.cli import main
from iizrisk.errors import ValidationError
from iizrisk.flags import transition_mask
from iizrisk.spells import build_timeline
from iizrisk.tables import header, read_table

INF = 10**9
SYSTEMS = ("ALV", "IV", "SH")
YEAR = 2020
BASE = _time.day("2018-06-01")


# ------------------------------------------------------------------ slow references
def d2date(d: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=d)


def date2d(x: dt.date) -> int:
    return (x - dt.date(1970, 1, 1)).days


def ref_add_months(d: int, m: int) -> int:
    x = d2date(d)
    y, mo = divmod(x.year * 12 + (x.month - 1) + m, 12)
    last = calendar.monthrange(y, mo + 1)[1]
    return date2d(dt.date(y, mo + 1, min(x.day, last)))


def ref_merge(rows):
    """rows: (person, inst, start, end, reason) -> merged spells, reason of the latest end."""
    by = defaultdict(list)
    for p, i, s, e, r in rows:
        by[p, i].append((s, e, r))
    out = []
    for (p, i), lst in sorted(by.items()):
        lst.sort(key=lambda x: (x[0], x[1]))
        cs, ce, cr = lst[0]
        for s, e, r in lst[1:]:
            if s <= ce + 1:
                if e >= ce:
                    ce, cr = e, r
            else:
                out.append((p, i, cs, ce, cr))
                cs, ce, cr = s, e, r
        out.append((p, i, cs, ce, cr))
    return out


def ref_monthly(spells):
    """Runs of registered calendar months per person and institution."""
    by = defaultdict(dict)
    for p, i, s, e, r in spells:
        a = d2date(s)
        m0 = a.year * 12 + a.month - 1
        if e >= INF:
            m1 = 10**6
        else:
            b = d2date(e)
            m1 = b.year * 12 + b.month - 1
        for m in range(m0, min(m1, m0 + 400) + 1):
            by[p, i][m] = r if e < INF else None
        if m1 == 10**6:
            by[p, i]["open"] = m0
    out = []
    for (p, i), months in by.items():
        open_from = months.pop("open", None)
        ms = sorted(months)
        runs, cur = [], [ms[0]]
        for m in ms[1:]:
            if m == cur[-1] + 1:
                cur.append(m)
            else:
                runs.append(cur)
                cur = [m]
        runs.append(cur)
        for run in runs:
            y0, mo0 = divmod(run[0], 12)
            y1, mo1 = divmod(run[-1], 12)
            s = date2d(dt.date(y0, mo0 + 1, 1))
            is_open = open_from is not None and run[-1] >= open_from and run[-1] == ms[-1]
            e = INF if is_open else date2d(dt.date(y1, mo1 + 1, calendar.monthrange(y1, mo1 + 1)[1]))
            out.append((p, i, s, e, None if is_open else months[run[-1]]))
    return sorted(out)


def year_bounds():
    return _time.day(f"{YEAR}-01-01"), _time.day(f"{YEAR}-12-31")


def ref_combinations(spells):
    y0, y1 = year_bounds()
    sets = defaultdict(set)
    for p, i, s, e, _ in spells:
        if i in SYSTEMS and s <= y1 and e >= y0:
            sets[p].add(i)
    counts = [sum(1 for v in sets.values() if v == {x}) for x in SYSTEMS]
    return counts + [sum(1 for v in sets.values() if len(v) >= 2)]


def ref_entry(spells, person, systems, lookback=12):
    y0, y1 = year_bounds()
    own = [(s, e) for p, i, s, e, _ in spells if p == person and i in systems]
    for s in sorted({s for s, _ in own if y0 <= s <= y1}):
        ws = ref_add_months(s - 1, -lookback) + 1
        if not any(s2 <= s - 1 and e2 >= ws for s2, e2 in own):
            return s
    return None


def ref_profiles(spells):
    counts = [0, 0, 0, 0]
    for person in {p for p, *_ in spells}:
        s = ref_entry(spells, person, SYSTEMS)
        if s is None:
            continue
        w1 = ref_add_months(s, 24) - 1
        n = defaultdict(int)
        for p, i, s2, _e, _ in spells:
            if p == person and i in SYSTEMS and s <= s2 <= w1:
                n[i] += 1
        many_sys = len(n) >= 2
        repeated = max(n.values()) >= 2
        counts[(2 if many_sys else 0) + (1 if repeated else 0)] += 1
    return counts


def ref_persistence(spells, system, months):
    entrants = still = 0
    for person in {p for p, *_ in spells}:
        s = ref_entry(spells, person, (system,))
        if s is None:
            continue
        entrants += 1
        d = ref_add_months(s, months)
        if any(p == person and i == system and s2 <= d <= e2 for p, i, s2, e2, _ in spells):
            still += 1
    return entrants, still


def ref_reentry(spells, system, months):
    y0, y1 = year_bounds()
    leavers = back = 0
    for person in {p for p, *_ in spells}:
        own = sorted((s, e, r) for p, i, s, e, r in spells if p == person and i == system)
        ends = [(e, k) for k, (s, e, r) in enumerate(own) if y0 <= e <= y1 and r != "death"]
        if not ends:
            continue
        leavers += 1
        e, k = min(ends)
        if k + 1 < len(own) and own[k + 1][0] <= ref_add_months(e, months):
            back += 1
    return leavers, back


def ref_transitions(spells, gap=90):
    y0, y1 = year_bounds()
    trans, pers = defaultdict(int), defaultdict(set)
    for p, b, sb, _eb, _ in spells:
        if not y0 <= sb <= y1:
            continue
        origins = {a for p2, a, sa, ea, _ in spells if p2 == p and a != b and sa < sb and ea + gap >= sb}
        for a in origins or {"(none)"}:
            trans[a, b] += 1
            pers[a, b].add(p)
    return trans, {k: len(v) for k, v in pers.items()}


# ----------------------------------------------------------------- random spells
OFFSETS = [0, 1, 2, 27, 28, 29, 30, 31, 59, 60, 61, 88, 89, 90, 91, 92, 181, 183, 364, 365, 366, 367, 396]
DURATIONS = [0, 1, 27, 28, 29, 30, 31, 60, 120, 182, 364, 365, 366, 540, 700]


@st.composite
def random_rows(draw):
    """Chains of rows per person whose starts fall on the boundaries that matter.

    Each row starts a boundary offset (same day, 1 day, 90 days, 12 months ...)
    after the previous row's start or end, so that touching rows, transition
    gaps, look-back windows and month ends are all exercised.
    """
    rows = []
    for p in range(draw(st.integers(1, 4))):
        prev_s = prev_e = BASE + draw(st.integers(0, 900))
        prev_i = "ALV"
        for _ in range(draw(st.integers(1, 5))):
            i = prev_i if draw(st.booleans()) else draw(st.sampled_from(["ALV", "IV", "SH", "BB"]))
            anchor = draw(st.sampled_from(["start", "end", "end", "fresh"]))
            off = draw(st.sampled_from(OFFSETS)) if draw(st.integers(0, 3)) else draw(st.integers(0, 500))
            if anchor == "start":
                s = prev_s + off
            elif anchor == "end" and prev_e < INF:
                s = prev_e + off
            else:
                s = BASE + draw(st.integers(0, 1400))
            e = INF if draw(st.integers(0, 9)) == 0 else s + draw(st.sampled_from(DURATIONS) | st.integers(0, 800))
            r = None if e >= INF else draw(st.sampled_from(["employment", "death", "transfer", None]))
            rows.append((f"p{p}", i, s, e, r))
            prev_s, prev_e, prev_i = s, e, i
    return rows


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame({
        "person_id": [r[0] for r in rows],
        "institution": [r[1] for r in rows],
        "start_date": _time.from_days(np.array([r[2] for r in rows])),
        "end_date": _time.from_days(np.array([int(_time.OPEN_END) if r[3] >= INF else r[3] for r in rows])),
        "exit_reason": [r[4] for r in rows],
    })


def covers_year(rows) -> bool:
    """Slow reference: can the rows (or merged spells) answer for YEAR (observed until YEAR at least, a spell
    overlapping it)? A timeline knows its merged spells only: pass those for one."""
    y0, y1 = _time.day(f"{YEAR}-01-01"), _time.day(f"{YEAR}-12-31")
    last = max([s for _, _, s, _, _ in rows] + [e for _, _, _, e, _ in rows if e < INF])
    return last >= y0 and any(s <= y1 and e >= y0 for _, _, s, e, _ in rows)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rows=random_rows(), monthly=st.booleans())
def test_indicators_match_slow_references(rows, monthly):
    df = frame(rows)
    spells = ref_merge(rows)
    if monthly:
        spells = ref_monthly(spells)
    tl = build_timeline(df, mode="monthly" if monthly else "daily")
    if not covers_year(spells):
        for call in (ind.system_combinations, ind.entrant_profiles, ind.persistence, ind.reentry,
                     ind.transition_matrix, ind.bfs_indicators):
            with pytest.raises(ValidationError, match=f"year {YEAR}( lies after the data|: no spell overlaps)"):
                call(tl, YEAR)
        return

    comb = ind.system_combinations(tl, YEAR, min_cell_size=0)
    assert comb["persons"].tolist()[:4] == ref_combinations(spells)

    prof = ind.entrant_profiles(tl, YEAR, min_cell_size=0)
    assert prof["persons"].tolist()[:4] == ref_profiles(spells)

    pers = ind.persistence(tl, YEAR, min_cell_size=0)
    for row in pers.itertuples(index=False):
        assert (row.entrants, row.still_registered) == ref_persistence(spells, row.system, row.months)

    reen = ind.reentry(tl, YEAR, min_cell_size=0)
    for row in reen.itertuples(index=False):
        assert (row.leavers, row.reentered) == ref_reentry(spells, row.system, row.months)

    trans = ind.transition_matrix(tl, YEAR, min_cell_size=0)
    ref_t, ref_p = ref_transitions(spells)
    got = {(r["from"], r["to"]): (r["transitions"], r["persons"]) for r in trans.to_dict("records")}
    for key, (t, p) in got.items():
        assert (t, p) == (ref_t.get(key, 0), ref_p.get(key, 0)), key
    assert sum(v for k, v in ref_t.items() if k in got) == sum(ref_t.values())


@SETTINGS
@given(rows=random_rows())
def test_transition_pairs_agree_with_flags(rows):
    tl = build_timeline(frame(rows))
    b, _ = ind.transition_pairs(tl, np.arange(len(tl)), 90)
    mask = np.zeros(len(tl), dtype=bool)
    mask[b] = True
    assert (mask == transition_mask(tl, gap_days=90)).all()


@SETTINGS
@given(rows=random_rows())
def test_published_tables_have_no_small_cells(rows):
    if not covers_year(rows):
        with pytest.raises(ValidationError, match=f"year {YEAR}"):
            ind.bfs_indicators(frame(rows), YEAR, min_cell_size=5)
        return
    res = ind.bfs_indicators(frame(rows), YEAR, min_cell_size=5)
    for name, t in res.tables.items():
        for col in ("persons", "entrants", "still_registered", "leavers", "reentered", "from_registered"):
            if col in t:
                v = t[col].dropna().astype(int)
                assert ((v == 0) | (v >= 5)).all(), (name, col)
        for col in ("share", "rate"):
            if col in t:
                count = {"share": next(c for c in ("persons", "still_registered", "reentered") if c in t),
                         "rate": "persons"}[col]
                assert t.loc[t[count].isna(), col].isna().all(), (name, col)


def test_entries_and_profiles_by_hand():
    rows = pd.DataFrame({
        "person_id": ["a", "a", "a", "b", "c", "c"],
        "institution": ["ALV", "SH", "ALV", "ALV", "SH", "SH"],
        "start_date": pd.to_datetime(["2020-01-06", "2020-09-01", "2021-05-01", "2020-03-01",
                                      "2019-06-01", "2020-02-01"]),
        "end_date": pd.to_datetime(["2020-06-30", "2020-12-31", "2021-07-31", "2020-05-31",
                                    "2019-08-31", None]),
    })
    e = ind.entries(rows, 2020)
    assert e["person_id"].tolist() == ["a", "b"]  # c was registered 5 months before
    prof = ind.entrant_profiles(rows, 2020, min_cell_size=0)
    assert prof.set_index("profile")["persons"].to_dict() == {
        "one spell in one system": 1, "several spells in one system": 0,
        "one spell each in several systems": 0, "revolving door": 1, "Total": 2}


@pytest.mark.parametrize("entry", ["2020-02-15", "2020-03-01", "2020-02-29", "2020-12-31", "2020-01-01"])
def test_lookback_boundary(entry):
    # the 12-month look-back of an entry on day s covers add_months(s - 1, -12) + 1 ... s - 1
    s = _time.day(entry)
    first = ref_add_months(s - 1, -12) + 1
    for last, entrant in ((first, False), (first - 1, True)):
        rows = frame([("a", "SH", last - 300, last, None), ("a", "ALV", s, INF, None)])
        assert len(ind.entries(rows, 2020)) == int(entrant), (entry, d2date(last))
        pers = ind.persistence(rows, 2020, systems=["ALV"], months=[12], min_cell_size=0)
        assert pers["entrants"].iloc[0] == 1  # entry into ALV alone: SH does not count


def test_touching_rows_are_one_spell():
    rows = pd.DataFrame({"person_id": ["a", "a", "a"], "institution": ["ALV"] * 3,
                         "start_date": pd.to_datetime(["2020-01-01", "2020-03-01", "2020-06-02"]),
                         "end_date": pd.to_datetime(["2020-02-29", "2020-05-31", "2020-08-31"])})
    # January-February and March-May touch: one spell; June starts after a one-day gap
    prof = ind.entrant_profiles(rows, 2020, min_cell_size=0).set_index("profile")["persons"]
    assert prof["several spells in one system"] == 1
    reen = ind.reentry(rows, 2020, systems=["ALV"], months=[6], min_cell_size=0)
    assert (reen["leavers"].iloc[0], reen["reentered"].iloc[0]) == (1, 1)


def test_monthly_mode_joins_short_gaps():
    rows = pd.DataFrame({"person_id": ["a", "a"], "institution": ["ALV", "ALV"],
                         "start_date": pd.to_datetime(["2020-01-01", "2020-03-10"]),
                         "end_date": pd.to_datetime(["2020-02-20", "2020-04-30"])})
    daily = ind.reentry(rows, 2020, systems=["ALV"], min_cell_size=0)
    monthly = ind.reentry(rows, 2020, systems=["ALV"], monthly=True, min_cell_size=0)
    assert daily["reentered"].tolist() == [1, 1]  # back after 18 days
    assert monthly["leavers"].tolist() == [1, 1] and monthly["reentered"].tolist() == [0, 0]


def test_suppressed_tables_and_files(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    starts = _time.day("2019-01-01") + rng.integers(0, 900, n)
    rows = pd.DataFrame({
        "person_id": [f"p{i % 150}" for i in range(n)],
        "institution": rng.choice(["ALV", "ALV", "ALV", "SH", "IV", "BSLB"], n),
        "start_date": _time.from_days(starts),
        "end_date": _time.from_days(starts + rng.integers(10, 300, n)),
    })
    res = ind.bfs_indicators(rows, 2020, min_cell_size=5)
    assert set(res.tables) == {"combinations", "profiles", "persistence", "reentry", "transitions"}
    assert any(r.n_primary for r in res.suppression.values())
    trans = res["transitions"]
    assert not (trans["from"] == trans["to"]).any()
    html = res._repr_html_()
    assert "suppressed" in html and "combinations" in html
    files = res.to_dir(tmp_path / "out")
    assert len(files) == 10
    back = pd.read_parquet(tmp_path / "out" / "profiles.parquet")
    assert back["persons"].tolist() == res["profiles"]["persons"].tolist()
    raw = (tmp_path / "out" / "combinations.csv").read_bytes()
    assert raw.startswith("\ufeffcombination;persons;share\n".encode())  # ';' and a BOM: opens in Excel
    csv = read_table(tmp_path / "out" / "combinations.csv")
    assert list(csv.columns) == ["combination", "persons", "share"]
    de = res.to_dir(tmp_path / "de", language="de", xlsx=True)
    assert len(de) == 15 and (tmp_path / "de" / "transitions.xlsx").is_file()
    head = pd.read_csv(tmp_path / "de" / "transitions.csv", sep=";", encoding="utf-8-sig", nrows=0).columns
    assert list(head) == [header(c, "de") for c in res["transitions"].columns]
    assert "Ausgangsinstitution" in head
    assert read_table(tmp_path / "de" / "transitions.csv")["persons"].fillna(-1).tolist() == \
        res["transitions"]["persons"].fillna(-1).astype(int).tolist()


def test_cli_reads_a_folder_of_parquet_files(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 300
    starts = _time.day("2019-01-01") + rng.integers(0, 900, n)
    rows = pd.DataFrame({
        "person_id": pd.Series([f"{i % 120:064x}" for i in range(n)], dtype="str"),
        "institution": rng.choice(["ALV", "SH", "IV"], n),
        "start_date": _time.from_days(starts),
        "end_date": _time.from_days(starts + rng.integers(10, 300, n)),
    })
    folder = tmp_path / "spells"
    folder.mkdir()
    rows.iloc[:150].to_parquet(folder / "a.parquet")
    rows.iloc[150:].to_parquet(folder / "b.parquet")
    out = tmp_path / "ind"
    assert main(["indicators", "--spells", str(folder), "--year", "2020", "--out", str(out), "--monthly"]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.csv")) == [
        "combinations.csv", "persistence.csv", "profiles.csv", "reentry.csv", "transitions.csv"]
    direct = ind.system_combinations(rows, 2020, monthly=True)
    assert read_table(out / "combinations.csv")["persons"].fillna(-1).tolist() == \
        direct["persons"].fillna(-1).astype(int).tolist()
    assert main(["indicators", "--spells", str(folder), "--year", "2020", "--out", str(out / "fr"),
                 "--language", "fr", "--xlsx"]) == 0
    assert (out / "fr" / "combinations.xlsx").is_file()
    assert read_table(out / "fr" / "combinations.csv").columns.tolist() == ["combination", "persons", "share"]
    assert "Combinaison de systèmes" in (out / "fr" / "combinations.csv").read_text(encoding="utf-8-sig")
    assert main(["indicators", "--spells", str(folder), "--year", "2020", "--out", str(out),
                 "--min-cell-size", "0"]) == 2


def test_cli_writes_the_rows_in_the_tables_language(tmp_path):
    """iizrisk indicators --language it wrote Italian headers over rows reading "ALV only", "two or more",
    "Total", "revolving door", "(none)", and shares with 17 digits."""
    from openpyxl import load_workbook

    from iizrisk._texts import text

    rows = _spells_2019_2021(n=600, seed=3)
    rows.to_parquet(tmp_path / "spells.parquet")
    out = tmp_path / "it"
    assert main(["indicators", "--spells", str(tmp_path / "spells.parquet"), "--year", "2020", "--out", str(out),
                 "--language", "it", "--xlsx"]) == 0

    def cells(name: str) -> pd.DataFrame:
        return pd.read_csv(out / f"{name}.csv", sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)

    combinations = cells("combinations")
    assert combinations.iloc[:, 0].tolist() == ["solo ALV", "solo IV", "solo SH", "due o più sistemi", "Totale"]
    assert [r[0] for r in load_workbook(out / "combinations.xlsx").active.iter_rows(values_only=True)][1:] == \
        combinations.iloc[:, 0].tolist()
    assert cells("profiles").iloc[:, 0].tolist() == [text(f"bfs_profiles.{i}", "it") for i in (1, 2, 3, 4)] + ["Totale"]
    origins = cells("transitions")[header("from", "it")]
    assert "(nessuna)" in origins.tolist() and "(none)" not in origins.tolist()
    for name in ("combinations", "profiles", "persistence", "reentry", "transitions"):
        t = cells(name)
        for code in ("share", "rate"):
            if header(code, "it") in t.columns:  # shares with three decimals at most
                assert all(len(v.partition(".")[2]) <= 3 for v in t[header(code, "it")]), (name, t)
        for code in ("persons", "entrants", "still_registered", "leavers", "reentered", "from_registered"):
            if header(code, "it") in t.columns:  # counts as whole numbers
                assert not any("." in v for v in t[header(code, "it")]), (name, t)
    # for machines: the codes and every digit
    machine = pd.read_parquet(out / "combinations.parquet")
    assert machine["combination"].tolist() == ["ALV only", "IV only", "SH only", "two or more", "Total"]
    direct = ind.system_combinations(rows, 2020)
    assert machine["share"].fillna(-1).tolist() == direct["share"].fillna(-1).tolist()
    assert pd.read_parquet(out / "profiles.parquet")["profile"].tolist() == [*ind.PROFILES, "Total"]


def test_a_year_without_anyone_in_the_systems_gives_zero_tables():
    """The data cover 2020 (a vocational guidance spell), but nobody is at ALV, IV or SH in it: zeros.
    Data that end in 2010 cannot answer for 2020 at all: refused."""
    rows = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "BB"],
                         "start_date": pd.to_datetime(["2010-01-01", "2019-06-01"]),
                         "end_date": pd.to_datetime(["2010-02-01", "2021-12-31"])})
    with pytest.raises(ValidationError, match="year 2020 lies after the data: the spells cover 2010-01-01 to "
                                              "2010-02-01"):
        ind.bfs_indicators(rows.iloc[:1], 2020, min_cell_size=0)
    res = ind.bfs_indicators(rows, 2020, min_cell_size=0)
    assert res["combinations"]["persons"].sum() == 0
    assert res["persistence"]["entrants"].sum() == 0


def test_wrong_input_type():
    with pytest.raises(TypeError, match="DataFrame"):
        ind.system_combinations([1, 2], 2020)


def _spells_2019_2021(n=200, seed=2):
    rng = np.random.default_rng(seed)
    starts = _time.day("2019-01-01") + rng.integers(0, 700, n)
    return pd.DataFrame({
        "person_id": pd.Series([f"{i % 80:064x}" for i in range(n)], dtype="str"),
        "institution": rng.choice(["ALV", "SH", "IV"], n),
        "start_date": _time.from_days(starts),
        "end_date": _time.from_days(starts + rng.integers(10, 300, n)),  # closed: the data end in 2021
    })


@pytest.mark.parametrize("year, words", [(1950, "no spell overlaps 1950"), (2150, "lies after the data"),
                                         (2022, "lies after the data")])
def test_cli_refuses_a_year_the_data_do_not_cover(tmp_path, capsys, year, words):
    """A year before every spell gave tables of zeros, one after the data counts extrapolated from open
    spells, both with exit 0: refused (exit 1, a data problem: another export may hold the year), naming
    the period the data cover."""
    rows = _spells_2019_2021()
    rows.to_parquet(tmp_path / "spells.parquet")
    out = tmp_path / "ind"
    assert main(["indicators", "--spells", str(tmp_path / "spells.parquet"), "--year", str(year),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    first, last = rows["start_date"].min().date(), rows["end_date"].max().date()
    assert words in err and f"the spells cover {first} to {last}" in err, err
    assert not out.exists()
    assert main(["indicators", "--spells", str(tmp_path / "spells.parquet"), "--year", "2020", "--out", str(out)]) == 0


def test_cli_refuses_tables_whose_every_count_is_hidden(tmp_path, capsys):
    """Four people: five tables of dots and zeros were written with exit 0. Refused (exit 1), nothing
    written; with cells of one person (tables kept inside the office) they are published."""
    rows = _spells_2019_2021(n=4)
    rows.to_parquet(tmp_path / "spells.parquet")
    argv = ["indicators", "--spells", str(tmp_path / "spells.parquet"), "--year", "2020", "--out"]
    assert main([*argv, str(tmp_path / "ind")]) == 1
    err = capsys.readouterr().err
    assert "every count of 2020 is hidden (fewer than 5 people) or zero: nothing to publish" in err, err
    assert not (tmp_path / "ind").exists()
    assert main([*argv, str(tmp_path / "ind1"), "--min-cell-size", "1"]) == 0
    assert (tmp_path / "ind1" / "combinations.csv").exists()


def test_a_year_the_data_end_in_is_warned_as_partial(caplog):
    """A half-observed year counted registrations of six months as the year's, without a word."""
    rows = _spells_2019_2021()
    end = rows["end_date"].max()
    with caplog.at_level("WARNING", logger="iizrisk"):
        ind.system_combinations(rows, end.year, min_cell_size=0)
    days = (end - pd.Timestamp(f"{end.year}-01-01")).days + 1
    assert f"year {end.year} is observed only until {end.date()} ({days} of 365 days)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="iizrisk"):
        ind.system_combinations(rows, end.year - 1, min_cell_size=0)
    assert "observed only until" not in caplog.text


@pytest.mark.parametrize("year, words", [(1950, "no spell overlaps 1950"), (2150, "lies after the data"),
                                         (2022, "lies after the data")])
def test_every_indicator_function_refuses_a_year_the_data_do_not_cover(year, words):
    """The command's check lived in the command only: from Python, a year the data do not cover gave
    tables of zeros (or counts of spells still open at the export) without a word. Every public function
    refuses it, from a frame or a timeline, naming the period; a covered year still counts."""
    from iizrisk.errors import ValidationError

    rows = _spells_2019_2021()
    first, last = rows["start_date"].min().date(), rows["end_date"].max().date()
    calls = [ind.bfs_indicators, ind.system_combinations, ind.entries, ind.entrant_profiles, ind.persistence,
             ind.reentry, ind.transition_matrix]
    for call in calls:
        for spells in (rows, build_timeline(rows)):
            with pytest.raises(ValidationError, match=words) as exc:
                call(spells, year)
            assert f"the spells cover {first} to {last}" in str(exc.value)
        call(rows, 2020)
    with pytest.raises(ValidationError, match="lies after the data"):  # a given data_end is the last day
        ind.persistence(rows, 2021, data_end="2020-12-31")


def test_empty_spells_are_refused_not_a_key_error(tmp_path):
    """An empty frame: transition_matrix (and bfs_indicators through it) raised KeyError from suppress_table."""
    from iizrisk.errors import ConfigError, ValidationError

    empty = _spells_2019_2021().iloc[:0]
    for call in (lambda: ind.bfs_indicators(empty, 2020), lambda: ind.transition_matrix(empty, 2020),
                 lambda: ind.system_combinations(empty, 2020), lambda: ind.transition_matrix(build_timeline(empty), 2020)):
        with pytest.raises(ValidationError, match="no spells"):
            call()
    rows = _spells_2019_2021()
    with pytest.raises(ConfigError, match="institutions must list one or more"):
        ind.transition_matrix(rows, 2020, institutions=[])
    with pytest.raises(ConfigError, match=r"institutions \['RAV', 'alv'\] are not known institution codes; "
                                          "use some of ALV, IV, SH"):
        ind.transition_matrix(rows, 2020, institutions=["ALV", "RAV", "alv"])  # rows of zeros before
    known_but_absent = ind.transition_matrix(rows, 2020, institutions=["ALV", "BB"], min_cell_size=0)
    assert known_but_absent.loc[known_but_absent["to"] == "BB", "transitions"].eq(0).all()
    with pytest.raises(ConfigError, match="year must be a whole calendar year"):
        ind.transition_matrix(rows, 2020.5)
    with pytest.raises(ConfigError, match="language 'xx': use one of de, fr, it, en"):
        ind.bfs_indicators(rows, 2020).to_dir(tmp_path / "out", language="xx")
    assert not (tmp_path / "out").exists()


def _dated(*rows):
    return pd.DataFrame({"person_id": [r[0] for r in rows], "institution": [r[1] for r in rows],
                         "start_date": pd.to_datetime([r[2] for r in rows]),
                         "end_date": pd.to_datetime([r[3] for r in rows]), "exit_reason": [r[4] for r in rows]})


def test_the_follow_up_periods_end_on_their_last_day():
    """Every period of the BFS tables includes its last day and no more (all periods end before the data do):
    a transition 90 days after the origin's end, a re-entry on the day ``months`` after the exit, still
    registered on the day ``months`` after entry, a spell starting on the 24-month profile window's last day."""
    rows = _dated(
        # transitions into SH in 2020: 90 days after ALV's end (counts), 91 days after (an entry)
        ("t90", "ALV", "2019-06-01", "2020-01-31", "transfer"), ("t90", "SH", "2020-04-30", "2022-12-31", None),
        ("t91", "ALV", "2019-06-01", "2020-01-31", "transfer"), ("t91", "SH", "2020-05-01", "2022-12-31", None),
        # re-entries into IV after leaving on 2020-03-31: on 2020-09-30 (6 months) and on 2020-10-01
        ("r6", "IV", "2019-01-01", "2020-03-31", "employment"), ("r6", "IV", "2020-09-30", "2022-12-31", None),
        ("r7", "IV", "2019-01-01", "2020-03-31", "employment"), ("r7", "IV", "2020-10-01", "2022-12-31", None),
        # ALV entrants on 2020-03-01: registered until 2021-03-01 (12 months on) or until the day before;
        # a second ALV spell on 2022-02-28 (the 24-month window's last day) or on 2022-03-01 (after it)
        ("s12", "ALV", "2020-03-01", "2021-03-01", "employment"), ("s12", "ALV", "2022-02-28", "2022-12-31", None),
        ("s11", "ALV", "2020-03-01", "2021-02-28", "employment"), ("s11", "ALV", "2022-03-01", "2022-12-31", None),
    )
    tm = ind.transition_matrix(rows, 2020, min_cell_size=0).set_index(["from", "to"])
    assert tm.loc[("ALV", "SH"), "persons"] == 1 and tm.loc[("(none)", "SH"), "persons"] == 1
    back = ind.reentry(rows, 2020, systems=["IV"], months=[6, 12], min_cell_size=0).set_index("months")
    assert back.loc[6, "reentered"] == 1 and back.loc[12, "reentered"] == 2 and back.loc[6, "leavers"] == 2
    still = ind.persistence(rows, 2020, systems=["ALV"], months=[12], min_cell_size=0).iloc[0]
    assert (still["entrants"], still["still_registered"]) == (2, 1)
    prof = ind.entrant_profiles(rows.loc[rows["person_id"].isin(["s12", "s11"])], 2020,
                                min_cell_size=0).set_index("profile")["persons"]
    assert (prof["one spell in one system"], prof["several spells in one system"]) == (1, 1)


def test_a_year_counts_a_spell_ending_on_its_first_day_and_data_ending_on_the_follow_ups_last_day(caplog):
    rows = _dated(("a", "ALV", "2019-06-01", "2020-01-01", "employment"), ("a", "SH", "2020-06-01", None, None),
                  ("b", "ALV", "2019-06-01", "2019-12-31", "employment"), ("b", "SH", "2020-06-01", None, None))
    comb = ind.system_combinations(rows, 2020, min_cell_size=0).set_index("combination")["persons"]
    assert (comb["two or more"], comb["SH only"]) == (1, 1)  # a's ALV spell ends on 2020-01-01
    # re-entry within 12 months of 2020 leavers needs data until 2021-12-31: observed exactly that far, no warning
    done = _dated(("c", "IV", "2019-01-01", "2020-12-31", "employment"), ("d", "IV", "2019-01-01", "2021-12-31", None))
    with caplog.at_level("WARNING", logger="iizrisk"):
        ind.reentry(done, 2020, systems=["IV"], months=[12], min_cell_size=0)
    assert "needs data until" not in caplog.text
    with caplog.at_level("WARNING", logger="iizrisk"):
        ind.reentry(done.iloc[:1], 2020, systems=["IV"], months=[12], min_cell_size=0, data_end="2021-12-30")
    assert "needs data until 2021-12-31" in caplog.text
