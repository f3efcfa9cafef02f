"""mcalc: a matrix-calculus calculator that derives step by step.

    >>> import mcalc
    >>> mcalc.derive("d/dx x'@A@x", layout="denominator").result
    "(A + A')@x"

The public names (`derive`, `check`, `Derivation`, `Verdict`, `Step`, `McalcError`) live
in mcalc.api and are loaded on first use (PEP 562), so `import mcalc` costs nothing for
the command line.
"""
import sys as _sys

__version__ = "0.1.0"

_PUBLIC = ("derive", "check", "Derivation", "Verdict", "Step", "McalcError")
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        from mcalc import api
        return getattr(api, name)
    raise AttributeError(f"module 'mcalc' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))


class _Package(type(_sys)):                  # types.ModuleType, without importing types
    """Importing the submodule mcalc.check (the checker) would bind the name `check` of
    this package to that module, hiding the function mcalc.check; the submodule stays in
    sys.modules, and the name keeps meaning the function."""

    def __setattr__(self, name, value):
        if name in _PUBLIC and isinstance(value, type(_sys)):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
