"""Encoders by name, for ``python -m sslkit analyze --model SPEC [--pretrained | --weights PATH]``.

``SPEC`` is ``library:name``:

- ``torchvision:resnet18`` (any name of ``torchvision.models.list_models()``), at random
  initialisation, or with torchvision's default pretrained weights (``pretrained=True``);
- ``sslkit:convnet`` or ``sslkit:resnet18``: the book's backbones, sized for the data;
- ``timm:NAME`` and ``lightly:NAME`` where that library is installed (neither is a dependency of
  sslkit); ``timm:`` models come with their pretrained weights on request.

``--weights`` loads a state dict of your own. Weights are read with
``torch.load(..., weights_only=True)``: a file that would run code when loaded is refused.
Pretrained torchvision weights are fetched once into torch's hub cache
(``$TORCH_HOME/hub/checkpoints``); a machine without internet gets an error that names the file
to fetch elsewhere.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..learn.models import build_backbone

__all__ = ["build_encoder", "load_weights", "load_pretrained", "ModelInput", "model_input"]


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ValueError(
            f"the {package}: models need the package {package!r}, which is not installed here: "
            f"pip install {package} (sslkit does not depend on it)"
        )


def build_encoder(
    spec: str,
    channels: int = 3,
    image_size: int = 32,
    seed: int | None = None,
    pretrained: bool = False,
):
    """A freshly initialised encoder for ``spec`` (``seed``: its initial weights, else torch's
    global generator), or with the model zoo's pretrained weights (``pretrained``:
    :func:`load_pretrained`). The same call with another seed is the untrained floor of the
    architecture, with the architecture's own initialisation."""
    library, sep, name = spec.partition(":")
    if not sep or not name:
        raise ValueError(
            f"model {spec!r}: write LIBRARY:NAME, e.g. torchvision:resnet18, sslkit:convnet, "
            "timm:resnet18 or lightly:resnet-18"
        )
    if library not in ("torchvision", "sslkit", "timm", "lightly"):
        raise ValueError(
            f"unknown library {library!r} in {spec!r}; use torchvision, sslkit, timm or lightly"
        )
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        if library == "torchvision":
            model = _torchvision(name)
        elif library == "sslkit":
            model = build_backbone(name, channels, image_size)
        elif library == "timm":
            return _timm(name, pretrained)  # timm loads its own pretrained weights
        else:
            model = _lightly(name)
    return load_pretrained(model, spec) if pretrained else model


def _torchvision(name: str):
    """torchvision's model ``name`` at random initialisation."""
    import torchvision  # lazy: a second to import, and only torchvision: models need it

    known = torchvision.models.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5)
        raise ValueError(
            f"torchvision has no model {name!r}"
            + (f"; close names: {', '.join(close)}" if close else "")
        )
    return torchvision.models.get_model(name, weights=None)


def _timm(name: str, pretrained: bool):
    """timm's model ``name`` without its classifier (``num_classes=0``)."""
    _need("timm")
    import timm  # lazy: optional, not a dependency of sslkit

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5)
        raise ValueError(
            f"timm has no model {name!r}" + (f"; close names: {', '.join(close)}" if close else "")
        )
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0)
    except Exception as err:  # noqa: BLE001 - offline, a missing file: timm's many errors
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not fetch the pretrained weights of timm:{name} ({_first_line(err)}); on a "
            "machine with internet run timm.create_model(NAME, pretrained=True, num_classes=0) "
            "and save its state_dict with torch.save, then pass that file with --weights FILE "
            "instead of --pretrained"
        ) from None


def _lightly(name: str):
    """lightly's ResNet ``name`` (``resnet-18``…) with its classifier replaced by the identity:
    its own forward (ReLU after the stem included) up to the pooled features."""
    _need("lightly")
    from lightly.models import ResNetGenerator  # lazy: optional, not a dependency

    net = ResNetGenerator(name)
    net.linear = torch.nn.Identity()
    return net


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def load_pretrained(model, spec: str):
    """``model`` with the model zoo's default pretrained weights of ``spec``: torchvision's
    ``DEFAULT`` weights, read from torch's hub cache (``$TORCH_HOME/hub/checkpoints``), fetched
    there first if absent. Without internet a ``RuntimeError`` names the file to fetch and
    where to put it (or pass it with ``--weights``). ``sslkit:`` and ``lightly:`` models have
    no pretrained weights (a ``ValueError`` says so)."""
    library, _, name = spec.partition(":")
    if library != "torchvision":
        raise ValueError(
            f"{library}: models come without pretrained weights: train one (for sslkit, "
            "python -m sslkit train) and pass its state dict with --weights FILE"
        )
    import torchvision  # lazy: only torchvision: models need it

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise ValueError(
            f"torchvision has no pretrained weights for {name!r}: pass a state dict with "
            "--weights FILE"
        ) from None
    return load_weights(model, _fetched(weights.url, spec))


def _fetched(url: str, what: str) -> Path:
    """The file of ``url`` in torch's hub cache, downloaded there first if absent (its hash
    checked where the file name carries one, as torchvision's do)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if path.is_file():
        return path
    digest = re.search(r"-([a-f0-9]{6,})\.", path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), digest and digest[1], progress=False)
    except Exception as err:  # noqa: BLE001 - offline, a proxy, a full disk, a bad hash
        raise RuntimeError(
            f"could not fetch the pretrained weights of {what} from {url} ({_first_line(err)}); "
            f"on a machine with internet download that file, then put it at {path} (or under "
            "$TORCH_HOME/hub/checkpoints/), or pass it with --weights FILE instead of "
            "--pretrained"
        ) from None
    return path


@dataclass(frozen=True)
class ModelInput:
    """What a model expects of its images: their ``side`` in pixels and the per-channel
    ``mean`` and ``std`` they are normalised with (each ``None`` where nothing is known)."""

    side: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def model_input(spec: str, model, pretrained: bool = False) -> ModelInput:
    """The input ``model`` (built from ``spec``) expects: a torchvision ViT's fixed
    ``image_size``, the crop size, mean and std of pretrained torchvision weights, a timm
    model's ``pretrained_cfg`` (mean and std only with its pretrained weights); nothing for
    the book's and lightly's networks, which take any size."""
    library, _, name = spec.partition(":")
    if library == "torchvision" and pretrained:
        import torchvision  # lazy: only torchvision: models need it

        t = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        return ModelInput(int(t.crop_size[0]), tuple(t.mean), tuple(t.std))
    if library == "torchvision":
        side = getattr(model, "image_size", None)
        return ModelInput(side if isinstance(side, int) else None)
    if library == "timm":
        cfg = getattr(model, "pretrained_cfg", None) or {}
        side = cfg.get("input_size", (None,))[-1]
        if not pretrained or "mean" not in cfg:
            return ModelInput(side)
        return ModelInput(side, tuple(cfg["mean"]), tuple(cfg["std"]))
    return ModelInput()


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
