"""Which layers :func:`sslkit.analyze` reads, and how: forward hooks on named modules, each
output pooled to one vector per image as the book pools its stages."""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F

__all__ = ["default_layers", "resolve_layers", "Tap", "adapt_channels"]


def default_layers(model) -> dict[str, str]:
    """The layers :func:`analyze` taps when none are named: the stages of the book's backbones
    (``stage1``… → ``stages.0``…), the four residual stages of a torchvision-style ResNet
    (``layer1``…``layer4``), else the model's output."""
    if hasattr(model, "stages") and hasattr(model, "stage_names"):
        return {name: f"stages.{i}" for i, name in enumerate(model.stage_names)}
    names = dict(model.named_modules())
    if all(f"layer{i}" in names for i in range(1, 5)):
        return {f"layer{i}": f"layer{i}" for i in range(1, 5)}
    return {"output": ""}


def resolve_layers(model, layers) -> dict[str, str]:
    if layers is None:
        return default_layers(model)
    if isinstance(layers, str):
        layers = [s for s in layers.split(",") if s]
    wanted = dict(layers) if isinstance(layers, dict) else {name: name for name in layers}
    known = dict(model.named_modules())
    for label, module in wanted.items():
        if module in ("", "output"):
            wanted[label] = ""
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


def _pool(t: torch.Tensor) -> torch.Tensor:
    """A layer's output as one vector per image, pooled as the book pools: spatial maps (N×C×H×W)
    by global average, token sequences (N×T×D) by their mean."""
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
    ``"output"`` (module name ``""``) is the model's own output."""

    def __init__(self, model, layers: dict[str, str], output=None, extractor: bool | None = None):
        self.model, self.layers, self.output = model, layers, output
        if extractor is None:
            extractor = type(model).__module__.startswith("torchvision.models")
        self._extractor = None
        if extractor and all(layers.values()):
            from torchvision.models.feature_extraction import (  # lazy: torchvision models only
                create_feature_extractor,
            )

            nodes = {m: label for label, m in layers.items()}
            self._extractor = create_feature_extractor(model, return_nodes=nodes)
            self._extractor.train(model.training)
        modules = dict(model.named_modules())
        self._seen: dict[str, torch.Tensor] = {}
        self._hooks = (
            []
            if self._extractor is not None
            else [
                modules[m].register_forward_hook(self._keep(label))
                for label, m in layers.items()
                if m
            ]
        )

    def _keep(self, label):
        def hook(module, inputs, out):
            self._seen[label] = _pool(_pick(out, self.output, f"layer {self.layers[label]!r}"))

        return hook

    def __call__(self, x) -> dict[str, torch.Tensor]:
        if self._extractor is not None:
            got = self._extractor(x)
            return {label: _pool(_pick(got[label], self.output)).float() for label in self.layers}
        self._seen = {}
        out = self.model(x)
        feats = dict(self._seen)
        for label, m in self.layers.items():
            if not m:
                feats[label] = _pool(_pick(out, self.output))
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
