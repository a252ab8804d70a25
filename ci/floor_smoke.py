"""Smoke test of the dependency floor, run by ``make floor`` inside ``.venv-floor``.

1. The venv holds exactly what ``ci/constraints-floor.txt`` pins: every installed
   distribution (but iizrisk and the venv's own pip/setuptools/wheel) is pinned there,
   at that version. A new dependency that the constraints file does not pin fails here
   instead of floating to whatever is newest.
2. A small synthetic canton end to end (``iizrisk demo``: raw exports, ingest, training,
   the nightly run): exit 0, almost no rows quarantined, and every institution's worklist
   published with people on it. (Under pandas 2.2 empty end dates became the text 'nan',
   every open spell was quarantined and the run published empty worklists with exit 0.)

Usage: ``python ci/floor_smoke.py CONSTRAINTS [--persons N]``; exit 0 when all holds.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

IGNORED = {"iizrisk", "pip", "setuptools", "wheel"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not m:
            raise SystemExit(f"{path}: not a 'name==version' pin: {line!r}")
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def check_environment(pins: dict[str, str]) -> list[str]:
    problems = []
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name, version in sorted(installed.items()):
        if name in IGNORED:
            continue
        if name not in pins:
            problems.append(f"{name} {version} is installed but not pinned in the constraints file")
        elif pins[name] != version:
            problems.append(f"{name} {version} is installed, the constraints file pins {pins[name]}")
    for name in sorted(set(pins) - set(installed)):
        problems.append(f"{name}=={pins[name]} is pinned but not installed (stale pin? remove it)")
    return problems


def check_demo(persons: int) -> list[str]:
    problems = []
    exe = Path(sys.executable).with_name("iizrisk")
    with tempfile.TemporaryDirectory(prefix="iizrisk-floor-") as tmp:
        out = Path(tmp) / "demo"
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), "demo", "--out", str(out), "--persons", str(persons),
                               "--years", "4"], capture_output=True, text=True)
        print(f"floor smoke: iizrisk demo --persons {persons} --years 4: exit {proc.returncode} "
              f"in {time.perf_counter() - t0:.0f} s")
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            return [f"iizrisk demo exited {proc.returncode}"]
        run = out / "runs" / "latest"
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        rows = manifest.get("rows", {})
        read, quarantined = rows.get("read", 0), rows.get("quarantined", 0)
        if not read or quarantined > 0.02 * read:
            problems.append(f"{quarantined} of {read} rows quarantined (expected a handful)")
        csvs = sorted((run / "worklists").glob("*.csv"))
        if len(csvs) < 3:
            problems.append(f"only {len(csvs)} worklists published: {[p.name for p in csvs]}")
        sizes = {}
        for p in csvs:
            with p.open(encoding="utf-8-sig", newline="") as fh:
                sizes[p.stem] = sum(1 for _ in csv.reader(fh, delimiter=";")) - 1
        # an institution with nobody listed tonight has a list with headers only; each list holds as many
        # rows as the manifest says, its dated copy the same, and some list holds somebody
        listed = {k: int(v.get("on_list", -1)) for k, v in (manifest.get("worklists") or {}).items()}
        wrong = {k: (n, listed.get(k.split("_")[0])) for k, n in sizes.items() if n != listed.get(k.split("_")[0])}
        if wrong:
            problems.append(f"worklists whose rows differ from the manifest's on_list (rows, on_list): {wrong}")
        if not any(sizes.values()):
            problems.append(f"every worklist is empty: {sizes}")
        print(f"floor smoke: {read} rows read, {quarantined} quarantined; worklists {sizes}")
        print(f"floor smoke: versions in the run's manifest: {manifest.get('versions')}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("constraints", type=Path)
    ap.add_argument("--persons", type=int, default=2000)
    args = ap.parse_args(argv)
    problems = check_environment(read_pins(args.constraints))
    if not problems:
        problems = check_demo(args.persons)
    for p in problems:
        print(f"floor smoke: FAILED: {p}", file=sys.stderr)
    if not problems:
        print("floor smoke: passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
