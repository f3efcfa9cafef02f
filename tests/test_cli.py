"""The command line through click's CliRunner: the contract's commands, formats, JSON
fields and exit statuses."""
import json

import pytest
from click.testing import CliRunner

from mcalc.cli import main
from mcalc.rules import RULES


def run(*args, stdin=None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_card_example_json():
    r = run("diff", "d/dw sum(w*x) + b", "--format", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["result"] == "x'" and d["shape"] == ["1", "n"]
    assert d["types"] == {"w": "vector(n)", "x": "vector(n)", "b": "scalar"}
    assert d["wrt"] == ["w"] and d["layout"] == "numerator"
    assert d["latex"] == r"\mathbf{x}^{T}" and d["numpy"] == "x"
    assert len(d["steps"]) >= 3
    assert all({"rule", "text", "latex"} <= set(s) for s in d["steps"])


def test_bare_request_is_diff_and_plain_output_shows_the_derivation():
    r = run("d/dw sum(w*x) + b", "--format", "plain")
    assert r.exit_code == 0
    for shown in ("w, x: vector(n); b: scalar", "u1 = w*x", "element-wise product",
                  "sum reduction", "vector chain rule", "dy/dw = x'", "1×n"):
        assert shown in r.stdout


def test_piped_output_defaults_to_plain():
    r = run("d/dx sin(x^2)")
    assert r.exit_code == 0 and "\x1b[" not in r.stdout and "2*x*cos(x^2)" in r.stdout


@pytest.mark.parametrize("fmt,expected", [("numpy", "x @ (A + A.T)"), ("latex", r"\begin{align*}")])
def test_formats(fmt, expected):
    r = run("diff", "d/dx x'@A@x", "--format", fmt)
    assert r.exit_code == 0 and expected in r.stdout


def test_latex_flag_and_standalone():
    r = run("diff", "d/dx sin(x^2)", "--latex", "--standalone")
    assert r.exit_code == 0 and r.stdout.startswith(r"\documentclass")


def test_layout_and_type_options():
    r = run("diff", "d/dx x'@A@x", "--layout", "denominator", "-t", "A: symmetric(n)",
            "--format", "json")
    assert json.loads(r.stdout)["result"] == "2*A@x"


def test_method_differential_shows_frobenius_steps():
    r = run("diff", "d/dW norm(X'@W)^2", "--method", "differential", "--format", "plain")
    assert r.exit_code == 0 and "dy = 2*U1 : d(U1)" in r.stdout


def test_batch_diff_one_line_per_request_and_worst_status():
    r = run("diff", "-", "--format", "json", stdin="d/dx sin(x)\n\n# comment\nd/dx foo(x)\nd/dx x^2\n")
    lines = r.stdout.strip().split("\n")
    assert len(lines) == 3 and r.exit_code == 2
    assert json.loads(lines[0])["result"] == "cos(x)"
    assert "error" in json.loads(lines[1]) and "column" in json.loads(lines[1])["error"]
    assert json.loads(lines[2])["result"] == "2*x"


@pytest.mark.parametrize("bad", ["", "d/dx sin(x", "d/dx foo(x)", "d/dx A*x where A: matrix(m, n); x: vector(n)",
                                 "d/dz x", "x $ y"])
def test_bad_input_is_one_line_exit_2(bad):
    r = run("diff", bad)
    assert r.exit_code == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error") and "Traceback" not in r.stderr


def test_shape_error_suggests_matmul():
    r = run("diff", "d/dx A*x where A: matrix(m, n); x: vector(n)")
    assert "column 7" in r.stderr and "did you mean @" in r.stderr


def test_bad_option_is_one_line_exit_2():
    r = run("diff", "x", "--layout", "sideways")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_shape_command():
    r = run("shape", "A@x + b")
    assert r.exit_code == 0
    assert "A: matrix(m, n)" in r.stdout and "vector(m)" in r.stdout
    r = run("shape", "A@x", "--format", "json")
    assert json.loads(r.stdout)["shape"] == ["m", "1"]


def test_rules_lists_every_rule_with_its_source():
    r = run("rules")
    assert r.exit_code == 0
    for rule in RULES:
        assert rule.name in r.stdout and rule.source in r.stdout
    listed = json.loads(run("rules", "--format", "json").stdout)
    assert {x["name"] for x in listed} >= {rule.name for rule in RULES}


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and "mcalc" in r.stdout
