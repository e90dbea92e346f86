import pandas as pd
import pytest
import torch

from sslkit import data
from sslkit.losses import LossOutput
from sslkit.methods import make_method
from sslkit.models import ConvNet, SSLModel
from sslkit.train import CollapseWarning, fit


@pytest.fixture(scope="module")
def digits():
    return data.load("digits").subset(256, seed=0)


def tiny(method, ds, seed=0):
    torch.manual_seed(seed)
    backbone = ConvNet(1, (8, 16), image_size=8)
    return SSLModel(backbone, method.make_head(backbone.out_dim))


def short_fit(ds, method_name="vicreg", epochs=2, **kw):
    method = make_method(method_name, ds, projector=(32, 32))
    return fit(
        tiny(method, ds), method, ds, epochs=epochs, batch_size=64, lr=1e-3, progress=False, **kw
    )


def test_history_is_tidy_and_records_every_term(digits):
    hist = short_fit(digits)
    assert {"epoch", "phase", "step", "metric", "value"} <= set(hist.columns)
    steps = hist[hist.phase == "step"]
    assert steps.step.max() == 2 * (256 // 64)
    assert set(steps.metric) == {"total", "invariance", "variance", "covariance", "embedding_std"}
    epochs = hist[(hist.phase == "epoch") & (hist.metric == "total")]
    per_step = steps[steps.metric == "total"].groupby("epoch").value.mean()
    assert epochs.set_index("epoch").value.to_dict() == pytest.approx(per_step.to_dict())


def test_same_seed_repeats_exactly(digits):
    a = short_fit(digits, seed=3)
    b = short_fit(digits, seed=3)
    c = short_fit(digits, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.value.equals(c.value)


@pytest.mark.parametrize("name", ["simclr", "barlow", "rotation", "jigsaw", "supervised"])
def test_every_method_trains_in_the_same_loop(digits, name):
    hist = short_fit(digits, name, epochs=1)
    assert hist[hist.phase == "step"].value.notna().all()


def test_callbacks_run_at_the_chosen_epochs(digits):
    seen = []

    def cb(model, epoch):
        seen.append((epoch, model.training))
        return {"answer": epoch * 10}

    def cb_frame(model, epoch):
        return pd.DataFrame([dict(metric="ncc", split="test", value=0.5)])

    hist = short_fit(digits, epochs=3, callbacks=[cb, cb_frame], eval_epochs=[0, 2])
    assert [e for e, _ in seen] == [0, 2]
    ev = hist[hist.phase == "eval"]
    assert ev[ev.metric == "answer"].value.tolist() == [0, 20]
    assert set(ev[ev.metric == "ncc"].split) == {"test"}


def test_nan_loss_stops_with_the_step_and_last_terms(digits):
    calls = {"n": 0}

    def exploding(model, images, labels, generator):
        calls["n"] += 1
        z = model(images.float())
        val = z.mean() * (float("nan") if calls["n"] == 3 else 1.0)
        return LossOutput(val, {"thing": val.detach()})

    backbone = ConvNet(1, (4,), image_size=8)
    model = SSLModel(backbone, torch.nn.Linear(4, 2))
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 3.*thing"):
        fit(model, exploding, digits, epochs=1, batch_size=32, progress=False)


def test_collapse_is_reported(digits):
    def collapsed(model, images, labels, generator):
        z = model(images.float())
        return LossOutput(z.pow(2).mean(), {"embedding_std": torch.tensor(0.001)})

    model = SSLModel(ConvNet(1, (4,), image_size=8), torch.nn.Linear(4, 2))
    with pytest.warns(CollapseWarning, match="collapsed"):
        hist = fit(model, collapsed, digits, epochs=1, batch_size=64, progress=False)
    assert (hist.metric == "collapse").any()


def test_resume_from_checkpoint_equals_an_uninterrupted_run(digits, tmp_path):
    full = short_fit(digits, epochs=4, seed=1)
    short_fit(digits, epochs=4, seed=1, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert (tmp_path / "epoch_2.pt").is_file() and (tmp_path / "last.pt").is_file()
    resumed = short_fit(digits, epochs=4, seed=1, resume=tmp_path / "epoch_2.pt")
    a = full[full.phase == "step"].reset_index(drop=True)
    b = resumed[resumed.phase == "step"].reset_index(drop=True)
    pd.testing.assert_frame_equal(a[["epoch", "step", "metric"]], b[["epoch", "step", "metric"]])
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=1e-5, abs=1e-6)


def test_bad_batch_size_is_explained(digits):
    with pytest.raises(ValueError, match="lower batch_size"):
        short_fit(digits.subset(10), epochs=1)


def test_nan_gradient_stops_before_the_update_and_names_the_step(digits, tmp_path):
    calls = {"n": 0}

    def poisoned(model, images, labels, generator):
        calls["n"] += 1
        z = model(images.float())
        scale = torch.tensor(float("inf")) if calls["n"] == 4 else torch.tensor(1.0)
        loss = (
            (z * 0).sum() * scale if calls["n"] == 4 else z.pow(2).mean()
        )  # finite value, NaN gradient
        return LossOutput(torch.nan_to_num(loss), {"thing": loss.detach()})

    model = SSLModel(ConvNet(1, (4,), image_size=8), torch.nn.Linear(4, 2))
    with pytest.raises(FloatingPointError, match=r"non-finite gradient at epoch 1, step 4"):
        fit(
            model,
            poisoned,
            digits,
            epochs=2,
            batch_size=64,
            progress=False,
            checkpoint_dir=tmp_path,
            checkpoint_every=1,
        )
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not list(tmp_path.iterdir())  # no checkpoint with bad weights


def test_checkpoint_errors_are_explained(digits, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_dir and checkpoint_every"):
        short_fit(digits, epochs=1, checkpoint_dir=tmp_path)
    bad = tmp_path / "truncated.pt"
    short_fit(digits, epochs=1, checkpoint_dir=tmp_path, checkpoint_every=1)
    bad.write_bytes((tmp_path / "last.pt").read_bytes()[:100])
    with pytest.raises(ValueError, match=f"cannot resume from {bad}"):
        short_fit(digits, epochs=2, resume=bad)


def test_mixed_precision_only_where_the_gpu_computes_bfloat16(monkeypatch):
    from sslkit.runtime import autocast_dtype

    assert autocast_dtype("cpu") is None
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation
    )
    assert autocast_dtype("cuda") is None  # emulated only (a T4): plain float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert autocast_dtype("cuda") is torch.bfloat16


def test_fit_reads_in_one_screen():
    """The loop shows forward, loss, backward and step; the rest lives in named helpers."""
    import ast
    import inspect

    from sslkit import train

    tree = ast.parse(inspect.getsource(train))
    fn = next(n for n in tree.body if getattr(n, "name", "") == "fit")
    body = fn.body[1:]  # after the docstring
    assert body[-1].end_lineno - body[0].lineno + 1 <= 40


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(method_name="simclr"), "method"),
        (dict(batch_size=32), "batch_size"),
        (dict(epochs=6), "epochs"),
        (dict(widths=(8, 32)), "architecture"),
    ],
)
def test_resuming_another_runs_checkpoint_is_refused_naming_what_differs(
    digits, tmp_path, change, named
):
    short_fit(digits, epochs=4, checkpoint_dir=tmp_path, checkpoint_every=2)
    method = make_method(change.get("method_name", "vicreg"), digits, projector=(32, 32))
    torch.manual_seed(0)
    backbone = ConvNet(1, change.get("widths", (8, 16)), image_size=8)
    model = SSLModel(backbone, method.make_head(backbone.out_dim))
    with pytest.raises(ValueError, match=f"saved by another run.*{named}"):
        fit(model, method, digits, epochs=change.get("epochs", 4), lr=1e-3, progress=False,
            batch_size=change.get("batch_size", 64), resume=tmp_path / "epoch_2.pt")  # fmt: skip
