"""The cost of a chapter before it runs: operation counts, cached runs, estimates, defaults."""

import json
import pathlib
import re

import pytest
import torch

from sslkit import configs, cost, plan, profiles, runs
from sslkit.findings import images
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


def test_training_costs_three_passes_per_view():
    prof = profiles.get_profile("smoke")
    per_image = plan.flops_per_image("vicreg", prof)
    vicreg = cost.run_cost("vicreg", prof, per_image)
    steps = prof.epochs * (1437 // prof.batch_size)
    assert vicreg.steps == steps
    assert vicreg.flops == pytest.approx(3 * 2 * per_image * steps * prof.batch_size)
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


def chapter_code():
    """Each chapter's number and the source of its code cells, in book-file order."""
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        yield path.stem.split("_")[0], code


def test_each_chapter_uses_only_the_configurations_its_plan_lists():
    for chapter, code in chapter_code():
        named = {name for name in configs.CONFIGS if re.search(rf'"{re.escape(name)}"', code)}
        if "configs.RATIOS" in code:
            named |= set(configs.RATIOS.values())
        if "images.load_evidence()" in code:  # names of stored runs it reads, never trains
            named -= {c for names, _, _ in images.DESIGN for c in names} - {
                c for c in configs.CONFIGS if f'configs.trained("{c}"' in code
            }
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
    assert "Measuring them (features, probes, kNN, UMAP, figures): not timed for the smoke" in (
        out.stdout
    )
    summary = subprocess.run(
        [sys.executable, "-m", "sslkit", "plan", "--profile", "smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert summary.returncode == 0 and "04b" in summary.stdout


def test_measuring_is_timed_for_every_chapter_and_added_to_training():
    cpu = profiles.get_profile("cpu")
    assert set(plan.MEASURING_SECONDS) == set(plan.CHAPTER_CONFIGS)
    assert all(seconds > 0 for seconds in plan.MEASURING_SECONDS.values())
    for chapter in ("00", "03"):
        runs_ = plan.chapter_plan(chapter, cpu, cache=False)
        training = float(runs_["cpu"].sum()) if len(runs_) else 0.0
        assert plan.chapter_estimate(chapter, cpu, "cpu") == pytest.approx(
            training + plan.MEASURING_SECONDS[chapter]
        )
    # timed for the cpu profile only: another profile's estimate is its training alone
    assert plan.chapter_measuring("03", "gpu") is None
    assert plan.chapter_estimate("03", "gpu", "T4") == pytest.approx(
        plan.chapter_plan("03", "gpu", cache=False)["T4"].sum()
    )
    assert plan.chapter_costs(cpu, chapters=["03"]).loc["03", "measuring"] == cost.fmt_duration(
        plan.MEASURING_SECONDS["03"]
    )
    with pytest.raises(ValueError, match="unknown chapter '9'"):
        plan.chapter_measuring("9", cpu)


def test_a_chapter_header_glues_training_measuring_and_their_sum(monkeypatch):
    from sslkit import book

    glued = {}
    monkeypatch.setattr(
        book, "glue", lambda name, value, display=False: glued.update({name: value})
    )
    monkeypatch.setitem(plan.MEASURING_SECONDS, "02b", 60.0)
    cpu = profiles.get_profile("cpu")
    book._glue_run_time("02b", cpu)
    runs_ = plan.chapter_plan("02b", cpu, cache=False)
    assert glued["run_count"] == len(runs_) == 3 * 3 + 2  # and the two temperatures of seed 0
    assert glued["measure_time"] == "60 s"
    for device, name in (("cpu", "cpu"), ("T4", "t4")):
        assert glued[f"train_time_{name}"] == cost.fmt_duration(runs_[device].sum())
        assert glued[f"run_time_{name}"] == cost.fmt_duration(runs_[device].sum() + 60.0)
    book._glue_run_time("02b", profiles.get_profile("smoke"))  # not timed for this profile
    assert glued["measure_time"] == "not timed"
    assert glued["run_time_cpu"] == glued["train_time_cpu"]
    # the book's own build refuses a chapter whose measuring is not timed
    monkeypatch.delitem(plan.MEASURING_SECONDS, "02b")
    monkeypatch.setenv("SSLKIT_BOOK_BUILD", "1")
    with pytest.raises(ValueError, match="chapter 02b's measuring time is not in"):
        book._glue_run_time("02b", cpu)


def test_the_plan_counts_the_runs_a_chapter_trains_beyond_its_configurations():
    """A chapter that calls runs.train with its own loss or profile has those runs in its plan
    (sslkit.plan._extra_runs), or its header undercounts its training; and no other."""
    for chapter, code in chapter_code():
        own = re.search(r"runs\.train\([^\n]*(loss=|profile\.replace)", code)
        planned = any(plan._extra_runs(chapter, profiles.get_profile(p)) for p in ("cpu", "gpu"))
        assert bool(own) == planned, (chapter, own and own[0])
    cifar = plan.chapter_plan("06", "gpu", cache=False)
    assert (cifar.config == "VICReg on CIFAR-10").sum() == len(profiles.get_profile("gpu").seeds)
