"""The public Python API (the contract, "Python API") — being built on mcalc.pipeline."""
from mcalc.pipeline import derive  # noqa: F401
