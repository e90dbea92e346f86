"""The evidence store: built, read back through the findings' own code, resumed, verified."""

import gzip
import json

import pandas as pd
import pytest
import torch

from sslkit import (
    analysis,
    configs,
    evaluation,
    paper,
    profiles,
    runs,
    runtime,
    store,
    targets,
    verify,
)
from sslkit.findings import build as evidence_build
from sslkit.findings import measurements

# A store small enough to build in a test: the smoke profile, 2 epochs, 2 seeds.
PROFILE = profiles.get_profile("smoke").replace(name="smoke-store", epochs=2, eval_every=1,
                                                seeds=(0, 1))  # fmt: skip
CONFIG = "VICReg"


DRAWS = 3  # draws of each random control (20 in the book's evidence)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One store, and one run cache shared by this module's tests (a run trained once)."""
    root, cache = tmp_path_factory.mktemp("evidence"), tmp_path_factory.mktemp("cache")
    logs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(targets, "DRAWS", DRAWS)
        mp.setenv("SSLKIT_CACHE", str(cache))
        evidence_build.build(PROFILE, configs=[CONFIG], root=root, log=logs.append)
    return root, cache, logs


@pytest.fixture
def evidence(built, monkeypatch):
    root, cache, _ = built
    monkeypatch.setattr(store, "EVIDENCE", root)
    monkeypatch.setattr(targets, "DRAWS", DRAWS)
    monkeypatch.setenv("SSLKIT_CACHE", str(cache))
    runtime.clear_caches()
    yield root
    runtime.clear_caches()


def test_the_store_has_tables_and_a_manifest_with_provenance(evidence):
    m = store.manifest(PROFILE)
    assert m["profile"] == store.profile_settings(PROFILE)
    assert set(m["pixel_floor"]) == set(paper.RULERS)
    assert sorted(m["runs"]) == ["VICReg/0", "VICReg/1"]
    entry = m["runs"]["VICReg/0"]
    for field in ("key", "sslkit_commit", "torch", "device", "threads", "date", "seconds"):
        assert entry[field] not in (None, ""), field
    evals = store.evaluations(PROFILE)
    assert list(evals.columns) == store.COLUMNS
    # every random control is stored draw by draw, at the untrained network and the last epoch
    drawn = evals[evals.target.str.startswith("coarse_random@")]
    assert drawn.target.nunique() == DRAWS and set(drawn.epoch) == {0, PROFILE.epochs}
    with gzip.open(evidence / PROFILE.name / "evaluations.csv.gz", "rt") as f:
        assert f.readline().strip() == ",".join(store.COLUMNS)


def test_a_stored_run_answers_what_the_live_run_answers(evidence):
    (live,) = configs.trained(CONFIG, PROFILE, [1], source="live")
    (kept,) = configs.trained(CONFIG, PROFILE, [1])  # auto: the store holds it
    assert isinstance(kept, store.StoredRun) and not isinstance(live, store.StoredRun)
    assert kept.epochs == live.epochs and kept.stage_names == live.stage_names
    assert kept.out_dim == live.out_dim
    for args in [
        ("ncc", 2, "test", "fine", None, None),
        ("probe", 1, "test", "fine", None, None),
        ("ncc", 0, "test", "coarse_random@2", None, None),
        ("ncc", 2, "test", "fine", "stage1", "pca"),
        ("sample_ncc", 2, "test", "sample", None, None),
    ]:
        assert kept.value(*args) == pytest.approx(live.value(*args), abs=1e-5), args
    pd.testing.assert_frame_equal(kept.losses(), live.losses(), check_names=False, atol=1e-5)
    with pytest.raises(KeyError, match="rebuilt"):
        kept.value("knn", 1)  # the store keeps kNN at the ends only


@pytest.mark.parametrize("key", ["coarse_beyond_fine", "deeper_gains_more"])
def test_findings_measure_stored_and_live_runs_with_one_code_path(evidence, monkeypatch, key):
    f = paper.finding(key)
    stored = f.measure(PROFILE)
    calls = []
    real = configs.trained

    def live_only(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs, source="live")

    monkeypatch.setattr(measurements, "trained", live_only)
    runtime.clear_caches()
    live = f.measure(PROFILE)
    assert calls and live.effect == pytest.approx(stored.effect, abs=1e-5)
    assert live.verdict == stored.verdict


def test_the_store_scores_every_test_accuracy_on_evaluation_subsets(evidence):
    evals = store.evaluations(PROFILE)
    parts = evals[evals.split.str.startswith("test@")]
    assert set(parts.split) == {f"test@{k}" for k in range(evaluation.EVAL_SUBSETS)}
    assert set(parts.metric) == set(evaluation.ACCURACIES) & set(evals.metric)
    # each subset's accuracy is the mean over its images: weighted by the subsets' sizes,
    # they give back the accuracy on all the test images (to the store's 6 digits)
    n = len(runs.datasets_for(PROFILE)[2])
    size = {f"test@{k}": len(range(k, n, evaluation.EVAL_SUBSETS)) for k in range(5)}
    keys = ["config", "seed", "epoch", "stage", "target", "metric", "dim"]
    weighted = parts.assign(w=parts.split.map(size) * parts.value).groupby(keys).w.sum() / n
    whole = evals[evals.split == "test"].set_index(keys).value
    assert len(weighted) > 100
    pd.testing.assert_series_equal(
        weighted, whole.loc[weighted.index], check_names=False, atol=2e-6, rtol=0
    )


def test_a_finding_on_the_store_covers_the_test_images_and_live_runs_say_they_do_not(evidence):
    f = paper.finding("coarse_beyond_fine")
    stored = f.measure(PROFILE)
    assert stored.subsets is not None and len(stored.subsets) == evaluation.EVAL_SUBSETS
    seeds_only = analysis.t_interval(stored.per_seed.effect)
    assert stored.hi - stored.lo >= seeds_only[2] - seeds_only[1] - 1e-12
    (live,) = configs.trained(CONFIG, PROFILE, [0], source="live")
    with runs.evaluation_subset(0), pytest.raises(LookupError, match="subsets"):
        live.value("ncc", 2)
    # a finding whose values have no subsets (sample-level NCC) keeps its interval over seeds
    assert paper.finding("sample_clustering").measure(PROFILE).subsets is None


def test_the_pixel_floor_is_read_on_the_same_subset_of_test_images(evidence):
    m = store.manifest(PROFILE)
    parts = m["pixel_floor_subsets"]
    assert set(parts) == set(paper.RULERS)
    assert all(len(v) == evaluation.EVAL_SUBSETS for v in parts.values())
    f = paper.finding("semantic_clustering_over_pixels")
    with runs.evaluation_subset(2):
        df = f.compute(PROFILE, (0, 1))
    assert set(df.control) == {parts["ncc"][2]}  # subset 2's floor, not the whole set's
    assert f.measure(PROFILE).subsets is not None


def test_a_changed_evaluation_plan_evaluates_the_stored_runs_again_without_training(
    built, evidence
):
    root, _, _ = built
    logs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evidence_build, "plan_version", lambda: "another plan")
        mp.setattr(runs, "fit", lambda *a, **k: pytest.fail("re-evaluating retrained"))
        evidence_build.build(PROFILE, configs=[CONFIG], root=root, log=logs.append)
        assert logs[0].startswith("2 runs to build")
        plans = {e["plan"] for e in store.manifest(PROFILE, root)["runs"].values()}
        assert plans == {"another plan"}
    evidence_build.build(
        PROFILE, configs=[CONFIG], root=root, log=logs.append
    )  # back, for the next tests
    assert logs[-1].startswith("[2/2]")


def test_the_store_is_used_only_for_its_own_settings(evidence):
    assert store.holds(PROFILE, CONFIG, (0, 1))
    assert not store.holds(PROFILE, CONFIG, (0, 1, 2))  # a seed it lacks
    assert not store.holds(PROFILE.replace(lr=1e-3), CONFIG, (0, 1))  # another profile
    with configs.store_only(), pytest.raises(LookupError, match="evidence build"):
        configs.trained("SimCLR", PROFILE, (0, 1))


def test_a_build_resumes_where_it_stopped(built, evidence):
    root, _, logs = built
    assert logs[0].startswith("2 runs to build")
    again = []
    evidence_build.build(PROFILE, configs=[CONFIG], root=root, log=again.append)
    assert again == [again[0]] and again[0].startswith("0 runs to build")
    m = json.loads((root / PROFILE.name / "manifest.json").read_text())
    del m["runs"]["VICReg/1"]  # as if the build stopped before this run was written
    (root / PROFILE.name / "manifest.json").write_text(json.dumps(m))
    before = len(store.evaluations(PROFILE, root))
    evidence_build.build(PROFILE, configs=[CONFIG], root=root, log=again.append)
    assert again[1].startswith("1 runs to build")
    assert len(store.evaluations(PROFILE, root)) == before  # its old rows were replaced


def test_verification_passes_on_the_store_and_fails_on_a_planted_change(evidence):
    table = verify.verify(PROFILE, sample=(("VICReg", 0),), log=lambda *a: None, whole=False)
    assert len(table) > 50 and table.difference.max() <= verify.TOLERANCE
    path = evidence / PROFILE.name / "evaluations.csv.gz"
    original = path.read_bytes()
    evals = pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})
    hit = (evals.config == "VICReg") & (evals.seed == 0) & (evals.epoch == 1)
    hit &= (evals.metric == "probe") & (evals.stage == "stage3") & (evals.split == "test")
    assert hit.sum() == 1
    evals.loc[hit, "value"] += 0.05
    evals.to_csv(path, index=False, compression="gzip")
    _restamp(evidence)  # as if the edit had also rewritten the checksum: the values are compared
    try:
        with pytest.raises(
            verify.EvidenceMismatch, match=r"VICReg, seed 0, epoch 1, stage3, fine, probe"
        ):
            verify.verify(PROFILE, sample=(("VICReg", 0),), log=lambda *a: None, whole=False)
    finally:
        path.write_bytes(original)
        _restamp(evidence)


def _restamp(root):
    m = json.loads((root / PROFILE.name / "manifest.json").read_text())
    m["tables"] = {n: store.digest(root / PROFILE.name / n) for n in store.TABLES}
    (root / PROFILE.name / "manifest.json").write_text(json.dumps(m))


@pytest.fixture
def copy_of_store(built, tmp_path, monkeypatch):
    """A copy of the built store that a test may damage."""
    import shutil

    root, cache, _ = built
    shutil.copytree(root, tmp_path / "copy")
    monkeypatch.setattr(targets, "DRAWS", DRAWS)
    monkeypatch.setenv("SSLKIT_CACHE", str(cache))
    runtime.clear_caches()
    yield tmp_path / "copy"
    runtime.clear_caches()


def test_the_manifest_records_each_tables_checksum(evidence):
    m = store.manifest(PROFILE)
    assert set(m["tables"]) == set(store.TABLES)
    for name, sha in m["tables"].items():
        assert sha == store.digest(evidence / PROFILE.name / name) and len(sha) == 64


def test_one_value_edited_by_hand_is_refused(copy_of_store):
    """A planted edit of one stored value, in a run that verification does not re-train (seed
    1): reading the store fails, naming the table."""
    path = copy_of_store / PROFILE.name / "evaluations.csv.gz"
    evals = pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})
    hit = (evals.seed == 1) & (evals.metric == "ncc") & (evals.split == "test")
    evals.loc[hit.idxmax(), "value"] += 0.1
    evals.to_csv(path, index=False, compression="gzip")
    with pytest.raises(store.CorruptStore, match="evaluations.csv.gz does not match the SHA-256"):
        store.evaluations(PROFILE, copy_of_store)
    with pytest.raises(store.CorruptStore, match="edited"):
        store.StoredRun(PROFILE, CONFIG, 0, copy_of_store)


def test_a_duplicated_row_is_refused_not_served(copy_of_store):
    """Rows of one key twice with other values: the last copy used to win, silently."""
    path = copy_of_store / PROFILE.name / "evaluations.csv.gz"
    evals = pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})
    twice = evals[evals.seed == 1].assign(value=lambda t: t.value + 0.2)
    pd.concat([evals, twice]).to_csv(path, index=False, compression="gzip")
    _restamp(copy_of_store)
    with pytest.raises(store.CorruptStore, match="rows share their key"):
        store.evaluations(PROFILE, copy_of_store)


def test_a_truncated_table_or_a_broken_manifest_is_named(copy_of_store):
    folder = copy_of_store / PROFILE.name
    data = (folder / "evaluations.csv.gz").read_bytes()
    (folder / "evaluations.csv.gz").write_bytes(data[: len(data) // 2])
    _restamp(copy_of_store)
    with pytest.raises(store.CorruptStore, match="evaluations.csv.gz cannot be read"):
        store.evaluations(PROFILE, copy_of_store)
    (folder / "manifest.json").write_text('{"profile": ')
    with pytest.raises(store.CorruptStore, match="manifest.json is not valid JSON"):
        store.manifest(PROFILE, copy_of_store)


def test_a_manifest_run_without_rows_or_a_missing_run_is_not_stored(copy_of_store):
    path = copy_of_store / PROFILE.name / "evaluations.csv.gz"
    evals = pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})
    evals[evals.seed != 1].to_csv(path, index=False, compression="gzip")
    _restamp(copy_of_store)
    with pytest.raises(store.NotStored, match="holds no rows of it"):
        store.StoredRun(PROFILE, CONFIG, 1, copy_of_store)
    with pytest.raises(store.NotStored, match="holds no run VICReg/7"):
        store.StoredRun(PROFILE, CONFIG, 7, copy_of_store)


def test_a_build_measures_again_a_manifest_run_without_rows(copy_of_store):
    path = copy_of_store / PROFILE.name / "evaluations.csv.gz"
    evals = pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})
    evals[evals.seed != 1].to_csv(path, index=False, compression="gzip")
    _restamp(copy_of_store)
    said = []
    evidence_build.build(PROFILE, configs=[CONFIG], root=copy_of_store, log=said.append)
    assert said[0].startswith("1 runs to build")
    runtime.clear_caches()
    assert store.StoredRun(PROFILE, CONFIG, 1, copy_of_store).final("ncc") > 0


def test_a_build_never_blesses_a_table_edited_by_hand(copy_of_store):
    """Adding a run rewrites the tables and their checksums: it must refuse an edited table
    first, or the edit would pass as stored."""
    path = copy_of_store / PROFILE.name / "evaluations.csv.gz"
    evals = pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})
    evals.loc[evals.index[0], "value"] += 0.1
    evals.to_csv(path, index=False, compression="gzip")
    m = store.manifest(PROFILE, copy_of_store)
    with pytest.raises(store.CorruptStore, match="edited"):
        store.write_run(PROFILE, CONFIG, 5, evals[evals.seed == 0].drop(columns=["config",
                        "seed"]), pd.DataFrame(columns=["epoch", "metric", "value"]),
                        m["runs"][f"{CONFIG}/0"], {}, copy_of_store)  # fmt: skip


@pytest.mark.parametrize("stop_at", [1, 2])
def test_a_write_stopped_midway_leaves_a_store_that_reads_and_resumes(
    copy_of_store, monkeypatch, stop_at
):
    """Stopped (planted) after the new tables' checksums are recorded as pending (1), or after
    the tables are replaced but before the manifest takes the run (2): the store still reads,
    and the next write goes through."""
    m = store.manifest(PROFILE, copy_of_store)
    base = store.StoredRun(PROFILE, CONFIG, 0, copy_of_store)
    rows = pd.DataFrame([(*k, v) for k, v in base._values.items()],
                        columns=[*store.KEY[2:], "value"])  # fmt: skip
    losses = base.history.drop(columns=["config", "seed"])
    real, calls = store._write_manifest, []

    def stopped(path, manifest):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt("planted")
        real(path, manifest)

    monkeypatch.setattr(store, "_write_manifest", stopped)
    with pytest.raises(KeyboardInterrupt):
        store.write_run(PROFILE, CONFIG, 5, rows, losses, m["runs"][f"{CONFIG}/0"], {},
                        copy_of_store)  # fmt: skip
    monkeypatch.setattr(store, "_write_manifest", real)
    runtime.clear_caches()
    assert f"{CONFIG}/5" not in store.manifest(PROFILE, copy_of_store)["runs"]
    assert len(store.evaluations(PROFILE, copy_of_store))  # reads: no CorruptStore
    store.write_run(PROFILE, CONFIG, 5, rows, losses, m["runs"][f"{CONFIG}/0"], {},
                    copy_of_store)  # fmt: skip
    runtime.clear_caches()
    assert store.StoredRun(PROFILE, CONFIG, 5, copy_of_store).final("ncc") == base.final("ncc")


def test_two_writers_at_once_lose_no_run(copy_of_store):
    """Two processes each add 6 runs to one store: every run is in the manifest and has its
    rows (without the lock, runs were lost between each writer's read and write)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_runs, args=(copy_of_store, w)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    runtime.clear_caches()
    m = store.manifest(PROFILE, copy_of_store)
    added = {k for k in m["runs"] if k.startswith("writer")}
    assert len(added) == 12
    evals = store.evaluations(PROFILE, copy_of_store)
    assert {f"{c}/{s}" for c, s in zip(evals.config, evals.seed)} >= added


def _add_runs(root, writer):
    base = store.StoredRun(PROFILE, CONFIG, 0, root)
    rows = pd.DataFrame(
        [(*k, v) for k, v in base._values.items()], columns=[*store.KEY[2:], "value"]
    )
    entry = store.manifest(PROFILE, root)["runs"][f"{CONFIG}/0"]
    for i in range(6):
        store.write_run(PROFILE, f"writer{writer}", i, rows, base.history.drop(
            columns=["config", "seed"]), entry, {}, root)  # fmt: skip


def test_a_training_change_after_the_early_check_fails_the_whole_run(evidence, monkeypatch):
    """Planted: from the end of epoch 1 on, training is changed (the weights scaled). The
    early check (up to epoch 1) cannot see it; the whole run, trained to its last epoch and
    compared row by row, must."""
    table = verify.verify(PROFILE, sample=(("VICReg", 0),), log=lambda *a: None,
                          whole=("VICReg", 1))  # fmt: skip
    assert {"loss"} < set(table.target) and (table.epoch == PROFILE.epochs).any()
    real_fit = runs.fit

    def changed_after_epoch_1(*args, **kwargs):
        def scale(model, epoch):
            if epoch == 1:
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(0.5)

        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), scale]
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(runs, "fit", changed_after_epoch_1)
    verify.verify(PROFILE, sample=(("VICReg", 0),), log=lambda *a: None, whole=False)
    with pytest.raises(verify.EvidenceMismatch, match="VICReg, seed 1, epoch 2"):
        verify.verify(PROFILE, sample=(("VICReg", 0),), log=lambda *a: None,
                      whole=("VICReg", 1))  # fmt: skip


def test_the_whole_run_rotates_with_the_commit(evidence):
    picks = {verify.rotating(PROFILE, commit=f"{i:040x}") for i in range(40)}
    assert picks == {("VICReg", 0), ("VICReg", 1)}  # every stored run, over commits
    assert verify.rotating(PROFILE, "abc") == verify.rotating(PROFILE, "abc")


def test_the_evidence_in_the_package_is_small():
    folder = store.EVIDENCE
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 15 * 2**20, f"the evidence store is {size / 2**20:.1f} MB; the budget is 15 MB"


def test_a_systematic_shift_fails_even_within_each_values_tolerance():
    table = pd.DataFrame(
        dict(config="VICReg", seed=0, epoch=[0, 2, 2, 2], stage="stage1", target="fine",
             metric="ncc", split="test", dim="", value=[0.5, 0.6, 0.7, 0.8])
    )  # fmt: skip
    table["recomputed"] = table.value + [0.0, 0.015, 0.015, 0.015]  # each within 0.04
    table["difference"] = (table.recomputed - table.value).abs()
    with pytest.raises(verify.EvidenceMismatch, match="shifted by"):
        verify.compare(table)
    table["recomputed"] = table.value + [0.0, 0.015, -0.015, 0.0]  # noise both ways passes
    table["difference"] = (table.recomputed - table.value).abs()
    verify.compare(table)


def test_the_reference_store_matches_its_checksums():
    """The committed store as built: any hand edit of a table fails here (and the book build)."""
    store.check_tables(store.EVIDENCE / "reference")
