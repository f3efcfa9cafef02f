"""examples/mcalc.ipynb runs in a real Jupyter kernel (nbclient + ipykernel), and the rich
outputs it produced — the derivation as HTML/MathML, Markdown and LaTeX, the verdicts —
are what a notebook user sees."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "mcalc.ipynb"


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed, and CI is set: pip install -e '.[test]'")
        pytest.skip(f"{module} is not installed (with CI set this test fails instead)")


def test_the_example_notebook_runs_and_shows_derivations(tmp_path, monkeypatch):
    nbformat = _need("nbformat")
    nbclient = _need("nbclient")
    _need("ipykernel")
    # A kernel spec of this very interpreter (the venv's), whatever is on PATH.
    spec = tmp_path / "kernels" / "mcalc-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mcalc test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="mcalc-test", timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    rich = [o.data for o in outputs if o.output_type == "execute_result"]
    derivation = next(d for d in rich if "text/html" in d)
    html = derivation["text/html"]
    assert html.count("<math") > 10 and "<script" not in html
    assert 'data-kind="differential"' in html
    assert r"\begin{align*}" in derivation["text/latex"]
    assert "$$" in derivation["text/markdown"]
    assert "mcalc.Derivation" in derivation["text/plain"]
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "(4, 3) True" in streams                       # matches a finite difference
    verdicts = [d["text/markdown"] for d in rich if "text/markdown" in d
                and "text/html" not in d]
    assert len(verdicts) == 2
    assert verdicts[0].startswith("**does not hold** (counterexample)")
    assert verdicts[1].startswith("**holds** (symbolic)")
