"""--format markdown and --format html (with --standalone): the same derivation for
documents. The standalone page is loaded by headless Chromium, and the rendered DOM must
hold the MathML and every derivation row; a screenshot is kept in tests/artifacts/."""
from __future__ import annotations

import html as html_lib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcalc.cli import main
from mcalc.pipeline import derive
from mcalc.printing import html, markdown

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REQUESTS = ["d/dw sum(w*x) + b", "d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)",
            "d/dX tr(A@X@B)", "d^2/dx^2 x'@A@x", "A@x + b", "d/dθ sum(θ*λ) where λ: scalar",
            "d/dx relu(x)", "d/dX tr(X'@A@X) where X: matrix(2, 2)"]


def run(*args, input=None):
    r = CliRunner().invoke(main, list(args), input=input)
    return r.exit_code, r.output


@pytest.mark.parametrize("request_text", REQUESTS)
def test_markdown_has_every_step_as_math(request_text):
    d = derive(request_text)
    code, out = run("diff", "--format", "markdown", request_text)
    assert code == 0 and out == markdown.render(d)
    bullets = [line for line in out.splitlines() if line.startswith("- ")]
    # every step has its row, but a last one that states the result (shown below it)
    assert len(d.steps) - 1 <= len(bullets) <= len(d.steps)
    for line in bullets:
        assert re.match(r"- (\$[^$]+\$|[^$`]+)", line), line
    assert out.count("$$") == 2                              # the result, displayed once
    result = out.split("$$")[1].strip()
    assert not any(line.startswith(f"- ${result}$") for line in bullets)
    assert f"`{request_text}`" in out


def test_the_result_is_shown_once_with_the_rule_of_its_step():
    # the last step (substitute back) states the result: its row goes, the result stays
    request_text = "d/dx sin(x^2)"
    d = derive(request_text)
    out = markdown.render(d)
    bullets = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(bullets) == len(d.steps) - 1 and "substitute back" not in out
    assert out.count(r"2 x \cos\left(x^{2}\right)") == 1
    page = html.render(d)
    assert page.count('class="mcalc-step"') == len(d.steps) - 1
    assert page.count("<math") == len(d.steps)               # the other steps, the result
    # a last step with a rule: the rule moves to the result
    d = derive("d/dX tr(X'@A@X)")
    assert d.steps[-1].rule
    out = markdown.render(d)
    assert out.count(r"X^{T} \left(A + A^{T}\right)") == 1
    assert out.rstrip().endswith(f"*{markdown.escape(d.steps[-1].rule)}*")
    assert f'<p class="mcalc-rule">{d.steps[-1].rule}</p>' in html.render(d)


def test_markdown_escapes_text_and_code():
    assert markdown.escape("a*b_c [x] <y> $z$ `q` | ~") == \
        r"a\*b\_c \[x\] \<y\> \$z\$ \`q\` \| \~"
    assert markdown.code("x`y") == "``x`y``"
    assert markdown.code("`x") == "`` `x ``"
    assert markdown.math(r"\text{$\S$}") == r"`\text{$\S$}`"


@pytest.mark.parametrize("request_text", REQUESTS)
def test_html_fragment_and_page(request_text):
    d = derive(request_text)
    code, fragment = run("diff", "--format", "html", request_text)
    assert code == 0 and fragment == html.render(d)
    assert fragment.startswith('<div class="mcalc">') and "<html" not in fragment
    assert len(d.steps) - 1 <= fragment.count('class="mcalc-step"') <= len(d.steps)
    code, page = run("diff", "--format", "html", "--standalone", request_text)
    assert code == 0 and page.startswith("<!DOCTYPE html>") and fragment in page
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/1998/Math/MathML"', "") and "https://" not in page
    assert "<code>" + html_lib.escape(request_text) + "</code>" in page


def test_html_escapes_and_falls_back_to_code():
    assert html.mathml(r"\frac{1}{") .startswith("<")
    assert "&lt;" in html.render(derive("d/dx (x < 1)*x"))


def test_batch_mode_rejects_document_formats():
    for fmt in ("markdown", "html"):
        code, out = run("diff", "-", "--format", fmt, input="d/dx x\n")
        assert code == 2 and "batch" in out


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI is set: apt-get install chromium")
        pytest.skip("chromium is not on PATH (with CI set this test fails instead)")
    return exe


def _browser(exe, tmp_path, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_standalone_page_renders_in_chromium(tmp_path):
    exe = _chromium()
    request_text = "d/dW1 sum((W2@relu(W1@x + b1) + b2 - y)^2)"
    d = derive(request_text)
    page = tmp_path / "derivation.html"
    page.write_text(html.standalone(d), encoding="utf-8")
    dom = _browser(exe, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    out = dom.stdout
    rows = re.findall(r'<tr class="mcalc-step" data-kind="(\w+)">', out)
    assert rows == [s.kind for s in d.steps[:-1]]       # the last step states the result
    assert out.count("<math") == len(d.steps) - 2 + 1   # every step but the note, the result
    assert re.search(r'<div class="mcalc-result"><math [^>]*display="block"', out)
    assert "<mfrac>" in out and "n×m matrix, numerator layout" in out
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "standalone_html.png"
    shot.unlink(missing_ok=True)
    r = _browser(exe, tmp_path, "--window-size=1200,1400", f"--screenshot={shot}",
                 page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_standalone_goes_only_with_latex_and_html():
    for fmt in ("plain", "json", "numpy", "markdown"):
        code, out = run("diff", "--format", fmt, "--standalone", "d/dx x")
        assert code == 2 and "--standalone" in out
    assert run("diff", "--format", "latex", "--standalone", "d/dx x")[0] == 0
