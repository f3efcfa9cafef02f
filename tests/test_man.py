"""The manual page man/mcalc.1 documents every option of every command, and is clean roff.

Each command has its own subsection under OPTIONS (`.SS Options of diff`, or a shared
one such as `.SS Options of diff and check`); an option counts as documented only when
it appears in a subsection whose title names its command.  Commands that cli.py does not
have yet (check, repl) are held to the option list of the contract, so the page stays
complete while they are being written.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from mcalc import __version__
from mcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man" / "mcalc.1"

# Options that commands still being written must have (contract §3 and the lead's brief).
PLANNED = {
    "check": {
        "--layout": ("numerator", "denominator"),
        "-t": (),
        "--type": (),
        "--method": ("chain", "differential", "definition"),
        "--exact": (),
        "--batch": (),
        "--format": ("plain", "json"),
        "--seed": (),
    },
    "repl": {
        "--layout": ("numerator", "denominator"),
        "-t": (),
        "--type": (),
        "--format": ("plain", "rich", "json", "latex", "numpy"),
    },
    "diff": {
        "--method": ("chain", "differential", "definition"),
    },
}
REPL_COMMANDS = (":type", ":types", ":forget", ":layout", ":format", ":method", ":help",
                 ":quit", "where")
SKIPPED = {"--help", "-h"}


def _plain(roff: str) -> str:
    """The text of roff source with the escapes that matter here undone."""
    text = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", roff)        # font changes
    text = text.replace("\\-", "-").replace("\\(aq", "'").replace("\\(ha", "^")
    text = text.replace("\\(dq", '"').replace("\\e", "\\").replace("\\&", "")
    return text


def _sections(level: str) -> dict[str, str]:
    """Title -> plain text of each `.SH` or `.SS` section (text up to the next heading
    of that level or above)."""
    stops = (".SH",) if level == ".SH" else (".SH", ".SS")
    out: dict[str, str] = {}
    title, body = None, []
    for line in MAN.read_text(encoding="utf-8").splitlines():
        head = line.split(" ", 1)[0]
        if head in stops:
            if title is not None:
                out[title] = _plain("\n".join(body))
            title, body = None, []
            if head == level:
                title = _plain(line.split(" ", 1)[1]).strip().strip('"') if " " in line else ""
            continue
        if title is not None:
            body.append(line)
    if title is not None:
        out[title] = _plain("\n".join(body))
    return out


def _mentions(text: str, word: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def _option_text(command: str | None) -> str:
    """The OPTIONS subsections whose title names `command` (None: the program itself)."""
    subs = {t: b for t, b in _sections(".SS").items() if t.startswith("Options of ")}
    assert subs, "man page: no '.SS Options of ...' subsections under OPTIONS"
    names = command or "mcalc"
    picked = [b for t, b in subs.items()
              if _mentions(t[len("Options of "):], names)]
    return "\n".join(picked)


def _cli_options():
    """(command name or None, option strings, choices) for every click option of main."""
    def walk(cmd, name):
        for p in cmd.params:
            if isinstance(p, click.Option):
                opts = [o for o in (*p.opts, *p.secondary_opts) if o not in SKIPPED]
                choices = tuple(p.type.choices) if isinstance(p.type, click.Choice) else ()
                if opts:
                    yield name, opts, choices
        if isinstance(cmd, click.Group):
            for sub_name, sub in cmd.commands.items():
                yield from walk(sub, sub_name if name is None else f"{name} {sub_name}")
    return list(walk(main, None))


def test_the_page_exists_and_names_the_version():
    text = MAN.read_text(encoding="utf-8")
    th = next(line for line in text.splitlines() if line.startswith(".TH "))
    assert f"mcalc {__version__}" in th, f"man page .TH names another version: {th}"


@pytest.mark.parametrize("command,opts,choices", [
    pytest.param(c, o, ch, id=f"{c or 'mcalc'} {'/'.join(o)}") for c, o, ch in _cli_options()])
def test_every_cli_option_is_documented(command, opts, choices):
    text = _option_text(command)
    where = f"'.SS Options of {command or 'mcalc'}'"
    for opt in opts:
        assert _mentions(text, opt), f"man page: {opt} of {command or 'mcalc'} is not in {where}"
    for choice in choices:
        assert _mentions(text, choice), \
            f"man page: value {choice!r} of {opts[-1]} ({command or 'mcalc'}) is not in {where}"


@pytest.mark.parametrize("command", sorted(PLANNED))
def test_planned_options_are_documented(command):
    text = _option_text(command)
    assert text, f"man page: no '.SS Options of {command}' subsection"
    for opt, choices in PLANNED[command].items():
        assert _mentions(text, opt), f"man page: {opt} of {command} is not documented"
        for choice in choices:
            assert _mentions(text, choice), f"man page: {opt} {choice} of {command} missing"


def test_every_command_is_described():
    commands = _sections(".SH").get("COMMANDS", "")
    for name in {*main.commands, "diff", "check", "shape", "rules", "repl"}:
        assert _mentions(commands, f"mcalc {name}") or _mentions(commands, name), \
            f"man page: command {name} is not in COMMANDS"
    for word in REPL_COMMANDS:
        assert word in commands, f"man page: the repl's {word} is not described"


def test_global_options_and_environment():
    page = _plain(MAN.read_text(encoding="utf-8"))
    for opt in ("--version", "--help", "-h"):
        assert _mentions(_option_text(None), opt), f"man page: {opt} not documented"
    sections = _sections(".SH")
    for required in ("NAME", "SYNOPSIS", "DESCRIPTION", "THE REQUEST LANGUAGE", "RESULTS",
                     "COMMANDS", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES",
                     "SEE ALSO"):
        assert required in sections, f"man page: no {required} section"
    assert "NO_COLOR" in sections["ENVIRONMENT"]
    assert "_MCALC_COMPLETE=bash_source" in page


def test_mandoc_lint_is_clean():
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        if os.environ.get("CI"):
            pytest.fail("mandoc is not installed (CI is set): apt-get install mandoc")
        pytest.skip("mandoc not installed; apt-get install mandoc (required when CI is set)")
    run = subprocess.run([mandoc, "-T", "lint", "-W", "warning", str(MAN)],
                         capture_output=True, text=True, timeout=60)
    assert run.stdout + run.stderr == "", run.stdout + run.stderr
