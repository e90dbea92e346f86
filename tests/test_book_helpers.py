import matplotlib

matplotlib.use("Agg")

import json  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sslkit import analysis, augment, book, data, exercises, losses, metrics, plots  # noqa: E402
from sslkit.measure import geometry  # noqa: E402
from sslkit.targets import random_grouping, random_targets  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_without_myst_nb_glue_prints_nothing(capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_myst(name, *args, **kwargs):  # Colab: myst-nb is not installed
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst)
    assert book.glue("n_train", "7,000") is None
    assert capsys.readouterr().out == ""  # Colab: book.this_run_table shows the key numbers
    assert book.GLUED["n_train"] == ("7,000", "this run")


def test_pct_and_glue_print_nothing_in_a_notebook(capsys):
    pytest.importorskip("myst_nb", reason="in the book's build only (without it: the test above)")
    assert book.pct(0.8234) == "82.3%" and book.pct(1.0, 0) == "100%"
    assert book.glue("x", 3) is None  # no bare value left as a cell's output
    assert capsys.readouterr().out == ""  # and nothing printed either (display=False)


def test_exercise_checkers_accept_the_reference():
    assert exercises.check_rotation(augment.rotate)
    assert exercises.check_invariance_loss(losses.invariance_loss)
    assert exercises.check_variance_loss(losses.variance_loss)
    assert exercises.check_ncc(metrics.ncc_accuracy)
    assert exercises.check_cdnv(metrics.cdnv)
    assert exercises.check_random_targets(random_targets)
    nt_xent, barlow = losses.nt_xent, losses.barlow_twins  # bound before the checkers block them
    assert exercises.check_nt_xent(lambda a, b, t: nt_xent(a, b, t).total)
    assert exercises.check_barlow_terms(lambda a, b: tuple(barlow(a, b, eps=0.0).terms.values()))
    assert exercises.check_regularization_ratio(losses.regularization_ratio)
    assert exercises.check_effective_rank(metrics.effective_rank)
    assert exercises.check_holm(analysis.holm)
    assert exercises.check_random_grouping(random_grouping)
    assert exercises.check_seeds_needed(exercises._seeds_needed)
    r2 = geometry.linear_predictability  # bound before the checker blocks it
    assert exercises.check_linear_predictability(r2)

    def cdnv_from_sums(n, s, q):
        mu = s / n[:, None]
        var = q / n - (mu**2).sum(1)
        i, j = torch.triu_indices(len(n), len(n), 1)
        return ((var[i] + var[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum(1))).mean()

    assert exercises.check_cdnv_from_sums(cdnv_from_sums)


def test_exercise_checkers_reject_common_mistakes():
    # the references bound first: the checkers block sslkit's own answers while a function runs
    cdnv, nt_xent, barlow = metrics.cdnv, losses.nt_xent, losses.barlow_twins
    with pytest.raises(AssertionError, match="not rotated correctly"):
        exercises.check_rotation(
            lambda x, k: torch.stack(
                [torch.rot90(x[i], -int(k[i]), (-2, -1)) for i in range(len(x))]
            )
        )
    with pytest.raises(AssertionError, match="invariance"):
        exercises.check_invariance_loss(
            lambda a, b: ((a - b) ** 2).sum(1).mean()
        )  # forgot to divide by D
    with pytest.raises(AssertionError, match="variance"):
        exercises.check_variance_loss(lambda z: torch.relu(1 - z.std(0)).mean() * 2)
    with pytest.raises(AssertionError, match="CDNV"):
        exercises.check_cdnv(lambda x, y: cdnv(x, y) * 2)
    with pytest.raises(AssertionError, match="NT-Xent"):  # off by a constant
        exercises.check_nt_xent(lambda a, b, t: nt_xent(a, b, t).total + 0.1)
    with pytest.raises(
        AssertionError, match="redundancy"
    ):  # the off-diagonal term counted twice over
        exercises.check_barlow_terms(
            lambda a, b: (
                barlow(a, b).terms["invariance"],
                2 * barlow(a, b).terms["redundancy"],
            )
        )
    with pytest.raises(AssertionError, match="math.inf"):
        exercises.check_regularization_ratio(
            lambda loss: loss.get("var_weight", 25) / max(loss.get("inv_weight", 25), 1e-9)
        )
    with pytest.raises(AssertionError, match="centre the features"):  # forgot to centre
        exercises.check_effective_rank(
            lambda x: float(
                torch.exp(
                    -(lambda p: (p * p.clamp_min(1e-30).log()).sum())(
                        torch.linalg.svdvals(x) / torch.linalg.svdvals(x).sum()
                    )
                )
            )
        )
    with pytest.raises(AssertionError, match="class sizes"):
        exercises.check_random_targets(
            lambda y, r, s: torch.randint(0, 10, y.shape) if r > 0 else y
        )
    with pytest.raises(AssertionError, match="Holm rejects"):  # Bonferroni, not Holm
        exercises.check_holm(lambda p, alpha: [x <= alpha / len(p) for x in p])
    with pytest.raises(AssertionError, match="Holm rejects"):  # forgot to stop at a failure
        exercises.check_holm(
            lambda p, alpha: [x <= alpha / (len(p) - sorted(p).index(x)) for x in p]
        )
    with pytest.raises(AssertionError, match="split over groups"):  # grouped the images
        exercises.check_random_grouping(
            lambda f, c, s: c[torch.randperm(len(c), generator=torch.Generator().manual_seed(s))]
        )
    with pytest.raises(AssertionError, match="the reference"):  # the normal quantile, not t
        exercises.check_seeds_needed(lambda sd, h: max(2, round((1.96 * sd / h) ** 2)))
    with pytest.raises(AssertionError, match="test targets' own spread"):
        # planted: the residual divided by the spread around the *training* mean
        def r2_training_mean(x, y, tx, ty, ridge):
            x, y, tx, ty = (t.double() for t in (x, y, tx, ty))
            xc, yc = x - x.mean(0), y - y.mean(0)
            gram = xc.T @ xc
            lam = ridge * torch.linalg.eigvalsh(gram).mean()
            b = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=gram.dtype), xc.T @ yc)
            pred = (tx - x.mean(0)) @ b + y.mean(0)
            return 1 - ((ty - pred) ** 2).sum() / ((ty - y.mean(0)) ** 2).sum()

        exercises.check_linear_predictability(r2_training_mean)
    with pytest.raises(AssertionError, match="sslkit's own"):  # calls the answer
        exercises.check_linear_predictability(lambda *a: geometry.linear_predictability(*a))
    with pytest.raises(AssertionError, match="CDNV on"):  # the mean square, not the variance

        def no_centring(n, s, q):
            mu = s / n[:, None]
            i, j = torch.triu_indices(len(n), len(n), 1)
            return (((q / n)[i] + (q / n)[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum(1))).mean()

        exercises.check_cdnv_from_sums(no_centring)
    # a student who calls sslkit's own answer scores nothing, with a message that says so
    with pytest.raises(AssertionError, match="call your own code, not sslkit's answer"):
        exercises.check_cdnv(lambda f, labels: metrics.cdnv(f, labels))
    with pytest.raises(AssertionError, match="sslkit.losses.vicreg: call your own code"):
        exercises.check_vicreg_terms(lambda a, b: tuple(losses.vicreg(a, b).terms.values()))
    assert metrics.cdnv(torch.eye(2), torch.arange(2)) >= 0  # and the reference is back after
    ncc = metrics.ncc_accuracy  # a common slip: cosine similarity instead of distance
    with pytest.raises(AssertionError, match="cosine similarity"):
        exercises.check_ncc(lambda f, y: ncc(torch.nn.functional.normalize(f, dim=1), y))
    with pytest.raises(AssertionError, match="fewer than three"):  # the coarse labels again
        exercises.check_random_grouping(lambda f, c, s: c)


def _cosine_ncc(f, y):
    """Planted: a student's NCC with cosine similarity to the class centres."""
    centres = torch.stack([f[y == c].mean(0) for c in range(int(y.max()) + 1)])
    sim = torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(centres, dim=1).T
    return (sim.argmax(1) == y).float().mean().item()


def _median_ncc(f, y):
    """Planted: centres as medians, a slip the checker has no name for."""
    centres = torch.stack([f[y == c].median(0).values for c in range(int(y.max()) + 1)])
    return (torch.cdist(f, centres).argmin(1) == y).float().mean().item()


def _left_out_ncc(f, y):
    """Planted: each sample classified against centres of the other samples."""
    right = 0
    for i in range(len(y)):
        rest = torch.ones(len(y), dtype=torch.bool)
        rest[i] = False
        centres = torch.stack([f[rest & (y == c)].mean(0) for c in range(int(y.max()) + 1)])
        right += int(torch.cdist(f[i : i + 1], centres).argmin() == y[i])
    return right / len(y)


@pytest.mark.parametrize(
    "planted, cause",
    [
        (_cosine_ncc, "Likely cause: it is NCC on cosine similarity"),
        (_left_out_ncc, "Likely cause: each sample is left out of its own class centre"),
        (lambda f, y: 1 - _euclid(f, y), "Likely cause: it is the error rate"),
        (_median_ncc, "Check: the centres are the mean of each class's rows"),
    ],
)  # fmt: skip
def test_the_ncc_checker_says_how_many_samples_differ_and_why(planted, cause):
    with pytest.raises(AssertionError) as wrong:
        exercises.check_ncc(planted)
    said = str(wrong.value)
    assert re.search(r"\d+ of 200 samples classified correctly, the reference \d+", said), said
    assert re.search(r"at least [1-9]\d* of the 200 samples differ", said), said
    assert cause in said, said


def _euclid(f, y):
    centres = torch.stack([f[y == c].mean(0) for c in range(int(y.max()) + 1)])
    return (torch.cdist(f, centres).argmin(1) == y).float().mean().item()


def test_plots_return_figures():
    ds = data.load("digits")
    assert plots.class_examples(ds, per_class=3).axes
    v1, _ = augment.preset("vicreg", ds)
    fig = plots.views_grid(ds.images[:2], v1, n_views=3)
    assert len(fig.axes) == 2 * 4
    import pandas as pd

    seeds = pd.DataFrame(
        dict(epoch=[0, 0, 1, 1, 2, 2], value=[0.1, 0.3, 0.5, 0.9, 0.6, 0.6], seed=[0, 1] * 3)
    )
    fig = plots.plot_seeds(seeds, "epoch", chance=0.1)
    line = fig.axes[0].lines[0]
    assert line.get_ydata().tolist() == pytest.approx([0.2, 0.7, 0.6])  # the mean over seeds
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.1) and band.max() == pytest.approx(0.9)  # seed range
    assert fig.axes[0].get_ylabel() == ""  # "value" says nothing: no label rather than that
    matplotlib.pyplot.close("all")


def test_two_points_or_categories_are_markers_not_a_line():
    import pandas as pd

    two = pd.DataFrame(dict(epoch=[0, 0, 5, 5], value=[0.1, 0.3, 0.5, 0.9], seed=[0, 1] * 2,
                            metric="probe"))  # fmt: skip
    ax = plots.plot_seeds(two, "epoch").axes[0]
    drawn = [ln for ln in ax.lines if len(ln.get_xdata()) > 1 and ln.get_linestyle() != "None"]
    means = [ln for ln in ax.lines if ln.get_linestyle() == "None"]
    assert means and means[0].get_ydata().tolist() == pytest.approx([0.2, 0.7])
    # the drawn segments are the seed bars and their caps, each at one point: none joins two
    assert drawn and all(
        np.nanmax(ln.get_xdata()) - np.nanmin(ln.get_xdata()) < 0.5 for ln in drawn
    )
    assert ax.get_ylabel() == plots.METRIC_LABELS["probe"]
    plots.plot_seeds(two.assign(split="test"), "epoch", hue="split")  # one series: no dodge
    matplotlib.pyplot.close("all")


def test_shared_legend_and_plain_log_ticks():
    import pandas as pd

    df = pd.DataFrame(dict(epoch=[0, 1, 2] * 2, value=[0.3, 1.0, 2.0] * 2, seed=0,
                           run=["VICReg"] * 3 + ["SimCLR"] * 3))  # fmt: skip
    fig, axes = matplotlib.pyplot.subplots(1, 2)
    for ax in axes:
        plots.plot_seeds(df, "epoch", hue="run", ax=ax)
    plots.log_axis(axes[1])
    plots.shared_legend(fig)
    assert all(ax.get_legend() is None for ax in axes) and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["VICReg", "SimCLR"]
    fig.canvas.draw()
    shown = {t.get_text() for t in axes[1].get_yticklabels(minor=True) + axes[1].get_yticklabels()}
    assert {"0.5", "1", "2"} <= shown and not any("10^" in s or "times" in s for s in shown)
    matplotlib.pyplot.close("all")


def test_the_scale_study_has_one_legend_of_methods_then_the_floor():
    import itertools

    import pandas as pd

    rows = [dict(design=d, ruler=r, method=m, epoch=e, seed=s, value=0.5 + 0.01 * e)
            for d, r, m, e, s in itertools.product("ab", ["ncc", "probe"], ["VICReg", "SimCLR"],
                                                   [0, 1, 2], [0, 1])]  # fmt: skip
    fig = plots.plot_scale_study(pd.DataFrame(rows), {"ncc": 0.6, "probe": 0.7})
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["VICReg", "SimCLR", "raw pixels"]
    # the study's own keys are shown as names, and the accuracies in percent
    keyed = pd.DataFrame(rows).assign(method=lambda d: d.method.str.lower())
    fig = plots.plot_scale_study(keyed, {"ncc": 0.6, "probe": 0.7})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["VICReg", "SimCLR", "raw pixels"]
    fig.canvas.draw()
    assert all(t.get_text().endswith("%") for t in fig.axes[0].get_yticklabels() if t.get_text())
    matplotlib.pyplot.close("all")


def test_the_forest_plot_groups_findings_and_drops_none():
    from sslkit import paper

    class V:  # a verdict as plot_verdicts reads it
        def __init__(self, key, effect):
            self.finding = paper.finding(key)
            self.effect, self.lo, self.hi, self.verdict = (
                effect,
                effect - 0.01,
                effect + 0.01,
                "held",
            )

    vs = [V("semantic_clustering", 0.1), V("pixels_cluster", 0.6), V("compression", 0.2),
          V("clustering_helps_classification", 0.5)]  # fmt: skip
    groups = {
        "clustering": ("semantic_clustering", "clustering_helps_classification"),
        "baselines": ("pixels_cluster",),
    }
    fig = plots.plot_verdicts(vs, groups=groups)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == [
        "clustering (points)",
        "clustering (ρ)",  # a correlation never shares an axis with accuracy points
        "baselines (points)",
        "other findings (points)",
    ]
    assert [len(ax.get_yticks()) for ax in fig.axes] == [1, 1, 1, 1]

    def effects(ax):  # the x of each verdict's marker: points ×100, a correlation as it is
        marks = {m for _, m in plots.VERDICT_STYLE.values()}
        return [float(ln.get_xdata()[0]) for ln in ax.lines if ln.get_marker() in marks]

    assert effects(fig.axes[0]) == pytest.approx([10.0]) and effects(fig.axes[1]) == [0.5]
    matplotlib.pyplot.close("all")


def test_the_version_has_one_source():
    import pathlib
    import re

    import sslkit

    project = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in project and 'attr = "sslkit.__version__"' in project
    table = project.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"(?m)^version\s*=", table), "a second, static version in [project]"
    assert re.fullmatch(r"\d+\.\d+\.\d+", sslkit.__version__)


def test_the_wheel_ships_the_evidence_store_without_a_packaging_warning(tmp_path):
    """The evidence folders are data, not modules: the wheel must still carry their tables, and
    setuptools must not warn that it may stop doing so (its BuildBackendWarning)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip(
        "setuptools", minversion="77", reason="building the wheel needs setuptools>=77"
    )
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "sslkit", src / "sslkit", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(src),
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BuildBackendWarning" not in out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("sslkit-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    store = {
        f"sslkit/{p.relative_to(ROOT / 'sslkit').as_posix()}"
        for p in (ROOT / "sslkit" / "evidence").rglob("*")
        if p.is_file() and p.suffix in {".csv", ".gz", ".json"}
    }
    assert store and store <= shipped, sorted(store - shipped)


def test_every_verdict_has_its_own_colour_and_marker():
    from sslkit import paper

    assert set(plots.VERDICT_STYLE) == set(paper.VERDICTS)
    colours = [c for c, _ in plots.VERDICT_STYLE.values()]
    markers = [m for _, m in plots.VERDICT_STYLE.values()]
    assert len(set(colours)) == len(colours) and len(set(markers)) == len(markers)


def test_points_and_chapter_titles(tmp_path):
    assert book.points(0.141) == "+14.1 points" and book.points(-0.05, 0) == "-5 points"
    nb = {"cells": [{"cell_type": "code", "source": ["# not a title\n"]},
                    {"cell_type": "markdown", "source": ["(chap-x)=\n", "# How SSL clusters\n"]},
                    {"cell_type": "markdown", "source": ["# A later heading\n"]}]}  # fmt: skip
    (tmp_path / "03_clustering.ipynb").write_text(json.dumps(nb))
    (tmp_path / "04b_sweep.ipynb").write_text(json.dumps({"cells": []}))
    assert book.chapter_titles(tmp_path) == {"03": "How SSL clusters"}
    real = book.chapter_titles()
    assert real["07"] == "What we found" and len(real) == len(list(ROOT.glob("chapters/*.ipynb")))
