"""sslkit.analyze on any encoder: streaming statistics, agreement with the book's evaluation,
bad input, and the command line."""

import json
import re

import pytest
import torch

from sslkit import metrics, profiles, runs
from sslkit.reverse import analyze
from sslkit.streaming import ClassStats, NCCScore, whiten


def _blobs(n=3000, d=16, k=5, offset=1000.0, seed=0):
    centres = torch.randn(k, d, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    return offset + centres[y] + 0.7 * torch.randn(n, d, generator=g), y


def test_streaming_statistics_equal_the_in_memory_formulas():
    x, y = _blobs()
    tx, ty = _blobs(seed=1)
    s = ClassStats(5, covariance=True)
    for xb, yb in zip(x.split(701), y.split(701)):  # uneven batches
        s.update(xb, yb)
    xd = x.double()  # the reference in float64, from the formulas
    centres = torch.stack([xd[y == c].mean(0) for c in range(5)])
    var = torch.stack([((xd[y == c] - centres[c]) ** 2).sum(1).mean() for c in range(5)])
    assert torch.allclose(s.centres, centres, rtol=0, atol=1e-9)
    # features 1000 away from the origin: Q/n − ‖μ‖² would cancel in float32 without the shift
    assert torch.allclose(s.variances, var, rtol=1e-6)
    i, j = torch.triu_indices(5, 5, 1)
    cdnv = ((var[i] + var[j]) / (2 * ((centres[i] - centres[j]) ** 2).sum(1))).mean().item()
    assert s.cdnv() == pytest.approx(cdnv, rel=1e-6)
    assert s.cdnv() == pytest.approx(metrics.cdnv(xd, y), rel=1e-6)
    mu, w = s.whitener()
    mu_ref, w_ref = metrics.zca_whitener(xd)
    assert torch.allclose(mu, mu_ref) and torch.allclose(w, w_ref, atol=1e-6)
    score = NCCScore(s)
    white = NCCScore(s, s.whitener())
    for xb, yb in zip(tx.split(999), ty.split(999)):
        score.add(xb, yb)
        white.add(xb, yb)
    assert score.accuracy == pytest.approx(metrics.ncc_accuracy(tx.double(), ty, xd, y), abs=1e-9)
    assert white.accuracy == pytest.approx(
        metrics.whitened_ncc_accuracy(tx.double(), ty, xd, y), abs=1e-9
    )


def test_ncc_scores_share_one_whitening_and_one_class_scores_its_own_samples():
    x, y = _blobs(n=600)
    tx, ty = _blobs(n=300, seed=1)
    s = ClassStats(5, covariance=True)
    s.update(x, y)
    w = s.whitener()
    own, shared = NCCScore(s, w), NCCScore(s, w)
    own.add(tx, ty)
    shared.add(tx, ty, whitened=whiten(tx, w))  # what analyze does: one whitening per layer
    assert (own.correct, own.total) == (shared.correct, shared.total) and own.total == 300
    white = whiten(x, w)
    assert white.dtype == torch.float64  # centred, identity covariance
    assert white.mean(0).abs().max() < 1e-9
    assert (torch.cov(white.T) - torch.eye(16, dtype=torch.float64)).abs().max() < 0.02
    one = ClassStats(3)
    one.update(x[:10], torch.zeros(10, dtype=torch.long))
    score = NCCScore(one)  # a target of one group (coarse labels all equal): trivially right
    score.add(tx[:4], torch.tensor([0, 0, 1, 2]))
    assert score.accuracy == 0.5


def test_streaming_refuses_what_it_cannot_measure():
    s = ClassStats(3)
    with pytest.raises(ValueError, match="update"):
        s.cdnv()
    first = torch.randn(3, 4)
    first[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        s.update(first, torch.tensor([0, 1, 2]))
    with pytest.raises(
        ValueError, match="no batch added yet"
    ):  # a rejected first batch left nothing
        s.cdnv()
    with pytest.raises(ValueError, match="0..2"):
        s.update(torch.zeros(2, 4), torch.tensor([0, 3]))
    s.update(torch.randn(4, 4), torch.tensor([0, 0, 0, 0]))
    with pytest.raises(ValueError, match="two classes"):
        s.cdnv()
    bad = torch.randn(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite.*was not added"):
        s.update(bad, torch.tensor([1, 1, 2]))
    assert s.counts.tolist() == [4, 0, 0]  # the batch left no trace
    with pytest.raises(ValueError, match="covariance=True"):
        s.whitener()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    prof = profiles.get_profile("smoke").replace(epochs=2, eval_every=2)
    return runs.train("vicreg", prof, progress=False, cache=False)


def test_the_generic_path_equals_the_books_evaluation(smoke_run):
    r = smoke_run
    _, eval_train, eval_test = runs.datasets_for(r.profile)
    last = r.epochs[-1]
    rulers = ("ncc", "whitened_ncc", "cdnv", "probe", "knn")
    book = r.evaluate(targets=("fine",), metrics=rulers, epochs=[last])
    book = book[book.split.isin(["train", "test"])]
    a = analyze(
        r.backbone_at(last), (eval_train, eval_test), targets=("fine",), metrics=rulers,
        untrained=None, pixels=False, progress=False, cache=False,
    )  # fmt: skip
    ours = a.table[a.table.network == "model"]
    joined = book.merge(
        ours, left_on=["stage", "metric", "split"], right_on=["layer", "metric", "split"]
    )
    assert len(joined) == len(ours) == 3 * 6  # 3 stages; NCC, whitened, probe, kNN + CDNV twice
    for _, row in joined.iterrows():
        if row.metric == "cdnv":
            assert row.value_y == pytest.approx(row.value_x, rel=1e-5), row.stage
        else:  # accuracies: equal, up to a tie broken the other way by float rounding
            assert abs(row.value_y - row.value_x) <= 1 / len(eval_test), (row.stage, row.metric)
    assert a.settings["subsampled"] is False


def test_controls_floors_and_subsampling_are_reported():
    g = torch.Generator().manual_seed(0)
    n = 400
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    fine = torch.arange(n) % 4
    coarse = fine // 2
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.BatchNorm2d(6), torch.nn.ReLU())
    a = analyze(model, (images, fine, coarse), layers={"conv": "0", "out": "output"}, draws=3,
                max_fit=100, progress=False, cache=False)  # fmt: skip
    t = a.table
    assert set(t.network) == {"model", "untrained", "pixels"}
    assert set(t[t.target.str.startswith("coarse_random")].target) == {
        f"coarse_random@{d}" for d in range(3)
    }
    assert a.settings["subsampled"] and a.settings["probe_knn_images"][0] <= 101
    assert a.settings["fit_images"] == 320 and a.settings["score_images"] == 80  # one set: 80/20
    assert not t.value.isna().any()


def _fixed(net, scale=1.0):
    """``net`` with weights that no random generator decides: its key is the same anywhere."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.linspace(-scale, scale, p.numel()).view_as(p))
    return net


def test_the_cache_key_is_pinned_so_that_cached_analyses_stay_served(monkeypatch):
    # an analysis cached before a change of analyze is served after it only under the same key
    def conv(scale):
        bn = torch.nn.BatchNorm2d(3)
        return _fixed(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), bn, torch.nn.ReLU()), scale)

    keys = []

    def record(kind, key, compute, enabled):
        keys.append((kind, key))
        return {"rows": None}  # nothing measured: the key is what this test reads

    monkeypatch.setattr("sslkit.reverse.cached", record)
    images = (torch.arange(200 * 64) * 37 % 256).to(torch.uint8).view(200, 1, 8, 8)
    fine = torch.arange(200) % 4
    data = (images, fine * 10 + 3, fine // 2)
    model, floor = conv(1.0), conv(2.0)
    with pytest.warns(UserWarning, match="mapped"):
        analyze(model, data, {"conv": "0", "out": ""}, untrained=floor, draws=2, max_fit=60,
                batch_size=64, progress=False)  # fmt: skip
    assert keys == [
        (
            "evaluate",
            {
                "kind": "analyze",
                "model": "8abbcecc00559950",
                "untrained_weights": "961974d8eb9ec243",
                "data": ["db8ad3c7db9d9006", "a1c53728b9e25215"],
                "fit_images": 160,
                "score_images": 40,
                "classes": 4,
                "coarse_classes": 2,
                "labels_mapped": True,
                "layers": {"conv": "0", "out": ""},
                "targets": ["fine", "coarse", "coarse_random", "random_function"],
                "draws": 2,
                "metrics": ["ncc", "whitened_ncc", "cdnv", "probe", "knn"],
                "probe_knn_images": [60, 40],
                "subsampled": True,
                "untrained": "given; BatchNorm calibrated on the data",
                "pixels": "average-pooled to at most 32×32",
                "adapted": "",
                "whitening": "ZCA, ε = 0.001 × mean eigenvalue; layers wider than 4096 "
                "not whitened",
                "knn_k": 20,
                "seed": 0,
                "how": "one set split at random (seeded): 160 images to fit, 40 to score",
                "output": "None",
                "batch_size": 64,
            },
        )
    ]


def test_the_models_own_mode_is_restored_even_when_it_cannot_be_measured():
    images, labels = _tiny_data()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(100, 5)).train()
    with pytest.raises(ValueError, match="cannot take images"):
        analyze(model, (images, labels), progress=False, cache=False, untrained=None)
    assert model.training


def test_the_untrained_floor_is_calibrated_by_the_books_calibrate_batchnorm():
    from sslkit.augment import to_float
    from sslkit.evaluation import calibrate_batchnorm

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=g)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 2, 3), torch.nn.BatchNorm2d(2),
    )  # fmt: skip
    from_images = calibrate_batchnorm(net, images, (0.5,), (0.25,), batch_size=32)  # 3 × 32
    batches = (to_float(x, (0.5,), (0.25,)) for x in images[:96].split(32))
    from_batches = calibrate_batchnorm(net, batches)  # as analyze streams them
    for a, b in ((from_images[1], from_batches[1]), (from_images[4], from_batches[4])):
        assert torch.equal(a.running_mean, b.running_mean)
        assert torch.equal(a.running_var, b.running_var)
    with torch.no_grad():  # the average of the equal batches' means
        means = [
            net[0](to_float(x, (0.5,), (0.25,))).mean((0, 2, 3)) for x in images[:96].split(32)
        ]
    assert torch.allclose(from_images[1].running_mean, torch.stack(means).mean(0), atol=1e-6)
    assert not from_images.training and torch.equal(net[1].running_mean, torch.zeros(4))  # a copy

    def no_pass():
        raise AssertionError("a network without BatchNorm needs no pass")
        yield

    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).train()
    out = calibrate_batchnorm(plain, no_pass())
    assert out is not plain and not out.training and plain.training
    import sslkit.reverse

    assert sslkit.reverse.calibrate_batchnorm is calibrate_batchnorm  # one implementation


class _TupleOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Conv2d(1, 4, 3)

    def forward(self, x):
        f = self.body(x).mean((2, 3))
        return f, f.sum(1)


def _tiny_data(n=60, k=3):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    return images, torch.arange(n) % k


def test_bad_input_gets_a_message_that_says_what_to_do(tmp_path):
    images, labels = _tiny_data()
    quiet = dict(progress=False, cache=False, untrained=None, pixels=False, draws=2)
    with pytest.raises(ValueError, match="output=INDEX"):
        analyze(_TupleOut(), (images, labels), targets=("fine",), **quiet)
    model = _TupleOut()
    a = analyze(model, (images, labels), targets=("fine",), output=0, **quiet)
    assert set(a.table.layer) == {"output"}
    with pytest.raises(ValueError, match="close names: body"):
        analyze(_TupleOut(), (images, labels), layers=["bdy"], output=0, **quiet)
    wrong_size = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(100, 5))
    with pytest.raises(ValueError, match=r"cannot take images of shape \(2, 1, 8, 8\)"):
        analyze(wrong_size, (images, labels), targets=("fine",), **quiet)
    with pytest.raises(ValueError, match="one class only"):
        analyze(_TupleOut(), (images, labels * 0), targets=("fine",), output=0, **quiet)
    with pytest.raises(ValueError, match="needs coarse labels"):
        analyze(_TupleOut(), (images, labels), targets=("coarse",), output=0, **quiet)
    # labels that are not 0..K−1 are mapped, with a warning, and measure the same
    with pytest.warns(UserWarning, match="mapped to 0..2"):
        b = analyze(model, (images, labels * 10 + 7), targets=("fine",), output=0, **quiet)
    assert b.table.value.tolist() == a.table.value.tolist()
    from sslkit.report import writable_folder

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot write the report"):
        writable_folder(blocker / "report")


def test_a_torch_dataset_measures_like_the_same_tensors():
    images, labels = _tiny_data(90)
    x = images.float() / 255
    quiet = dict(targets=("fine",), progress=False, cache=False, untrained=None, pixels=False)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    fit = torch.utils.data.TensorDataset(x[:60], labels[:60])
    score = torch.utils.data.TensorDataset(x[60:], labels[60:])
    a = analyze(model, (fit, score), **quiet)
    b = analyze(model, ((x[:60], labels[:60]), (x[60:], labels[60:])), **quiet)
    assert a.table.value.tolist() == pytest.approx(b.table.value.tolist())


def test_weights_that_do_not_match_list_the_keys(tmp_path):
    from sslkit.encoders import build_encoder, load_weights

    net = build_encoder("sslkit:convnet", 1, 8, seed=0)
    path = tmp_path / "w.pt"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, path)
    other = build_encoder("sslkit:convnet", 1, 8, seed=1)
    load_weights(other, path)  # a DataParallel prefix is removed
    assert all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values())
    )
    torch.save({"stages.0.0.weight": torch.zeros(1), "head.bias": torch.zeros(1)}, path)
    with pytest.raises(
        ValueError,
        match="missing .* keys, first: .*unexpected 1 keys, first: head.bias; "
        r"wrong shapes: stages.0.0.weight \(1,\)",
    ):
        load_weights(other, path)
    from sslkit.encoders import _need

    with pytest.raises(ValueError, match="pip install nosuchlibrary_xyz"):
        _need("nosuchlibrary_xyz")
    with pytest.raises(ValueError, match="LIBRARY:NAME"):
        build_encoder("resnet18")
    with pytest.raises(ValueError, match="close names: resnet18"):
        build_encoder("torchvision:resnet1")


def test_the_command_line_writes_a_report_of_a_torchvision_resnet(tmp_path, capsys):
    from sslkit.cli import main

    out = tmp_path / "report"
    rc = main(["analyze", "--model", "torchvision:resnet18", "--data", "smoke", "--draws", "2",
               "--max-fit", "300", "--quiet", "--out", str(out)])  # fmt: skip
    assert rc == 0
    payload = json.loads((out / "results.json").read_text())
    networks = {row["network"] for row in payload["rows"]}
    assert networks == {"model", "untrained", "pixels"}
    assert {row["layer"] for row in payload["rows"] if row["network"] == "model"} == {
        f"layer{i}" for i in range(1, 5)
    }
    assert payload["settings"]["adapted"] == "grey images repeated to 3 channels"
    origin = payload["provenance"]
    assert origin["command"].startswith("python -m sslkit analyze --model torchvision:resnet18")
    assert origin["model"] == "torchvision:resnet18"
    assert "random initialisation" in origin["weights"]
    html = (out / "report.html").read_text()
    assert html.count("<img src='data:image/png;base64,") >= 5 and "alt=" in html
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)  # base64 may spell NaN
    assert "<img id='trend'" in html and "NaN" not in text
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["analyze", "--model", "torchvision:resnet18", "--out", str(blocker / "r")])
    assert rc == 2 and "cannot write the report" in capsys.readouterr().err


def test_weights_of_an_ssl_checkpoint_load_into_the_backbone(tmp_path):
    import torchvision

    from sslkit.encoders import load_weights

    net = torchvision.models.resnet18()
    state = {f"backbone.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    state["projector.0.weight"] = torch.zeros(3, 3)  # the SSL head, not the backbone's
    path = tmp_path / "ssl.pt"
    torch.save({"state_dict": state}, path)
    other = torchvision.models.resnet18()
    with pytest.warns(UserWarning) as caught:
        load_weights(other, path)
    said = " ".join(str(w.message) for w in caught)
    assert "under 'backbone.'" in said and "no classifier head (fc.weight" in said
    assert torch.equal(other.conv1.weight, net.conv1.weight)


def test_an_untrained_copy_refuses_to_keep_trained_raw_parameters():
    from sslkit.reverse import untrained_copy

    class WithToken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.token = torch.nn.Parameter(torch.full((4,), 7.0))

    with pytest.raises(ValueError, match="token have no layer that re-initialises them"):
        untrained_copy(WithToken())
    fresh = untrained_copy(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)))
    assert isinstance(fresh[1], torch.nn.BatchNorm2d)


def test_a_dataset_fingerprint_sees_images_and_transform():
    from sslkit.sources import _dataset_fingerprint

    x = torch.rand(20, 1, 4, 4)
    y = torch.arange(20) % 2
    a = torch.utils.data.TensorDataset(x, y)
    b = torch.utils.data.TensorDataset(x + 1, y)  # the same length and labels, other images
    assert _dataset_fingerprint(a) != _dataset_fingerprint(b)
    assert _dataset_fingerprint(a) == _dataset_fingerprint(torch.utils.data.TensorDataset(x, y))
    sub_a = torch.utils.data.Subset(a, [0, 1, 2])
    assert _dataset_fingerprint(sub_a) != _dataset_fingerprint(
        torch.utils.data.Subset(b, [0, 1, 2])
    )


def test_coarse_labels_that_split_a_class_are_refused():
    images, labels = _tiny_data(60, 3)
    coarse = labels.clone() % 2
    coarse[3] = 1  # class 0 now in coarse groups 0 and 1 (and a sum check could miss it)
    coarse[6] = 2
    with pytest.raises(ValueError, match="more than one coarse class"):
        analyze(_TupleOut(), (images, labels, coarse), output=0, progress=False, cache=False)


def test_torchvisions_feature_extractor_and_hooks_read_the_same_tensors():
    import torchvision

    from sslkit.taps import Tap, default_layers

    net = torchvision.models.resnet18().eval()
    x = torch.randn(2, 3, 32, 32)
    layers = default_layers(net)
    fx, hooks = Tap(net, layers), Tap(net, layers, extractor=False)
    assert fx._extractor is not None and hooks._extractor is None
    with torch.no_grad():
        a, b = fx(x), hooks(x)
    hooks.close()
    assert list(a) == ["layer1", "layer2", "layer3", "layer4"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_extract_features_says_what_stages_needs_and_can_skip_autocast():
    import torchvision

    from sslkit.evaluation import extract_features

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(TypeError, match="for another model use sslkit.analyze"):
        extract_features(torchvision.models.resnet18(), images, stages=True)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten())
    assert extract_features(net, images, autocast=False).dtype == torch.float32
