"""The report of ``sslkit analyze`` on a planted result: the first screen's gains are the planted
differences, the page shows no NaN and no Python repr, its figure is inline, and results.json
says where the numbers came from (and is JSON: null, never NaN)."""

import base64
import hashlib
import json
import math
import re
from argparse import Namespace

import pandas as pd
import pytest
import torch

from sslkit.anymodel.report import gains, write_report
from sslkit.anymodel.reverse import Analysis, analyze
from sslkit.learn.data import fingerprint_state

LAYERS = ("layer1", "layer2")
# Test accuracy of the fine classes on raw NCC, by network and layer (random: each draw).
PLANTED = {
    ("model", "layer1"): 0.50,
    ("model", "layer2"): 0.80,
    ("untrained", "layer1"): 0.45,
    ("untrained", "layer2"): 0.50,
    ("pixels", "pixels"): 0.40,
}
RANDOM_DRAWS = (0.3, 0.1)  # random_function@0, @1 at every layer: mean 0.2


def planted() -> Analysis:
    """An analysis as :func:`analyze` returns it, with known numbers: raw NCC as
    :data:`PLANTED`, every other value 0.25, no probe or kNN on the random controls (as
    analyze), and a CDNV it could not measure (NaN)."""
    rows = []
    where = [*(("model", la) for la in LAYERS), *(("untrained", la) for la in LAYERS)]
    for network, layer in [*where, ("pixels", "pixels")]:
        targets = ["fine", "coarse", "coarse_random@0", "coarse_random@1"]
        targets += ["random_function@0", "random_function@1"]
        for target in targets:
            for metric in ("ncc", "whitened_ncc", "probe", "knn", "cdnv"):
                if "@" in target and metric in ("probe", "knn"):
                    continue
                value = 0.25
                if metric == "ncc" and target == "fine":
                    value = PLANTED[network, layer]
                elif metric == "ncc" and target.startswith("random_function"):
                    value = RANDOM_DRAWS[int(target[-1])]
                elif metric == "cdnv" and target == "coarse":
                    value = math.nan
                rows.append(dict(network=network, layer=layer, target=target, metric=metric,
                                 split="test", value=value))  # fmt: skip
    settings = {
        "data": "planted",
        "layers": {"layer1": "features.1", "layer2": ""},
        "metrics": ["ncc", "whitened_ncc", "cdnv", "probe", "knn"],
        "targets": ["fine", "coarse", "coarse_random", "random_function"],
        "subsampled": False,
        "adapted": "",
        "classes": 4,
        "coarse_classes": 2,
    }
    provenance = {"sslkit": "0.1.0", "torch": torch.__version__, "weights fingerprint": "ab12"}
    return Analysis(pd.DataFrame(rows), settings, provenance)


def _text(html: str) -> str:
    """The page without its inline images, tags or style: what a reader reads."""
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_the_gains_are_the_planted_differences_and_what_was_not_measured_is_nan():
    table = gains(planted())
    assert list(table.index) == list(LAYERS)
    raw = table["raw NCC"].loc["layer2"]
    assert raw["accuracy"] == pytest.approx(0.80)
    assert raw["over untrained"] == pytest.approx(0.30)
    assert raw["over pixels"] == pytest.approx(0.40)
    assert raw["over random control"] == pytest.approx(0.60)  # 0.8 − mean(0.3, 0.1)
    assert table["raw NCC"].loc["layer1", "over untrained"] == pytest.approx(0.05)
    assert math.isnan(table["linear probe"].loc["layer1", "over random control"])
    assert table["whitened NCC"].loc["layer2", "over random control"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="ask for one of"):
        gains(planted(), "random_function")


def test_the_page_opens_with_the_gains_then_one_inline_figure_and_shows_no_nan_or_repr(tmp_path):
    paths = write_report(planted(), tmp_path, title="planted")
    html = paths["report"].read_text()
    text = _text(html)
    assert not re.search(r"\bnan\b", text, re.I), "a NaN reached the page"
    assert "{'" not in html and "['" not in html, "a Python repr reached the page"
    for snake in ("whitened_ncc", "random_function", "coarse_random", "probe_knn"):
        assert snake not in text, f"{snake} is not in words"
    assert "—" in text  # the NaN CDNV and the probe's missing controls
    # First screen: the fine classes' gains, then the trend figure, then the details.
    first = html.index("What each layer gains: fine classes (4)")
    trend = html.index("<img id='trend' src='data:image/png;base64,")
    assert first < trend < html.index("<h2>Details</h2>") < html.index("coarse classes (2)")
    assert html.count("<img id='trend'") == 1
    screen = html[first:trend]
    columns = ("over untrained (pp)", "over pixels (pp)", "over random control (pp)")
    for words in ("raw NCC", "whitened NCC", "linear probe", *columns, "+30.0", "+40.0", "+60.0"):
        assert words in screen, words
    assert "Not measured, so not shown: linear probe over random control" in screen
    png = re.search(r"id='trend' src='data:image/png;base64,([^']+)'", html)[1]
    assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")
    assert "layers: layer1 = features.1, layer2 = the output" in html
    assert "probe and kNN on a subsample: no" in html and "input adapted: —" in html
    assert "weights fingerprint: ab12" in html


def test_results_json_holds_the_provenance_and_the_gains_with_null_for_nan(tmp_path):
    extra = {"command": "python -m sslkit analyze --model x", "model": "x"}
    paths = write_report(planted(), tmp_path, provenance=extra)

    def refuse(constant):
        raise AssertionError(f"{constant} in results.json: not JSON")

    payload = json.loads(paths["results"].read_text(), parse_constant=refuse)
    origin = payload["provenance"]
    assert origin["command"] == extra["command"] and origin["model"] == "x"
    assert origin["weights fingerprint"] == "ab12"  # the analysis's own, kept
    assert any(r["value"] is None for r in payload["rows"])  # the NaN CDNV as null
    layer2 = [g for g in payload["gains"]["fine"] if g["layer"] == "layer2"]
    raw = next(g for g in layer2 if g["ruler"] == "raw NCC")
    assert raw["over random control"] == pytest.approx(0.6)
    probe = next(g for g in layer2 if g["ruler"] == "linear probe")
    assert probe["over random control"] is None
    assert set(payload["gains"]) == {"fine", "coarse"}


def test_analyze_records_versions_fingerprints_date_and_processes():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 1, 6, 6), dtype=torch.uint8, generator=g)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    a = analyze(model, (images, torch.arange(60) % 3), layers={"out": "output"},
                targets=("fine",), metrics=("ncc",), untrained=None, pixels=False,
                progress=False, cache=False)  # fmt: skip
    origin = a.provenance
    assert origin["sslkit"] == __import__("sslkit").__version__
    assert origin["torch"] == torch.__version__
    assert origin["weights fingerprint"] == fingerprint_state(model.state_dict())
    assert set(origin["data fingerprint"]) == {"fit", "score"}
    assert origin["processes"] == 1 and origin["model"].endswith("Sequential")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", origin["date"])


def test_the_command_line_names_the_weights_file_by_its_sha256(tmp_path):
    from sslkit.cli import _origin

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"planted weights")
    argv = ["analyze", "--model", "sslkit:convnet", "--out", "my report"]
    args = Namespace(weights=str(weights), pretrained=False, seed=0, model="sslkit:convnet",
                     argv=argv)  # fmt: skip
    origin = _origin(args)
    digest = hashlib.sha256(b"planted weights").hexdigest()[:16]
    assert origin["weights"] == f"the file {weights} (SHA-256 {digest})"
    assert origin["command"] == "python -m sslkit analyze --model sslkit:convnet --out 'my report'"
    args.weights, args.argv = None, None
    assert origin["model"] == "sslkit:convnet" and _origin(args)["command"] is None
    assert "random initialisation" in _origin(args)["weights"]


def test_the_figure_has_two_short_legends_in_words_and_accuracy_in_percent():
    """One legend entry per target and one per network, not one per line (twelve, once), no
    variable name in a label, and an accuracy axis in percent."""
    import matplotlib

    matplotlib.use("Agg")
    from sslkit.anymodel.report import figure

    fig = figure(planted(), "ncc")
    ax = fig.axes[0]
    legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
    labels = [t.get_text() for lg in legends for t in lg.get_texts()]
    assert len(legends) == 2 and len(labels) <= 7, labels
    assert not [w for w in labels if "_" in w or "@" in w], labels
    assert {"fine classes", "random functions", "your model", "raw pixels"} <= set(labels)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 1", "layer 2"]
    fig.canvas.draw()
    assert any(t.get_text().endswith("%") for t in ax.get_yticklabels())
