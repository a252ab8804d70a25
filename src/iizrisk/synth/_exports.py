"""Institution-style raw exports of a synthetic population, with realistic mess.

Four files under ``exports/``, each as an institution would deliver it:

==========================  ========  =========  ==============================================
file                        language  encoding   institutions
==========================  ========  =========  ==============================================
``alv_rav_export.csv``      German    cp1252     ALV (code ``RAV`` in column ``STELLE``)
``iv_stelle.csv``           German    cp1252     IV (no institution column)
``aide_sociale.csv``        French    UTF-8 BOM  SH (no institution column)
``weitere_stellen.csv``     German    cp1252     BB, BSLB, MIG, UV, KTG (local names in ``STELLE``)
==========================  ========  =========  ==============================================

All use ``;`` separators and ``dd.mm.yyyy`` dates, local column names and
local words for exit reasons, sex, nationality and education (with umlauts
and accents), and an institution-specific text column (RAV office, IV
measure, household type). The mess: rows in no particular order, about 0.5 %
of rows duplicated, about 1 % of closed spells split into two touching rows
(the first without exit reason), three IV rows whose end lies before the
start, and two rows with an unknown institution code (``SEMO``) in
``weitere_stellen.csv``. ``exports/manifest.json`` counts each kind.

``iizrisk.toml`` (written with :class:`iizrisk.config.Settings`) maps every
file onto the canonical form and sets ``[deployment] errors = "quarantine"``:
ingesting it sets the five invalid rows aside, and merging the rest gives
back the canonical spells of the population.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import DeploymentSettings, Settings, SourceConfig
from ..store import make_dirs, write_bytes_atomic, write_text_atomic
from . import _engine as E

__all__ = ["write_exports"]

_REASONS_DE = {"employment": "Stellenantritt", "education": "Ausbildung", "transfer": "Übertritt",
               "benefit_exhausted": "Aussteuerung", "pension": "Pensionierung", "relocation": "Wegzug",
               "death": "Tod", "other": "andere", "unknown": "unbekannt"}
_REASONS_FR = {"employment": "prise d'emploi", "education": "formation", "transfer": "transfert",
               "benefit_exhausted": "fin de droit", "pension": "rente", "relocation": "déménagement",
               "death": "décès", "other": "autre", "unknown": "inconnu"}
_SEX_DE = {"F": "w", "M": "m"}
_SEX_FR = {"F": "F", "M": "H"}
_NAT_DE = {"CH": "Schweiz", "EU_EFTA": "EU/EFTA", "THIRD": "Drittstaat"}
_NAT_FR = {"CH": "Suisse", "EU_EFTA": "UE/AELE", "THIRD": "Etat tiers"}
_EDU_DE = {"compulsory": "obligatorische Schule", "upper_secondary": "Sekundarstufe II",
           "tertiary": "Tertiärstufe", "unknown": "unbekannt"}
_EDU_FR = {"compulsory": "scolarité obligatoire", "upper_secondary": "degré secondaire II",
           "tertiary": "degré tertiaire", "unknown": "inconnue"}
_MEASURE_DE = {"integration": "Eingliederung", "pension": "Rente"}
_HOUSEHOLD_FR = {"single": "personne seule", "single_parent": "famille monoparentale",
                 "couple": "couple sans enfant", "couple_children": "couple avec enfants", "other": "autre"}
_HOUSEHOLD_P = (0.55, 0.2, 0.08, 0.12, 0.05)
_LOCAL_NAMES = {"BB": "Berufsbildung", "BSLB": "Laufbahnberatung", "MIG": "Integrationsfachstelle",
                "UV": "Unfallversicherung", "KTG": "Krankentaggeld"}
_RAV_OFFICES = {  # a few offices per canton (the rest: the canton's RAV with a district number)
    "ZH": ("RAV Zürich Oerlikon", "RAV Wädenswil", "RAV Brühlgutpark Winterthur", "RAV Uster"),
    "BE": ("RAV Bümpliz", "RAV Thun", "RAV Biel/Bienne", "RAV Langenthal"),
    "LU": ("RAV Luzern", "RAV Sursee"), "SG": ("RAV St. Gallen", "RAV Rapperswil-Jona"),
    "AG": ("RAV Aarau", "RAV Baden"), "BL": ("RAV Münchenstein", "RAV Liestal"), "BS": ("RAV Basel",),
    "GR": ("RAV Chur", "RAV Davos"), "ZG": ("RAV Zug",), "TG": ("RAV Frauenfeld", "RAV Kreuzlingen"),
    "GE": ("ORP Genève", "ORP Onex"), "VD": ("ORP Lausanne", "ORP Yverdon-les-Bains", "ORP Nyon"),
    "NE": ("ORP Neuchâtel", "ORP La Chaux-de-Fonds"), "JU": ("ORP Delémont",),
    "FR": ("ORP Fribourg", "RAV Düdingen"), "VS": ("ORP Sion", "RAV Brig-Glis"), "TI": ("URC Bellinzona", "URC Lugano"),
}


def _u(n: int, seed: int, stream: int) -> np.ndarray:
    keys = E.person_keys(seed ^ 0xE8_0875, np.arange(n, dtype=np.int64))
    return E.uniform(keys, 1 << 22, stream)


def _date_strings(values: pd.Series) -> pa.Array:
    arr = pa.array(values.to_numpy(dtype="datetime64[s]"), type=pa.timestamp("s"))
    return pc.fill_null(pc.strftime(arr, format="%d.%m.%Y"), "")


def _mess(df: pd.DataFrame, seed: int, stream: int, *, split: bool = True) -> tuple[pd.DataFrame, dict]:
    """Split ~1 % of closed rows into two touching rows, duplicate ~0.5 %, shuffle."""
    n = len(df)
    counts = {"rows_canonical": n, "split": 0, "duplicates": 0}
    if split and n:
        u = _u(n, seed, stream)
        days = (df["end_date"] - df["start_date"]).dt.days.to_numpy(dtype="float64", na_value=np.nan)
        can = (u < 0.01) & (days >= 2)
        if can.any():
            first = df.loc[can].copy()
            second = df.loc[can].copy()
            cut = np.floor(_u(n, seed, stream + 1)[can] * days[can]).astype(np.int64)
            mid = first["start_date"].to_numpy(dtype="datetime64[s]") + cut.astype("timedelta64[D]")
            first["end_date"] = mid
            first["exit_reason"] = None
            second["start_date"] = mid + np.timedelta64(1, "D")
            df = pd.concat([df.loc[~can], first, second], ignore_index=True)
            counts["split"] = int(can.sum())
    n = len(df)
    dup = _u(n, seed, stream + 2) < 0.005
    counts["duplicates"] = int(dup.sum())
    df = pd.concat([df, df.loc[dup]], ignore_index=True)
    order = np.argsort(_u(len(df), seed, stream + 3), kind="stable")
    return df.iloc[order].reset_index(drop=True), counts


def _local(col: pd.Series, mapping: dict) -> pd.Series:
    return col.astype(object).map(mapping).fillna("")


def _write(df: pd.DataFrame, path: Path, encoding: str) -> None:
    write_bytes_atomic(df.to_csv(sep=";", index=False, lineterminator="\r\n").encode(encoding), path)


def write_exports(pop, path: str | Path) -> Settings:
    """Write ``exports/`` and ``iizrisk.toml`` for a population (see module docstring)."""
    path = Path(path)
    out = make_dirs(path / "exports")
    seed = int(pop.meta.get("seed", 0))
    sp = pop.spells
    manifest: dict[str, dict] = {}

    def common(df, de: bool):
        reasons, sex, nat, edu = ((_REASONS_DE, _SEX_DE, _NAT_DE, _EDU_DE) if de else
                                  (_REASONS_FR, _SEX_FR, _NAT_FR, _EDU_FR))
        return {
            "pid": df["person_id"].astype(str).to_numpy(),
            "case": df["case_id"].astype(str).to_numpy(),
            "start": _date_strings(df["start_date"]).to_numpy(zero_copy_only=False),
            "end": _date_strings(df["end_date"]).to_numpy(zero_copy_only=False),
            "reason": _local(df["exit_reason"], reasons).to_numpy(),
            "recorded": _date_strings(df["recorded_date"]).to_numpy(zero_copy_only=False),
            "canton": df["canton"].astype(str).to_numpy(),
            "birth": df["birth_year"].astype("Int64").astype(str).to_numpy(),
            "sex": _local(df["sex"], sex).to_numpy(),
            "nat": _local(df["nationality_group"], nat).to_numpy(),
            "edu": _local(df["education"], edu).to_numpy(),
        }

    # ---------------------------------------------------------------- ALV (German)
    alv, counts = _mess(sp[sp["institution"] == "ALV"].reset_index(drop=True), seed, 10)
    c = common(alv, True)
    office = np.empty(len(alv), dtype=object)
    cantons = alv["canton"].astype(str).to_numpy()
    u = _u(len(alv), seed, 14)
    for can in np.unique(cantons):
        rows = cantons == can
        names = np.array(_RAV_OFFICES.get(can, (f"RAV {can} 1", f"RAV {can} 2")), dtype=object)
        office[rows] = names[(u[rows] * len(names)).astype(np.int64)]
    frame = pd.DataFrame({
        "PERS_PSEUDO": c["pid"], "FALL_NR": c["case"], "STELLE": "RAV", "ANMELDUNG": c["start"],
        "ABMELDUNG": c["end"], "ABMELDEGRUND": c["reason"], "ERFASST_AM": c["recorded"], "KANTON": c["canton"],
        "JAHRGANG": c["birth"], "GESCHLECHT": c["sex"], "NATIONALITAET": c["nat"], "AUSBILDUNG": c["edu"],
        "RAV_BUERO": office,
    })
    _write(frame, out / "alv_rav_export.csv", "cp1252")
    manifest["alv_rav_export.csv"] = {**counts, "rows": len(frame), "invalid": 0}
    de_common = {"KANTON": "canton", "JAHRGANG": "birth_year", "GESCHLECHT": "sex",
                 "NATIONALITAET": "nationality_group", "AUSBILDUNG": "education"}
    de_values = {"exit_reason": {v: k for k, v in _REASONS_DE.items()},
                 "sex": {v: k for k, v in _SEX_DE.items()},
                 "nationality_group": {v: k for k, v in _NAT_DE.items()},
                 "education": {v: k for k, v in _EDU_DE.items()}}
    sources = [SourceConfig(
        name="alv", path="exports/alv_rav_export.csv", separator=";", encoding="cp1252", date_format="%d.%m.%Y",
        columns={"PERS_PSEUDO": "person_id", "FALL_NR": "case_id", "STELLE": "institution",
                 "ANMELDUNG": "start_date", "ABMELDUNG": "end_date", "ABMELDEGRUND": "exit_reason",
                 "ERFASST_AM": "recorded_date", **de_common, "RAV_BUERO": "rav_office"},
        values={"institution": {"RAV": "ALV"}, **de_values}, institutions=["ALV"])]

    # ----------------------------------------------------------------- IV (German)
    iv, counts = _mess(sp[sp["institution"] == "IV"].reset_index(drop=True), seed, 20, split=False)
    c = common(iv, True)
    frame = pd.DataFrame({
        "PID": c["pid"], "IV_NR": c["case"], "BEGINN": c["start"], "ENDE": c["end"], "ENDGRUND": c["reason"],
        "ERFASST": c["recorded"], "KANTON": c["canton"], "JAHRGANG": c["birth"], "GESCHLECHT": c["sex"],
        "NATIONALITAET": c["nat"], "AUSBILDUNG": c["edu"],
        "MASSNAHME": _local(iv["iv_measure"], _MEASURE_DE).to_numpy(),
    })
    # invalid: three rows whose end lies before the start
    closed = np.flatnonzero(frame["ENDE"].to_numpy() != "")
    bad = frame.iloc[closed[:3]].copy()
    bad["BEGINN"], bad["ENDE"] = bad["ENDE"].to_numpy(), bad["BEGINN"].to_numpy()
    bad = bad[bad["BEGINN"] != bad["ENDE"]]
    frame = pd.concat([frame, bad], ignore_index=True)
    _write(frame, out / "iv_stelle.csv", "cp1252")
    manifest["iv_stelle.csv"] = {**counts, "rows": len(frame), "invalid": len(bad),
                                 "invalid_kind": "end_date before start_date"}
    sources.append(SourceConfig(
        name="iv", path="exports/iv_stelle.csv", institution="IV", separator=";", encoding="cp1252",
        date_format="%d.%m.%Y",
        columns={"PID": "person_id", "IV_NR": "case_id", "BEGINN": "start_date", "ENDE": "end_date",
                 "ENDGRUND": "exit_reason", "ERFASST": "recorded_date", **de_common, "MASSNAHME": "iv_measure"},
        values={**de_values, "iv_measure": {v: k for k, v in _MEASURE_DE.items()}}))

    # ---------------------------------------------------------------- SH (French)
    sh, counts = _mess(sp[sp["institution"] == "SH"].reset_index(drop=True), seed, 30)
    c = common(sh, False)
    hh = np.array(list(_HOUSEHOLD_FR.values()), dtype=object)[
        np.minimum(np.searchsorted(np.cumsum(_HOUSEHOLD_P), _u(len(sh), seed, 34), side="right"), 4)]
    frame = pd.DataFrame({
        "id_personne": c["pid"], "no_dossier": c["case"], "date_debut": c["start"], "date_fin": c["end"],
        "motif_sortie": c["reason"], "date_saisie": c["recorded"], "canton": c["canton"],
        "annee_naissance": c["birth"], "sexe": c["sex"], "groupe_nationalite": c["nat"],
        "formation": c["edu"], "type_menage": hh,
    })
    _write(frame, out / "aide_sociale.csv", "utf-8-sig")
    manifest["aide_sociale.csv"] = {**counts, "rows": len(frame), "invalid": 0}
    sources.append(SourceConfig(
        name="sh", path="exports/aide_sociale.csv", institution="SH", separator=";", encoding="utf-8-sig",
        date_format="%d.%m.%Y",
        columns={"id_personne": "person_id", "no_dossier": "case_id", "date_debut": "start_date",
                 "date_fin": "end_date", "motif_sortie": "exit_reason", "date_saisie": "recorded_date",
                 "canton": "canton", "annee_naissance": "birth_year", "sexe": "sex",
                 "groupe_nationalite": "nationality_group", "formation": "education",
                 "type_menage": "household_type"},
        values={"exit_reason": {v: k for k, v in _REASONS_FR.items()},
                "sex": {v: k for k, v in _SEX_FR.items()},
                "nationality_group": {v: k for k, v in _NAT_FR.items()},
                "education": {v: k for k, v in _EDU_FR.items()},
                "household_type": {v: k for k, v in _HOUSEHOLD_FR.items()}}))

    # ---------------------------------------------- other institutions (German)
    other, counts = _mess(sp[sp["institution"].isin(list(_LOCAL_NAMES))].reset_index(drop=True), seed, 40)
    c = common(other, True)
    frame = pd.DataFrame({
        "PERS_PSEUDO": c["pid"], "FALL_NR": c["case"],
        "STELLE": _local(other["institution"], _LOCAL_NAMES).to_numpy(), "BEGINN": c["start"],
        "ENDE": c["end"], "AUSTRITTSGRUND": c["reason"], "ERFASST_AM": c["recorded"], "KANTON": c["canton"],
        "JAHRGANG": c["birth"], "GESCHLECHT": c["sex"], "NATIONALITAET": c["nat"], "AUSBILDUNG": c["edu"],
    })
    bad = frame.iloc[:2].copy()
    bad["STELLE"] = "SEMO"  # a motivation semester: not an institution code of the deployment
    frame = pd.concat([frame, bad], ignore_index=True)
    _write(frame, out / "weitere_stellen.csv", "cp1252")
    manifest["weitere_stellen.csv"] = {**counts, "rows": len(frame), "invalid": len(bad),
                                       "invalid_kind": "unknown institution code SEMO"}
    sources.append(SourceConfig(
        name="weitere", path="exports/weitere_stellen.csv", separator=";", encoding="cp1252",
        date_format="%d.%m.%Y",
        columns={"PERS_PSEUDO": "person_id", "FALL_NR": "case_id", "STELLE": "institution",
                 "BEGINN": "start_date", "ENDE": "end_date", "AUSTRITTSGRUND": "exit_reason",
                 "ERFASST_AM": "recorded_date", **de_common},
        values={"institution": {v: k for k, v in _LOCAL_NAMES.items()}, **de_values},
        institutions=sorted(_LOCAL_NAMES)))

    write_text_atomic(json.dumps(manifest, indent=1, sort_keys=True) + "\n", out / "manifest.json")
    where = pop.meta.get("canton") or "CH"
    settings = Settings(
        deployment=DeploymentSettings(name=f"Synthetic population {where} (seed {seed})", errors="quarantine",
                                      interventions="interventions.parquet"),
        sources=sources,
        base_dir=path,
    )
    settings.check(str(path / "iizrisk.toml"))
    settings.save(path / "iizrisk.toml")
    return settings
