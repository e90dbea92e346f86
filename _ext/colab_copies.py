"""Colab copies of the chapters, and a Colab button that opens them.

Colab shows a chapter's MyST as raw text ("The training split holds {glue:text}`n_train`
images"). After the build, this extension writes a copy of every notebook page to
``<html>/colab/<page>.ipynb`` (:func:`sslkit.colab.colab_copy`: glued values from this build,
terms, references and citations as links to the published book, exercises as headings; the
outputs this build gave each code cell, figures and tables, without glued values, book-only
HTML or any output over :data:`sslkit.colab.OUTPUT_CAP`: :func:`sslkit.colab.with_outputs`), and
``<html>/colab/links.json`` (where each term, label and citation leads), which the student
edition (``sslkit.course``) reads to write its notebooks the same way.

The Colab launch button opens the copy where the published site keeps it: the branch
``colab_copies_branch`` of the book's repository (``gh-pages``, where ``ghp-import`` puts
``_build/html``), folder ``colab_copies_dir``. The Binder button starts the environment of the
release's tag (``binder/``) and opens the same copy, fetched from that branch by nbgitpuller.
"""

from __future__ import annotations

import json
import pathlib
import urllib.parse

from sslkit import colab
from sslkit.teach import release


def book_url(app) -> str:
    """The published book's address: ``html_baseurl``, else GitHub Pages of the repository."""
    if app.config.html_baseurl:
        return app.config.html_baseurl.rstrip("/") + "/"
    repo = app.config.html_theme_options.get("repository_url", "")
    owner, _, name = urllib.parse.urlparse(repo).path.strip("/").removesuffix(".git").partition("/")
    return f"https://{owner}.github.io/{name}/"


def colab_copy_url(app, pagename: str) -> str:
    repo = app.config.html_theme_options.get("repository_url", "").removesuffix(".git")
    owner_name = urllib.parse.urlparse(repo).path.strip("/")
    base = app.config.html_theme_options.get("launch_buttons", {}).get("colab_url", "")
    return (
        f"{base.rstrip('/')}/github/{owner_name}/blob/{app.config.colab_copies_branch}/"
        f"{app.config.colab_copies_dir}/{pagename}.ipynb"
    )


def binder_copy_url(app, pagename: str) -> str:
    """Binder at the release's tag (its ``binder/`` environment), opening the page's Colab copy
    from the branch the site is published to (:func:`sslkit.teach.release.binder_url`)."""
    options = app.config.html_theme_options
    launch = options.get("launch_buttons", {})
    interface = {"classic": "tree", "jupyterlab": "lab/tree"}[
        launch.get("notebook_interface", "classic")
    ]
    return release.binder_url(
        options.get("repository_url", ""),
        release.tag(),
        f"{pagename}.ipynb",
        app.config.colab_copies_branch,
        app.config.colab_copies_dir,
        interface,
        launch.get("binderhub_url", "https://mybinder.org"),
    )


def links(app) -> colab.Links:
    base = book_url(app)
    std = app.env.domaindata["std"]
    terms = {
        name.lower(): f"{base}{doc}.html#{anchor}"
        for (kind, name), (doc, anchor) in std["objects"].items()
        if kind == "term"
    }
    labels = {
        label: (f"{base}{doc}.html#{anchor}", str(title))
        for label, (doc, anchor, title) in std["labels"].items()
    }
    bib = pathlib.Path(app.srcdir) / "references.bib"
    cites = colab.citations(bib, f"{base}index.html#references") if bib.exists() else {}
    return colab.Links(terms, labels, cites, base)


def glued(path: pathlib.Path) -> dict[str, str]:
    """The values a chapter glued in this build (myst-nb's ``<page>.glue.json``), as text."""
    if not path.exists():
        return {}
    return {name: colab.glued_text(out) for name, out in json.loads(path.read_text()).items()}


def write_copies(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = pathlib.Path(app.outdir) / app.config.colab_copies_dir
    executed = pathlib.Path(app.outdir).parent / "jupyter_execute"
    found = links(app)
    out.mkdir(parents=True, exist_ok=True)
    (out / "links.json").write_text(found.to_json())
    base = book_url(app)
    pages = [d for d in sorted(app.env.found_docs) if app.env.doc2path(d).endswith(".ipynb")]
    values = {d: glued(executed / f"{d}.glue.json") for d in pages}
    everywhere = colab.across_pages(values)
    for docname in pages:
        source = pathlib.Path(app.env.doc2path(docname))
        nb = json.loads(source.read_text(encoding="utf-8"))
        ran = executed / f"{docname}.ipynb"  # the build's outputs: figures before any run
        copy = colab.colab_copy(
            nb,
            {**everywhere, **values[docname]},
            found,
            source.parent,
            heading_note=colab.note(base, f"{base}{docname}.html", outputs=ran.exists()),
            where=docname,
        )
        if ran.exists():
            copy = colab.with_outputs(copy, json.loads(ran.read_text(encoding="utf-8")))
        target = out / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n")


def point_colab_button(app, pagename, templatename, context, doctree) -> None:
    """The theme's Colab and Binder buttons open the page's source notebook (raw MyST) on the
    branch; open its Colab copy instead (Binder: in the release's environment)."""

    def visit(buttons):
        for button in buttons or []:
            if button.get("text") == "Colab" and "url" in button:
                button["url"] = colab_copy_url(app, pagename)
            elif button.get("text") == "Binder" and "url" in button:
                button["url"] = binder_copy_url(app, pagename)
            visit(button.get("buttons"))

    visit(context.get("header_buttons"))


def setup(app):
    app.add_config_value("colab_copies_dir", "colab", "html")
    app.add_config_value("colab_copies_branch", "gh-pages", "html")
    # after sphinx-book-theme's add_launch_buttons (priority 501) has added the button
    app.connect("html-page-context", point_colab_button, priority=600)
    app.connect("build-finished", write_copies)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
