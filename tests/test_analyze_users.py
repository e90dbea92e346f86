"""sslkit analyze on a practitioner's own images and models ("Meet users where they are"): a
folder of PNGs end to end, the stratified --limit, pretrained weights without a network, the
default taps of a ViT and of a plain nn.Sequential backbone, and an error that says what to do
for each way a folder can be wrong."""

import importlib.machinery
import json
import math
import sys
import types
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from sslkit.anymodel.encoders import build_encoder, model_input
from sslkit.anymodel.folders import Folder, read_folder
from sslkit.anymodel.sources import fit_and_score, labels_of, stratified_split, stratified_take
from sslkit.anymodel.taps import Tap, default_layers, resolve_layers
from sslkit.cli import build_parser, main
from sslkit.reverse import analyze

QUIET = dict(progress=False, cache=False, untrained=None, pixels=False, draws=2)
CLASSES = ("car", "cat", "dog")


def _png_folder(root, classes=CLASSES, n=12, side=16, seed=0):
    """``n`` PNGs of ``side`` pixels per class, each class its own colour plus noise."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 60, (side, side, 3)) + 80 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i:02d}.png")
    return root


# --------------------------------------------------------------------------- end to end


def test_a_folder_of_pngs_is_analysed_end_to_end_on_the_command_line(tmp_path, capsys):
    root = _png_folder(tmp_path / "photos")
    coarse = tmp_path / "coarse.csv"
    coarse.write_text("class,coarse\ncar,vehicle\ncat,animal\ndog,animal\nbus,vehicle\n")
    out = tmp_path / "report"
    rc = main(["analyze", "--model", "sslkit:convnet", "--data", f"folder:{root}",
               "--limit", "30", "--size", "16", "--coarse", str(coarse), "--draws", "2",
               "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "%|" not in captured.err  # no progress bar where stderr is no terminal
    payload = json.loads((out / "results.json").read_text())
    settings, rows = payload["settings"], payload["rows"]
    assert (settings["fit_images"], settings["score_images"]) == (24, 6)  # 10 a class: 8 + 2
    assert (settings["classes"], settings["coarse_classes"]) == (3, 2)
    assert settings["data"].startswith(f"folder {root}: 3 classes, images as 16×16 RGB")
    assert "at most 30 images" in settings["data"]
    assert {r["network"] for r in rows} == {"model", "untrained", "pixels"}
    assert {r["layer"] for r in rows if r["network"] == "model"} == {
        f"stage{i}" for i in (1, 2, 3, 4)
    }
    assert {r["target"].partition("@")[0] for r in rows} == set(
        ("fine", "coarse", "coarse_random", "random_function")
    )
    accuracies = [r["value"] for r in rows if r["metric"] != "cdnv"]
    assert all(0 <= v <= 1 for v in accuracies)
    assert all(math.isfinite(r["value"]) for r in rows if r["metric"] == "cdnv")
    pixels = {
        r["metric"]: r["value"] for r in rows if r["network"] == "pixels" and r["target"] == "fine"
    }
    assert pixels["ncc"] == 1.0  # each class its own colour: the pixels separate them
    html = (out / "report.html").read_text()
    assert html.startswith("<!doctype html>") and html.count("<img src='data:image/png") >= 5


def test_analyze_takes_a_folder_by_name_and_is_silent_without_a_terminal(tmp_path, capsys):
    root = _png_folder(tmp_path / "photos", n=5)
    model = build_encoder("sslkit:convnet", 3, 16, seed=0)
    a = analyze(model, f"folder:{root}", targets=("fine",), metrics=("ncc",), draws=2,
                untrained=None, pixels=False, cache=False)  # fmt: skip
    assert capsys.readouterr().err == ""  # progress=None: a bar only on a terminal
    assert (a.settings["fit_images"], a.settings["score_images"]) == (12, 3)  # 4 + 1 a class
    assert "32×32" in a.settings["data"]  # Folder's default side
    again = analyze(model, Folder(root, 32), targets=("fine",), metrics=("ncc",), **QUIET)
    assert again.table.value.tolist() == a.table.value.tolist()  # the same seeded split


# --------------------------------------------------------------------------- the limit


def test_the_limit_is_stratified_exact_and_seeded():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    keep = stratified_take(labels, 20, seed=0)
    assert torch.bincount(labels[keep]).tolist() == [12, 6, 2]
    assert torch.equal(keep, stratified_take(labels, 20, seed=0))  # deterministic
    assert not torch.equal(keep, stratified_take(labels, 20, seed=1))
    assert torch.equal(keep, keep.sort().values) and len(keep.unique()) == 20
    odd = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    assert torch.bincount(odd[stratified_take(odd, 7, 0)]).tolist() == [3, 2, 2]  # exactly 7
    assert torch.equal(stratified_take(odd, 100, 0), torch.arange(15))
    names = np.array(["b", "a", "b", "a"] * 5)  # any labels: strings too
    assert len(stratified_take(names, 6, 0)) == 6
    sizes = torch.tensor([0] * 12 + [1] * 3 + [2] * 2 + [3] * 1)
    fit, score = stratified_split(sizes, seed=0)
    assert torch.bincount(sizes[fit], minlength=4).tolist() == [10, 2, 2, 1]
    assert torch.bincount(sizes[score], minlength=4).tolist() == [2, 1, 0, 0]
    assert sorted(torch.cat([fit, score]).tolist()) == list(range(18))


def test_the_limit_holds_for_every_data_source(tmp_path):
    root = _png_folder(tmp_path / "photos")
    fit, score, how = fit_and_score(Folder(root, 16), seed=0, limit=30)
    assert torch.bincount(fit.fine).tolist() == [8, 8, 8]
    assert torch.bincount(score.fine).tolist() == [2, 2, 2]
    assert "at most 30 images" in how
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (200, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(200) % 4
    fit, score, _ = fit_and_score((images, labels), seed=0, limit=40)  # one set: cut, then split
    assert fit.n + score.n == 40
    assert torch.bincount(torch.cat([fit.fine, score.fine])).tolist() == [10, 10, 10, 10]
    pair = ((images[:150], labels[:150]), (images[150:], labels[150:]))
    fit, score, _ = fit_and_score(pair, seed=0, limit=40)  # two splits: each its share
    assert (fit.n, score.n) == (30, 10)
    assert torch.bincount(fit.fine).tolist() == [8, 8, 7, 7]  # 38, 38, 37, 37 before
    x, _, _ = next(iter(fit.batches(64)))
    assert x.shape == (30, 1, 8, 8)  # the batches read the kept images only
    ds = torch.utils.data.TensorDataset(images.float() / 255, labels)  # no targets: one pass
    fit, score, _ = fit_and_score(ds, seed=0, limit=20)
    assert (
        sorted(torch.bincount(torch.cat([labels_of(s, 64)[0] for s in (fit, score)])).tolist())
        == [5] * 4
    )
    with pytest.raises(ValueError, match="limit must be a whole number"):
        fit_and_score((images, labels), seed=0, limit=1)


# --------------------------------------------------------------------------- folder errors


def test_each_way_a_folder_can_be_wrong_says_what_to_do(tmp_path, capsys):
    out = ["--out", str(tmp_path / "out"), "--quiet"]
    rc = main(
        ["analyze", "--model", "sslkit:convnet", "--data", f"folder:{tmp_path / 'nope'}", *out]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: no folder") and "PATH/CLASS/IMAGE.png" in err[-1]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        read_folder(Folder(a_file))
    one = _png_folder(tmp_path / "one", classes=("cat",), n=3)
    with pytest.raises(ValueError, match=r"holds 1 class folder \(cat\).* at least two"):
        read_folder(Folder(one))
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (4, 4)).save(flat / "a.png")
    with pytest.raises(ValueError, match="holds 0 class folders; its 1 images lie directly in it"):
        read_folder(Folder(flat))
    root = _png_folder(tmp_path / "photos", n=3)
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="class folders 'empty' in .* hold no image files"):
        read_folder(Folder(root))
    (root / "empty" / "notes.txt").unlink()
    (root / "empty").rmdir()
    (root / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    assert read_folder(Folder(root)).classes == list(CLASSES)
    (root / "cat" / "broken.png").write_bytes(b"not a png at all")
    model = build_encoder("sslkit:convnet", 3, 16, seed=0)
    with pytest.raises(
        ValueError, match=r"cannot read the image .*broken.png .*replace it, delete"
    ):
        analyze(model, Folder(root, 16), targets=("fine",), **QUIET)
    (root / "cat" / "broken.png").unlink()
    with pytest.raises(ValueError, match=r"class folders 'cat' \(1\), 'dog' \(1\) have too few "
                       r"images after --limit 4.*raise --limit"):  # fmt: skip
        analyze(model, Folder(root, 16), targets=("fine",), limit=4, **QUIET)


def test_a_coarse_file_must_label_every_class(tmp_path):
    root = _png_folder(tmp_path / "photos", n=3)
    as_json = tmp_path / "coarse.json"
    as_json.write_text(json.dumps({"car": "vehicle", "cat": "animal", "dog": "animal"}))
    images = read_folder(Folder(root, coarse=as_json))
    assert images.coarse_classes == ["animal", "vehicle"]
    assert images.coarse.tolist() == [1] * 3 + [0] * 6
    partial = tmp_path / "partial.csv"
    partial.write_text("class,coarse\ncar,vehicle\n")
    with pytest.raises(ValueError, match="no coarse label for the class folders cat, dog"):
        read_folder(Folder(root, coarse=partial))
    headless = tmp_path / "headless.csv"
    headless.write_text("car,vehicle\ncat,animal\n")
    with pytest.raises(ValueError, match="needs the header class,coarse"):
        read_folder(Folder(root, coarse=headless))
    with pytest.raises(FileNotFoundError, match="no coarse-label file"):
        read_folder(Folder(root, coarse=tmp_path / "missing.csv"))


def test_folder_flags_are_refused_for_a_named_dataset_and_pretrained_with_weights(tmp_path, capsys):
    base = ["analyze", "--model", "sslkit:convnet", "--out", str(tmp_path / "out")]
    assert main([*base, "--size", "16"]) == 2
    assert "--size and --coarse are for --data folder:PATH" in capsys.readouterr().err
    assert main([*base, "--pretrained", "--weights", "w.pt"]) == 2
    assert "give --pretrained or --weights, not both" in capsys.readouterr().err


# --------------------------------------------------------------------------- pretrained


def _offline(monkeypatch):
    def no_network(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


def test_pretrained_torchvision_weights_come_from_a_local_file_without_a_network(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _offline(monkeypatch)
    said = (
        "could not fetch the pretrained weights of torchvision:squeezenet1_1 from "
        r"https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth \(URLError.*"
        "put it at .*--weights FILE"
    )
    with pytest.raises(RuntimeError, match=said):
        build_encoder("torchvision:squeezenet1_1", pretrained=True)
    rc = main(["analyze", "--model", "torchvision:squeezenet1_1", "--pretrained",
               "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 2 and "error: could not fetch the pretrained weights" in capsys.readouterr().err
    saved = build_encoder("torchvision:squeezenet1_1", seed=7)  # the "downloaded" weights
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(saved.state_dict(), cache / "squeezenet1_1-b8a52dc0.pth")
    loaded = build_encoder("torchvision:squeezenet1_1", seed=0, pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(),
                                                 loaded.state_dict().values()))  # fmt: skip
    expects = model_input("torchvision:squeezenet1_1", loaded, pretrained=True)
    assert expects.side == 224 and expects.mean == pytest.approx((0.485, 0.456, 0.406))
    root = _png_folder(tmp_path / "photos", n=3)
    flags = ["--model", "torchvision:squeezenet1_1", "--pretrained", "--data", f"folder:{root}"]
    args = build_parser().parse_args(["analyze", *flags, "--out", "x"])
    from sslkit.cli import _analyze_inputs

    _, folder, channels, side = _analyze_inputs(args)
    assert (folder.size, side, channels) == (224, 224, 3)  # the weights' own size and statistics
    assert folder.std == pytest.approx((0.229, 0.224, 0.225))
    with pytest.raises(ValueError, match="sslkit: models come without pretrained weights"):
        build_encoder("sslkit:convnet", pretrained=True)


def _fake_package(monkeypatch, name, **attrs):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, name, module)
    return module


class _TinyTimmViT(torch.nn.Module):
    """timm's ViT layout: patch tokens, a class token, ``blocks``, ``norm``; pooled output."""

    global_pool = "token"

    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 8, 8, stride=8)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 8))
        self.blocks = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8))
        self.norm = torch.nn.LayerNorm(8)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], 1)
        return self.norm(self.blocks(tokens))[:, 0]


def test_timm_pretrained_is_asked_for_and_an_offline_failure_says_what_to_do(monkeypatch):
    asked = []

    def create_model(name, pretrained=False, num_classes=None):
        asked.append((name, pretrained, num_classes))
        if pretrained and name == "offline_vit":
            raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")
        return _TinyTimmViT()

    known = dict(is_model=lambda name: name.endswith("vit"), list_models=lambda: ["tiny_vit"])
    _fake_package(monkeypatch, "timm", create_model=create_model, **known)
    model = build_encoder("timm:tiny_vit", pretrained=True)
    assert asked == [("tiny_vit", True, 0)]  # no longer forced to pretrained=False
    assert default_layers(model) == {"block1": "blocks.0", "block2": "blocks.1", "class_token": ""}
    with pytest.raises(RuntimeError, match="could not fetch the pretrained weights of "
                       "timm:offline_vit .*--weights FILE instead of --pretrained"):  # fmt: skip
        build_encoder("timm:offline_vit", pretrained=True)
    with pytest.raises(ValueError, match="timm has no model 'tiny_vt'; close names: tiny_vit"):
        build_encoder("timm:tiny_vt")


# --------------------------------------------------------------------------- default taps


def _tiny_torchvision_vit():
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                             hidden_dim=16, mlp_dim=32).eval()  # fmt: skip


def test_a_vits_default_taps_are_its_blocks_and_class_token_not_its_head():
    vit = _tiny_torchvision_vit()
    layers = default_layers(vit)
    assert layers == {
        "block1": "encoder.layers.encoder_layer_0",
        "block2": "encoder.layers.encoder_layer_1",
        "class_token": "encoder.ln:cls",
    }
    assert not any(m.startswith("heads") for m in layers.values())
    x = torch.randn(4, 3, 32, 32)
    fx, hooks = Tap(vit, layers), Tap(vit, layers, extractor=False)
    assert fx._extractor is not None
    with torch.no_grad():
        a, b = fx(x), hooks(x)
        vit.heads = torch.nn.Identity()  # what the classifier reads: the class token
        before_head = vit(x)
    hooks.close()
    assert a["class_token"].shape == (4, 16) and a["block1"].shape == (4, 16)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in layers)
    assert torch.allclose(a["class_token"], before_head, atol=1e-6)
    assert model_input("torchvision:vit_b_16", vit).side == 32  # its own image_size
    with pytest.raises(ValueError, match="close names: encoder.ln"):
        resolve_layers(vit, ["encoder.lnn:cls"])
    with pytest.raises(ValueError, match=r":cls takes the first token .* shape \(4, 16, 2, 2\)"):
        Tap(vit, resolve_layers(vit, ["conv_proj:cls"]))(x)


def test_a_vit_is_analysed_block_by_block():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 3, 32, 32), dtype=torch.uint8, generator=g)
    a = analyze(_tiny_torchvision_vit(), (images, torch.arange(60) % 3), targets=("fine",),
                metrics=("ncc", "cdnv"), **QUIET)  # fmt: skip
    assert list(dict.fromkeys(a.table.layer)) == ["block1", "block2", "class_token"]


def test_a_sequential_backbone_is_tapped_at_its_stages_and_lightlys_resnet_at_its_layers(
    monkeypatch,
):
    import torchvision

    resnet = torchvision.models.resnet18()
    backbone = torch.nn.Sequential(*list(resnet.children())[:-1])  # lightly's recipe
    assert default_layers(backbone) == {f"stage{i}": str(i + 3) for i in (1, 2, 3, 4)}
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    assert default_layers(plain) == {"output": ""}

    class LightlyResNet(torch.nn.Module):  # lightly.models.ResNetGenerator's layout
        def __init__(self, name):
            super().__init__()
            self.conv1, self.bn1 = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
            self.layer1, self.layer2, self.layer3, self.layer4 = (
                torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1)) for _ in range(4)
            )
            self.linear = torch.nn.Linear(4, 10)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.linear(x.mean((2, 3)))

    _fake_package(monkeypatch, "lightly")
    _fake_package(monkeypatch, "lightly.models", ResNetGenerator=LightlyResNet)
    net = build_encoder("lightly:resnet-18")
    assert isinstance(net.linear, torch.nn.Identity)  # the features, not 10 logits
    assert default_layers(net) == {f"layer{i}": f"layer{i}" for i in (1, 2, 3, 4)}
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 4)


class _VGGLike(torch.nn.Module):
    """torchvision's layout (``features`` then ``classifier``), small: two resolutions."""

    def __init__(self):
        super().__init__()
        conv = lambda i, o: torch.nn.Conv2d(i, o, 3, padding=1)  # noqa: E731
        self.features = torch.nn.Sequential(
            conv(3, 4), torch.nn.ReLU(), conv(4, 4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            conv(4, 8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.classifier = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_a_features_and_classifier_network_is_tapped_at_each_resolution_not_its_logits():
    # the last layer before each change of resolution, and the pooled end; never `classifier`
    assert default_layers(_VGGLike()) == {
        "stage1": "features.3",  # 64×64, before the max-pool
        "stage2": "features.6",  # 32×32, before the global pool
        "stage3": "features.7",  # 1×1
    }
    torchvision = pytest.importorskip("torchvision")
    mobile = default_layers(torchvision.models.mobilenet_v3_small(weights=None))
    assert len(mobile) >= 4 and all(m.startswith("features.") for m in mobile.values())
    assert default_layers(torch.nn.Linear(4, 2)) == {"output": ""}  # nothing to find: the output


def test_feature_stages_leave_a_model_they_cannot_trace_as_it_was():
    class Flat(torch.nn.Module):  # `features` ends in a Linear: a 64×64 image does not fit it
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(10, 2)
            )
            self.classifier = torch.nn.Identity()

    model = Flat().train()
    model.features[0].eval()  # a module deliberately frozen keeps its own mode
    assert default_layers(model) == {"output": ""}
    assert model.training and model.features[2].training and not model.features[0].training
