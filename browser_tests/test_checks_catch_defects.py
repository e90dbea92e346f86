"""The checks can fail: each defect, planted in a real built chapter page, is reported.

The local server serves a doctored copy of one chapter page in place of the built file;
the check must name the defect. The unchanged page must pass, so the defect is the cause.
"""

import json
import re

import pytest
from bookcheck import (
    BookPage,
    BrowserMissing,
    LinkChecker,
    _colab_problems,
    book_pages,
    check_page,
    colab_copy,
    colab_url,
    find_chromium,
    launch,
    load_config,
    png_dpi,
)

CONFIG = load_config()
ARTICLE = '<article class="bd-article">'


def _insert(snippet):
    return lambda html: html.replace(ARTICLE, ARTICLE + snippet, 1)


def _sub(pattern, repl, count=1):
    return lambda html: re.sub(pattern, repl, html, count=count)


DEFECTS = {
    "broken image": (
        _sub(r'src="\.\./_images/[^"]+"', 'src="../_images/missing.png"'),
        "did not load",
    ),
    "no figure": (_sub(r'<img[^>]*src="\.\./_images/[^"]+"[^>]*>', "", count=0), "no figure"),
    "raw dollar math": (_insert(r"<p>The loss is $\lambda x$ here.</p>"), "raw LaTeX"),
    "MathJax missing": (_sub(r"<script[^>]*mathjax/[^>]*></script>", ""), "math not typeset"),
    "math error": (
        _insert(r'<span class="math notranslate nohighlight">\(\frac{1}\)</span>'),
        "MathJax could not",
    ),
    "empty glue": (
        _sub(r'<span class="pasted-text">[^<]*</span>', '<span class="pasted-text"></span>'),
        "renders empty",
    ),
    "unresolved glue": (
        _sub(r'<span class="pasted-text">[^<]*</span>', "{glue:text}`n_train`"),
        "unresolved glue",
    ),
    "repr glue": (
        _sub(
            r'<span class="pasted-text">[^<]*</span>', "<span class=\"pasted-text\">'0.84'</span>"
        ),
        "Python repr",
    ),
    "JavaScript error": (
        _insert('<script>throw new Error("planted")</script>'),
        "JavaScript error: planted",
    ),
    "console error": (
        _insert('<script>console.error("planted")</script>'),
        "console error: planted",
    ),
    "missing local script": (
        _insert('<script src="../_static/missing.js"></script>'),
        "_static/missing.js returned HTTP 404",
    ),
    "external resource": (
        _insert('<img src="https://example.org/x.png" alt="">'),
        "external resource",
    ),
    "empty output": (
        _insert('<div class="cell_output docutils container"></div>'),
        "output(s) are empty",
    ),
    "Sphinx error": (_insert('<span class="problematic">{ref}`nowhere`</span>'), "Sphinx error"),
    "solution shown": (
        _sub(r'class="solution dropdown admonition"', 'class="solution admonition"', count=0),
        "is shown before it is opened",
    ),
    "solution stays hidden": (
        _insert("<style>.solution > section { display: none !important; }</style>"),
        "does not reveal it",
    ),
    "empty exercise": (
        _sub(r'(?s)(<section id="exercise-content">).*?(</section>)', r"\1\2"),
        "has no text",
    ),
    "no exercise": (
        _sub(r'class="exercise admonition"', 'class="admonition"', count=0),
        "no exercise",
    ),
    "wrong Colab notebook": (
        _sub(r"(colab\.research\.google\.com/github/[^\"]+/)[\w.-]+\.ipynb", r"\1other.ipynb"),
        "Colab button opens",
    ),
    "dead link": (
        _insert('<a href="no_such_page.html">x</a>'),
        "no_such_page.html returns HTTP 404",
    ),
    "dead anchor": (
        _insert('<a href="#no-such-anchor">x</a>'),
        "no element with id 'no-such-anchor'",
    ),
    "pandas repr": (
        _insert(
            '<div class="cell_output docutils container">'
            '<div class="output stream highlight-myst-ansi">'
            "<pre>method    jigsaw\nName: stage, dtype: str</pre></div></div>"
        ),
        "pandas repr",
    ),
    "object repr": (
        _insert(
            '<div class="cell_output docutils container"><div class="output text_plain">'
            "<pre>&lt;sslkit.runs.Run object at 0x7f3a2c&gt;</pre></div></div>"
        ),
        "Python or pandas repr",
    ),
    "matplotlib repr": (
        _insert(
            '<div class="cell_output docutils container"><div class="output text_plain">'
            "<pre>&lt;matplotlib.lines.Line2D at 0x7fa7e759b410&gt;</pre></div></div>"
        ),
        "Python or pandas repr",
    ),
    "bare value": (
        _insert(
            '<div class="cell_output docutils container"><div class="output text_plain">'
            "<pre>True</pre></div></div>"
        ),
        "bare value",
    ),
    "bare quoted value": (
        _insert(
            '<div class="cell_output docutils container"><div class="output text_plain">'
            "<pre>'0.076'</pre></div></div>"
        ),
        "bare value",
    ),
    "stderr": (
        _insert(
            '<div class="cell_output docutils container"><div class="output stderr">'
            "<pre>TqdmWarning: IProgress not found</pre></div></div>"
        ),
        "stderr or a warning",
    ),
    "stray dollar": (_sub(r'(<span class="math notranslate nohighlight">)', r"$ \1"), "stray $"),
    "horizontal overflow": (
        _insert('<div style="width: 3000px; height: 2px"></div>'),
        "horizontal overflow",
    ),
    "small figure text": (
        _sub(r'(<img[^>]*src="\.\./_images/[0-9a-f]+\.png")', r'\1 style="width: 120px"'),
        "under 9 px",
    ),
    "figure not HiDPI": (
        _insert(
            "<style>.cell_output img { width: 1100px !important; max-width: none !important; }"
            "</style>"
        ),
        "not exported for HiDPI",
    ),
    "figure shown twice": (
        _sub(r'(<img[^>]*src="\.\./_images/[0-9a-f]+\.png"[^>]*>)', r"\1\1"),
        "is shown 2 times",
    ),
    "figure without a caption": (_sub(r"(?s)<figcaption>.*?</figcaption>", ""), "no caption"),
    "figure with its file name for alt text": (
        _sub(r'(<img alt=")[^"]*("[^>]*? src="(\.\./_images/[0-9a-f]+\.png)")', r"\1\3\2"),
        "no alt text",
    ),
    "table wider than its column": (
        _insert(
            '<div style="overflow-x: auto"><table><tr><td style="min-width: 1500px">wide</td>'
            "</tr></table></div>"
        ),
        "wider than its column",
    ),
    "NaN in a table": (
        _insert(
            "<table><tr><th>ruler</th><th>effect</th></tr><tr><td>probe</td><td>NaN</td>"
            "</tr></table>"
        ),
        "shows NaN",
    ),
    "pandas' six decimals in a table": (
        _insert("<table><tr><td>0.000000</td><td>10000.0</td></tr></table>"),
        "shows 0.000000, 10000.0",
    ),
    "scientific notation and a signed zero in a table": (
        _insert("<table><tr><td>-1234.0</td><td>1e-06</td><td>-0.0</td></tr></table>"),
        "shows -0.0, -1234.0, 1e-06",
    ),
    "squashed figure": (
        _insert("<style>.cell_output img { height: 200px !important; }</style>"),
        "out of proportion",
    ),
}

# The same, in the 390 px phone window: only what the width changes is checked there.
PHONE_DEFECTS = {
    "overflow on a phone": (
        _insert('<div style="width: 800px; height: 2px"></div>'),
        "horizontal overflow",
    ),
    "figure wider than a phone": (
        _insert(
            "<style>.cell_output img { width: 700px !important; max-width: none "
            "!important; }</style>"
        ),
        "does not fit the 390 px window",
    ),
    # the page's phone rendering of each figure taken away: the desktop one, shrunk to the
    # phone's column, has text under 9 px
    "small figure text on a phone": (_sub(r"<source [^>]*>", "", count=0), "under 9 px"),
    "squashed figure on a phone": (
        _insert("<style>.cell_output img { height: 300px !important; }</style>"),
        "out of proportion",
    ),
}


@pytest.fixture(scope="module")
def chapter(built_book):
    """The first chapter page with math, so that the math checks have something to break."""
    return next(
        p
        for p in book_pages()
        if p.is_chapter and "math notranslate" in (built_book / p.path).read_text(encoding="utf-8")
    )


@pytest.fixture
def doctored(server, chapter):
    """Serve the chapter page with a defect planted by ``mutate(html)``, for one test."""
    original = (server.directory / chapter.path).read_text(encoding="utf-8")

    def serve(mutate):
        changed = mutate(original)
        assert changed != original, (
            "the defect was not planted: the page's markup changed, update DEFECTS"
        )
        server.overrides[chapter.path] = changed.encode("utf-8")

    yield serve
    server.overrides.clear()


def test_the_unchanged_page_passes(context, server, chapter):
    assert (
        check_page(context, server, chapter, LinkChecker(server), CONFIG, screenshots=None).problems
        == []
    )


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_planted_defect_is_reported(defect, doctored, context, server, chapter):
    mutate, reason = DEFECTS[defect]
    doctored(mutate)
    problems = check_page(
        context, server, chapter, LinkChecker(server), CONFIG, screenshots=None
    ).problems
    assert any(reason in p for p in problems), f"{defect}: expected {reason!r} among {problems}"


def test_the_unchanged_page_passes_on_a_phone(phone_context, server, chapter):
    report = check_page(
        phone_context, server, chapter, LinkChecker(server), CONFIG, screenshots=None, narrow=True
    )
    assert report.problems == []


@pytest.mark.parametrize("defect", PHONE_DEFECTS)
def test_a_planted_phone_defect_is_reported(defect, doctored, phone_context, server, chapter):
    mutate, reason = PHONE_DEFECTS[defect]
    doctored(mutate)
    problems = check_page(
        phone_context, server, chapter, LinkChecker(server), CONFIG, screenshots=None, narrow=True
    ).problems
    assert any(reason in p for p in problems), f"{defect}: expected {reason!r} among {problems}"


@pytest.mark.parametrize("dpi", [72, 100, 200])
def test_png_dpi_reads_what_matplotlib_wrote(dpi, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    fig.savefig(tmp_path / "f.png", dpi=dpi)
    plt.close(fig)
    assert png_dpi((tmp_path / "f.png").read_bytes()) == pytest.approx(dpi, abs=0.5)
    assert png_dpi(b"GIF89a") is None


def test_a_markdown_page_must_not_offer_colab(context, server, chapter):
    page = BookPage(
        chapter.path, "chapters/pretend.md"
    )  # a chapter's HTML, said to come from markdown
    problems = check_page(
        context, server, page, LinkChecker(server), CONFIG, screenshots=None
    ).problems
    assert any("page without a notebook has a Colab button" in p for p in problems), problems


# --------------------------------------------------------------------------- without a browser


def test_colab_url_follows_the_config():
    config = {
        "repository": {"url": "https://github.com/someone/book.git", "branch": "dev"},
        "launch_buttons": {"colab_url": "https://colab.research.google.com/"},
        "sphinx": {"config": {"colab_copies_branch": "site", "colab_copies_dir": "/nb/"}},
    }
    assert (
        colab_url(config, "chapters/a.ipynb")
        == "https://colab.research.google.com/github/someone/book/blob/site/nb/chapters/a.ipynb"
    )
    config = {"repository": {"url": "https://github.com/someone/book"}}
    assert (
        colab_url(config, "a.ipynb")
        == "https://colab.research.google.com/github/someone/book/blob/gh-pages/colab/a.ipynb"
    )


def test_a_colab_copy_with_raw_myst_is_reported(tmp_path):
    """The copy the button opens is read too: a glue role left in it is a defect."""
    config = load_config()
    page = BookPage("chapters/a.html", "chapters/a.ipynb")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "a.ipynb").write_text('{"cells": []}')
    copy = colab_copy(config, page.source, tmp_path / "_build" / "html")
    copy.parent.mkdir(parents=True)
    cell = {"cell_type": "markdown", "source": ["It holds {glue:text}`n_train` images."]}
    copy.write_text(json.dumps({"cells": [cell]}))
    url = colab_url(config, page.source)
    problems = _colab_problems([url], page, config, tmp_path)
    assert problems and "raw MyST" in problems[0], problems
    cell["source"] = ["It holds 7000 images."]
    copy.write_text(json.dumps({"cells": [cell]}))
    assert _colab_problems([url], page, config, tmp_path) == []
    heavy = {"output_type": "stream", "name": "stdout", "text": "x" * 2_100_000}
    copy.write_text(json.dumps({"cells": [cell, {"cell_type": "code", "outputs": [heavy]}]}))
    assert "over 2 MB" in _colab_problems([url], page, config, tmp_path)[0]
    copy.unlink()
    assert "no Colab copy" in _colab_problems([url], page, config, tmp_path)[0]


def test_book_pages_follow_the_toc(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: ch/one\n        sections:\n          - file: ch/two.ipynb\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "ch").mkdir()
    (tmp_path / "ch" / "one.ipynb").write_text(
        '{"cells": [{"cell_type": "markdown", "source": '
        '["{glue:text}`a` and {glue}`b`, not `{glue}`"]}]}'
    )
    (tmp_path / "ch" / "two.ipynb").write_text('{"cells": []}')
    pages = book_pages(tmp_path)
    assert [(p.path, p.source, p.is_chapter) for p in pages[:3]] == [
        ("intro.html", "intro.md", False),
        ("ch/one.html", "ch/one.ipynb", True),
        ("ch/two.html", "ch/two.ipynb", True),
    ]
    assert [p.path for p in pages[3:]] == ["genindex.html", "search.html"]
    assert pages[1].glue_roles(tmp_path) == 2
    (tmp_path / "ch" / "two.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="ch/two"):
        book_pages(tmp_path)


def test_a_missing_browser_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("BOOK_BROWSER", str(tmp_path / "no-chromium"))
    with pytest.raises(BrowserMissing, match="apt-get install chromium"):
        find_chromium()
    monkeypatch.delenv("BOOK_BROWSER")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserMissing, match="No Chromium found on PATH"):
        find_chromium()
    with pytest.raises(BrowserMissing, match="never downloads a browser"):
        launch(playwright=None, executable=str(tmp_path / "chromium"))
