"""Check the rendered book the way a reader sees it: each page in headless Chromium.

`check_page` opens one page of ``_build/html`` (served on 127.0.0.1 by `BookServer`) and
returns what is wrong with it as short sentences, one per problem, an empty list when
nothing is. The tests in this folder turn those sentences into failures; the checks
themselves know nothing of pytest.

Checked on every page: JavaScript errors, failed or external requests, images that did not
load, math that MathJax did not typeset, glue that did not resolve, empty outputs, links
and anchors that lead nowhere. On chapter pages (notebooks) also: at least one figure,
exercises with hidden solutions that a click reveals, and a Colab button that opens this
very notebook on the repository and branch of ``_config.yml``.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
SOURCE_SUFFIXES = (".ipynb", ".md")
GENERATED_PAGES = ("genindex.html", "search.html")  # written by Sphinx, not from a source file

# Chromium as the machine-wide flags of this workplace need it: no sandbox (root in CI), no
# GPU, and no background connections to Google (the network is closed; each try would fail).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_HINT = (
    "Install Debian's Chromium with `sudo apt-get install chromium` (.ci/run does this), "
    "or point BOOK_BROWSER at a Chromium or Chrome executable. "
    "The test never downloads a browser (no `playwright install`)."
)

# Text of the prose (code removed) that means math was not typeset or glue not resolved.
RAW_MATH = re.compile(r"\\[()\[\]]|\\begin\{|\\[a-zA-Z]{2,}\{|\$[^$\s][^$\n]*\$")
RAW_GLUE = re.compile(r"\{glue(?::\w+)?\}")
GLUE_ROLE = re.compile(r"(?<!`)\{glue(?::\w+)?\}`")  # not when quoted as code
PYTHON_REPR = re.compile(r"^(['\"]).*\1$|<[\w.]+(?: object)? at 0x[0-9a-f]+>|^array\(|^tensor\(")
# An output that shows Python's or pandas' internals instead of a result meant for a reader.
OUTPUT_REPR = re.compile(
    r"\bdtype: \w+|^Name: \w+|\bLength: \d+|<[\w.]+(?: object)? at 0x[0-9a-f]+>", re.M
)
# A cell's last value shown where no output was meant: True/False/None, a number, a quoted string.
BARE_VALUE = re.compile(r"^(True|False|None|[-+]?\d+(\.\d+)?(e[-+]?\d+)?|'[^'\n]*'|\"[^\"\n]*\")$")
# A dollar sign right next to typeset math (MATH marks where MathJax rendered a formula).
STRAY_DOLLAR = re.compile(r"\$\s*⟦MATH⟧|⟦MATH⟧\s*\$")


# Figures: the smallest text of the book's plot style must render at least this large at the
# page's column width, in the desktop pass and the phone pass (where the page shows each
# figure's phone rendering, sslkit/teach/figures.py), and figures are exported at 2× for
# HiDPI screens (desktop pass).
MIN_TEXT_PX = 9.0
HIDPI = 1.9  # natural width / shown width, at least (2× export, a little slack for rounding)
# A figure drawn with another width/height ratio than it was exported with is squashed: more
# than this relative difference is reported (rounding to whole pixels stays well under it).
ASPECT_TOLERANCE = 0.02
DESKTOP = 1000  # the HiDPI check applies from this window width up
PHONE = {"width": 390, "height": 844}


class BrowserMissing(RuntimeError):
    """No browser to run the check with; the message says how to install one."""


# --------------------------------------------------------------------------- the book's pages


@dataclass(frozen=True)
class BookPage:
    """One HTML page of the book and the file it was built from (None for generated pages)."""

    path: str  # relative to _build/html, e.g. "chapters/03_clustering.html"
    source: str | None = None  # relative to the book root, e.g. "chapters/03_clustering.ipynb"

    @property
    def is_chapter(self) -> bool:
        """Chapters are the executed notebooks: they carry figures, exercises and a Colab button."""
        return self.source is not None and self.source.endswith(".ipynb")

    def glue_roles(self, root: Path = ROOT) -> int:
        """How many ``{glue…}`` roles the markdown of the source holds (each must render)."""
        if not self.is_chapter:
            return 0
        cells = json.loads((root / self.source).read_text(encoding="utf-8"))["cells"]
        return sum(
            len(GLUE_ROLE.findall("".join(c["source"])))
            for c in cells
            if c["cell_type"] == "markdown"
        )


def _toc_files(entries) -> list[str]:
    files = []
    for entry in entries or []:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("parts", "chapters", "sections"):
            files.extend(_toc_files(entry.get(key)))
    return files


def book_pages(root: Path = ROOT) -> list[BookPage]:
    """Every page of the book: the root and each file of ``_toc.yml``, then Sphinx's own."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = []
    for docname in [toc["root"], *_toc_files(toc.get("parts")), *_toc_files(toc.get("chapters"))]:
        docname = (
            str(Path(docname).with_suffix(""))
            if Path(docname).suffix in SOURCE_SUFFIXES
            else docname
        )
        sources = [docname + s for s in SOURCE_SUFFIXES if (root / (docname + s)).exists()]
        if not sources:
            raise FileNotFoundError(
                f"_toc.yml lists {docname!r} but no {' or '.join(SOURCE_SUFFIXES)} file exists"
            )
        pages.append(BookPage(docname + ".html", sources[0]))
    return pages + [BookPage(p) for p in GENERATED_PAGES]


def _colab_copies(config: dict) -> tuple[str, str]:
    """The branch and folder of the Colab copies (``_config.yml``, ``sphinx.config``)."""
    sphinx = (config.get("sphinx") or {}).get("config") or {}
    return sphinx.get("colab_copies_branch", "gh-pages"), sphinx.get("colab_copies_dir", "colab")


def colab_url(config: dict, source: str) -> str:
    """The address the Colab launch button must open for ``source``, from ``_config.yml``: the
    page's Colab copy (``_ext/colab_copies.py``) on the branch the site is published to."""
    repo = config["repository"]
    owner_name = urllib.parse.urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    branch, folder = _colab_copies(config)
    base = (
        config.get("launch_buttons", {})
        .get("colab_url", "https://colab.research.google.com")
        .rstrip("/")
    )
    return f"{base}/github/{owner_name}/blob/{branch}/{folder.strip('/')}/{source}"


def colab_copy(config: dict, source: str, html: Path = HTML) -> Path:
    """Where the build wrote the Colab copy of ``source``."""
    return html / _colab_copies(config)[1].strip("/") / source


def load_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def screenshot_path(page: BookPage, folder: Path = SCREENSHOTS / "1280") -> Path:
    return folder / (page.path.removesuffix(".html").replace("/", "__") + ".png")


# --------------------------------------------------------------------------- the local server


class BookServer:
    """``_build/html`` on 127.0.0.1 (a free port), in a background thread.

    ``overrides`` maps a path (``"chapters/x.html"``) to bytes served instead of the file:
    the self-tests use it to show that each check catches the defect it is for.
    """

    def __init__(self, directory: Path = HTML):
        self.directory = Path(directory)
        self.overrides: dict[str, bytes] = {}
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.directory), **kwargs)

            def send_head(self):
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
                if path in server.overrides:
                    body = server.overrides[path]
                    self.send_response(200)
                    self.send_header("Content-Type", self.guess_type(path))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    return io.BytesIO(body)
                return super().send_head()

            def log_message(self, *args):  # the checks report what matters
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.origin}/{path}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


class LinkChecker:
    """HTTP status and element ids of local addresses, each fetched once per server."""

    def __init__(self, server: BookServer):
        self.server = server
        self._cache: dict[str, tuple[int, set[str] | None]] = {}

    def fetch(self, url: str) -> tuple[int, set[str] | None]:
        """(status, ids) of a local address; ids only for HTML pages."""
        if url not in self._cache:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    body, status, kind = r.read(), r.status, r.headers.get_content_type()
            except urllib.error.HTTPError as e:
                body, status, kind = b"", e.code, ""
            ids = (
                set(re.findall(r'\bid="([^"]+)"', body.decode("utf-8", "replace")))
                if kind == "text/html"
                else None
            )
            self._cache[url] = (status, ids)
        return self._cache[url]

    def problems(self, hrefs: list[str]) -> list[str]:
        found = []
        for href in sorted(set(hrefs)):
            target, _, fragment = href.partition("#")
            status, ids = self.fetch(target)
            shown = href.removeprefix(self.server.origin + "/")
            if status != 200:
                found.append(f"link to {shown} returns HTTP {status}")
            elif fragment and ids is not None and urllib.parse.unquote(fragment) not in ids:
                found.append(
                    f"link to {shown}: no element with id {urllib.parse.unquote(fragment)!r} on that page"
                )
        return found


# --------------------------------------------------------------------------- the browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _executable(path: str, what: str) -> str:
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise BrowserMissing(f"{what} is not an executable file. {INSTALL_HINT}")
    return path


def find_chromium() -> str:
    """Path of the Chromium to drive: $BOOK_BROWSER, else the first of CHROMIUM_NAMES on PATH."""
    wanted = os.environ.get("BOOK_BROWSER")
    if wanted:
        return _executable(wanted, f"BOOK_BROWSER={wanted}")
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise BrowserMissing(
        f"No Chromium found on PATH (looked for {', '.join(CHROMIUM_NAMES)}). {INSTALL_HINT}"
    )


def launch(playwright, executable: str | None = None):
    """Headless Chromium driven by Playwright, with this machine's browser (never a download)."""
    executable = _executable(executable, executable) if executable else find_chromium()
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS)
    )


# Everything the checks read from the page, gathered by one script once it has settled.
_FACTS_JS = r"""
async () => {
  const settle = (img) => img.complete ? null : new Promise(r => {
    img.addEventListener('load', r, {once: true}); img.addEventListener('error', r, {once: true}); });
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.race([Promise.all(imgs.map(settle)), new Promise(r => setTimeout(r, 15000))]);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;

  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, .highlight, .cell_input')
       .forEach(e => e.remove());
  const text = (e) => (e.textContent || '').replace(/\s+/g, ' ').trim();
  // sphinx-togglebutton hides with height 0 + visibility:hidden + opacity 0, not display:none.
  const visible = (e) => e.checkVisibility({visibilityProperty: true, opacityProperty: true})
                         && e.getBoundingClientRect().height > 0;
  const solutions = [...article.querySelectorAll('.solution')];
  return {
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    // Figures: loaded images and inline SVG plots; not the icons of copy buttons.
    figures: [...article.querySelectorAll('.cell_output img, figure img, .cell_output svg')]
               .filter(i => !i.closest('button') && (i.tagName.toLowerCase() === 'svg' || i.naturalWidth > 0)).length,
    proseText: text(prose),
    // The prose with each typeset formula replaced by a marker, to find stray dollar signs.
    mathMarked: (() => { const c = article.cloneNode(true);
                         c.querySelectorAll('mjx-container').forEach(m => m.replaceWith('⟦MATH⟧'));
                         c.querySelectorAll('pre, code, script, style, .highlight, .cell_input').forEach(e => e.remove());
                         return text(c); })(),
    // Text outputs of code cells: what the cell's last value or print showed, and its stderr.
    textOutputs: [...article.querySelectorAll('.cell_output .output')].map(o => ({
        kind: o.classList.contains('stderr') ? 'stderr' : o.classList.contains('stream') ? 'stream' : 'value',
        text: (o.textContent || '').trim() })).filter(o => o.text),
    viewportWidth: document.documentElement.clientWidth,
    // The figures of code cells: natural and shown size, and where they sit in the window.
    figureImages: [...article.querySelectorAll('.cell_output img')]
      .filter(i => !i.closest('button') && i.naturalWidth > 0)
      .map(i => { const r = i.getBoundingClientRect();
                  const fig = i.closest('figure'); const cap = fig && fig.querySelector('figcaption');
                  return {src: i.currentSrc || i.src, natural: i.naturalWidth, naturalHeight: i.naturalHeight,
                          shown: r.width, shownHeight: r.height, left: r.left, right: r.right,
                          alt: i.getAttribute('alt') || '', caption: cap ? text(cap) : ''}; }),
    // Wider than the window: the reader would have to scroll the whole page sideways.
    overflow: Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth),
    untypesetMath: [...article.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'))
                     .map(m => text(m).slice(0, 60)),
    mathErrors: [...article.querySelectorAll('mjx-merror')].map(m => m.getAttribute('data-mjx-error') || text(m)),
    pasted: [...article.querySelectorAll('.pasted-text, .pasted-inline')].map(text),
    sphinxErrors: [...article.querySelectorAll('.problematic, .system-message')].map(e => text(e).slice(0, 80)),
    emptyOutputs: [...article.querySelectorAll('.cell_output')]
                    .filter(o => !text(o) && ![...o.querySelectorAll('img, svg, table, iframe, video, canvas')]
                                                .some(m => !m.closest('button'))).length,
    exercises: [...article.querySelectorAll('.exercise')].map(e => ({
        title: text(e.querySelector('.admonition-title') || e),
        body: text(e).length - text(e.querySelector('.admonition-title') || document.createElement('p')).length })),
    solutions: solutions.map(s => ({
        id: s.id,
        title: text(s.querySelector('.admonition-title') || s).slice(0, 60),
        shown: [...s.children].filter(c => !c.classList.contains('admonition-title')).some(visible),
        hasButton: !!s.querySelector('.toggle-button') })),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href)
             .filter(h => { try { return new URL(h).origin === location.origin; } catch (e) { return false; } }),
    colab: [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.includes('colab.research.google.com')),
    // Tables of prose and outputs: how far each reaches past the text column, and its cells.
    tables: (() => { const col = article.getBoundingClientRect();
                     const pad = parseFloat(getComputedStyle(article).paddingRight) || 0;
                     return [...article.querySelectorAll('table')]
                       .filter(t => !t.closest('.highlight, pre'))
                       .map(t => ({ beyond: t.getBoundingClientRect().right - (col.right - pad),
                                    head: text(t.querySelector('tr') || t).slice(0, 50),
                                    cells: [...t.querySelectorAll('td, th')].map(text) })); })(),
  };
}
"""


@dataclass
class PageReport:
    """What went wrong on one page, with where the screenshot is."""

    page: BookPage
    problems: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def check_page(
    context,
    server: BookServer,
    page: BookPage,
    links: LinkChecker,
    config: dict,
    screenshots: Path | None = SCREENSHOTS / "1280",
    root: Path = ROOT,
    narrow: bool = False,
) -> PageReport:
    """Open ``page`` in a new tab of ``context`` and list its problems (see the module docstring).

    ``narrow``: the phone pass (a context about 390 px wide): only what the width changes is
    checked, horizontal overflow, figures that do not fit the window and figure text that
    renders under ``MIN_TEXT_PX`` there (each figure has a phone rendering for it).
    A browser failure (a timeout, a crashed tab) becomes one more problem of the page, so the
    report still names the page and the reason.
    """
    from playwright.sync_api import Error as PlaywrightError

    report = PageReport(page)
    tab = context.new_page()
    watching = _watch(tab, server, report.problems)
    try:
        response = tab.goto(server.url(page.path), wait_until="load")
        if response is None or response.status != 200:
            report.problems.append(
                f"page returns HTTP {response.status if response else 'nothing'} (is it built?)"
            )
            return report
        tab.wait_for_load_state("networkidle")
        facts = tab.evaluate(_FACTS_JS)
        if screenshots is not None:  # the page as a reader first sees it, before any click
            screenshots.mkdir(parents=True, exist_ok=True)
            report.screenshot = screenshot_path(page, screenshots)
            try:
                tab.screenshot(path=str(report.screenshot), full_page=True)
            except Exception:  # noqa: BLE001 - a page too tall to capture whole (the API page)
                tab.screenshot(path=str(report.screenshot))  # its first screen
        report.problems.extend(_figure_problems(facts, server))
        if narrow:
            report.problems.extend(_overflow_problems(facts))
            return report
        report.problems.extend(_content_problems(facts, page, root))
        report.problems.extend(_table_problems(facts))
        report.problems.extend(links.problems(facts["links"]))
        if page.is_chapter:
            report.problems.extend(_exercise_problems(tab, facts))
            report.problems.extend(_colab_problems(facts["colab"], page, config, root))
        elif facts["colab"]:
            report.problems.append(
                f"a page without a notebook has a Colab button: {facts['colab'][0]}"
            )
        tab.wait_for_load_state("networkidle")
    except PlaywrightError as e:
        report.problems.append(f"the browser failed on this page: {str(e).strip().splitlines()[0]}")
    finally:
        watching["done"] = True  # requests cut short by closing the tab are not the page's fault
        tab.close()
    return report


def _watch(tab, server: BookServer, problems: list[str]) -> dict:
    """Record JavaScript errors and failed or external requests of ``tab`` into ``problems``."""
    state = {"done": False}

    def report(text):
        if not state["done"]:
            problems.append(text)

    def local(url):
        return url.removeprefix(server.origin + "/")

    def on_route(route):
        url = route.request.url
        if url.startswith(server.origin + "/"):
            route.continue_()
        else:
            report(f"requests an external resource {url} (the book must read offline)")
            route.abort()

    def on_console(msg):
        # A failed load is reported with its address by the request handlers.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            report(f"JavaScript console error: {msg.text}")

    def on_response(resp):
        if resp.url.startswith(server.origin) and resp.status >= 400:
            report(f"request for {local(resp.url)} returned HTTP {resp.status}")

    def on_failed(req):
        if req.url.startswith(server.origin):
            report(f"request for {local(req.url)} failed: {req.failure}")

    tab.route("**/*", on_route)
    tab.on("console", on_console)
    tab.on("pageerror", lambda err: report(f"JavaScript error: {err}"))
    tab.on("response", on_response)
    tab.on("requestfailed", on_failed)
    return state


def _content_problems(facts, page: BookPage, root: Path) -> list[str]:
    found = [f"image {src} did not load" for src in facts["brokenImages"]]
    if page.is_chapter and facts["figures"] == 0:
        found.append("a chapter page with no figure")
    found += _math_problems(facts)
    found += _glue_problems(facts, page.glue_roles(root))
    found += [f"Sphinx error shown in the page: {t!r}" for t in facts["sphinxErrors"]]
    if facts["emptyOutputs"]:
        found.append(f"{facts['emptyOutputs']} code cell output(s) are empty")
    found += _output_problems(facts)
    found += _overflow_problems(facts)
    return found


def _overflow_problems(facts) -> list[str]:
    if facts["overflow"] > 1:
        return [
            f"the page is {facts['overflow']} px wider than the {facts['viewportWidth']} px window "
            "(horizontal overflow)"
        ]
    return []


def png_dpi(data: bytes) -> float | None:
    """The resolution a PNG declares (its pHYs chunk, in pixels per metre), in dots per inch."""
    at = data.find(b"pHYs")
    if not data.startswith(b"\x89PNG") or at < 0:
        return None
    x, unit = int.from_bytes(data[at + 4 : at + 8], "big"), data[at + 12]
    return x * 0.0254 if unit == 1 else None


def _figure_problems(facts, server: BookServer) -> list[str]:
    """Figures shown twice, that do not fit the window or are drawn out of proportion, and
    figures whose smallest text (``sslkit.plots.SMALLEST_FONT_PT``) renders under
    ``MIN_TEXT_PX`` at this window's width (on a phone, the rendering the page picked for it:
    the image's ``currentSrc``); on a desktop-wide window also figures not exported at 2× for
    HiDPI screens."""
    from sslkit.plots import SMALLEST_FONT_PT

    found, width = [], facts["viewportWidth"]
    # the book's images are named by a hash of their content: one name twice is one figure
    # drawn twice (a figure returned as a cell's value and shown by the inline backend too)
    sources = [img["src"] for img in facts["figureImages"]]
    for src in sorted({s for s in sources if sources.count(s) > 1}):
        found.append(f"figure {src.rsplit('/', 1)[-1][:12]}… is shown {sources.count(src)} times")
    for img in facts["figureImages"]:
        name = img["src"].rsplit("/", 1)[-1][:12] + "…"
        if not img["caption"].strip():
            found.append(
                f"figure {name} has no caption (give its cell metadata mystnb.figure.caption)"
            )
        alt = img["alt"].strip()
        if not alt or alt.endswith((".png", ".svg")) or "_images/" in alt:
            found.append(
                f"figure {name} has no alt text that says what it shows (alt={alt[:40]!r}; give "
                "its cell metadata mystnb.image.alt)"
            )
        natural = img["natural"] / max(img["naturalHeight"], 1)
        shown = img["shown"] / max(img["shownHeight"], 1)
        if abs(shown / natural - 1) > ASPECT_TOLERANCE:
            found.append(
                f"figure {name} is drawn out of proportion: {img['shown']:.0f}×"
                f"{img['shownHeight']:.0f} px for a {img['natural']}×{img['naturalHeight']} px "
                "image (give it height: auto)"
            )
        if img["right"] > width + 1 or img["left"] < -1:
            found.append(
                f"figure {name} does not fit the {width} px window (it spans {img['left']:.0f} to "
                f"{img['right']:.0f} px)"
            )
        if not img["src"].startswith(server.origin) or not img["src"].endswith(".png"):
            continue
        ratio = img["natural"] / max(img["shown"], 1)
        if width >= DESKTOP and ratio < HIDPI:
            found.append(
                f"figure {name} is not exported for HiDPI screens: {img['natural']} px shown at "
                f"{img['shown']:.0f} px (want 2×)"
            )
        with urllib.request.urlopen(img["src"], timeout=10) as r:
            dpi = png_dpi(r.read())
        if dpi is None:
            found.append(
                f"figure {name} declares no resolution (a PNG without pHYs): its text size is unknown"
            )
            continue
        px = SMALLEST_FONT_PT * dpi / 72 / ratio
        if px < MIN_TEXT_PX:
            found.append(
                f"text in figure {name} renders at {px:.1f} px, under {MIN_TEXT_PX:g} px in the "
                f"{width} px window: "
                + (
                    "draw fewer panels per row (a 2×2 grid) or a narrower figure"
                    if width >= DESKTOP
                    else "the page shows no phone rendering of it (sslkit.teach.figures, "
                    "_ext/phone_figures.py) or that rendering is too wide"
                )
            )
    return found


# A cell no reader should meet in a shown table: a missing value, pandas' default six decimals,
# or a count printed as a float.
# A table cell no reader should meet: a missing value shown as pandas spells it, pandas' six
# decimals, a float that is a whole number (10000.0), scientific notation (1e-06, 2.5E+03) and
# a signed zero (-0.0).
BAD_CELL = re.compile(
    r"^(?:nan|NaN|None|NaT|<NA>|-?inf|-?\d+\.\d{6,}|-?\d{4,}\.0|-?\d+(?:\.\d+)?[eE][-+]?\d+"
    r"|-0(?:\.0+)?)$"
)


def _table_problems(facts) -> list[str]:
    """Tables (at the desktop width) wider than the text column, or showing a value no reader
    should meet (:data:`BAD_CELL`)."""
    found = []
    for table in facts["tables"]:
        if table["beyond"] > 1:
            found.append(
                f"the table starting {table['head']!r} is {table['beyond']:.0f} px wider than "
                "its column (wrap its text or show fewer columns)"
            )
        bad = sorted({c for c in table["cells"] if BAD_CELL.match(c)})
        if bad:
            found.append(
                f"the table starting {table['head']!r} shows {', '.join(bad[:4])} (format its "
                "numbers; say in words what a missing value means)"
            )
    return found


def _output_problems(facts) -> list[str]:
    """Outputs no reader should see: stderr and warnings, Python/pandas reprs, a bare value,
    and dollar signs left next to typeset math."""
    found = []
    for out in facts["textOutputs"]:
        first = out["text"].splitlines()[0][:80]
        if out["kind"] == "stderr" or re.search(r"\w+Warning:", out["text"]):
            found.append(f"stderr or a warning in an output: {first!r}")
        elif OUTPUT_REPR.search(out["text"]):
            found.append(
                f"a Python or pandas repr in an output: {OUTPUT_REPR.search(out['text']).group(0)!r}"
            )
        elif out["kind"] == "value" and BARE_VALUE.match(out["text"]):
            found.append(f"a cell shows a bare value where no output was meant: {out['text']!r}")
    text = facts["mathMarked"]
    found += [
        f"a stray $ next to typeset math: …{text[max(0, m.start() - 30) : m.end() + 30]}…"
        for m in STRAY_DOLLAR.finditer(text)
    ]
    return found


#: A Colab copy carries the build's outputs (figures, tables); above this it is too heavy to open.
COLAB_COPY_LIMIT = 2_000_000


def _colab_problems(hrefs: list[str], page: BookPage, config: dict, root: Path) -> list[str]:
    """The Colab button opens this page's Colab copy, and the copy reads without the book's
    build: no glue, term, citation or directive left raw in its Markdown; with its outputs it
    stays under :data:`COLAB_COPY_LIMIT` bytes."""
    from sslkit.colab import leftovers

    expected = colab_url(config, page.source)
    found = []
    if not (root / page.source).exists():
        found.append(f"the Colab button's notebook {page.source} is not in the repository")
    copy = colab_copy(config, page.source, root / "_build" / "html")
    if not copy.exists():
        found.append(f"no Colab copy of {page.source} at {copy} (the colab_copies extension)")
    else:
        raw = leftovers(json.loads(copy.read_text(encoding="utf-8")))
        found += [f"the Colab copy shows raw MyST: {r!r}" for r in raw[:5]]
        if copy.stat().st_size > COLAB_COPY_LIMIT:
            found.append(
                f"the Colab copy {copy.name} is {copy.stat().st_size / 1e6:.1f} MB, over "
                f"{COLAB_COPY_LIMIT / 1e6:.0f} MB (sslkit.colab.with_outputs: OUTPUT_CAP)"
            )
    if not hrefs:
        found.append(f"no Colab launch button (expected one to {expected})")
    found += [
        f"Colab button opens {h}, not this page's Colab copy {expected}"
        for h in sorted(set(hrefs))
        if h != expected
    ]
    return found


def _math_problems(facts) -> list[str]:
    found = [f"math not typeset by MathJax: {m!r}" for m in facts["untypesetMath"]]
    found += [f"MathJax could not typeset: {e}" for e in facts["mathErrors"]]
    text = facts["proseText"]
    found += [
        f"raw LaTeX in the text: …{text[max(0, m.start() - 30) : m.end() + 30]}…"
        for m in RAW_MATH.finditer(text)
    ]
    return found


def _glue_problems(facts, roles: int) -> list[str]:
    found = [
        f"unresolved glue in the text: {m.group(0)}" for m in RAW_GLUE.finditer(facts["proseText"])
    ]
    pasted = facts["pasted"]
    found += ["a glued value renders empty" for v in pasted if not v]
    found += [
        f"a glued value shows a Python repr instead of text: {v!r}"
        for v in pasted
        if PYTHON_REPR.search(v)
    ]
    if len(pasted) < roles:
        found.append(
            f"{roles} glue roles in the notebook but {len(pasted)} glued values on the page"
        )
    return found


def _exercise_problems(tab, facts) -> list[str]:
    found = []
    if not facts["exercises"]:
        found.append("a chapter page with no exercise")
    found += [f"exercise {e['title']!r} has no text" for e in facts["exercises"] if e["body"] <= 0]
    solutions = facts["solutions"]
    if not solutions:
        return found + ["a chapter page with no solution"]
    found += [
        f"solution {s['title']!r} is shown before it is opened" for s in solutions if s["shown"]
    ]
    found += [
        f"solution {s['title']!r} has no button to open it" for s in solutions if not s["hasButton"]
    ]
    first = next((s for s in solutions if s["hasButton"] and not s["shown"]), None)
    if first is not None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        box = tab.locator(f'[id="{first["id"]}"]')
        try:
            box.locator(".toggle-button").first.click(timeout=5000)
            box.locator(":scope > :not(.admonition-title)").first.wait_for(
                state="visible", timeout=5000
            )
        except PlaywrightTimeout:  # say what the reader would see
            found.append(f"clicking solution {first['title']!r} does not reveal it")
    return found
