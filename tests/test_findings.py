"""Findings, verdicts and scoreboards, on planted runs whose outcome is known."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from sslkit import analysis, book, configs, data, paper, profiles, recorded, runtime
from sslkit.findings import measurements
from sslkit.targets import DRAWN

PROFILE = profiles.get_profile("smoke")


class FakeRun:
    """A run whose every measurement is planted: ``initial`` = a base level, ``final`` =
    base + the gain that ``world`` gives this configuration, target, stage and metric."""

    stage_names = ("stage1", "stage2", "stage3")
    epochs = [0, 1, 2]

    out_dim = 1

    def __init__(self, config, seed, world):
        self.config, self.seed, self.world = config, seed, world
        self.noise = 0.002 * (seed - 1)

    def initial(self, metric, split="test", target="fine", stage=None, dim=None):
        return 0.5 + self.noise

    def final(self, metric, split="test", target="fine", stage=None, dim=None):
        stage = stage or self.stage_names[-1]
        return self.initial(metric) + self.world(self.config, metric, split, target, stage)

    def value(self, metric, epoch, split="test", target="fine", stage=None, dim=None):
        if epoch == 0:
            return self.initial(metric)
        if epoch == self.epochs[-1]:
            return self.final(metric, split, target, stage)
        gain = self.final(metric, split, target, stage) - self.initial(metric)
        return self.initial(metric) + self.world.share_early(metric) * gain

    def losses(self):
        spread = 1e-3 if self.config == "invariance only" and self.world.collapse else 1.0
        return pd.DataFrame({"embedding_std": [1.0, spread], "accuracy": [0.3, self.world.pretext]})


class World:
    """``holds=True``: every claim is planted true; ``holds=False``: every claim is planted
    false."""

    def __init__(self, holds):
        self.holds = holds
        self.collapse = holds
        self.pretext = 0.9 if holds else 0.03

    def share_early(self, metric):
        """Share of the final gain reached at the first evaluation after epoch 0."""
        if not self.holds:  # the probe overshoots early: its gains do not follow NCC's
            return 1.5 if metric == "probe" else 0.5
        return 0.8 if metric == "sample_ncc" else 0.3

    def __call__(self, config, metric, split, target, stage):
        # configurations differ a little, so that associations across them are defined: planted
        # true, NCC, probe and compression rise together; planted false, they go opposite ways
        order = paper.ASSOCIATION_CONFIGS
        k = order.index(config) if config in order else 0
        if metric == "erank":  # training compresses (or, planted false, spreads the features)
            return -self(config, "ncc", split, "fine", stage) if self.holds else 0.05 + 0.001 * k
        if not self.holds:  # training changes nothing anywhere, except it hurts a little
            return -0.05 + (-0.001 if metric == "probe" else 0.001) * k
        control = target.partition("@")[0] in ("random_1", *DRAWN)
        if control or stage == "stage1":
            return 0.0
        if config == "Barlow invariance only":
            return 0.0
        if config == "ratio 0.2":
            return 0.3 if metric == "sample_ncc" else 0.05
        if target == "coarse":
            return 0.3
        if config == "supervised" and split == "train":
            return 0.45
        return 0.2 + 0.01 * k


def planted(monkeypatch, holds):
    world = World(holds)
    monkeypatch.setattr(
        measurements,
        "trained",
        lambda name, prof=None, seeds=None: [
            FakeRun(name, s, world) for s in (seeds or PROFILE.seeds)
        ],
    )
    n, k = 300, 10
    labels = torch.arange(n) % k

    def dataset(split):
        if holds:  # class c lights up pixel c: pixels cluster by class
            images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
            images.view(n, -1)[torch.arange(n), labels] = 255
        else:  # pixels independent of the labels, drawn afresh for each split
            g = torch.Generator().manual_seed(0 if split == "train" else 1)
            images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=g)
        return data.Dataset(
            "planted", images, labels, labels % 2, tuple(map(str, range(k))), ("a", "b")
        )

    monkeypatch.setattr(measurements, "load", lambda name, split="train", **kw: dataset(split))
    # raw pixels sit at the untrained level: a network that gains beats them, one that loses
    # falls below
    monkeypatch.setattr(measurements, "pixel_floor", lambda prof: dict.fromkeys(paper.RULERS, 0.5))
    runtime.clear_caches()


@pytest.mark.parametrize("key", list(paper.FINDINGS))
def test_every_finding_holds_where_planted_true_and_fails_where_planted_false(monkeypatch, key):
    f = paper.finding(key)
    planted(monkeypatch, holds=True)
    assert f.measure(PROFILE).verdict == "held"
    planted(monkeypatch, holds=False)
    # not held, or an effect the interval puts between 0 and the threshold (random pixels
    # cluster a little above chance by luck)
    assert f.measure(PROFILE).verdict in ("not held", "reversed", paper.BELOW)


def finding_with(effects, threshold=0.05):
    def compute(prof, seeds):
        return pd.DataFrame({"seed": range(len(effects)), "value": effects, "control": 0.0})

    return paper.Finding("demo", "a demo claim", "a test", "value", "zero", threshold, compute)


@pytest.mark.parametrize(
    "effects, verdict",
    [
        ([0.30, 0.31, 0.29], "held"),
        ([-0.10, -0.12, -0.09], "reversed"),  # wholly below 0: the opposite direction
        ([0.00, 0.02, 0.01], "not held"),  # under the threshold, and not above 0
        ([0.02, 0.021, 0.019], "positive, below threshold"),  # an effect, smaller than claimed
        ([0.00, 0.20, 0.10], "inconclusive"),  # the interval contains the threshold and 0
        ([0.04, 0.09, 0.06], "positive, size undecided"),  # above 0, contains the threshold
        ([0.30], "inconclusive"),  # one seed: no interval
    ],
)
def test_verdict_follows_the_confidence_interval(effects, verdict):
    runtime.clear_caches()
    v = finding_with(effects).measure(PROFILE, seeds=tuple(range(len(effects))))
    assert v.verdict == verdict
    assert v.effect == pytest.approx(np.mean(effects))


@pytest.mark.parametrize(
    "lo, hi, verdict",
    [
        (0.06, 0.20, "held"),
        (0.05, 0.20, "positive, size undecided"),  # reaching the threshold is not above it
        (0.01, 0.05, paper.BELOW),  # at the threshold counts as below it
        (0.00, 0.04, "not held"),  # not above 0 either
        (-0.20, -0.10, "reversed"),  # wholly below 0
        (-0.20, 0.00, "not held"),  # reaches 0: not wholly on the other side
        (0.02, 0.08, "positive, size undecided"),
        (-0.02, 0.08, "inconclusive"),
    ],
)
def test_the_verdict_rule_reads_the_interval_against_the_threshold_and_zero(lo, hi, verdict):
    assert paper.verdict_of(lo, hi, 0.05) == verdict
    assert paper.verdict_of(lo, hi, 0.05, complete=False) == "inconclusive"


def test_lower_is_better_flips_the_sign():
    runtime.clear_caches()
    f = finding_with([-0.3, -0.31, -0.29])
    f = paper.Finding(
        f.key,
        f.claim,
        f.source,
        f.measurement,
        f.control,
        f.threshold,
        f.compute,
        lower_is_better=True,
    )
    assert f.measure(PROFILE).verdict == "held"


def test_t_interval_agrees_with_scipy():
    x = [0.1, 0.4, 0.25, 0.3]
    m, lo, hi = analysis.t_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (lo, hi) == pytest.approx(ref) and m == pytest.approx(0.2625)
    assert np.isnan(analysis.t_interval([1.0])[1])
    with pytest.raises(ValueError, match="finite"):
        analysis.t_interval([1.0, float("nan")])


def test_standard_error_adds_the_test_images_variance_by_hand():
    # seeds [1, 2, 3]: s²/n = 1/3; subsets [1, 3]: s_K²/K = 2/2 = 1; SE² = 4/3
    se, df = analysis.standard_error([1.0, 2.0, 3.0], subsets=[1.0, 3.0])
    assert se == pytest.approx((4 / 3) ** 0.5)
    # Welch–Satterthwaite: (4/3)² / ((1/3)²/2 + 1²/1) = 32/19
    assert df == pytest.approx(32 / 19)
    m, lo, hi = analysis.t_interval([1.0, 2.0, 3.0], subsets=[1.0, 3.0])
    assert hi - m == pytest.approx(stats.t.ppf(0.975, 32 / 19) * (4 / 3) ** 0.5)
    # never more degrees of freedom than the seeds give: a new source of variance cannot
    # narrow an interval
    assert analysis.standard_error([1.0, 1.1, 0.9], subsets=[1.0, 1.001, 0.999])[1] == 2
    # subsets that agree add nothing: the interval over seeds only
    assert analysis.t_interval([1.0, 2.0, 3.0], subsets=[2.0, 2.0]) == pytest.approx(
        analysis.t_interval([1.0, 2.0, 3.0])
    )
    p_seeds = analysis.one_sided_p([1.0, 2.0, 3.0], 0.0)
    assert analysis.one_sided_p([1.0, 2.0, 3.0], 0.0, subsets=[1.0, 3.0]) > p_seeds
    with pytest.raises(ValueError, match="two evaluation subsets"):
        analysis.standard_error([1.0, 2.0], subsets=[1.0])


def test_gain_over_init_is_last_minus_epoch_zero():
    ev = pd.DataFrame(
        {
            "run": "a",
            "seed": 0,
            "stage": "s",
            "target": "fine",
            "split": "test",
            "metric": "ncc",
            "epoch": [2, 0, 1],
            "value": [0.9, 0.4, 0.6],
        }
    )
    assert analysis.gain_over_init(ev).gain.tolist() == pytest.approx([0.5])


def test_within_run_correlation_reads_one_run_only():
    class Run:
        def losses(self):
            return pd.DataFrame(
                {"variance": [3.0, 2.0, 1.0, 0.5], "invariance": [1.0, 2.0, 3.0, 4.0]},
                index=pd.Index([1, 2, 3, 4], name="epoch"),
            )

    ev = pd.DataFrame({"epoch": [0, 1, 2, 3, 4], "value": [0.1, 0.2, 0.3, 0.4, 0.5]})
    rho = analysis.within_run_correlation(Run(), ev)
    assert rho["variance"] == pytest.approx(-1.0) and rho["invariance"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 3"):
        analysis.within_run_correlation(Run(), ev.iloc[:3])


def reference_reads(monkeypatch, holds, keys):
    """The reference evidence (``book.stated``) planted as ``holds`` for ``keys``."""
    planted(monkeypatch, holds=holds)
    reference = {k: paper.finding(k).measure(PROFILE, seeds=tuple(range(8))) for k in keys}
    monkeypatch.setattr(book, "stated", lambda key: reference.get(key))


def test_scoreboard_shows_the_reference_and_this_run_and_never_raises(monkeypatch, capsys):
    keys = ["sample_clustering", "regularization_clusters"]
    reference_reads(monkeypatch, True, keys)
    for k in keys:
        monkeypatch.setitem(recorded.RECORDED, k, "held")
    planted(monkeypatch, holds=False)  # this run: every claim planted false
    table = book.scoreboard(keys, PROFILE)
    assert list(table["verdict (reference)"]) == ["held", "held"]
    assert list(table["verdict (this run)"]) == ["reversed", "reversed"]
    assert list(table["the book states"]) == ["held", "held"]
    assert table["reference"].str.endswith(": held").all()
    assert table["this run"].str.contains(r"\[.*\]: reversed").all()
    book.show_scoreboard(keys, PROFILE)
    out = capsys.readouterr().out
    assert "differs from the reference evidence" in out and "Reference: the reference" in out


def test_the_build_fails_only_where_the_stated_evidence_contradicts_the_prose(monkeypatch, capsys):
    key = "semantic_clustering"
    reference_reads(monkeypatch, True, [key])
    planted(monkeypatch, holds=False)
    monkeypatch.setitem(recorded.RECORDED, key, "held")
    monkeypatch.setenv("SSLKIT_BOOK_BUILD", "1")
    book.glue_finding(key, PROFILE)  # this run differs from the reference: a line, never an error
    assert "reads 'reversed' where the reference evidence (8 seeds) reads 'held'" in (
        capsys.readouterr().out
    )
    monkeypatch.setitem(recorded.RECORDED, key, "not held")  # the prose says otherwise
    with pytest.raises(AssertionError, match="never the threshold"):
        book.glue_finding(key, PROFILE)
    monkeypatch.delenv("SSLKIT_BOOK_BUILD")
    book.glue_finding(key, PROFILE)  # a reader's run: a line, no exception
    assert "The book's text says 'not held'" in capsys.readouterr().out


def test_without_stored_evidence_the_books_live_build_is_checked(monkeypatch):
    key = "semantic_clustering"
    planted(monkeypatch, holds=False)
    monkeypatch.setattr(book, "stated", lambda key: None)  # the store lacks the finding
    monkeypatch.setitem(recorded.RECORDED, key, "held")
    monkeypatch.setenv("SSLKIT_BOOK_BUILD", "1")
    book.glue_finding(key, PROFILE)  # smoke is not the book's profile
    cpu = profiles.get_profile("cpu")
    with pytest.raises(AssertionError, match="never the threshold"):
        book.glue_finding(key, cpu)
    book.glue_finding(key, cpu, seeds=(5, 6, 7))  # other seeds: no exception


def test_thresholds_are_written_once():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    chapters = "".join(p.read_text() for p in (root / "chapters").glob("*.ipynb"))
    assert "book.check(" not in chapters
    assert not re.search(r"threshold\s*=\s*0\.\d", chapters), "thresholds live in sslkit.paper only"


def test_summary_of_nothing_is_explained():
    with pytest.raises(ValueError, match="at least one configuration"):
        analysis.summary({})


def test_mean_over_seeds_reads_the_chosen_epoch():
    class Run:
        epochs = [0, 1, 2]

        def __init__(self, base):
            self.base = base

        def value(self, metric, epoch, split, target, stage):
            return self.base + epoch / 10

    runs = [Run(0.1), Run(0.3)]
    assert analysis.mean_over_seeds(runs, "ncc") == pytest.approx(0.4)
    assert analysis.mean_over_seeds(runs, "ncc", epoch=0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="at least one run"):
        analysis.mean_over_seeds([], "ncc")


def test_the_ratio_sweep_has_seven_distinct_ratios():
    ratios = [
        configs.regularization_ratio(configs.CONFIGS[name][1]) for name in configs.RATIOS.values()
    ]
    assert ratios == list(configs.RATIOS) and len(set(ratios)) == 7


def test_per_method_findings_measure_each_methods_runs(monkeypatch):
    keys = paper.per_method("coarse_beyond_fine")
    assert keys == {
        "VICReg": "coarse_beyond_fine",
        "SimCLR": "coarse_beyond_fine_simclr",
        "Barlow Twins": "coarse_beyond_fine_barlow",
    }
    asked = []
    monkeypatch.setattr(
        measurements,
        "trained",
        lambda name, prof=None, seeds=None: (
            asked.append(name) or [FakeRun(name, s, World(True)) for s in (seeds or PROFILE.seeds)]
        ),
    )
    runtime.clear_caches()
    paper.finding(keys["SimCLR"]).measure(PROFILE)
    assert set(asked) == {"SimCLR"}  # once, and again per evaluation subset
    with pytest.raises(KeyError, match="not measured per method"):
        paper.per_method("collapse")


def test_a_seed_without_a_measurement_makes_the_verdict_inconclusive():
    def compute(prof, seeds):
        return pd.DataFrame({"seed": [0, 1, 2], "value": [0.5, float("nan"), 0.5], "control": 0.0})

    v = paper.Finding("gapped", "a claim", "a test", "value", "zero", 0.05, compute).measure(
        PROFILE
    )
    assert v.verdict == "inconclusive" and v.effect == pytest.approx(0.5)


@pytest.mark.parametrize("seeds, message", [((), "seeds is empty"), ((0, 0, 0), "repeat a seed")])
def test_empty_or_repeated_seeds_are_refused(seeds, message):
    with pytest.raises(ValueError, match=message):
        finding_with([0.3, 0.3, 0.3]).measure(PROFILE, seeds=seeds)


def test_t_interval_checks_its_confidence():
    with pytest.raises(ValueError, match="between 0 and 1"):
        analysis.t_interval([1.0, 2.0], confidence=95)


@pytest.mark.parametrize(
    "ncc, whitened, probe, expected",
    [
        ("held", "held", "not held", "class information added"),
        ("held", "not held", "not held", "geometry only"),
        ("held", "not held", paper.BELOW, "geometry, and a small gain in class information"),
        ("held", "inconclusive", "not held", "undecided"),
        ("held", "positive, size undecided", "not held", "class information added, size undecided"),
        ("held", "reversed", "not held", "geometry only"),
        ("reversed", "held", "held", "no clustering gain"),
        ("not held", "held", "held", "no clustering gain"),
        (paper.BELOW, "not held", "not held", "a small clustering gain"),
        ("inconclusive", "held", "held", "undecided"),
    ],
)
def test_the_three_rulers_read_together(ncc, whitened, probe, expected):
    assert book.reading({"ncc": ncc, "whitened_ncc": whitened, "probe": probe}) == expected


def test_every_clustering_finding_has_three_rulers_two_floors_and_reasoned_thresholds():
    for key in paper.CLUSTERING:
        keys = paper.ruler_keys(key)
        assert len(keys) == 6 and all(k in paper.FINDINGS for k in keys.values())
        assert paper.finding(keys["probe", "pixels"]).threshold == paper.FLOOR_THRESHOLD
    for f in paper.FINDINGS.values():
        assert f.threshold in paper.THRESHOLD_REASONS, f"{f.key}: a threshold without a reason"


def test_the_registry_is_the_written_findings_then_each_variant_once():
    written = list(paper.WRITTEN)
    assert list(paper.FINDINGS)[: len(written)] == written
    variants = paper.VARIANTS | paper.RULER_VARIANTS
    assert not variants & set(written) and not paper.VARIANTS & paper.RULER_VARIANTS
    assert len(paper.FINDINGS) == len(written) + len(variants)
    for key in paper.PER_METHOD:  # the same claim and threshold, on that method's runs
        for method, k in paper.per_method(key).items():
            f, base = paper.finding(k), paper.WRITTEN[key]
            assert (f.threshold, f.unit) == (base.threshold, base.unit)
            assert f.claim == (base.claim if k == key else f"{base.claim} ({method})")
    for key in paper.CLUSTERING:  # against the untrained network as written, or raw pixels
        for (ruler, floor), k in paper.ruler_keys(key).items():
            f, base = paper.finding(k), paper.WRITTEN[key]
            if floor == "untrained":
                assert (f.control, f.threshold) == (base.control, base.threshold)
            else:
                assert f.control == f"{paper.RULER_NAMES[ruler]} of raw pixels of the same images"
                assert f.threshold == paper.FLOOR_THRESHOLD


def test_the_reference_evidence_reads_every_recorded_verdict():
    """Every finding, measured by its own code on the stored reference evidence, gives the
    verdict the book states (what the book's build checks chapter by chapter)."""
    runtime.clear_caches()
    stated = {k: book.stated(k) for k in paper.FINDINGS}
    runtime.clear_caches()
    assert not [k for k, v in stated.items() if v is None], "findings the store does not hold"
    assert {k: v.verdict for k, v in stated.items()} == recorded.RECORDED
    assert all(v.n == len(profiles.get_profile(recorded.PROFILE).seeds) for v in stated.values())


def test_each_method_is_measured_on_its_own_runs_in_one_table(monkeypatch):
    planted(monkeypatch, holds=True)
    table = paper.measure_per_method(PROFILE)
    assert list(table.columns) == list(configs.COMPARED_METHODS)
    assert list(table.index) == [paper.finding(k).claim for k in paper.PER_METHOD]
    assert table.map(lambda cell: cell.endswith(": held")).all().all()


def test_holm_and_the_one_sided_p_value_agree_with_scipy_and_the_textbook():
    x = [0.08, 0.11, 0.09, 0.12, 0.1]
    ref = stats.ttest_1samp(x, 0.05, alternative="greater").pvalue
    assert analysis.one_sided_p(x, 0.05) == pytest.approx(ref)
    # Holm (1979): 0.01 ≤ 0.05/3 rejected; then 0.03 > 0.05/2 stops, so 0.04 is kept too
    assert analysis.holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert analysis.holm([0.001, 0.02, 0.04]) == [True, True, True]
    assert analysis.holm([float("nan"), 0.001]) == [False, True]


def test_the_primary_claims_are_the_abstracts_five(monkeypatch):
    planted(monkeypatch, holds=True)
    monkeypatch.setattr(book, "stated", lambda key: None)
    table = book.primary_table(PROFILE)
    assert len(table) == 5 and set(table.finding) == set(paper.PRIMARY.values())
    assert (table.iloc[:, -1] == "yes").all()  # planted true, clear of every threshold


def test_every_finding_has_a_recorded_verdict_and_no_stale_one():
    assert set(recorded.RECORDED) == set(paper.FINDINGS)
    assert set(recorded.RECORDED.values()) <= set(paper.VERDICTS)


def test_every_main_finding_is_in_one_group_of_the_forest_plot():
    from sslkit import paper

    listed = [k for keys in paper.GROUPS.values() for k in keys]
    assert len(listed) == len(set(listed)), "a finding in two groups"
    assert set(listed) <= set(paper.FINDINGS), set(listed) - set(paper.FINDINGS)
    main = {k for k in paper.FINDINGS if k not in paper.VARIANTS | paper.RULER_VARIANTS}
    assert main <= set(listed), main - set(listed)


def test_correlation_intervals_stay_inside_minus_one_to_one():
    """Per-seed correlations near 1: a t-interval on r passes 1; Fisher's z (the findings) and
    a t-interval clipped to the values' range (the descriptive tables) do not."""
    import pandas as pd

    from sslkit import analysis

    rhos = [0.99, 0.7, 0.95, 0.85]
    assert analysis.t_interval(rhos)[2] > 1
    m, lo, hi = analysis.correlation_interval(rhos)
    assert -1 < lo < m < hi < 1
    assert m == pytest.approx(np.tanh(np.arctanh(rhos).mean()))
    table = analysis.seed_summary(pd.DataFrame({"g": "a", "rho": rhos}), "g", "rho", bounds=(-1, 1))
    t = analysis.t_interval(rhos)
    assert table.loc[0, ["mean", "lo", "hi"]].tolist() == pytest.approx([t[0], t[1], 1.0])
