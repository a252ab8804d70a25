"""The declared dependency floor and the floor that ``make floor`` tests are the same.

pyproject.toml says ``name>=X`` for each dependency; ci/constraints-floor.txt pins
``name==X`` for the floor venv that ``make test`` builds and tests (``make floor``).
If the two disagree, the floor that is declared is not the floor that is tested.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "ci" / "constraints-floor.txt"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.match(r"\d+(?:\.\d+)*", version).group(0).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _floors(requirements: list[str]) -> dict[str, str]:
    floors = {}
    for req in requirements:
        m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9.]*)\s*", req)
        assert m, f"pyproject.toml: {req!r} is not of the form 'name>=version' (a floor and nothing else)"
        floors[_norm(m.group(1))] = m.group(2)
    return floors


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
            assert m, f"{CONSTRAINTS.name}: {line!r} is not a 'name==version' pin"
            assert _norm(m.group(1)) not in pins, f"{CONSTRAINTS.name}: {m.group(1)} pinned twice"
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_each_declared_floor_is_the_tested_pin():
    floors, pins = _floors(_project()["dependencies"]), _pins()
    missing = sorted(set(floors) - set(pins))
    assert not missing, f"dependencies without a pin in {CONSTRAINTS.name}: {missing}"
    differ = {name: (floor, pins[name]) for name, floor in floors.items()
              if _release(floor) != _release(pins[name])}
    assert not differ, (f"pyproject.toml floor != {CONSTRAINTS.name} pin (floor, pin): {differ}; "
                        "change both together and run `make floor`")


def test_pinned_test_tools_satisfy_the_dev_floors():
    floors, pins = _floors(_project()["optional-dependencies"]["dev"]), _pins()
    for name in ("pytest", "hypothesis"):
        assert name in pins, f"{CONSTRAINTS.name} pins no {name} (the floor run needs it)"
        assert _release(pins[name]) >= _release(floors[name]), (name, pins[name], floors[name])


def test_release_comparison():
    assert _release("1.0") == _release("1.0.0") == (1,)
    assert _release("4.66") == _release("4.66.0")
    assert _release("2.0.2") > _release("2.0")
