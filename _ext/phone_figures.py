"""Figures that read on a phone: a second rendering of each plot, chosen by the page's width.

In the book's build each matplotlib figure carries, besides its ``image/png``, a ``text/html``
``<picture>`` (``sslkit.teach.figures.picture_html``) whose ``<source media=…>`` holds a
rendering for phones (panels stacked in one column, text at least 9 px at a 390 px screen).
MyST-NB would show that HTML as it is: data: URIs inline, without the cell's alt text.

This extension runs before MyST-NB picks one mime type per output (``SelectMimeType``,
priority 4). Where an output has both, it keeps the ``image/png`` image node, so the
caption, the figure's number and the alt text (``mystnb.figure.caption``, ``mystnb.image.alt``)
are MyST-NB's as before, and wraps it in a ``<picture>`` whose ``<source>`` names the phone
rendering, written to ``_images/`` under the hash of its content. Other builders get the
desktop image.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

MARK = 'class="sslkit-figure"'
SOURCE = re.compile(
    r'<source media="(?P<media>[^"]+)" srcset="data:image/png;base64,(?P<data>[^"]+)"'
    r' width="(?P<width>\d+)" height="(?P<height>\d+)">'
)


class phone_picture(nodes.General, nodes.Element):
    """A ``<picture>``: the phone rendering (``file`` in ``_images``, shown where ``media``
    holds) around the desktop image node, its one child."""


def visit_phone_picture(self, node) -> None:
    # The link to the full-size image that Sphinx puts around a scaled image goes outside
    # the <picture>: a <source> applies only to an <img> that is the picture's own child.
    image = next(node.findall(nodes.image))
    full = self.builder.images.get(image["uri"])
    if full is not None:
        href = posixpath.join(self.builder.imgpath, full)
        self.body.append(f'<a class="reference internal image-reference" href="{href}">')
    src = posixpath.join(self.builder.imgpath, node["file"])
    self.body.append(
        f'<picture class="sslkit-figure"><source media="{node["media"]}" srcset="{src}" '
        f'width="{node["width"]}" height="{node["height"]}">'
    )
    node["linked"] = full is not None


def depart_phone_picture(self, node) -> None:
    self.body.append("</picture></a>" if node["linked"] else "</picture>")


class PhoneFigures(SphinxPostTransform):
    default_priority = 3  # before MyST-NB's SelectMimeType (4)

    def run(self, **kwargs) -> None:
        html = self.app.builder.format == "html"
        for bundle in list(self.document.findall(nodes.container)):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            by_type = {c.get("mime_type"): c for c in bundle.children}
            page, png = by_type.get("text/html"), by_type.get("image/png")
            if page is None or png is None or MARK not in page.astext():
                continue
            bundle.remove(page)  # the image/png is the one shown
            found = SOURCE.search(page.astext())
            images = list(png.findall(nodes.image))
            if not html or found is None or len(images) != 1:
                continue
            data = base64.b64decode(found["data"])
            name = f"phone-{hashlib.sha256(data).hexdigest()}.png"
            folder = self.app.builder.outdir / self.app.builder.imagedir
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / name).exists():
                (folder / name).write_bytes(data)
            image = images[0]
            picture = phone_picture(
                file=name, media=found["media"], width=found["width"], height=found["height"]
            )
            image["classes"].append("no-scaled-link")  # the picture is linked instead
            image.replace_self(picture)
            picture += image


def setup(app):
    app.add_node(phone_picture, html=(visit_phone_picture, depart_phone_picture))
    app.add_post_transform(PhoneFigures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
