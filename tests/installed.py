"""Where the installed `mcalc` executable is, for the end-to-end tests."""
import shutil
import sys
from pathlib import Path

import pytest


def installed_mcalc() -> str:
    """The console script of this environment (beside its python), else the one on PATH;
    the test is skipped when neither exists."""
    beside = Path(sys.executable).parent / "mcalc"
    found = str(beside) if beside.exists() else shutil.which("mcalc")
    if not found:
        pytest.skip("the mcalc executable is not installed (pip install -e .)")
    return found
