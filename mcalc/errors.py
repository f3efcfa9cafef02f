"""The one exception users see: a one-line message, optionally pointing at a column."""


class McalcError(ValueError):
    """Bad input (exit status 2): syntax, unknown name, shape mismatch, a limit hit."""

    def __init__(self, message: str, column: int | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.column = column
        self.source = source

    def one_line(self) -> str:
        where = f" (column {self.column})" if self.column else ""
        return f"error{where}: {self.message}"


class NoRule(McalcError):
    """The engine has no documented rule (or no 2-D/vec form) for this derivative."""
