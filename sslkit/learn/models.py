"""Backbones that expose every stage, projector MLPs, and the model that joins them.

Every backbone has ``forward(x)`` (pooled features of the last stage) and
``forward_stages(x)`` (a list with the globally average-pooled features of *each*
stage, in one forward pass), so a chapter can probe every layer at once, and ``stage_dims``
(the width of each stage's features, shallowest first).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ConvNet", "ResNet18", "Projector", "SSLModel", "build_backbone"]


class _StagedBackbone(nn.Module):
    """Shared logic: ``self.stages`` is an ``nn.ModuleList`` applied in order after
    ``self.stem``."""

    stem: nn.Module
    stages: nn.ModuleList
    stage_dims: tuple[int, ...]

    @property
    def out_dim(self) -> int:
        return self.stage_dims[-1]

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(f"stage{i + 1}" for i in range(len(self.stages)))

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Global-average-pooled features of every stage, shallowest first."""
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class ConvNet(_StagedBackbone):
    """A small VGG-style ConvNet for the CPU profiles.

    Stage ``i`` is conv3×3–BN–ReLU at width ``widths[i]``, preceded (from the second
    stage on) by a 2×2 max-pool while the feature map is at least 2 pixels wide.
    """

    def __init__(self, in_channels: int = 1, widths=(32, 64, 128, 256), image_size: int = 28):
        super().__init__()
        if not widths:
            raise ValueError("ConvNet needs at least one stage width")
        self.stem = nn.Identity()
        stages, cin, size = [], in_channels, image_size
        for i, w in enumerate(widths):
            layers = []
            if i > 0 and size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            stages.append(nn.Sequential(*layers, *_conv_bn_relu(cin, w)))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.stage_dims = tuple(widths)


class ResNet18(_StagedBackbone):
    """CIFAR-style ResNet-18: torchvision's ``resnet18`` with a 3×3 stride-1 stem and no max-pool.

    The four residual layers are the stages (64, 128, 256, 512 channels); the
    classification layer is dropped.
    """

    def __init__(self, in_channels: int = 3):
        super().__init__()
        # lazy: torchvision's models take a while to import, and only ResNet-18 needs them
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False), net.bn1, net.relu
        )
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.stage_dims = (64, 128, 256, 512)


class Projector(nn.Sequential):
    """MLP head: ``[Linear–BN–ReLU] × len(hidden)`` then a final Linear.

    The VICReg and Barlow Twins expanders; SimCLR's projection head with one hidden
    layer; with ``hidden=()`` it is a linear classifier (pretext and supervised heads).
    """

    def __init__(self, in_dim: int, hidden=(512, 512), out_dim: int | None = None):
        hidden = tuple(hidden)
        if out_dim is None:
            if not hidden:
                raise ValueError("Projector needs hidden widths or out_dim")
            hidden, out_dim = hidden[:-1], hidden[-1]
        layers: list[nn.Module] = []
        for a, b in zip((in_dim, *hidden[:-1]), hidden):
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(hidden[-1] if hidden else in_dim, out_dim))
        super().__init__(*layers)
        self.out_dim = out_dim


class SSLModel(nn.Module):
    """A backbone followed by a head (projector or classifier): ``model(x) = head(backbone(x))``."""

    def __init__(self, backbone: _StagedBackbone, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_backbone(
    kind: str, in_channels: int, image_size: int, widths=(32, 64, 128, 256)
) -> _StagedBackbone:
    """A backbone by name: ``"convnet"`` or ``"resnet18"``."""
    if kind == "convnet":
        return ConvNet(in_channels, widths, image_size)
    if kind == "resnet18":
        return ResNet18(in_channels)
    raise ValueError(f"unknown backbone {kind!r}; use 'convnet' or 'resnet18'")
