import subprocess
import sys
import time

import pytest
import torch

from sslkit import experiments, profiles


def test_smoke_vicreg_clusters_digits_by_class_within_a_minute():
    start = time.perf_counter()
    run = experiments.run("vicreg", "smoke", progress=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 60
    before, after = run.initial("ncc"), run.final("ncc")
    # SSL never sees a label, yet the classes become more separable by their centres.
    assert after > before + 0.02, (before, after)
    assert run.final("cdnv") < run.initial("cdnv")
    assert run.final("probe") >= run.initial("probe")


def test_runs_are_cached_by_configuration(monkeypatch):
    calls = []
    real_fit = experiments.fit

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(experiments, "fit", counting_fit)
    a = experiments.run("simclr", "smoke", progress=False, epochs=2)
    b = experiments.run("simclr", "smoke", progress=False, epochs=2)
    assert len(calls) == 1  # the second call loaded the first one's result
    assert b.history.equals(a.history)
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v.cpu(), w.cpu()), k
    c = experiments.run("simclr", "smoke", progress=False, epochs=2, loss={"temperature": 0.2})
    assert len(calls) == 2 and not c.history.equals(a.history)
    experiments.run("simclr", "smoke", progress=False, epochs=2, cache=False)
    assert len(calls) == 3


def test_layerwise_random_targets_and_sample_level():
    run = experiments.run("vicreg", "smoke", epochs=0, stages="all", randomness=(0.0, 1.0),
                          sample_level=True, progress=False)
    ev = run.evals(metric="ncc", split="train")
    assert set(ev.stage) == {"stage1", "stage2", "stage3"}
    assert set(ev.target) == {"fine", "coarse", "random_0", "random_1"}
    fine = ev[(ev.target == "fine")].set_index("stage").value
    r0 = ev[(ev.target == "random_0")].set_index("stage").value
    assert fine.to_dict() == pytest.approx(r0.to_dict())  # randomness 0 = the true labels
    assert 0 <= run.final("sample_ncc", target="sample") <= 1


def test_profiles_default_and_errors(monkeypatch):
    monkeypatch.setenv("SSLKIT_PROFILE", "smoke")
    assert profiles.get_profile().name == "smoke"
    monkeypatch.delenv("SSLKIT_PROFILE")
    assert profiles.get_profile().name == ("gpu" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="smoke, cpu, gpu, paper"):
        profiles.get_profile("huge")
    assert profiles.get_profile("cpu").replace(epochs=1).epochs == 1


def test_cli_train_prints_a_summary(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sslkit", "train", "--method", "rotation",
                          "--profile", "smoke", "--epochs", "2", "--threads", "2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ncc" in out.stdout and "→" in out.stdout and "cross_entropy" in out.stdout


def test_cli_help_and_errors():
    out = subprocess.run([sys.executable, "-m", "sslkit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "profiles" in out.stdout
    out = subprocess.run([sys.executable, "-m", "sslkit", "train", "--method", "vicreg", "--profile", "smoke",
                          "--loss", "bogus"], capture_output=True, text=True)
    assert out.returncode != 0 and "KEY=VALUE" in out.stderr
    out = subprocess.run([sys.executable, "-m", "sslkit", "data", "imagenet"], capture_output=True, text=True)
    assert out.returncode == 2 and "Known datasets" in out.stderr
