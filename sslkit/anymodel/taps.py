"""Which layers :func:`sslkit.analyze` reads, and how: forward hooks on named modules, each
output pooled to one vector per image as the book pools its stages."""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "default_layers",
    "transformer_layers",
    "sequential_stages",
    "feature_stages",
    "resolve_layers",
    "Tap",
    "adapt_channels",
    "FIRST_TOKEN",
]


# A module name ending in this takes the layer's first token (a ViT's class token) instead of
# the mean of its tokens: ``encoder.ln:cls``.
FIRST_TOKEN = ":cls"


def default_layers(model) -> dict[str, str]:
    """The layers :func:`analyze` taps when none are named (label → module name): the stages of
    the book's backbones (``stage1``… → ``stages.0``…); the four residual stages of a ResNet
    (``layer1``…``layer4``: torchvision, timm, lightly); each block of a vision transformer and
    its class token (:func:`transformer_layers`), never the classifier; the stages of a plain
    ``nn.Sequential`` backbone (:func:`sequential_stages`); the resolution stages of a
    ``features``/``classifier`` network such as VGG, MobileNet or EfficientNet
    (:func:`feature_stages`); else the model's output."""
    if hasattr(model, "stages") and hasattr(model, "stage_names"):
        return {name: f"stages.{i}" for i, name in enumerate(model.stage_names)}
    names = dict(model.named_modules())
    if all(f"layer{i}" in names for i in range(1, 5)):
        return {f"layer{i}": f"layer{i}" for i in range(1, 5)}
    found = transformer_layers(model) or sequential_stages(model) or feature_stages(model)
    return found or {"output": ""}


def transformer_layers(model) -> dict[str, str]:
    """A vision transformer's taps: ``block1``… (each encoder block, its tokens averaged) and
    ``class_token`` (the class token after the final norm, what the classifier reads; the
    1000-logit head is left out). torchvision's ``VisionTransformer`` (``encoder.layers``,
    ``encoder.ln``) and timm's (``blocks``; the class token is then the model's output, as
    ``timm.create_model(..., num_classes=0)`` pools it). ``{}`` for any other model."""
    encoder = getattr(model, "encoder", None)
    if hasattr(model, "class_token") and hasattr(encoder, "layers") and hasattr(encoder, "ln"):
        blocks = [f"encoder.layers.{name}" for name, _ in encoder.layers.named_children()]
        last = {"class_token": "encoder.ln" + FIRST_TOKEN}
    elif hasattr(model, "cls_token") and isinstance(getattr(model, "blocks", None), nn.Module):
        blocks = [f"blocks.{name}" for name, _ in model.blocks.named_children()]
        last = {"class_token" if getattr(model, "global_pool", None) == "token" else "output": ""}
    else:
        return {}
    return {**{f"block{i}": m for i, m in enumerate(blocks, 1)}, **last}


def sequential_stages(model) -> dict[str, str]:
    """The stages of a backbone made as a plain ``nn.Sequential`` (lightly's recipe,
    ``nn.Sequential(*list(resnet.children())[:-1])``): its children that are blocks of layers
    themselves (a ResNet's ``layer1``…``layer4``), as ``stage1``…; ``{}`` for anything else."""
    if not isinstance(model, nn.Sequential):
        return {}
    stages = [name for name, child in model.named_children() if next(child.children(), None)]
    return {f"stage{i}": name for i, name in enumerate(stages, 1)}


def feature_stages(model, size: int = 64) -> dict[str, str]:
    """The stages of a network made of ``features`` (an ``nn.Sequential``) and a
    ``classifier`` (torchvision's VGG, AlexNet, MobileNet, EfficientNet, DenseNet…): the last
    layer of ``features`` at each spatial resolution, as ``stage1``…, found by one forward pass
    of a ``size``×``size`` blank image (the classifier is never read). ``{}`` for any other
    model."""
    features = getattr(model, "features", None)
    if not (isinstance(features, nn.Sequential) and hasattr(model, "classifier")):
        return {}
    conv = next((m for m in features.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return {}
    weight = next(features.parameters())
    x = torch.zeros(1, conv.in_channels, size, size, device=weight.device, dtype=weight.dtype)
    names, sizes = [], []
    modes = {m: m.training for m in features.modules()}  # each module's own mode, restored
    features.eval()
    try:
        with torch.no_grad():
            for name, child in features.named_children():
                x = child(x)
                names.append(name)
                sizes.append(tuple(x.shape[-2:]) if x.ndim == 4 else None)
    except (RuntimeError, ValueError):  # not a plain stack of image layers: no stages here
        return {}
    finally:
        for m, training in modes.items():
            m.training = training
    last = [n for i, n in enumerate(names) if i + 1 == len(names) or sizes[i + 1] != sizes[i]]
    return {f"stage{i}": f"features.{n}" for i, n in enumerate(last, 1)}


def _module_of(name: str) -> tuple[str, bool]:
    """``(module name, whether the first token is taken)`` of a tap's module name."""
    if name.endswith(FIRST_TOKEN):
        return name.removesuffix(FIRST_TOKEN), True
    return name, False


def resolve_layers(model, layers) -> dict[str, str]:
    """The taps ``label → module name`` of ``layers`` (``None``: :func:`default_layers`; a list
    or a comma-separated string of module names; a dict). ``""`` or ``"output"`` is the model's
    output; a name ending in ``:cls`` takes that layer's first token (a class token). An unknown
    name raises a ``ValueError`` with the close names and the model's top-level layers."""
    if layers is None:
        return default_layers(model)
    if isinstance(layers, str):
        layers = [s for s in layers.split(",") if s]
    wanted = dict(layers) if isinstance(layers, dict) else {name: name for name in layers}
    known = dict(model.named_modules())
    for label, spec in wanted.items():
        module, first = _module_of(spec)
        if module in ("", "output"):
            wanted[label] = FIRST_TOKEN if first else ""
            continue
        if module not in known:
            close = difflib.get_close_matches(module, [k for k in known if k], n=5)
            top = [k for k in known if k and "." not in k]
            raise ValueError(
                f"the model has no layer {module!r}; "
                + (f"close names: {', '.join(close)}" if close else "")
                + f"{'; ' if close else ''}its top-level layers: {', '.join(top[:12])}"
            )
    if not wanted:
        raise ValueError("layers is empty: name at least one layer, or pass None for the defaults")
    return wanted


def _pool(t: torch.Tensor, first_token: bool = False) -> torch.Tensor:
    """A layer's output as one vector per image, pooled as the book pools: spatial maps (N×C×H×W)
    by global average, token sequences (N×T×D) by their mean, or their first token (a class
    token) if ``first_token``."""
    if first_token:
        if t.ndim != 3:
            raise ValueError(
                f"{FIRST_TOKEN} takes the first token of a token sequence (N×T×D), but the layer "
                f"gives shape {tuple(t.shape)}: tap it without {FIRST_TOKEN}"
            )
        return t[:, 0]
    if t.ndim == 4:
        return torch.flatten(F.adaptive_avg_pool2d(t, 1), 1)
    if t.ndim == 3:
        return t.mean(1)
    if t.ndim == 2:
        return t
    raise ValueError(
        f"cannot pool a layer output of shape {tuple(t.shape)} into one vector per image"
    )


def _pick(out, output, where="the model"):
    """The one tensor of a layer's output; a tuple or dict needs ``output`` to say which."""
    if torch.is_tensor(out):
        return out
    if isinstance(out, dict):
        if output is None:
            raise ValueError(
                f"{where} returns a dict with keys {list(out)}: pass output=KEY to say which "
                "tensor is the features"
            )
        return out[output]
    if isinstance(out, (tuple, list)):
        if output is None:
            raise ValueError(
                f"{where} returns a {type(out).__name__} of {len(out)} items: pass output=INDEX "
                "to say which tensor is the features"
            )
        return out[output]
    raise ValueError(f"{where} returns {type(out).__name__}, not a tensor")


class Tap:
    """The pooled outputs of the chosen layers in one forward pass. A torchvision model is read
    through torchvision's ``create_feature_extractor`` (which also drops what lies after the
    last tapped layer, e.g. the classifier); any other module through forward hooks on the
    named modules, which need no tracing. Both give the same tensors (a test checks it).
    ``"output"`` (module name ``""``) is the model's own output; a module name ending in
    ``:cls`` is pooled to its first token (:func:`resolve_layers`)."""

    def __init__(self, model, layers: dict[str, str], output=None, extractor: bool | None = None):
        self.model, self.layers, self.output = model, layers, output
        self._where = {label: _module_of(spec) for label, spec in layers.items()}
        if extractor is None:
            extractor = type(model).__module__.startswith("torchvision.models")
        self._extractor = None
        if extractor and all(m for m, _ in self._where.values()):
            from torchvision.models.feature_extraction import (  # lazy: torchvision models only
                create_feature_extractor,
            )

            nodes = {m: m for m, _ in self._where.values()}
            self._extractor = create_feature_extractor(model, return_nodes=nodes)
            self._extractor.train(model.training)
        modules = dict(model.named_modules())
        self._seen: dict[str, torch.Tensor] = {}
        self._hooks = (
            []
            if self._extractor is not None
            else [
                modules[m].register_forward_hook(self._keep(label))
                for label, (m, _) in self._where.items()
                if m
            ]
        )

    def _keep(self, label):
        first = self._where[label][1]

        def hook(module, inputs, out):
            where = f"layer {self.layers[label]!r}"
            self._seen[label] = _pool(_pick(out, self.output, where), first)

        return hook

    def __call__(self, x) -> dict[str, torch.Tensor]:
        if self._extractor is not None:
            got = self._extractor(x)
            return {
                label: _pool(_pick(got[m], self.output), first).float()
                for label, (m, first) in self._where.items()
            }
        self._seen = {}
        out = self.model(x)
        feats = dict(self._seen)
        for label, (m, first) in self._where.items():
            if not m:
                feats[label] = _pool(_pick(out, self.output), first)
        return {label: feats[label].float() for label in self.layers}

    def close(self):
        for h in self._hooks:
            h.remove()


def _first_conv(model):
    return next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)


def adapt_channels(model, channels: int):
    """A function applied to each batch so the model can take it: grey images are repeated to
    three channels for a model whose first convolution wants three; anything else is left."""
    conv = _first_conv(model)
    if conv is not None and channels == 1 and conv.in_channels == 3:
        return (lambda x: x.expand(-1, 3, -1, -1)), "grey images repeated to 3 channels"
    return (lambda x: x), ""
