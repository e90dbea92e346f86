"""The phone rendering of the book's figures (sslkit/teach/figures.py)."""

import base64
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sslkit.teach import figures, plots  # noqa: E402


@pytest.fixture(autouse=True)
def style():
    plots.use_style()
    yield
    plt.close("all")


def strip(cols=3, sharey=True, legend="figure"):
    """A strip of panels as the chapters draw them: 9 inches wide, the y axis shared."""
    fig, axes = plt.subplots(1, cols, figsize=(plots.MAX_WIDTH_IN, 3.4), sharey=sharey)
    x = np.arange(10)
    for i, ax in enumerate(axes):
        for name in ("VICReg", "SimCLR", "Barlow Twins"):
            ax.plot(x, x * (i + 1) / 10, label=name)
        ax.set_title(f"panel {i}")
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("NCC accuracy")
    if legend == "figure":
        plots.shared_legend(fig)
    else:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
    fig.suptitle("Three rulers against epoch, one line per method, as a chapter titles it")
    return fig


def test_a_strip_of_three_panels_is_stacked_in_three_rows():
    fig = strip()
    phone = figures.phone_figure(fig)
    cells = figures.panels(phone)
    assert len(cells) == 3
    rows = [cell[0].get_subplotspec() for cell in cells]
    assert [ss.rowspan.start for ss in rows] == [0, 1, 2]
    assert all(ss.get_gridspec().get_geometry() == (3, 1) for ss in rows)
    # stacked top to bottom in reading order
    tops = [cell[0].get_position().y1 for cell in cells]
    assert tops == sorted(tops, reverse=True)
    assert [c[0].get_title() for c in cells] == ["panel 0", "panel 1", "panel 2"]
    # the original is left as it was drawn
    assert fig.get_figwidth() == plots.MAX_WIDTH_IN
    assert figures._grid_shape(fig) == (1, 3)


def test_the_phone_rendering_reads_at_390_px():
    fig = strip()
    assert figures.text_px(fig) < figures.MIN_TEXT_PX  # the desktop figure does not
    phone = figures.phone_figure(fig)
    assert phone.get_figwidth() == figures.PHONE_WIDTH_IN
    assert figures.text_px(phone, figures.PHONE_COLUMN_PX) >= figures.MIN_TEXT_PX
    assert figures.smallest_text_pt(phone) >= plots.SMALLEST_FONT_PT


def test_stacked_panels_show_the_labels_a_shared_axis_hid():
    phone = figures.phone_figure(strip())
    for cell in figures.panels(phone):
        ax = cell[0]
        assert ax.yaxis.label.get_visible() and ax.get_ylabel() == "NCC accuracy"
        assert any(t.get_visible() and t.get_text() for t in ax.get_yticklabels())


def test_small_text_is_raised_and_legends_kept():
    fig = strip(legend="axes")
    fig.axes[0].text(1, 0.5, "a note", fontsize=6)
    phone = figures.phone_figure(fig)
    assert figures.smallest_text_pt(phone) >= plots.SMALLEST_FONT_PT
    # the legend right of the last panel moved under it and still names every line
    legend = figures.panels(phone)[-1][0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["VICReg", "SimCLR", "Barlow Twins"]
    phone.canvas.draw()
    box = legend.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= phone.bbox.width + 1
    # the suptitle is kept and wrapped to the width
    title = phone._suptitle
    assert title is not None and "\n" in title.get_text()
    assert title.get_window_extent().width <= phone.bbox.width


def test_a_figure_legend_stays_inside_the_phone_figure():
    phone = figures.phone_figure(strip())
    phone.canvas.draw()
    (legend,) = phone.legends
    box = legend.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= phone.bbox.width + 1 and box.y0 >= -1


def test_a_single_panel_is_drawn_narrower():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    phone = figures.phone_figure(fig)
    assert len(figures.panels(phone)) == 1
    assert phone.get_figwidth() == figures.PHONE_WIDTH_IN
    assert figures.text_px(phone) >= figures.MIN_TEXT_PX


def test_an_image_grid_keeps_its_grid():
    import torch

    fig = plots.image_grid(list(torch.rand(3, 8, 1, 8, 8)), row_titles=["a", "b", "c"])
    phone = figures.phone_figure(fig)
    assert figures._grid_shape(phone) == (3, 8)
    assert figures.text_px(phone) >= figures.MIN_TEXT_PX


def test_the_picture_holds_both_renderings():
    html = figures.picture_html(strip())
    found = re.search(
        r'<source media="([^"]+)" srcset="data:image/png;base64,([^"]+)" width="(\d+)"', html
    )
    assert found and found[1] == figures.PHONE_MEDIA
    phone = base64.b64decode(found[2])
    assert phone.startswith(b"\x89PNG")
    assert int(found[3]) == round(figures.PHONE_WIDTH_IN * 100)
    assert re.search(r'<img src="data:image/png;base64,[^"]+" width="900"', html)


def test_register_adds_the_html_rendering():
    formatters = pytest.importorskip("IPython.core.formatters", reason="a notebook's display")
    DisplayFormatter = formatters.DisplayFormatter

    class Shell:
        display_formatter = DisplayFormatter()

    shell = Shell()
    assert figures.register(shell)
    fig, ax = plt.subplots()
    data, _ = shell.display_formatter.format(fig)
    assert 'class="sslkit-figure"' in data["text/html"]
    assert figures.register(None) in (True, False)  # outside IPython: nothing, no error


def test_a_figure_with_a_local_tick_formatter_gets_its_phone_rendering():
    fig, axes = plt.subplots(1, 2, figsize=(plots.MAX_WIDTH_IN, 3))
    for ax in axes:
        ax.plot([1, 10, 100], [1, 2, 3])
        plots.log_axis(ax, "x")  # a FuncFormatter of a local function: pickle cannot copy it
        ax.plot([1, 10, 100], [3, 2, 1], label="falling")
    plots.shared_legend(fig)
    phone = figures.phone_figure(fig)
    assert len(figures.panels(phone)) == 2 and figures.text_px(phone) >= figures.MIN_TEXT_PX
    assert figures.picture_html(fig) is not None
