import subprocess
import sys

import pytest
import torch

from sslkit import data, profiles, runs, runtime


@pytest.fixture()
def fast(monkeypatch):
    """The smoke profile, shorter: enough to test caching and evaluation, not learning."""
    return profiles.get_profile("smoke").replace(epochs=2, eval_every=1)


def test_smoke_vicreg_loss_falls_and_views_of_an_image_cluster():
    run = runs.train("vicreg", "smoke", progress=False)
    total = run.losses().total
    assert total.iloc[-1] < total.iloc[0]
    before, after = run.initial("sample_ncc"), run.final("sample_ncc")
    # What the loss asks: the views of each image gather around that image's centre.
    assert after > before + 0.1, (before, after)


@pytest.mark.parametrize("method", ["simclr", "barlow", "rotation", "jigsaw", "supervised"])
def test_each_methods_loss_falls(method):
    run = runs.train(
        method, profiles.get_profile("smoke").replace(epochs=6, eval_every=6), progress=False
    )
    total = run.losses().total
    assert total.iloc[-1] < total.iloc[0], total.tolist()


def test_runs_are_cached_by_configuration_and_seed(monkeypatch, fast):
    calls = []
    real_fit = runs.fit

    def counting_fit(*args, **kwargs):
        calls.append(kwargs["seed"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(runs, "fit", counting_fit)
    a = runs.train("simclr", fast, progress=False)
    b = runs.train("simclr", fast, progress=False)
    assert calls == [0]  # the second call loaded the first one's result
    assert b.history.equals(a.history)
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v.cpu(), w.cpu()), k
    runs.train("simclr", fast, progress=False, seed=1)
    assert calls == [0, 1]  # the seed is part of the key
    runs.train("simclr", fast, progress=False, loss={"temperature": 0.2})
    runs.train("simclr", fast, progress=False, cache=False)
    assert len(calls) == 4


def test_new_targets_and_metrics_never_retrain(monkeypatch, fast):
    run = runs.train("vicreg", fast, progress=False)
    monkeypatch.setattr(
        runs, "fit", lambda *a, **k: pytest.fail("a new evaluation retrained the network")
    )
    again = runs.train("vicreg", fast, progress=False)
    ev = again.evaluate(
        targets=("fine", "random_1", "coarse_random"), metrics=("ncc", "knn"), sample_level=True
    )
    assert set(ev.epoch) == set(run.epochs) == {0, 1, 2}
    assert set(ev.stage) == {"stage1", "stage2", "stage3"}  # real stage names, no "last" alias
    assert set(ev.target) == {"fine", "random_1", "coarse_random", "sample"}
    assert set(ev[ev.target == "sample"].metric) == set(runs.SAMPLE_METRICS)
    assert again.value("view_tightness", 2) > 0
    knn = ev[ev.metric == "knn"]
    assert set(knn.split) == {"test"}


def test_evaluations_are_cached_per_metric(monkeypatch, fast):
    run = runs.train("vicreg", fast, progress=False)
    first = run.evaluate(targets=("fine",), metrics=("ncc",))
    runtime.clear_caches()  # nothing in memory: only the disk cache can answer
    monkeypatch.setattr(
        runs, "extract_features", lambda *a, **k: pytest.fail("recomputed features")
    )
    again = run.evaluate(targets=("fine",), metrics=("ncc",))
    assert first.equals(again)


def test_a_stored_evaluation_that_is_not_finite_is_recomputed(fast, tmp_path, monkeypatch):
    """A planted evaluate entry holding NaN is refused (with a warning) and recomputed, never
    served as a result."""
    import pandas as pd

    from sslkit import cache

    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path))
    run = runs.train("vicreg", fast, progress=False)
    first = run.evaluate(targets=("fine",), metrics=("ncc",), epochs=[2])
    (entry,) = (tmp_path / "evaluate").glob("*.pt")
    stored = cache.safe_load(entry)
    rows = stored["result"]["rows"].assign(value=float("nan"))
    cache.atomic_save({**stored, "result": cache.to_payload({"rows": rows})}, entry)
    runtime.clear_caches()
    with pytest.warns(cache.CacheWarning, match="not a finite number"):
        again = run.evaluate(targets=("fine",), metrics=("ncc",), epochs=[2])
    assert pd.notna(again.value).all() and first.equals(again)


def test_train_without_the_cache_reads_no_evaluation_either(fast, tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path))
    run = runs.train("vicreg", fast, progress=False, cache=False)
    run.evaluate(targets=("fine",), metrics=("ncc",), epochs=[2])
    assert not (tmp_path / "evaluate").exists() and not (tmp_path / "train").exists()


def test_epoch_zero_is_the_untrained_network_of_the_seed(fast):
    a = runs.train("vicreg", fast, progress=False)
    b = runs.train("simclr", fast, progress=False)
    for k, v in a.snapshots[0].items():
        assert torch.equal(v, b.snapshots[0][k]), k  # same seed, same initial backbone
    assert a.initial("ncc") == b.initial("ncc")
    assert a.final("ncc") != a.initial("ncc")


def test_a_new_backbone_has_the_runs_architecture_and_fresh_weights(fast):
    run = runs.train("vicreg", fast, progress=False)
    net = run.new_backbone()
    assert type(net) is type(run.backbone) and net.stage_dims == run.stage_dims
    assert run.stage_dims[-1] == run.out_dim and len(run.stage_dims) == len(run.stage_names)
    assert net.state_dict().keys() == run.snapshots[0].keys()
    weights = next(k for k in run.snapshots[0] if k.endswith("weight"))
    assert not torch.equal(net.state_dict()[weights].cpu(), run.snapshots[0][weights])


def test_loss_arguments_are_checked_before_training(fast):
    with pytest.raises(ValueError, match="unknown loss argument 'inv_wieght'.*inv_weight"):
        runs.train("vicreg", fast, loss={"inv_wieght": 0})
    with pytest.raises(ValueError, match="finite"):
        runs.train("vicreg", fast, loss={"inv_weight": float("nan")})
    with pytest.raises(ValueError, match="takes no loss arguments"):
        runs.train("rotation", fast, loss={"inv_weight": 1})


def test_profiles_default_and_errors(monkeypatch):
    monkeypatch.setenv("SSLKIT_PROFILE", "smoke")
    assert profiles.get_profile().name == "smoke"
    monkeypatch.delenv("SSLKIT_PROFILE")
    assert profiles.get_profile().name == "cpu"
    with pytest.raises(ValueError, match="smoke, cpu, reference, gpu, paper"):
        profiles.get_profile("huge")
    assert profiles.get_profile("cpu").replace(epochs=1).epochs == 1
    assert len(profiles.get_profile("cpu").seeds) >= 3


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sslkit", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_train_prints_a_summary_and_shares_the_api_cache(monkeypatch):
    out = cli(
        "train",
        "--method",
        "vicreg",
        "--profile",
        "smoke",
        "--epochs",
        "1",
        "--threads",
        "2",
        "--loss",
        "inv_weight=0",
    )
    assert out.returncode == 0, out.stderr
    assert "ncc" in out.stdout and "→" in out.stdout and "variance" in out.stdout
    monkeypatch.setattr(
        runs, "fit", lambda *a, **k: pytest.fail("the API did not find the CLI's run")
    )
    runs.train("vicreg", "smoke", epochs=1, loss={"inv_weight": 0})


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    from sslkit.cli import main

    out = cli("--help")
    assert out.returncode == 0 and "train" in out.stdout and "clean-cache" in out.stdout
    for args, expected in [
        (("train", "--profile", "smoke", "--loss", "bogus"), "KEY=VALUE"),
        (("train", "--profile", "smoke", "--loss", "inv_wieght=0"), "valid: inv_weight"),
        (("train", "--profile", "smoke", "--loss", "inv_weight=nan"), "finite"),
        (("train", "--profile", "smoke", "--threads", "-3"), "--threads"),
        (("data", "imagenet"), "Known datasets"),
        (("clean-cache", "--root", str(tmp_path)), "does not look like an sslkit cache"),
        (("train", "--profile", "smoke", "--loss", "inv_weight=1e39", "--no-cache"), "non-finite"),
        (
            ("train", "--method", "simclr", "--profile", "smoke", "--loss", "temperature=1e-30"),
            "non-finite",
        ),
    ]:
        (tmp_path / "x").mkdir(exist_ok=True)
        capsys.readouterr()
        code = main(list(args))  # in this process: the same main() the command runs
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert expected in err and len(err.strip().splitlines()) == 1, (args, err)
    out = cli("train", "--profile", "smoke", "--loss", "inv_weight=1e39", "--no-cache")
    assert out.returncode == 2 and "non-finite" in out.stderr and "Traceback" not in out.stderr


def test_cli_profiles_rejects_an_unknown_profile(monkeypatch):
    monkeypatch.setenv("SSLKIT_PROFILE", "tiny")
    out = cli("profiles")
    assert out.returncode == 2 and "Unknown profile 'tiny'" in out.stderr


def test_features_are_extracted_once_per_snapshot_for_many_metrics(monkeypatch, fast):
    run = runs.train("vicreg", fast, progress=False)
    runtime.clear_caches()
    calls = []
    real = runs.extract_features
    monkeypatch.setattr(runs, "extract_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    run.evaluate(targets=("fine", "coarse"), metrics=("ncc", "cdnv", "knn"), epochs=[0])
    run.value("probe", 0)
    assert len(calls) == 2  # train and test features of epoch 0, once


def test_the_untrained_control_has_batchnorm_statistics_of_the_data(fast):
    from sslkit.augment import to_float

    run = runs.train("vicreg", fast, progress=False)
    net = run.backbone_at(0)
    raw = run.snapshots[0]
    bn_name = next(k for k in raw if k.endswith("running_mean"))
    assert torch.equal(raw[bn_name], torch.zeros_like(raw[bn_name]))  # what initialisation left
    _, eval_train, _ = runs.datasets_for(fast)
    x = to_float(eval_train.images, *eval_train.mean_std())
    conv = net.stages[0][0]
    n = len(x) - len(x) % min(2048, len(x))
    expected = conv(x[:n]).mean((0, 2, 3))
    bn = net.stages[0][1]
    assert torch.allclose(bn.running_mean, expected, atol=1e-4)
    for k, v in raw.items():  # the weights themselves are untouched
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(net.state_dict()[k].cpu(), v), k


def test_runs_of_one_seed_share_the_untrained_evaluation(monkeypatch, fast):
    a = runs.train("vicreg", fast, progress=False)
    b = runs.train("barlow", fast, progress=False)
    c = runs.train("vicreg", fast, seed=1, progress=False)
    first = a.evaluate(targets=("fine",), metrics=("ncc", "cdnv"), epochs=[0])
    runtime.clear_caches()
    monkeypatch.setattr(
        runs, "extract_features", lambda *a, **k: pytest.fail("epoch 0 evaluated twice")
    )
    assert b.evaluate(targets=("fine",), metrics=("ncc", "cdnv"), epochs=[0]).equals(first)
    with pytest.raises(
        pytest.fail.Exception, match="evaluated twice"
    ):  # another seed: other weights
        c.evaluate(targets=("fine",), metrics=("ncc",), epochs=[0])
    assert data.fingerprint_state(a.snapshots[0]) == data.fingerprint_state(b.snapshots[0])
    assert data.fingerprint_state(a.snapshots[0]) != data.fingerprint_state(
        a.snapshots[fast.epochs]
    )


def test_the_data_are_part_of_every_key(monkeypatch, fast):
    """Reliability: a relabelled copy of the data never returns results of the real data."""
    run = runs.train("vicreg", fast, progress=False)
    true_ncc = run.final("ncc")

    def shuffled(name, split, download=True):
        ds = data.load(name, split)
        g = torch.Generator().manual_seed(0)
        return ds.select(torch.arange(len(ds))).__class__(
            ds.name, ds.images, ds.labels[torch.randperm(len(ds), generator=g)],
            ds.coarse_labels, ds.classes, ds.coarse_classes,
        )  # fmt: skip

    runtime.clear_caches()
    monkeypatch.setattr(runs, "_load", shuffled)
    calls = []
    real_fit = runs.fit
    monkeypatch.setattr(runs, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    relabelled = runs.train("vicreg", fast, progress=False)
    assert calls == [1]  # other data, another network
    assert relabelled.final("ncc") != true_ncc


def test_evaluations_are_keyed_by_the_weights(fast):
    """Reliability: a network trained again into other weights is evaluated again."""
    run = runs.train("vicreg", fast, progress=False)
    before = run.final("ncc")
    last = run.epochs[-1]
    run.snapshots[last] = {
        k: v * 0 if k.endswith("weight") else v for k, v in run.snapshots[last].items()
    }
    run._hashes.clear()
    runtime.clear_caches()
    assert run.final("ncc") != before


def test_default_loss_arguments_spelled_out_share_the_entry():
    prof = profiles.get_profile("smoke")
    spelled = runs.train_config("vicreg", prof, 0, {"var_weight": 25}, "data")
    assert spelled == runs.train_config("vicreg", prof, 0, {}, "data")
    assert spelled["loss"] == {"inv_weight": 25.0, "var_weight": 25.0, "cov_weight": 1.0}


@pytest.mark.parametrize("fault", ["shape", "missing", "nan"])
def test_a_stored_run_that_loads_but_is_wrong_is_recomputed(monkeypatch, fast, fault):
    from sslkit import cache

    run = runs.train("vicreg", fast, progress=False)
    path = next((cache.cache_root() / "train").glob("*.pt"))
    entry = torch.load(path, weights_only=True)
    state = entry["result"]["state_dict"]
    name = next(k for k in state if k.endswith("weight"))
    if fault == "shape":
        state[name] = state[name][:1]
    elif fault == "missing":
        del entry["result"]["snapshots"]
    else:
        state[name] = state[name] * float("nan")
    torch.save(entry, path)
    runtime.clear_caches()
    with pytest.warns(cache.CacheWarning, match=path.name):
        again = runs.train("vicreg", fast, progress=False)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_weights_that_overflow_are_never_stored(fast):
    one_step = fast.replace(lr=1e39, epochs=1, train_size=fast.batch_size)  # inf after the step
    with pytest.raises(FloatingPointError, match="weights are not finite after epoch 1"):
        runs.train("vicreg", one_step, progress=False)
    from sslkit import cache

    assert not list((cache.cache_root() / "train").glob("*.pt"))


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(epochs=-1), "epochs"),
        (dict(batch_size=1), "batch_size"),
        (dict(eval_every=0), "eval_every"),
        (dict(train_size=0), "train_size"),
        (dict(widths=()), "widths"),
        (dict(seeds=(0, 0)), "seeds"),
        (dict(lr=0.0), "lr"),
        (dict(epochs=2.5), "epochs"),
    ],
)
def test_a_profile_with_a_bad_setting_names_it(change, field):
    with pytest.raises(ValueError, match=field):
        profiles.get_profile("smoke").replace(**change)


def test_an_evaluation_set_too_small_for_its_classes_is_refused():
    with pytest.raises(ValueError, match="eval_size 1 leaves fewer than 5 images per class"):
        runs.datasets_for(profiles.get_profile("smoke").replace(eval_size=1))


def test_evaluating_nothing_is_refused(fast):
    run = runs.train("vicreg", fast, progress=False)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        run.evaluate(metrics=())


def test_out_of_memory_names_the_setting_to_lower(monkeypatch, fast):
    def full(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")

    monkeypatch.setattr(runs, "fit", full)
    with pytest.raises(MemoryError, match="lower batch_size"):
        runs.train("vicreg", fast, progress=False)


def test_stopping_after_the_first_epochs_reproduces_the_full_runs_snapshots():
    prof = profiles.get_profile("smoke").replace(epochs=4, eval_every=2)
    full = runs.train("vicreg", prof, seed=0)
    first = runs.train("vicreg", prof, seed=0, stop_after=2)
    assert first.epochs == [0, 2] and full.epochs == [0, 2, 4]
    for k, v in full.snapshots[2].items():
        assert torch.equal(v, first.snapshots[2][k]), k  # same schedule, same weights
    again = runs.train("vicreg", prof, seed=0)  # the partial run was never cached as the run
    assert again.epochs == [0, 2, 4]


def test_collect_keeps_the_stage_and_split_asked_for(fast):
    from sslkit import analysis

    run = runs.train("vicreg", fast, progress=False)
    every = analysis.collect({"a": [run]}, targets=("fine",), metrics=("ncc",))
    last = analysis.collect({"a": [run]}, targets=("fine",), metrics=("ncc",), stage="last",
                            split="test")  # fmt: skip
    assert set(last.stage) == {run.last_stage} and set(last.split) == {"test"}
    expected = every[(every.stage == run.last_stage) & (every.split == "test")]
    assert last.value.tolist() == expected.value.tolist()
    first = analysis.collect({"a": [run]}, targets=("fine",), metrics=("ncc",), stage="stage1")
    assert set(first.stage) == {"stage1"} and set(first.split) == {"train", "test"}


def test_cli_train_says_how_many_processes_and_which_backend(monkeypatch, capsys):
    """Under torchrun the summary names the process count and the backend (planted: two
    gloo processes around a stand-in run); in one process, 1 and none."""
    import pandas as pd

    from sslkit import cli as cli_module
    from sslkit.cli import main

    class Stub:
        profile = profiles.get_profile("smoke")

        def losses(self):
            return pd.DataFrame()

        def initial(self, metric):
            return 0.1

        def final(self, metric):
            return 0.2

    monkeypatch.setattr(cli_module, "train", lambda *a, **k: Stub())
    assert main(["train", "--profile", "smoke"]) == 0
    assert "processes 1 (backend none)" in capsys.readouterr().out
    monkeypatch.setattr(cli_module.distributed, "world_size", lambda: 2)
    monkeypatch.setattr(cli_module.torch.distributed, "get_backend", lambda: "gloo")
    assert main(["train", "--profile", "smoke"]) == 0
    assert "processes 2 (backend gloo)" in capsys.readouterr().out
