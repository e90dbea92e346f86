"""The report of ``sslkit analyze`` as a practitioner opens it: a small report, generated here,
in headless Chromium. It shows no NaN and no Python repr, its layer-trend figure loads, and it
asks for nothing outside its own folder (it must read offline).

Needs no built book: ``pytest browser_tests/test_analyze_report.py``.
"""

from __future__ import annotations

import torch
from bookcheck import BookServer, _watch

from sslkit.anymodel.report import write_report
from sslkit.anymodel.reverse import analyze


def _small_report(folder):
    """A report of a tiny network on random images with fine and coarse labels (a second)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (120, 1, 8, 8), dtype=torch.uint8, generator=g)
    fine = torch.arange(120) % 4
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.BatchNorm2d(6), torch.nn.ReLU())
    result = analyze(model, (images, fine, fine // 2), layers={"conv": "0", "out": "output"},
                     draws=2, max_fit=60, progress=False, cache=False)  # fmt: skip
    return write_report(result, folder, title="a small network on random images")["report"]


def test_the_report_reads_offline_without_nan_or_repr_and_its_figure_loads(context, tmp_path):
    report = _small_report(tmp_path)
    problems: list[str] = []
    with BookServer(tmp_path) as server:
        tab = context.new_page()
        state = _watch(tab, server, problems)  # external requests, failed loads, JS errors
        tab.goto(server.url(report.name), wait_until="load")
        text = tab.inner_text("body")
        trend = tab.eval_on_selector(
            "img#trend", "i => ({complete: i.complete, width: i.naturalWidth, src: i.src})"
        )
        first_table = tab.eval_on_selector("table", "t => t.innerText")
        tab.wait_for_load_state("networkidle")
        state["done"] = True
        tab.close()
    assert "NaN" not in text, "the page shows NaN"
    assert "{'" not in text, "the page shows a Python dict"
    assert trend["src"].startswith("data:image/png;base64,"), "the figure is not inline"
    assert trend["complete"] and trend["width"] > 0, "the layer-trend figure did not load"
    assert "whitened NCC" in first_table and "over random control" in first_table
    assert not problems, problems
