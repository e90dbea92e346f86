"""Encoders by name, for ``python -m sslkit analyze --model SPEC [--weights PATH]``.

``SPEC`` is ``library:name``:

- ``torchvision:resnet18`` (any name of ``torchvision.models.list_models()``), built with no
  pretrained weights; ``--weights`` loads a state dict of your own;
- ``sslkit:convnet`` or ``sslkit:resnet18``: the book's backbones, sized for the data;
- ``timm:NAME`` and ``lightly:NAME`` where that library is installed (neither is a dependency of
  sslkit).

Weights are read with ``torch.load(..., weights_only=True)``: a file that would run code when
loaded is refused.
"""

from __future__ import annotations

import difflib
import importlib.util
import warnings

import torch

from ..learn.models import build_backbone

__all__ = ["build_encoder", "load_weights"]


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ValueError(
            f"the {package}: models need the package {package!r}, which is not installed here: "
            f"pip install {package} (sslkit does not depend on it)"
        )


def build_encoder(spec: str, channels: int = 3, image_size: int = 32, seed: int | None = None):
    """A freshly initialised encoder for ``spec`` (``seed``: its initial weights, else torch's
    global generator). The same call with another seed is the untrained floor of the
    architecture, with the architecture's own initialisation."""
    library, sep, name = spec.partition(":")
    if not sep or not name:
        raise ValueError(
            f"model {spec!r}: write LIBRARY:NAME, e.g. torchvision:resnet18, sslkit:convnet, "
            "timm:resnet18 or lightly:resnet-18"
        )
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        if library == "torchvision":
            import torchvision  # lazy: a second to import, and only torchvision: models need it

            known = torchvision.models.list_models()
            if name not in known:
                close = difflib.get_close_matches(name, known, n=5)
                raise ValueError(
                    f"torchvision has no model {name!r}"
                    + (f"; close names: {', '.join(close)}" if close else "")
                )
            return torchvision.models.get_model(name, weights=None)
        if library == "sslkit":
            return build_backbone(name, channels, image_size)
        if library == "timm":
            _need("timm")
            import timm  # lazy: optional, not a dependency of sslkit

            return timm.create_model(name, pretrained=False, num_classes=0)
        if library == "lightly":
            _need("lightly")
            from lightly.models import ResNetGenerator  # lazy: optional, not a dependency

            net = ResNetGenerator(name)
            return torch.nn.Sequential(*list(net.children())[:-1])
    raise ValueError(
        f"unknown library {library!r} in {spec!r}; use torchvision, sslkit, timm or lightly"
    )


# Prefixes that training frameworks put before a backbone's own parameter names.
_PREFIXES = ("module.", "backbone.", "encoder.", "model.")
# A classification head an SSL backbone's weights may lack.
_HEADS = ("fc.", "head.", "classifier.")


def _covers(state: dict, own: dict) -> bool:
    """Whether ``state`` holds every weight of ``own`` but a classification head."""
    return all(k in state for k in own if not k.startswith(_HEADS))


def _read_state(path) -> dict:
    """The state dict in the file at ``path`` (``weights_only``), unwrapped from a checkpoint
    that nests it under ``"state_dict"`` or ``"model"``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no weights file at {path}") from None
    except Exception as err:  # noqa: BLE001 - any unreadable or unsafe file
        raise ValueError(
            f"cannot read weights from {path} with weights_only=True ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); save a plain state dict with "
            "torch.save(model.state_dict(), path)"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return state


def load_weights(model, path) -> torch.nn.Module:
    """Load a state dict saved with ``torch.save`` into ``model`` (strictly: every key must
    match). A checkpoint that nests it under ``"state_dict"`` or ``"model"`` is unwrapped, and
    one common prefix (``module.``, ``backbone.``…) is removed. A mismatch raises a
    ``ValueError`` that lists the first missing and unexpected keys."""
    state = _read_state(path)
    own = model.state_dict()
    for prefix in _PREFIXES:  # an SSL checkpoint: the backbone's keys under one prefix
        inner = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        if inner and not any(k.startswith(prefix) for k in own) and _covers(inner, own):
            if len(inner) < len(state):
                warnings.warn(
                    f"{path}: loading the {len(inner)} weights under {prefix!r}; "
                    f"{len(state) - len(inner)} others (a projector, a head) are left out",
                    stacklevel=2,
                )
            state = inner
            break
    head = [k for k in own if k not in state and k.startswith(_HEADS)]
    if head and _covers(state, own):  # a backbone without its classifier: the head stays random
        warnings.warn(
            f"{path} has no classifier head ({', '.join(head[:2])}…): it stays at random "
            "initialisation; tap the layers before it",
            stacklevel=2,
        )
        state = {**state, **{k: own[k] for k in head}}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys, first: {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys, first: {', '.join(unexpected[:5])}")
        if wrong:
            parts.append(
                "wrong shapes: "
                + ", ".join(
                    f"{k} {tuple(state[k].shape)} ≠ {tuple(own[k].shape)}" for k in wrong[:5]
                )
            )
        raise ValueError(
            f"the weights in {path} do not match the architecture ({'; '.join(parts)}); check "
            "--model, or save the backbone's own state_dict"
        )
    model.load_state_dict(state)
    return model
