"""Requests one per line — `mcalc diff -`, `mcalc check --batch FILE|-` and the piped
repl — and the error boundary around each line.

Input is read as bytes, at most LINE_LIMIT bytes a line (the rest of a longer line is
skipped unread into memory, so `mcalc diff - < /dev/zero` stays bounded), and decoded as
UTF-8 (a byte-order mark at the start skipped) with bad bytes replaced: such a line is
reported as an error, never the batch's.
Every answer is out before a read that may wait for input (a file's answers go out in
large writes); a failure of any kind while answering a line (bad input, a limit, MemoryError,
RecursionError, a bug) becomes that line's one-line error and the batch goes on; Ctrl-C
stops the batch after the finished lines (status 130).
"""
from __future__ import annotations

import os
import select
import stat
from typing import Callable, Iterator, NamedTuple

from mcalc.errors import visible
from mcalc.options import INTERRUPTED_STATUS, _error_line

LINE_LIMIT = 1 << 20          # bytes in one input line (1 MB)
_CHUNK = 1 << 16              # bytes read at a time while skipping the rest of a long line
_SHOWN = 60                   # characters of an over-long line shown in its error
_PENDING = 1 << 16            # characters of finished answers echoed in one write at most
_BOM = b"\xef\xbb\xbf"


class Line(NamedTuple):
    number: int               # 1-based
    text: str                 # the line without its end, bad bytes as U+FFFD
    error: str | None         # why it cannot be a request (bad UTF-8, too long), else None

    @property
    def skipped(self) -> bool:
        """Blank lines and # comments are not requests."""
        return self.error is None and (not self.text.strip()
                                       or self.text.lstrip().startswith("#"))


def read_lines(stream) -> Iterator[Line]:
    """Every line of `stream` (binary, or text: a text stream's buffer is read when it
    has one), bounded and decoded."""
    stream = getattr(stream, "buffer", stream)
    number = 0
    while True:
        raw = _bytes(stream.readline(LINE_LIMIT + 1))
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(_BOM):     # a UTF-8 byte-order mark (Windows
            raw = raw[len(_BOM):]                    # editors) starts the file, not a request
        if len(raw) > LINE_LIMIT and not raw.endswith(b"\n"):
            rest = raw
            while rest and not rest.endswith(b"\n"):
                rest = _bytes(stream.readline(_CHUNK))
            shown = raw[:_SHOWN * 4].decode("utf-8", "replace")[:_SHOWN] + "…"
            yield Line(number, shown, f"error: line too long (more than {LINE_LIMIT} bytes)")
            continue
        yield Line(number, *decode(raw.rstrip(b"\r\n")))


def decode(raw) -> tuple[str, str | None]:
    """(text with bad bytes as U+FFFD, the error that reports the first of them or None);
    `raw` bytes, or text whose undecodable bytes are surrogates."""
    raw = _bytes(raw)
    text = raw.decode("utf-8", "replace")
    if "\ufffd" in text:                         # replaced, or a U+FFFD of the input itself
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            column = len(raw[:e.start].decode("utf-8", "replace")) + 1
            return text, f"error (column {column}): not valid UTF-8 (byte 0x{raw[e.start]:02x})"
    return text, None


def _bytes(chunk) -> bytes:
    """A text stream's line as the bytes it came from (undecodable bytes arrive as
    surrogates; any other surrogate stays invalid UTF-8, and is reported)."""
    if isinstance(chunk, bytes):
        return chunk
    try:
        return chunk.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return chunk.encode("utf-8", "surrogatepass")


def may_wait(stream) -> Callable[[], bool]:
    """Whether the next read of `stream` may wait for its writer: never for a regular file
    or an in-memory stream; for a pipe or a terminal, when nothing is ready to be read."""
    try:
        fd = getattr(stream, "buffer", stream).fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return lambda: False
    except (AttributeError, OSError, ValueError):       # io.UnsupportedOperation: in memory
        return lambda: False

    def waits() -> bool:
        try:
            return not select.select([fd], [], [], 0)[0]
        except (OSError, ValueError):
            return True
    return waits


def run_batch(stream, answer: Callable[[str], tuple[str, int]],
              failed: Callable[[str, str], str], echo: Callable[[str], None],
              printable: bool = False) -> int:
    """Answer every request line of `stream` and return the worst status.

    answer(text) -> (one output line, status); failed(text, message) -> the output line
    of a line that could not be read or whose answer raised (status 2). Output lines, with
    control characters escaped, are echoed together — whenever the next read may wait, so
    a script feeding lines one at a time sees each answer at once, else every _PENDING
    characters, so a file is answered in large writes rather than a write and a flush per
    line — and at the end; a closed output pipe (BrokenPipeError) is left to the caller;
    Ctrl-C returns 130 after the finished lines. `printable`: every line answer and
    failed give is printable already (JSON, which escapes the rest), not looked at again.
    """
    worst, waits, pending = 0, may_wait(stream), []
    size = 0

    def flush() -> None:
        if pending:
            text = "\n".join(pending)
            pending.clear()
            echo(text)

    try:
        for line in read_lines(stream):
            if line.skipped:
                continue
            if line.error is not None:
                out, status = failed(line.text, line.error), 2
            else:
                try:
                    out, status = answer(line.text)
                except Exception as e:           # MemoryError, RecursionError, bugs: this line's
                    out, status = failed(line.text, _error_line(e)), 2
            if not printable:
                out = visible(out)
            pending.append(out)
            size += len(out)
            worst = max(worst, status)
            if size >= _PENDING or waits():
                flush()
                size = 0
    except KeyboardInterrupt:
        worst = INTERRUPTED_STATUS
    flush()
    return worst
