"""A report of :func:`sslkit.reverse.analyze`: a JSON file of every number and a small HTML page
with one figure per ruler (each target by layer, against both floors).

``python -m sslkit analyze … --out DIR`` writes ``DIR/results.json`` and ``DIR/report.html``.
Each is written to a new file in ``DIR`` first, then moved over the old one (``os.replace``): a
symbolic link at either name is replaced, never followed, and a failed write (a full disk)
leaves the old report whole.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import os
import tempfile
from html import escape
from pathlib import Path

import pandas as pd

__all__ = ["writable_folder", "write_report", "replaced", "figure"]

FILES = ("results.json", "report.html")

NAMES = {
    "ncc": "NCC accuracy",
    "whitened_ncc": "whitened NCC accuracy",
    "probe": "linear-probe accuracy",
    "knn": "kNN accuracy",
    "cdnv": "CDNV (lower: tighter classes)",
}


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
    its draws, with the range of the draws shaded."""
    import matplotlib.pyplot as plt  # lazy: only a report draws figures

    t = analysis.table
    t = t[(t.metric == metric) & (t.split == split)].copy()
    t["base"] = t.target.str.partition("@")[0]
    layers = list(dict.fromkeys(t[t.network != "pixels"].layer))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, base in enumerate(dict.fromkeys(t.base)):
        colour = colours[i % len(colours)]
        for network, style in (("model", "-"), ("untrained", "--")):
            part = t[(t.base == base) & (t.network == network)]
            if part.empty:
                continue
            g = part.groupby("layer", sort=False).value
            mean, low, high = (s.reindex(layers) for s in (g.mean(), g.min(), g.max()))
            label = f"{base} ({network})"
            ax.plot(layers, mean.values, style, color=colour, marker="o", label=label)
            if part.target.str.contains("@").any():
                ax.fill_between(layers, low.values, high.values, color=colour, alpha=0.15)
        pix = t[(t.base == base) & (t.network == "pixels")]
        if not pix.empty:
            ax.axhline(pix.value.mean(), color=colour, ls=":", lw=1, label=f"{base} (pixels)")
    ax.set_xlabel("layer")
    ax.set_ylabel(NAMES.get(metric, metric))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
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


def write_report(analysis, out, title: str = "sslkit analyze") -> dict[str, Path]:
    """Write ``results.json`` (settings and every row) and ``report.html`` into ``out``; returns
    their paths. Links at those names are replaced, not followed (:func:`replaced` says what
    goes); an ``OSError`` (a full disk) names the file and leaves the old one whole."""
    out = writable_folder(out)
    results = out / "results.json"
    rows = analysis.table.to_dict("records")
    payload = {"settings": analysis.settings, "rows": rows}
    _write(results, json.dumps(payload, indent=1, default=str))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "img{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.85rem}"
        "td,th{border:1px solid #ccc;padding:.2rem .4rem}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<h2>Settings</h2><table>",
        *(
            f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
            for k, v in analysis.settings.items()
        ),
        "</table>",
    ]
    for metric in dict.fromkeys(analysis.table.metric):
        for split in ("test",) if metric != "cdnv" else ("train", "test"):
            fig = figure(analysis, metric, split)
            alt = f"{NAMES.get(metric, metric)} on the {split} images by layer, per target"
            parts.append(f"<h2>{escape(NAMES.get(metric, metric))} ({split})</h2>")
            parts.append(f"<img src='data:image/png;base64,{_png(fig)}' alt='{escape(alt)}'>")
    summary = analysis.summary()
    parts += ["<h2>Numbers (test; controls: mean of their draws)</h2>",
              summary.round(4).to_html(), "</body></html>"]  # fmt: skip
    report = out / "report.html"
    _write(report, "\n".join(parts))
    return {"results": results, "report": report}


def read_results(path) -> tuple[pd.DataFrame, dict]:
    """The table and settings of a ``results.json``."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    return pd.DataFrame(payload["rows"]), payload["settings"]
