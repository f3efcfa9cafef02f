"""mcalc: a matrix-calculus calculator that derives step by step.

    >>> import mcalc
    >>> mcalc.derive("d/dx x'@A@x", layout="denominator").result
    "(A + A')@x"

The public names (`derive`, `check`, `Derivation`, `Verdict`, `Step`, `McalcError`) live
in mcalc.api and are loaded on first use (PEP 562), so `import mcalc` costs nothing for
the command line.
"""
__version__ = "0.1.0"

_PUBLIC = ("derive", "check", "Derivation", "Verdict", "Step", "McalcError")
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        # by name, not an import statement: the package adds no edge to the layer graph
        # (mcalc.api sits on top; every module below imports `from mcalc import ...`)
        import importlib
        return getattr(importlib.import_module("mcalc.api"), name)
    raise AttributeError(f"module 'mcalc' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
