"""A report of :func:`sslkit.reverse.analyze`: a JSON file of every number and an HTML page
a practitioner reads in a minute.

``python -m sslkit analyze … --out DIR`` writes ``DIR/results.json`` and ``DIR/report.html``.
The page opens with one table, a row per layer, of what the layer gains over the untrained
network, the raw pixels and the random control on the three rulers (:func:`gains`), then one
figure of that trend (:func:`trend`), then the details: a figure per ruler, every number, the
settings and the provenance. Figures are inline PNGs (the page reads offline); a value that was
not measured is "—". Each file is written to a new file in ``DIR`` first, then moved over the
old one (``os.replace``): a symbolic link at either name is replaced, never followed, and a
failed write (a full disk) leaves the old report whole.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import math
import os
import re
import tempfile
from html import escape
from pathlib import Path

import pandas as pd

__all__ = ["writable_folder", "write_report", "replaced", "figure", "gains", "trend"]

FILES = ("results.json", "report.html")

NAMES = {
    "ncc": "raw NCC accuracy",
    "whitened_ncc": "whitened NCC accuracy",
    "probe": "linear-probe accuracy",
    "knn": "kNN accuracy",
    "cdnv": "CDNV (lower: tighter classes)",
}
# The three rulers of the first screen, and every name of the table in words.
RULERS = {"ncc": "raw NCC", "whitened_ncc": "whitened NCC", "probe": "linear probe"}
WORDS = {
    **RULERS,
    "knn": "kNN",
    "cdnv": "CDNV",
    "fine": "fine classes",
    "coarse": "coarse classes",
    "coarse_random": "random groupings",
    "random_function": "random functions",
    "model": "your model",
    "untrained": "untrained network",
    "pixels": "raw pixels",
}
# Each target's random control: the same number of groups, no meaning.
CONTROLS = {"fine": "random_function", "coarse": "coarse_random"}
# Each ruler's columns of the gains: the model's accuracy, then its gain over each floor.
GAINS = ("accuracy", "over untrained", "over pixels", "over random control")


def writable_folder(out) -> Path:
    """``out`` as a folder that exists and can be written, or a ``ValueError`` that says why;
    checked before any measuring, so nothing is computed for a report that cannot be saved.
    A symbolic link is refused: the report would land in whatever folder it points to."""
    out = Path(out)
    if out.is_symlink():
        raise ValueError(
            f"--out {out} is a symbolic link (to {os.readlink(out)}): the report is not written "
            "through links, which could replace another folder's files; give the folder itself "
            f"(--out {out.resolve()}) or a new folder"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".sslkit-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"cannot write the report to {out}: {err.strerror or err}; choose a folder you can "
            "write to (--out)"
        ) from None
    return out


def figure(analysis, metric: str, split: str = "test"):
    """One ruler by layer: a line per target for the model (solid) and the untrained network
    (dashed, same colour), the raw pixels as a dotted level; a random control is the mean of
    its draws, with the range of the draws shaded. Accuracies in percent. Two short legends,
    one naming the colours (the targets) and one the line styles (the networks), instead of
    one entry per line."""
    import matplotlib.pyplot as plt  # lazy: only a report draws figures
    from matplotlib.lines import Line2D
    from matplotlib.ticker import PercentFormatter

    t = analysis.table
    t = t[(t.metric == metric) & (t.split == split)].copy()
    t["base"] = t.target.str.partition("@")[0]
    layers = list(dict.fromkeys(t[t.network != "pixels"].layer))
    scale = 1 if metric == "cdnv" else 100
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    targets, styles = [], {}
    for i, base in enumerate(dict.fromkeys(t.base)):
        colour = colours[i % len(colours)]
        targets.append(Line2D([], [], color=colour, lw=6, label=WORDS.get(base, base)))
        for network, style in (("model", "-"), ("untrained", "--")):
            part = t[(t.base == base) & (t.network == network)]
            if part.empty:
                continue
            g = part.groupby("layer", sort=False).value
            mean, low, high = (scale * s.reindex(layers) for s in (g.mean(), g.min(), g.max()))
            ax.plot(layers, mean.values, style, color=colour, marker="o")
            styles[network] = Line2D([], [], color="0.3", ls=style, marker="o")
            if part.target.str.contains("@").any():
                ax.fill_between(layers, low.values, high.values, color=colour, alpha=0.15)
        pix = t[(t.base == base) & (t.network == "pixels")]
        if not pix.empty:
            ax.axhline(scale * pix.value.mean(), color=colour, ls=":", lw=1)
            styles["pixels"] = Line2D([], [], color="0.3", ls=":", lw=1)
    ax.set_xticks(range(len(layers)), [_layer_name(layer) for layer in layers])
    ax.set_xlabel("layer")
    ax.set_ylabel(NAMES.get(metric, metric))
    if scale == 100:
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    words = {"model": WORDS["model"], "untrained": WORDS["untrained"], "pixels": "raw pixels"}
    first = ax.legend(handles=targets, title="target", fontsize=8, title_fontsize=8,
                      loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # fmt: skip
    ax.add_artist(first)
    ax.legend(
        handles=list(styles.values()),
        labels=[words[n] for n in styles],
        title="network",
        fontsize=8,
        title_fontsize=8,
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        frameon=False,
    )
    fig.tight_layout()
    return fig


def _layer_name(layer: str) -> str:
    """A layer's name for an axis: ``stage3`` reads "stage 3"; any other name as it is."""
    match = re.fullmatch(r"([a-z_]+?)_?(\d+)", layer)
    return f"{match[1]} {match[2]}" if match else layer


def gains(analysis, target: str = "fine", split: str = "test") -> pd.DataFrame:
    """One row per layer of the model: on each ruler (raw NCC, whitened NCC, linear probe) its
    accuracy and what it gains over the untrained network (same layer), the raw pixels and the
    target's random control (same layer, mean of the draws), as differences of accuracy. A
    value that was not measured is NaN (the probe is not fitted on random controls)."""
    t = analysis.table
    t = t[(t.split == split) & t.metric.isin(RULERS)].copy()
    t["base"] = t.target.str.partition("@")[0]
    if target not in CONTROLS or target not in set(t.base):
        measured = sorted(set(t.base) & set(CONTROLS))
        raise ValueError(f"no {target!r} target in this analysis: ask for one of {measured}")
    mean = t.groupby(["network", "layer", "base", "metric"], sort=False).value.mean().to_dict()
    pixels = {(b, m): v for (n, _, b, m), v in mean.items() if n == "pixels"}
    layers = list(dict.fromkeys(t[t.network == "model"].layer))
    rows = []
    for layer in layers:
        row = {}
        for metric, ruler in RULERS.items():
            own = mean.get(("model", layer, target, metric), math.nan)
            floors = (
                mean.get(("untrained", layer, target, metric), math.nan),
                pixels.get((target, metric), math.nan),
                mean.get(("model", layer, CONTROLS[target], metric), math.nan),
            )
            row[(ruler, "accuracy")] = own
            row.update({(ruler, g): own - floor for g, floor in zip(GAINS[1:], floors)})
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(layers, name="layer"))
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def trend(analysis, target: str = "fine", split: str = "test"):
    """The layer trend of :func:`gains` in one figure, a panel per ruler: the model's accuracy
    by layer (solid), the untrained network's (dashed), the random control's (dotted), the raw
    pixels' as a grey level."""
    import matplotlib.pyplot as plt  # lazy: only a report draws figures

    table = gains(analysis, target, split)
    rulers = [r for r in RULERS.values() if table[(r, "accuracy")].notna().any()]
    layers = [str(layer) for layer in table.index]
    fig, axes = plt.subplots(1, len(rulers), figsize=(3.1 * len(rulers), 3.2), sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, ruler in zip(axes[0], rulers):
        own = table[(ruler, "accuracy")]
        lines = {
            "your model": (own, "-", "C0"),
            "untrained network": (own - table[(ruler, "over untrained")], "--", "C7"),
            "random control": (own - table[(ruler, "over random control")], ":", "C1"),
        }
        for label, (values, style, colour) in lines.items():
            if values.notna().any():
                ax.plot(layers, values.values, style, color=colour, marker="o", label=label)
        level = (own - table[(ruler, "over pixels")]).dropna()
        if not level.empty:
            ax.axhline(level.iloc[0], color="0.6", lw=1, label="raw pixels")
        ax.set_title(ruler, fontsize=10)
        ax.set_xlabel("layer")
        ax.tick_params(axis="x", labelrotation=45 if len(layers) > 4 else 0, labelsize=8)
    axes[0][0].set_ylabel(f"{split} accuracy, {WORDS[target]}")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles),
               frameon=False, fontsize=8, bbox_to_anchor=(0.5, -0.02))  # fmt: skip
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _png(fig) -> str:
    import matplotlib.pyplot as plt  # lazy: only a report draws figures

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def replaced(out) -> list[str]:
    """What writing a report into ``out`` replaces, one line each (an old report, or a link
    at one of its names, which is replaced while what it points to is left alone)."""
    lines = []
    for name in FILES:
        path = Path(out) / name
        if path.is_symlink():
            lines.append(
                f"replacing the symbolic link {path} with the report; what it points to "
                f"({os.readlink(path)}) is left as it is"
            )
        elif path.exists():
            lines.append(f"overwriting the existing {path}")
    return lines


def _write(path: Path, text: str) -> None:
    """``text`` into a new file beside ``path``, then moved over it (``os.replace``): a link at
    ``path`` is replaced, not followed, and a failed write leaves the old file whole; an
    ``OSError`` says which file and what to do."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file (mkstemp's is private)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if not isinstance(err, OSError):
            raise
        advice = (
            "free some space or choose" if err.errno in (errno.ENOSPC, errno.EDQUOT) else "choose"
        )
        why = err.strerror or str(err)
        raise OSError(
            err.errno, f"cannot write {path}: {why}; {advice} another folder (--out)"
        ) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_report(analysis, out, title: str = "sslkit analyze", provenance=None) -> dict[str, Path]:
    """Write ``results.json`` (provenance, settings, the gains and every row; NaN as null) and
    ``report.html`` into ``out``; returns their paths. ``provenance`` adds to the analysis's
    own (the command line, the weights' source). Links at those names are replaced, not
    followed (:func:`replaced` says what goes); an ``OSError`` (a full disk) names the file and
    leaves the old one whole."""
    out = writable_folder(out)
    origin = {**getattr(analysis, "provenance", {}), **(provenance or {})}
    targets = [t for t in CONTROLS if t in set(analysis.table.target.str.partition("@")[0])]
    tables = {t: gains(analysis, t) for t in targets}
    payload = {
        "provenance": origin,
        "settings": analysis.settings,
        "gains": {t: _gain_records(table) for t, table in tables.items()},
        "rows": analysis.table.to_dict("records"),
    }
    results = out / "results.json"
    _write(results, json.dumps(_null_nan(payload), indent=1, default=str, allow_nan=False))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='meta'>{escape(_meta(origin))}</p>",
    ]
    if tables:
        first, *others = targets
        parts += _gains_section(tables[first], first, analysis.settings, heading="h2")
        alt = f"test accuracy of each layer on the {WORDS[first]}, per ruler, against the floors"
        parts += [
            f"<figure><img id='trend' src='data:image/png;base64,{_png(trend(analysis, first))}'"
            f" alt='{escape(alt)}'><figcaption>The layer trend: {escape(WORDS[first])}, "
            "your model against the untrained network, the random control and the raw "
            "pixels.</figcaption></figure>",
        ]
    else:
        parts.append("<p>No fine or coarse classes were measured: no gains to show.</p>")
        others = []
    parts.append("<h2>Details</h2>")
    for target in others:
        parts += _gains_section(tables[target], target, analysis.settings, heading="h3")
    for metric in dict.fromkeys(analysis.table.metric):
        for split in ("test",) if metric != "cdnv" else ("train", "test"):
            if not ((analysis.table.metric == metric) & (analysis.table.split == split)).any():
                continue
            fig = figure(analysis, metric, split)
            alt = f"{NAMES.get(metric, metric)} on the {split} images by layer, per target"
            parts.append(f"<h3>{escape(NAMES.get(metric, metric))} ({split})</h3>")
            parts.append(f"<img src='data:image/png;base64,{_png(fig)}' alt='{escape(alt)}'>")
    parts += [
        "<h3>Every number (test images; a random control: the mean of its draws)</h3>",
        _numbers(analysis.summary()),
        "<h3>Settings</h3>",
        f"<pre>{escape(_lines(analysis.settings, _SETTING_WORDS))}</pre>",
        "<h3>Provenance</h3>",
        f"<pre>{escape(_lines(origin, {}))}</pre>",
        "</body></html>",
    ]
    report = out / "report.html"
    _write(report, "\n".join(parts))
    return {"results": results, "report": report}


_CSS = (
    "body{font-family:sans-serif;max-width:64rem;margin:1.5rem auto;padding:0 1rem;color:#222}"
    "img{max-width:100%;height:auto}figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}"
    "table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ccc;padding:.2rem"
    " .45rem}td{text-align:right}.meta,.note{color:#555;font-size:.85rem}"
    "pre{white-space:pre-wrap;font-size:.8rem;background:#f6f6f6;padding:.6rem}"
    "td:first-child{text-align:left}.gain-up{color:#14632b}.gain-down{color:#a11}"
)
# The settings' keys in words (the others: their name, underscores as spaces).
_SETTING_WORDS = {
    "data": "data",
    "fit_images": "images to fit",
    "score_images": "images to score",
    "labels_mapped": "labels renumbered",
    "probe_knn_images": "images for the probe and kNN (fit, score)",
    "subsampled": "probe and kNN on a subsample",
    "untrained": "untrained network",
    "pixels": "raw pixels",
    "adapted": "input adapted",
    "knn_k": "kNN neighbours",
}
MISSING = "—"


def _gains_section(table: pd.DataFrame, target: str, settings: dict, heading: str) -> list[str]:
    """The gains of ``target`` as an HTML heading, a sentence on how to read it, the table and a
    note on what was not measured."""
    count = settings.get("classes" if target == "fine" else "coarse_classes")
    of = f" ({count})" if count else ""
    shown = table.loc[:, table.notna().any()]
    absent = [f"{r} {g}" for r, g in table.columns if (r, g) not in shown.columns]
    cells = shown.copy().astype(object)
    for column in shown.columns:
        cells[column] = [_cell(v, column[1] != "accuracy") for v in shown[column]]
    cells.columns = pd.MultiIndex.from_tuples(
        [(r, g if g == "accuracy" else f"{g} (pp)") for r, g in shown.columns]
    )
    cells.insert(0, ("", "layer"), [escape(str(layer)) for layer in shown.index])
    lines = [
        f"<{heading}>What each layer gains: {escape(WORDS[target])}{of}</{heading}>",
        "<p>Test accuracy of each layer on three rulers, and how many percentage points (pp) it "
        "gains over the same layer of the untrained network, over the raw pixels and over a "
        "random control (as many groups, no meaning; the mean of its draws). A positive gain: "
        "the layer separates the classes better than that baseline.</p>",
        cells.to_html(escape=False, na_rep=MISSING, border=0, index=False),
    ]
    if absent:
        lines.append(
            f"<p class='note'>Not measured, so not shown: {escape(', '.join(absent))} "
            "(the linear probe is fitted on the classes only, never on random controls).</p>"
        )
    return lines


def _cell(value, gain: bool) -> str:
    """A number as the table shows it: accuracy in %, a gain in signed percentage points."""
    if value is None or not math.isfinite(value):
        return MISSING
    if not gain:
        return f"{100 * value:.1f}%"
    number = f"{100 * value:+.1f}".replace("-", "−")  # a true minus sign
    if round(100 * value, 1) == 0:
        return "0.0"
    return f"<span class='{'gain-up' if value > 0 else 'gain-down'}'>{number}</span>"


def _numbers(summary: pd.DataFrame) -> str:
    """:meth:`Analysis.summary` as HTML: names in words, 4 digits, "—" where nothing was
    measured."""
    table = summary.rename(columns=WORDS).rename(index=WORDS)
    table.columns.name = None
    table.index.names = [None if n is None else n for n in table.index.names]
    return table.to_html(na_rep=MISSING, float_format=lambda v: f"{v:.4f}", border=0)


def _lines(mapping: dict, words: dict) -> str:
    """``key: value`` lines in words: lists joined by commas, a mapping as ``name = value``,
    yes/no for a flag, "—" for nothing."""
    return "\n".join(f"{words.get(k, str(k).replace('_', ' '))}: {_plain(v)}"
                      for k, v in mapping.items())  # fmt: skip


def _plain(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(
            f"{k} = {_plain(v) if v != '' else 'the output'}" for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(WORDS.get(v, _plain(v)) if isinstance(v, str) else _plain(v)
                         for v in value) or MISSING  # fmt: skip
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return str(value)


def _meta(origin: dict) -> str:
    """The provenance in one line under the title."""
    said = {"sslkit": "sslkit {}", "torch": "torch {}", "date": "{}", "weights fingerprint":
            "weights {}", "processes": "{} process(es)"}  # fmt: skip
    return " · ".join(f.format(origin[k]) for k, f in said.items() if k in origin) or MISSING


def _gain_records(table: pd.DataFrame) -> list[dict]:
    """:func:`gains` as JSON records, one per layer and ruler (6 decimals)."""
    return [
        {
            "layer": layer,
            "ruler": ruler,
            **{k: round(table.loc[layer, (ruler, k)], 6) for k in GAINS},
        }
        for layer in table.index
        for ruler in dict.fromkeys(table.columns.get_level_values(0))
    ]


def _null_nan(value):
    """``value`` with every NaN or infinite float as None (JSON's null; NaN is not JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _null_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_null_nan(v) for v in value]
    return value


def read_results(path) -> tuple[pd.DataFrame, dict]:
    """The table and settings of a ``results.json``."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    return pd.DataFrame(payload["rows"]), payload["settings"]
