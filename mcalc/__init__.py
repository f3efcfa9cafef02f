"""mcalc: a command-line matrix-calculus calculator that derives step by step."""
__version__ = "0.1.0"
