"""The HTML report in a real headless browser (Chromium from the distribution, driven by
Playwright's Python package; never a downloaded browser build).

The report is that of a real run of the bundled cases with torch, MindSpore and Paddle: in tox,
the runs the framework envs last wrote (.tox/results/<name>.json, named by
$CONFORMANCE_BROWSER_RUNS; `make test` clears them first, so there they are this run's), else a
fresh one (each worker under the interpreter
`conformance.frameworks.default_python` finds: $CONFORMANCE_<NAME>_PYTHON or
.tox/<name>/bin/python), or, to iterate quickly, an existing results file named by
$CONFORMANCE_BROWSER_RESULTS. Screenshots go to $CONFORMANCE_SCREENSHOTS (default
reports/screenshots/); the path is printed.

Without /usr/bin/chromium, playwright or the three backends the tests skip with the reason,
except in the tox env `browser` (CONFORMANCE_BROWSER_REQUIRED=1, what CI runs), where a missing
piece fails them: .ci/run installs Chromium and tox the rest.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

import pytest

from conformance import frameworks, results
from conformance.report import render

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CONFORMANCE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FRAMEWORKS = ("torch", "mindspore", "paddle")
pytestmark = pytest.mark.browser  # the browser env runs it (tests/framework_mark.py)
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror="window.__pwned=1">'


def _missing(reason: str):
    if os.environ.get("CONFORMANCE_BROWSER_REQUIRED"):
        pytest.fail(f"required here (CONFORMANCE_BROWSER_REQUIRED): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is absent (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is absent (pip install playwright; never `playwright install`)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        # nothing may leave the machine: any request that is not a file:// one fails the test
        remote = []
        context.route(lambda url: not url.startswith("file:"), lambda route: (remote.append(route.request.url),
                                                                               route.abort()))
        context.remote_requests = remote
        yield context
        context.close()
    assert not remote, f"the report asked for remote resources: {remote}"


@pytest.fixture(scope="module")
def shots():
    out = Path(os.environ.get("CONFORMANCE_SCREENSHOTS", ROOT / "reports" / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"\n[browser] screenshots in {out}")
    return out


def _framework_runs() -> dict | None:
    """The results the framework tox envs last wrote (``.tox/results/<name>.json``, named by
    $CONFORMANCE_BROWSER_RUNS), merged, when each of FRAMEWORKS wrote one; else None. ``make
    test`` deletes them before tox runs, so there they are that run's; ``tox -e browser`` alone
    reads whatever an earlier tox run left (the paths are printed)."""
    where = os.environ.get("CONFORMANCE_BROWSER_RUNS")
    if not where:
        return None
    paths = [Path(where) / f"{name}.json" for name in FRAMEWORKS]
    if not all(p.exists() for p in paths):
        print(f"\n[browser] {where} lacks {', '.join(p.name for p in paths if not p.exists())}: a fresh run")
        return None
    docs = [results.load(p) for p in paths]
    gaps = [f"{p.name}: {results.incomplete(d)}" for p, d in zip(paths, docs) if results.incomplete(d)]
    if gaps:
        print(f"\n[browser] not whole runs ({'; '.join(gaps)}): a fresh run")
        return None
    print(f"\n[browser] the report of {', '.join(map(str, paths))}")
    return results.merge(docs)


@pytest.fixture(scope="module")
def real_results(tmp_path_factory) -> dict:
    """The results document of the bundled cases on torch, MindSpore and Paddle (cpu): the
    framework envs' own runs (``_framework_runs``), else a fresh ``conformance run``."""
    given = os.environ.get("CONFORMANCE_BROWSER_RESULTS")
    if given:
        return results.load(given)
    ran = _framework_runs()
    if ran is not None:
        return ran
    pythons = {name: frameworks.default_python(name) for name in FRAMEWORKS}
    absent = [name for name, python in pythons.items() if not python]
    if absent:
        _missing(f"no interpreter with {', '.join(absent)} (set CONFORMANCE_<NAME>_PYTHON or build the tox envs)")
    import subprocess

    out = tmp_path_factory.mktemp("bundled-run")
    cmd = [sys.executable, "-m", "conformance.cli", "run", str(ROOT / "cases"), "--device", "cpu", "--out", str(out)]
    for name, python in pythons.items():
        cmd += ["--backend", f"{name}={python}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3000)
    print(f"\n[browser] bundled cases on {', '.join(FRAMEWORKS)} in {time.perf_counter() - start:.0f} s")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return results.load(out / "results.json")


@pytest.fixture(scope="module")
def report(real_results, tmp_path_factory) -> Path:
    index = render(real_results, tmp_path_factory.mktemp("report"))
    return index.parent


def _open(context, path: Path):
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.dialogs, page.errors = dialogs, errors
    return page


def _wait(page, predicate: str, timeout: float = 10.0):
    """Poll a JS function from Python: page.wait_for_function evaluates its predicate with
    eval(), which the report's Content-Security-Policy (rightly) forbids."""
    end = time.monotonic() + timeout
    while not page.evaluate(predicate):
        assert time.monotonic() < end, f"timed out waiting for {predicate}"
        page.wait_for_timeout(20)


def test_overview_cards(browser_context, report, real_results, shots):
    page = _open(browser_context, report / "index.html")
    for name in FRAMEWORKS:
        card = page.locator(f'.card[data-backend="{name}"][data-device="cpu"]')
        assert card.count() == 1, name
        text = card.inner_text()
        cells = [r for r in real_results["results"] if r["backend"] == name and r["device"] == "cpu"]
        assert f"{len(cells)} cells" in text
        assert "match or known" in text
        assert real_results["backends"][name]["version"] in text
    assert page.locator("#plots svg").count() == 2  # error distribution and clipping factors
    # the one stylesheet (style.css beside index.html) is applied under the page's CSP
    badge = page.evaluate("() => getComputedStyle(document.querySelector('span.b.s-match')).backgroundColor")
    assert badge not in ("rgba(0, 0, 0, 0)", "transparent"), badge
    page.screenshot(path=str(shots / "overview.png"), full_page=False)
    assert not page.errors and not page.dialogs
    page.close()


def _grid_count(page) -> int:
    return int(page.locator("#g-count").inner_text().split(" ")[0])


def test_matrix_grid_filter_and_search(browser_context, report, real_results, shots):
    page = _open(browser_context, report / "matrix.html")
    with page.expect_navigation():
        page.locator('a[href="matrix/paddle.html"]').click()
    paddle = [r for r in real_results["results"] if r["backend"] == "paddle"]
    assert _grid_count(page) == sum(1 for r in paddle if r["status"] != "skipped")  # skipped: not counted by default
    page.select_option("#g-statuses", "known")
    assert _grid_count(page) == sum(1 for r in paddle if r["status"] == "known")
    cells = page.locator("#g-body td.g")
    assert cells.count() and set(cells.evaluate_all("tds => tds.map(t => t.dataset.status)")) == {"known"}
    page.screenshot(path=str(shots / "matrix-filtered.png"))
    # several values per filter, a sort, and the view in the URL (a reload keeps it)
    page.select_option("#g-statuses", ["known", "unsupported"])
    n = sum(1 for r in paddle if r["status"] in ("known", "unsupported"))
    assert _grid_count(page) == n
    page.select_option("#g-sort", "cells")
    assert "statuses=known,unsupported" in page.url and "sort=cells" in page.url
    first = page.locator("#g-body tr").first.locator("td a").first.inner_text()
    most = max({r["case"] for r in paddle}, key=lambda c: (sum(1 for r in paddle if r["case"] == c
                                                                and r["status"] in ("known", "unsupported")), c))
    per_case = lambda c: sum(1 for r in paddle if r["case"] == c and r["status"] in ("known", "unsupported"))
    assert per_case(first) == per_case(most)
    page.reload()
    assert _grid_count(page) == n and page.locator("#g-sort").input_value() == "cells"
    page.select_option("#g-statuses", "")
    case = paddle[0]["case"]
    page.fill("#g-search", case)
    _wait(page, "() => document.querySelectorAll('#g-body tr').length < %d" % len({r["case"] for r in paddle}))
    assert case in page.locator("#g-body td:first-child").all_inner_texts()
    assert not page.errors, page.errors
    page.close()


def test_case_detail_page(browser_context, report, real_results, shots):
    model = next(r for r in real_results["results"]
                 if r["status"] == "known" and any(k.startswith("before clipping: ") for k in r.get("params", {})))
    page = _open(browser_context, report / "matrix" / f"{model['backend']}.html")
    page.select_option("#g-statuses", "known")
    page.fill("#g-search", model["case"])
    _wait(page, "() => { const a = document.querySelector('#g-body td a'); return a !== null && a.textContent === %s; }"
          % json.dumps(model["case"]))
    link = page.locator("#g-body td.g a").first  # the grid cell: lands on its worst cell
    with page.expect_navigation():
        link.click()
    assert "/cases/" in page.url and "#c" in page.url
    assert page.locator("h2").first.inner_text()
    inputs = page.locator("table.inputs tbody tr")
    assert inputs.count() >= 1
    assert page.locator("article.cell").count() >= 1
    assert page.locator("table.params.raw").count() >= 1  # the raw (pre-clip) gradient comparison
    body = page.locator("body").inner_text()
    assert "Clipping factor" in body and "Difference" in body
    assert page.locator("#snippets pre.reproduce").count() >= 1
    assert "import" in page.locator("#snippets pre.reproduce").first.inner_text()
    page.screenshot(path=str(shots / "case-detail.png"))
    assert not page.errors, page.errors
    page.close()


def test_mapping_table(browser_context, report, shots):
    page = _open(browser_context, report / "mapping.html")
    with page.expect_navigation():  # one page per source API
        page.locator("ul.toc a", has_text="torch.nn.utils.clip_grad_norm_").first.click()
    heads = page.locator("table.mapping").first.locator("thead th").all_inner_texts()
    assert heads == ["Categories", "Subcategories", "PyTorch", "MindSpore", "Paddle", "TensorFlow",
                     "JAX / optax", "Differences"]
    row = page.locator("tbody.mp", has_text="paddle.nn.ClipGradByNorm").first
    assert "Misleading mapping" in row.inner_text()
    assert "own L2 norm" in row.inner_text()
    evidence = page.locator("p.evidence a").first
    href = evidence.get_attribute("href")
    assert href.startswith("../cases/")
    assert (report / "mapping" / href).resolve().is_file()
    page.locator("tbody.mp", has_text="paddle.nn.ClipGradByNorm").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "mapping.png"))
    assert not page.errors, page.errors
    page.close()


def test_the_verdict_and_fix_of_each_port_of_clip_grad_norm_within_three_clicks(browser_context, report, shots):
    """From index.html, the verdict of torch's clip_grad_norm_ -> each MindSpore and Paddle target
    is on the page (0 clicks) and its fix one click away; prints each pair page's size and load
    time (a measurement, not an assertion)."""
    source = "torch.nn.utils.clip_grad_norm_"
    index = _open(browser_context, report / "index.html")
    rows = index.locator(f'#pairs tr[data-source="{source}"]')
    targets = [t for t in (rows.nth(i).get_attribute("data-target") for i in range(rows.count()))
               if t.startswith(("mindspore.", "paddle."))]
    assert any(t.startswith("mindspore.") for t in targets) and any(t.startswith("paddle.") for t in targets)
    index.screenshot(path=str(shots / "pairs.png"))
    for target in targets:
        row = index.locator(f'#pairs tr[data-source="{source}"][data-target="{target}"]')
        verdict = row.locator("td.verdict").inner_text().split("\n")[0].strip()
        assert verdict.startswith(("drop-in", "not a replacement", "not measured")), verdict
        page = _open(browser_context, report / "index.html")
        start = time.perf_counter()
        with page.expect_navigation():
            page.locator(f'#pairs tr[data-source="{source}"][data-target="{target}"] a').click()  # click 1
        elapsed = time.perf_counter() - start
        assert page.locator("#verdict h2").inner_text() == f"Verdict: {verdict}"
        fix = page.locator("#fix")
        if verdict == "not a replacement":  # no call to paste; the framework's replacements instead
            assert fix.locator("pre.snippet").count() == 0 and "None: the target changes" in fix.inner_text()
        else:
            assert fix.locator("pre.snippet").count() == 1 or "no measured" in fix.inner_text()
        if fix.locator("pre.snippet").count():
            assert target.split(".")[0] in fix.locator("pre.snippet").inner_text()  # imports the target's framework
        size = Path(page.url[len("file://"):]).stat().st_size
        print(f"[browser] pair page {source} -> {target}: {verdict}; {size} bytes, {elapsed * 1000:.0f} ms")
        assert not page.errors, page.errors
        page.close()
    index.close()


def _file_path(url: str) -> Path:
    from urllib.parse import unquote, urlparse
    return Path(unquote(urlparse(url).path))


def test_what_the_heaviest_pages_transfer_in_all_and_their_load_time(browser_context, report):
    """Prints, as a measurement (not an assertion), what each folder's two largest pages and
    every top-level page transfer in all: the HTML and every file the browser loads for it
    (style.css, scripts, separate JSON; a plot embedded as a data: URI is part of the HTML),
    and the load time from the browser's navigation timing. Asserts only that the count is
    whole: the page itself and its style sheet are among the files loaded."""
    pages = sorted(report.glob("*.html"))
    for folder in sorted({p.parent for p in report.rglob("*.html")} - {report}):
        pages += sorted(folder.glob("*.html"), key=lambda p: p.stat().st_size)[-2:]
    heaviest = (0, None)
    for path in pages:
        page = browser_context.new_page()
        files = []
        page.on("requestfinished", lambda r: files.append(r.url) if r.url.startswith("file:") else None)
        page.goto(path.resolve().as_uri(), wait_until="load")
        timing = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                               " return n ? n.loadEventEnd - n.startTime : null; })()")
        loaded = {_file_path(u) for u in files} | {path.resolve()}
        assert any(f.name == "style.css" for f in loaded), f"{path}: style.css not loaded ({sorted(loaded)})"
        total = sum(f.stat().st_size for f in loaded if f.is_file())
        heaviest = max(heaviest, (total, path.relative_to(report)), key=lambda t: t[0])
        print(f"[browser] {path.relative_to(report)}: {total} bytes in all ({len(loaded)} files, "
              f"HTML {path.stat().st_size}), loaded in {timing:.0f} ms")
        page.close()
    print(f"[browser] heaviest page: {heaviest[1]}, {heaviest[0]} bytes in all")


def test_report_of_the_bundled_run_passes_the_audit(report, real_results):
    """The report of the real run agrees with its results document, cell by cell: links,
    numbers on case pages and in the matrix, overview cards, mapping evidence, declared
    differences no cell showed (tests/test_report_audit.py)."""
    from test_report_audit import audit

    problems = audit(real_results, report)
    assert problems == [], "\n".join(problems[:40])


def test_every_unsupported_reason_of_the_bundled_run_fits_what_happened(real_results):
    """Every unsupported cell of the real run names a declared gap that applies to it, and for a
    raise the gap whose `match:` names that error most closely (tests/verdict_audit.py)."""
    from verdict_audit import planned_cells, unsupported_problems

    unsupported = sum(rec["status"] == "unsupported" for rec in real_results["results"])
    assert unsupported > 1000  # the bundled run has thousands (MindSpore's and Paddle's dtype gaps)
    problems = unsupported_problems(real_results, planned_cells([ROOT / "cases"]))
    assert problems == [], "\n".join(problems[:40])


def test_hostile_title_is_text_on_every_page(browser_context, real_results, tmp_path, shots):
    doc = copy.deepcopy(real_results)
    victim = doc["results"][0]["case"]
    title = HOSTILE_TITLE + HOSTILE_ATTR
    for r in doc["results"]:
        if r["case"] == victim:
            r["title"] = title
            r["message"] = HOSTILE_ATTR
    # a problem cell: the overview lists problems whatever the run's size (all cells only up to
    # render.INDEX_TABLE_MAX), so the hostile title and message reach index.html too
    doc["results"][0]["status"] = "mismatch"
    doc.setdefault("cases", {}).setdefault(victim, {})["title"] = title
    out = render(doc, tmp_path / "hostile").parent
    case_page = out / "cases" / f"{victim}.html"  # a contract id ([a-z0-9._-]+) is its own file name
    grid = out / "matrix" / f"{doc['results'][0]['backend']}.html"
    for path in (out / "index.html", out / "matrix.html", grid, case_page):
        page = _open(browser_context, path)
        if path == grid:
            page.fill("#g-search", victim)
            _wait(page, "() => document.querySelectorAll('#g-body tr').length === 1")
            page.locator("#g-body a").first.hover()
            assert page.locator("#g-body a").first.get_attribute("title") == title
        elif path.name == "matrix.html":
            assert "Matrix" in page.locator("body").inner_text()
        else:
            assert title in page.locator("body").inner_text()
        assert page.evaluate("() => window.__pwned === undefined"), path
        assert not page.dialogs, path
        assert page.locator("img").count() == 0, path
        page.close()


def test_matrix_stays_responsive_with_20000_cells(browser_context, tmp_path, shots):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_report import synthetic_doc

    doc = synthetic_doc(20000)
    start, cpu = time.perf_counter(), time.process_time()
    render(doc, tmp_path / "big")
    rendered, cpu = time.perf_counter() - start, time.process_time() - cpu
    backend = doc["results"][0]["backend"]
    grid = tmp_path / "big" / "matrix" / f"{backend}.html"
    start = time.perf_counter()
    page = _open(browser_context, grid)
    _wait(page, "() => window.gridStats !== undefined")
    loaded = time.perf_counter() - start
    page.select_option("#g-statuses", "mismatch")
    filter_ms = page.evaluate("() => window.gridStats.ms")
    assert page.evaluate("() => window.gridStats.cells") == sum(
        1 for r in doc["results"] if r["status"] == "mismatch" and r["backend"] == backend)
    page.fill("#g-search", "generated-case-00042")
    _wait(page, "() => window.gridStats.rows <= 1")  # (case 42 may have no mismatch here)
    search_ms = page.evaluate("() => window.gridStats.ms")
    print(f"\n[browser] 20000 cells: rendered in {cpu:.2f} s CPU ({rendered:.2f} s wall); {grid.name} "
          f"({grid.stat().st_size} bytes) opened in {loaded:.2f} s; status filter {filter_ms:.1f} ms, search {search_ms:.1f} ms")
    page.screenshot(path=str(shots / "matrix-20000.png"))
    assert filter_ms < 1000 and search_ms < 1000
    assert loaded < 20
    page.close()
