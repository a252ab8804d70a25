"""The notebooks: committed without outputs, and each runs headless without error in a temporary folder.

Each notebook generates its own small synthetic canton, so the runs need no data. Executing them
also checks what they show: no pseudonym (64 hex digits) in any output, no Python warning except
the ones a notebook means to show (the fairness audit's gap warning), and the notice that a score
is a hint for a human review.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_explore", "02_train_and_explain", "03_worklist", "04_evaluate_prevention", "05_review_loop",
         "06_model_selection_and_monitoring", "07_rank_by_benefit"]
TIMEOUT = 240  # seconds per cell
# a pseudonym: 64 hex digits (keyed SHA-256), unless labelled as a file or data hash
PSEUDONYM = re.compile(r"(?<!sha256': ')(?<!fingerprint': ')(?<!sha256 )\b[0-9a-f]{64}\b")
WARNING = re.compile(r"\b(\w*Warning): ")
EXPECTED_WARNINGS = {"FairnessGapWarning"}


def _read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def _outputs_text(nb) -> list[str]:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o["text"])
            for mime, value in o.get("data", {}).items():
                if mime.startswith("text/"):
                    out.append(value if isinstance(value, str) else "".join(value))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean_and_explained(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), "strip the outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    # every step after the set-up cell follows a markdown cell that explains it
    kinds = [c.cell_type for c in nb.cells]
    first_steps = [i for i in range(2, len(kinds)) if kinds[i] == "code" and kinds[i - 1] == "markdown"]
    assert len(first_steps) >= 4
    text = " ".join(" ".join(c.source.split()) for c in nb.cells if c.cell_type == "markdown").lower()
    assert "synthetic" in text
    if name != "04_evaluate_prevention":  # the research notebook scores nobody
        assert "never a decision" in text and ("human review" in text or "review by professionals" in text)
    assert not PSEUDONYM.search(" ".join(c.source for c in nb.cells))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_headless(name, tmp_path, monkeypatch):
    # one thread per library in the kernel: the machine is shared, and oversubscribed OpenMP is slow
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = _read(name)
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError (with the traceback) on any error
    texts = _outputs_text(nb)
    assert texts, "the notebook showed nothing"
    shown = "\n".join(texts)
    assert not PSEUDONYM.search(shown), "a pseudonym is shown in an output"
    warned = {m.group(1) for t in texts for m in WARNING.finditer(t)} - EXPECTED_WARNINGS
    assert not warned, f"unexpected warnings in the outputs: {sorted(warned)}"
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells for o in c.get("outputs", [])), "no plot was drawn"
