"""The cost of a chapter before it runs: operation counts, cached runs, estimates, defaults."""

import json
import pathlib
import re

import pytest
import torch

from sslkit import configs, cost, plan, profiles, runs
from sslkit.models import ResNet18, build_backbone

ROOT = pathlib.Path(__file__).resolve().parent.parent


def reference_macs(model, channels, side):
    """Multiply-accumulates of every Conv2d and Linear layer, from their output shapes."""
    total = []

    def conv(m, inp, out):
        total.append(
            out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        )

    def linear(m, inp, out):
        total.append(out.numel() * m.in_features)

    hooks = [
        m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, channels, side, side))
    for h in hooks:
        h.remove()
    return sum(total)


def test_cifar_resnet18_costs_about_half_a_gigamac_per_image():
    net = ResNet18(3)
    flops = cost.forward_flops(net, 3, 32)
    assert flops / 2 == pytest.approx(reference_macs(net, 3, 32), rel=0.01)
    assert flops / 2 == pytest.approx(0.556e9, rel=0.02)  # the CIFAR ResNet-18's known ~0.56 GMAC


def test_convnet_count_matches_the_layer_by_layer_reference():
    net = build_backbone("convnet", 1, 28, (8, 16, 32, 64))
    assert cost.forward_flops(net, 1, 28) / 2 == pytest.approx(reference_macs(net, 1, 28), rel=0.01)


def test_training_costs_three_passes_per_view_plus_evaluation():
    prof = profiles.get_profile("smoke")
    per_image = plan.flops_per_image("vicreg", prof)
    vicreg = cost.run_cost("vicreg", prof, per_image)
    steps = prof.epochs * (1437 // prof.batch_size)
    evaluation = len(prof.eval_epochs()) * (1437 + 360) * per_image
    assert vicreg.steps == steps
    assert vicreg.flops == pytest.approx(3 * 2 * per_image * steps * prof.batch_size + evaluation)
    # one view, not two
    assert (
        cost.run_cost("supervised", prof, plan.flops_per_image("supervised", prof)).flops
        < vicreg.flops
    )


def test_the_plan_counts_the_model_that_train_builds(monkeypatch):
    prof = profiles.get_profile("smoke").replace(epochs=1, eval_every=1)
    counted = []
    monkeypatch.setattr(
        runs,
        "warn_if_long",
        lambda model, method, p: counted.append(cost.forward_flops(model, 1, 8)),
    )
    run = runs.train("vicreg", prof, seed=0, progress=False, cache=False)
    assert counted == [plan.flops_per_image("vicreg", prof)]  # one count, on the model that trained
    assert run.epochs == prof.eval_epochs()


def test_plan_lists_every_run_and_counts_the_cached_ones():
    prof = profiles.get_profile("smoke").replace(epochs=1, eval_every=1)
    before = plan.chapter_plan("01", prof)
    assert list(before.config) == ["rotation"] * 3 + ["jigsaw"] * 3
    assert list(before.seed) == list(prof.seeds) * 2 and not before.cached.any()
    runs.train("rotation", prof, seed=prof.seeds[1], progress=False)
    after = plan.chapter_plan("01", prof)
    assert after.cached.tolist() == [False, True, False, False, False, False]
    with pytest.raises(ValueError, match="unknown chapter '9'"):
        plan.chapter_plan("9", prof)


def test_with_a_gpu_the_default_profile_fits_fifteen_t4_minutes_per_chapter(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    default = profiles.get_profile()
    assert default.name == "cpu"
    for chapter in plan.CHAPTER_CONFIGS:
        assert plan.chapter_estimate(chapter, default, "T4") <= 15 * 60, chapter
    # and the CIFAR profile does not: it stays opt-in
    assert plan.chapter_estimate("04", "gpu", "T4") > 15 * 60


def test_each_chapter_uses_only_the_configurations_its_plan_lists():
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        chapter = path.stem.split("_")[0]
        code = "".join(
            "".join(c["source"])
            for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"
        )
        named = {name for name in configs.CONFIGS if re.search(rf'"{re.escape(name)}"', code)}
        if "configs.RATIOS" in code:
            named |= set(configs.RATIOS.values())
        assert named <= set(plan.CHAPTER_CONFIGS[chapter]), (
            chapter,
            named - set(plan.CHAPTER_CONFIGS[chapter]),
        )
        assert f'book.setup(chapter="{chapter}")' in code or chapter == "00"


def test_a_long_run_prints_its_estimate_and_the_smaller_profile(capsys):
    gpu = profiles.get_profile("gpu")
    resnet = torch.nn.Sequential(ResNet18(3), torch.nn.Linear(512, 2048))
    seconds = cost.warn_if_long(resnet, "vicreg", gpu)
    assert seconds > 600
    out = capsys.readouterr().out
    assert "estimated at" in out and "SSLKIT_PROFILE=cpu" in out
    cost.warn_if_long(
        build_backbone("convnet", 1, 8, (16, 32, 64)), "vicreg", profiles.get_profile("smoke")
    )
    assert capsys.readouterr().out == ""


def test_durations_read_naturally():
    assert [cost.fmt_duration(s) for s in (0.1, 42, 600, 9000)] == [
        "0 s",
        "42 s",
        "10 min",
        "2.5 h",
    ]


def test_cli_plan_prints_the_chapter_and_the_throughput_table():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "sslkit", "plan", "--profile", "smoke", "--chapter", "01"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "0 of 6 runs cached" in out.stdout and "T4" in out.stdout and "estimate" in out.stdout
    summary = subprocess.run(
        [sys.executable, "-m", "sslkit", "plan", "--profile", "smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert summary.returncode == 0 and "04b" in summary.stdout
