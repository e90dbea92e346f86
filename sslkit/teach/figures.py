"""A second rendering of each figure for phones, chosen by the page's width.

The book's figures are drawn for the desktop text column (about 690 px); a phone's column
is :data:`PHONE_COLUMN_PX` wide at a 390 px screen, where a 9-inch figure shrinks to a
third of its size and 9 pt tick labels end up at 5 px. :func:`phone_figure` draws a copy
for the phone: its panels stacked in one column, :data:`PHONE_WIDTH_IN` wide, every text at
least :data:`~sslkit.teach.plots.SMALLEST_FONT_PT`, legends below the panels, long titles
wrapped. :func:`text_px` says how large the smallest text of a figure renders at a given
column width (font px × shown width / natural width).

In the book's build (``SSLKIT_BOOK_BUILD=1``) :func:`register` adds a ``text/html``
rendering of every matplotlib Figure next to the usual ``image/png``: a ``<picture>`` whose
``<source media="(max-width: …)">`` holds the phone rendering and whose ``<img>`` holds the
desktop one. The book's ``_ext/phone_figures.py`` turns it into image files, keeping the
figure's caption, number and alt text (code-cell metadata ``mystnb.figure.caption`` and
``mystnb.image.alt``). Readers in Colab or Jupyter see the usual figure.
"""

from __future__ import annotations

import base64
import copy
import io
import pickle
import textwrap
import warnings

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.image import AxesImage
from matplotlib.text import Text

from .plots import SMALLEST_FONT_PT

__all__ = [
    "phone_figure",
    "panels",
    "text_px",
    "smallest_text_pt",
    "picture_html",
    "register",
    "PHONE_WIDTH_IN",
    "PHONE_COLUMN_PX",
    "PHONE_MEDIA",
    "MIN_TEXT_PX",
]

# The text column at a 390 px phone screen (the book's theme, measured in Chromium).
PHONE_COLUMN_PX = 342
# Text must render at least this large (CSS px); the browser test holds every figure to it.
MIN_TEXT_PX = 9.0
# Matplotlib draws 100 px per inch (the book's style) and a point is 1/72 inch.
CSS_PX_PER_IN = 100
# The phone rendering's width: at PHONE_COLUMN_PX, 9 pt text renders at 12.5 × 342/400 ≈ 10.7
# px. Wider figures leave more room for plotting, but text_px must stay ≥ MIN_TEXT_PX.
PHONE_WIDTH_IN = 4.0
# The phone rendering is shown where the desktop one's 9 pt text would fall under 9 px: a
# MAX_WIDTH_IN (9 in) figure needs a column of 9 / 12.5 × 900 = 648 px, a window of ~700 px.
PHONE_MEDIA = "(max-width: 720px)"
# Phones show 3 device pixels per CSS pixel.
PHONE_SCALE = 3
# A stacked panel's height, as a fraction of its width (its own proportions, within these).
PANEL_ASPECT = (0.55, 0.9)


def text_px(fig: Figure, column_px: float = PHONE_COLUMN_PX) -> float:
    """How large (CSS px) the smallest text of ``fig`` renders in a column ``column_px``
    wide: font px × shown width / natural width (a figure narrower than the column is shown
    at its natural size)."""
    natural = fig.get_figwidth() * CSS_PX_PER_IN
    shown = min(column_px, natural)
    return smallest_text_pt(fig) * CSS_PX_PER_IN / 72 * shown / natural


def _texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text of ``fig`` as it is drawn (tick labels included)."""
    fig.canvas.draw()
    return [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_figure() is not None
        and _drawn(t)
    ]  # fmt: skip


def _drawn(t: Text) -> bool:
    """Whether ``t`` is drawn inside the figure (a tick outside the view is not)."""
    if t.axes is not None and not t.axes.get_visible():
        return False
    box, fig = t.get_window_extent(), t.get_figure(root=True)
    return box.width > 0 and box.x1 > 0 and box.y1 > 0 and box.x0 < fig.bbox.width


def smallest_text_pt(fig: Figure) -> float:
    """The font size (points) of the smallest text ``fig`` draws."""
    sizes = [t.get_fontsize() for t in _texts(fig)]
    return min(sizes) if sizes else SMALLEST_FONT_PT


def panels(fig: Figure) -> list[list[Axes]]:
    """The panels of ``fig`` in reading order (row by row): each a list of the axes drawn in
    one cell of its grid (a panel and its twins). Colorbars, insets and axes placed by hand
    are not panels."""
    cells: dict = {}
    for ax in fig.axes:
        ss = ax.get_subplotspec()
        if ss is None or not ax.get_visible() or hasattr(ax, "_colorbar"):
            continue
        key = (id(ss.get_gridspec()), ss.rowspan.start, ss.colspan.start)
        cells.setdefault(key, []).append(ax)
    return [cells[k] for k in sorted(cells, key=lambda k: (k[1], k[2]))]


def _grid_shape(fig: Figure) -> tuple[int, int]:
    """(rows, columns) of the panels' grid; (0, 0) where they sit on several grids."""
    grids = {ax.get_subplotspec().get_gridspec() for cell in panels(fig) for ax in cell}
    if len(grids) != 1:
        return (0, 0)
    return next(iter(grids)).get_geometry()


def _is_image(ax: Axes) -> bool:
    return any(isinstance(a, AxesImage) for a in ax.get_children()) and not ax.get_xticks().size


def _copy(fig: Figure) -> Figure:
    """A copy of ``fig``; the original (and its image/png) stays as it was drawn. Through
    pickle, else (a tick formatter made of a local function cannot be pickled) a deep copy,
    which shares such functions with the original."""
    try:
        return pickle.loads(pickle.dumps(fig))
    except (pickle.PicklingError, AttributeError, TypeError):
        return copy.deepcopy(fig)


def phone_figure(fig: Figure, width: float = PHONE_WIDTH_IN) -> Figure:
    """A copy of ``fig`` laid out for a phone, ``width`` inches wide.

    Panels side by side are stacked in one column (reading order, row by row), each panel
    ``width`` wide and as tall as its own proportions allow (:data:`PANEL_ASPECT`); tick
    labels and axis labels hidden because a neighbour shared them are shown again. A figure
    of images only (a grid of examples) keeps its grid and is drawn narrower. Every text is
    raised to at least ``SMALLEST_FONT_PT``, figure legends move below the panels in as many
    columns as fit, legends right of a panel move below it, and titles wrap to the width."""
    phone = _copy(fig)
    phone.set_layout_engine(None)
    cells = panels(phone)
    rows, cols = _grid_shape(phone)
    images_only = cells and all(_is_image(ax) for cell in cells for ax in cell)
    w0, h0 = fig.get_size_inches()
    if images_only or not cells:
        height = h0 * width / w0
    else:
        heights = []
        for cell in cells:
            ss = cell[0].get_subplotspec()
            pw, ph = w0 * len(ss.colspan) / max(cols, 1), h0 * len(ss.rowspan) / max(rows, 1)
            heights.append(width * min(max(ph / pw, PANEL_ASPECT[0]), PANEL_ASPECT[1]))
        if cols > 1 or rows == 0:
            grid = GridSpec(len(cells), 1, figure=phone, height_ratios=heights)
            for i, cell in enumerate(cells):
                for ax in cell:
                    ax.set_subplotspec(grid[i])
            _show_shared_labels(cells)
        height = sum(heights) + 0.3
    phone.set_size_inches(width, height)
    _raise_small_text(phone)
    _wrap_titles(phone, width)
    for cell in cells:
        for ax in cell:
            _legend_below_axes(ax, width)
    _figure_legends_below(phone)
    _layout(phone)
    return phone


def _show_shared_labels(cells: list[list[Axes]]) -> None:
    """Panels that shared an axis with a neighbour had its tick labels (and often its label)
    hidden; stacked, each panel shows its own."""
    axes = [ax for cell in cells for ax in cell]
    for ax in axes:
        for name, shared in (("x", ax.get_shared_x_axes()), ("y", ax.get_shared_y_axes())):
            siblings = [s for s in shared.get_siblings(ax) if s is not ax and s in axes]
            siblings = [s for s in siblings if s.get_subplotspec() != ax.get_subplotspec()]
            if not siblings:
                continue
            axis = getattr(ax, f"{name}axis")
            if name == "x":
                axis.set_tick_params(which="both", labelbottom=True)
            else:
                axis.set_tick_params(which="both", labelleft=axis.get_ticks_position() != "right")
            axis.label.set_visible(True)  # label_outer hid it
            axis.offsetText.set_visible(True)
            if not axis.get_label_text():
                texts = (getattr(s, f"{name}axis").get_label_text() for s in siblings)
                label = next((t for t in texts if t), "")
                axis.set_label_text(label)


def _raise_small_text(fig: Figure) -> None:
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for which in ("major", "minor"):
                labels = axis.get_ticklabels(which=which)
                if labels and labels[0].get_fontsize() < SMALLEST_FONT_PT:
                    axis.set_tick_params(which=which, labelsize=SMALLEST_FONT_PT)
    for t in fig.findobj(Text):
        if t.get_fontsize() < SMALLEST_FONT_PT:
            t.set_fontsize(SMALLEST_FONT_PT)


def _wrap(t: Text, inches: float) -> None:
    text = t.get_text()
    if not text or "$" in text:
        return
    chars = max(int(inches * 72 / (t.get_fontsize() * 0.55)), 12)
    if max(len(line) for line in text.splitlines()) > chars:
        t.set_text("\n".join(textwrap.fill(line, chars) for line in text.splitlines()))


def _wrap_titles(fig: Figure, width: float) -> None:
    if fig._suptitle is not None:  # noqa: SLF001 - matplotlib's only handle on it
        _wrap(fig._suptitle, width * 0.95)
    for ax in fig.axes:
        for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label):  # noqa: SLF001
            _wrap(t, width * 0.85)


def _legend_below_axes(ax: Axes, width: float) -> None:
    """A legend placed right of its panel (outside the data) takes half a phone's width:
    it moves under the panel, in as many columns as fit."""
    legend = ax.get_legend()
    if legend is None:
        return
    anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    if anchor.x0 < 1.0:  # inside the panel: it stays
        return
    handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
    title = legend.get_title().get_text()
    legend.remove()
    ncol = _columns(ax.figure, handles, labels, width * 0.95)
    ax.legend(handles, labels, title=title or None, loc="upper center", ncol=ncol,
              bbox_to_anchor=(0.5, -0.22 if ax.xaxis.get_label_text() else -0.12),
              fontsize=SMALLEST_FONT_PT)  # fmt: skip


def _columns(fig: Figure, handles, labels, inches: float) -> int:
    """The most legend columns (up to 4) whose labels fit ``inches``."""
    longest = max((len(s) for s in labels), default=1)
    per = (longest * 0.55 * SMALLEST_FONT_PT + 30) / 72  # label, handle and gap (inches)
    return max(1, min(len(labels), 4, int(inches / per)))


def _figure_legends_below(fig: Figure) -> None:
    for legend in list(fig.legends):
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        title = legend.get_title().get_text()
        fig.legends.remove(legend)  # not legend.remove(): a deep copy's points at the original
        ncol = _columns(fig, handles, labels, fig.get_figwidth() * 0.95)
        fig.legend(handles, labels, title=title or None, loc="outside lower center", ncol=ncol,
                   fontsize=SMALLEST_FONT_PT)  # fmt: skip


def _layout(fig: Figure) -> None:
    """Constrained layout (it makes room for titles, figure legends and legends below
    panels); where it cannot be set, tight layout."""
    try:
        fig.set_layout_engine("constrained", h_pad=0.06, hspace=0.04)
    except RuntimeError:
        fig.tight_layout()
        return
    with warnings.catch_warnings():  # a layout it cannot apply is not the reader's concern
        warnings.simplefilter("ignore", UserWarning)
        fig.canvas.draw()


def _png(fig: Figure, scale: float) -> tuple[bytes, int, int]:
    """PNG bytes of ``fig`` at ``scale`` × its CSS size, with the resolution it declares set
    so that its text size can be read off it; and its CSS width and height."""
    buf = io.BytesIO()
    dpi = fig.dpi * scale
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    w, h = fig.get_size_inches() * CSS_PX_PER_IN
    return buf.getvalue(), round(w), round(h)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def picture_html(fig: Figure) -> str | None:
    """``fig`` as an HTML ``<picture>``: the phone rendering (:func:`phone_figure`) where
    :data:`PHONE_MEDIA` holds, the desktop one (2×) elsewhere, both as data: URIs. None (no
    HTML rendering) where the phone rendering cannot be drawn."""
    with warnings.catch_warnings():  # the phone layout's warnings are not the reader's concern
        warnings.simplefilter("ignore", UserWarning)
        phone_fig = None
        try:
            phone_fig = phone_figure(fig)
            phone, pw, ph = _png(phone_fig, PHONE_SCALE)
        except Exception:  # noqa: BLE001 - never a failed cell: the page shows the desktop one
            return None  # (and the browser test's phone pass names it)
        finally:
            if phone_fig is not None:  # never left open, to show up as a figure of its own
                matplotlib.pyplot.close(phone_fig)
        desktop, dw, dh = _png(fig, 2)
    return (
        f'<picture class="sslkit-figure"><source media="{PHONE_MEDIA}" '
        f'srcset="{_data_uri(phone)}" width="{pw}" height="{ph}">'
        f'<img src="{_data_uri(desktop)}" width="{dw}" height="{dh}" alt=""></picture>'
    )


def register(ip=None) -> bool:
    """Add :func:`picture_html` as the ``text/html`` rendering of matplotlib Figures in
    IPython (the book's build calls it); False where there is no IPython."""
    if ip is None:
        try:
            from IPython import get_ipython  # lazy: only inside IPython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    ip.display_formatter.formatters["text/html"].for_type(Figure, picture_html)
    return True
