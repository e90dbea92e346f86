"""Every page of the built book, opened in headless Chromium (see bookcheck.py for the checks).

Run with `make browser-test` after `make book`. A failure names the page and each problem.
Each page is opened twice: in a 1280 px window (every check) and in a 390 px phone window
(overflow, figures that do not fit, and text in figures: each figure has a phone rendering).
Full-page screenshots of both passes are left in _build/screenshots/1280/ and
_build/screenshots/390/.
"""

import pytest
from bookcheck import GENERATED_PAGES, SCREENSHOTS, book_pages, check_page, load_config

PAGES = book_pages()
CONFIG = load_config()


@pytest.mark.parametrize("page", PAGES, ids=[p.path for p in PAGES])
def test_page_renders_for_a_reader(page, context, server, links):
    report = check_page(context, server, page, links, CONFIG)
    if report.problems:
        listed = "\n".join(f"  - {p}" for p in report.problems)
        pytest.fail(f"{page.path} (screenshot: {report.screenshot}):\n{listed}", pytrace=False)


@pytest.mark.parametrize("page", PAGES, ids=[p.path for p in PAGES])
def test_page_fits_a_phone(page, phone_context, server, links):
    report = check_page(
        phone_context, server, page, links, CONFIG, screenshots=SCREENSHOTS / "390", narrow=True
    )
    if report.problems:
        listed = "\n".join(f"  - {p}" for p in report.problems)
        pytest.fail(
            f"{page.path} at 390 px (screenshot: {report.screenshot}):\n{listed}", pytrace=False
        )


def test_every_built_page_is_checked(built_book):
    skip = ("_static/", "_sources/", "_images/")
    built = {p.relative_to(built_book).as_posix() for p in built_book.rglob("*.html")}
    built = {p for p in built if not p.startswith(skip)}
    unchecked = sorted(built - {p.path for p in PAGES})
    if unchecked:
        pytest.fail(
            f"built but not checked (not in _toc.yml or {GENERATED_PAGES}): {unchecked}",
            pytrace=False,
        )


def test_search_finds_a_chapter(context, server):
    """The search page is a page of the book too: a query must list the chapter that treats it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    tab = context.new_page()
    tab.goto(server.url("search.html?q=collapse"))
    try:
        tab.wait_for_selector("#search-results ul.search li", timeout=15000)
    except PlaywrightTimeout:
        pytest.fail(
            "search.html?q=collapse lists no page: the search index does not work", pytrace=False
        )
    hits = tab.eval_on_selector_all(
        "#search-results ul.search li a", "links => links.map(a => a.pathname)"
    )
    if not any(h.endswith("chapters/02_joint_embedding.html") for h in hits):
        pytest.fail(
            f"searching 'collapse' does not list the chapter on collapse; it lists {hits}",
            pytrace=False,
        )
