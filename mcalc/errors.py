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


class NumberTooLarge(McalcError):
    """A number with more digits than Python turns into text (its limit: 4,300)."""


def visible(text: str, newlines: bool = False) -> str:
    """`text` with every non-printable character escaped as Python writes it ('\\x1b',
    '\\u202e', '\\udcff'), so that echoed user text cannot drive the terminal (escape
    sequences, bidi overrides) or break a line in two; `newlines`: multi-line output
    keeps its line breaks. Printable text is unchanged."""
    if newlines:
        return "\n".join(visible(line) for line in text.split("\n"))
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
