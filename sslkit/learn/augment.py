"""Batched augmentations with per-sample random parameters, on whatever device the batch is on.

``torchvision.transforms`` applied to a batch tensor draws *one* set of parameters for the
whole batch: every image gets the same crop and the same jitter, which makes the two
views of an SSL pair far too easy to match. Here each image of the batch draws its own
parameters, with vectorised tensor ops (no Python loop over samples, no PIL), so a whole
GPU-resident dataset can be augmented batch by batch.

Inputs are uint8 or float images (N, C, H, W); float images are in [0, 1]. Each
``*_`` function takes an optional ``torch.Generator`` for reproducible draws.

Pretext tasks: :func:`rotate` / :func:`rotation_batch` (Gidaris et al., 2018) and
:func:`jigsaw` (Noroozi & Favaro, 2016).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "to_float",
    "pixel_features",
    "random_resized_crop",
    "color_jitter",
    "random_grayscale",
    "gaussian_blur",
    "solarize",
    "ViewAugment",
    "preset",
    "two_views",
    "rotate",
    "rotation_batch",
    "jigsaw_permutations",
    "jigsaw",
]


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a batch of images N×C×H×W, got {shape}")


def _rand(n: int, x: torch.Tensor, generator, low=0.0, high=1.0) -> torch.Tensor:
    """n uniform numbers in [low, high) on x's device."""
    u = torch.rand(n, device=x.device, generator=generator)
    return low + (high - low) * u


def to_float(images: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """uint8 → float32 in [0, 1]; then ``(x - mean) / std`` per channel if given."""
    _check_images(images)
    x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    if mean is not None:
        m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        x = (x - m) / s
    return x


def pixel_features(images) -> torch.Tensor:
    """The raw pixels as features: uint8 images N×… → N×D float32 in [0, 1], one row per image
    (what the pixel floor is measured on)."""
    return torch.as_tensor(images).flatten(1).float() / 255


def random_resized_crop(x, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip_p=0.5, generator=None):
    """Per-sample random resized crop (and horizontal flip), resized back to H×W.

    Each image draws an area fraction ``s ~ U(scale)`` and a log-uniform aspect ratio
    ``r``; the crop is ``w = sqrt(s r)``, ``h = sqrt(s / r)`` (fractions of the side,
    clipped to 1) at a uniform position. All crops are one affine grid and one
    ``grid_sample`` call; a flip is the sign of the grid's x axis.
    """
    _check_images(x)
    n = x.shape[0]
    area = _rand(n, x, generator, *scale)
    log_r = _rand(n, x, generator, math.log(ratio[0]), math.log(ratio[1]))
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (1 - w) * _rand(n, x, generator, -1, 1)  # centre in normalised coords [-1, 1]
    cy = (1 - h) * _rand(n, x, generator, -1, 1)
    flip = torch.where(_rand(n, x, generator) < flip_p, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, shape (N, 1, H, W)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _mask(n, x, p, generator) -> torch.Tensor:
    return (_rand(n, x, generator) < p).view(n, 1, 1, 1)


def color_jitter(x, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8, generator=None):
    """Per-sample colour jitter, applied to each image with probability ``p``.

    Factors are drawn per image: brightness ``x * b``, contrast (blend with the image's
    mean grey level), saturation (blend with its grey image), each ``b ~ U(1-a, 1+a)``;
    hue is a rotation by ``2π h``, ``h ~ U(-hue, hue)``, of the chroma plane in YIQ
    space (a vectorised stand-in for torchvision's HSV hue shift). Saturation and hue
    are skipped for single-channel images. The order is fixed (torchvision shuffles it).
    """
    _check_images(x)
    n = x.shape[0]
    apply = _mask(n, x, p, generator)
    out = x
    if brightness:
        b = _rand(n, x, generator, 1 - brightness, 1 + brightness).view(n, 1, 1, 1)
        out = (out * b).clamp(0, 1)
    if contrast:
        c = _rand(n, x, generator, 1 - contrast, 1 + contrast).view(n, 1, 1, 1)
        m = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
        out = (c * out + (1 - c) * m).clamp(0, 1)
    if x.shape[1] == 3:
        if saturation:
            s = _rand(n, x, generator, 1 - saturation, 1 + saturation).view(n, 1, 1, 1)
            out = (s * out + (1 - s) * _gray(out)).clamp(0, 1)
        if hue:
            angle = 2 * math.pi * _rand(n, x, generator, -hue, hue)
            to_yiq = torch.tensor(
                [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                device=x.device,
                dtype=x.dtype,
            )
            cos, sin = torch.cos(angle), torch.sin(angle)
            rot = torch.zeros(n, 3, 3, device=x.device, dtype=x.dtype)
            rot[:, 0, 0] = 1
            rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
            mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (n, 3, 3)
            out = torch.einsum("nij,njhw->nihw", mat, out).clamp(0, 1)
    return torch.where(apply, out, x)


def random_grayscale(x, p=0.2, generator=None):
    """Turn each colour image grey with probability ``p`` (single-channel: unchanged)."""
    _check_images(x)
    if x.shape[1] == 1 or p == 0:
        return x
    return torch.where(_mask(x.shape[0], x, p, generator), _gray(x).expand_as(x), x)


def gaussian_blur(x, p=0.5, sigma=(0.1, 2.0), kernel_frac=0.1, generator=None):
    """Blur each image with probability ``p`` by a Gaussian of its own ``σ ~ U(sigma)``.

    ``sigma`` is in pixels of a 224-pixel image (as in SimCLR) and rescaled to this
    image size; the kernel side is about ``kernel_frac`` of the image side (odd, ≥ 3).
    One grouped, separable convolution blurs the whole batch.
    """
    _check_images(x)
    n, c, h, w = x.shape
    if p == 0:
        return x
    size = max(3, int(kernel_frac * min(h, w)) // 2 * 2 + 1)
    s = _rand(n, x, generator, *sigma) * (min(h, w) / 224)
    s = s.clamp_min(1e-3)
    t = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * s.view(-1, 1) ** 2))
    k = k / k.sum(1, keepdim=True)  # (n, size)
    k = k.repeat_interleave(c, dim=0)  # one kernel per (image, channel)
    y = x.reshape(1, n * c, h, w)
    pad = size // 2
    y = F.conv2d(
        F.pad(y, (pad, pad, 0, 0), mode="reflect"), k.view(n * c, 1, 1, size), groups=n * c
    )
    y = F.conv2d(
        F.pad(y, (0, 0, pad, pad), mode="reflect"), k.view(n * c, 1, size, 1), groups=n * c
    )
    return torch.where(_mask(n, x, p, generator), y.view(n, c, h, w), x)


def solarize(x, p=0.2, threshold=0.5, generator=None):
    """With probability ``p`` per image, invert the pixels at or above ``threshold``."""
    _check_images(x)
    if p == 0:
        return x
    flipped = torch.where(x >= threshold, 1 - x, x)
    return torch.where(_mask(x.shape[0], x, p, generator), flipped, x)


@dataclass(frozen=True)
class ViewAugment:
    """One view's augmentation pipeline: crop+flip → jitter → grey → blur → solarize → normalise.

    Calling it on a uint8 or [0, 1] batch returns normalised float32 views.
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    solarize_p: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, images: torch.Tensor, generator=None) -> torch.Tensor:
        x = to_float(images)
        x = random_resized_crop(x, self.crop_scale, flip_p=self.flip_p, generator=generator)
        if self.jitter_p > 0:
            x = color_jitter(x, *self.jitter, p=self.jitter_p, generator=generator)
        x = random_grayscale(x, self.grayscale_p, generator=generator)
        x = gaussian_blur(x, self.blur_p, generator=generator)
        x = solarize(x, self.solarize_p, generator=generator)
        return to_float(x, self.mean, self.std)


def preset(method: str, dataset) -> tuple[ViewAugment, ViewAugment]:
    """The two view pipelines for ``method`` on ``dataset`` (a :class:`~sslkit.data.Dataset`).

    - ``simclr``: symmetric, crop scale (0.08, 1), jitter (0.4, 0.4, 0.4, 0.1) p=0.8,
      grayscale p=0.2 (Chen et al., 2020).
    - ``vicreg`` / ``barlow``: asymmetric, blur p=1.0 / 0.1 and solarize p=0 / 0.2
      (Bardes et al., 2022; Zbontar et al., 2021).
    - ``rotation``, ``jigsaw``, ``supervised``: a light crop and flip only.

    Small images (≤ 32 px) skip the blur, as in the CIFAR recipes, and crop no smaller
    than 20% of the image (50% for tiny ones, ≤ 16 px); single-channel images use brightness and
    contrast jitter only.
    """
    mean, std = dataset.mean_std()
    side = min(dataset.images.shape[-2:])
    small = side <= 32
    crop = (0.5, 1.0) if side <= 16 else (0.2, 1.0) if small else (0.08, 1.0)
    common = dict(mean=mean, std=std, crop_scale=crop)
    method = method.lower()
    if method == "simclr":
        v = ViewAugment(jitter=(0.4, 0.4, 0.4, 0.1), blur_p=0.0 if small else 0.5, **common)
        return v, v
    if method in ("vicreg", "barlow"):
        j = (0.4, 0.4, 0.2, 0.1)
        return (
            ViewAugment(jitter=j, blur_p=0.0 if small else 1.0, solarize_p=0.0, **common),
            ViewAugment(jitter=j, blur_p=0.0 if small else 0.1, solarize_p=0.2, **common),
        )
    if method in ("rotation", "jigsaw", "supervised"):
        v = ViewAugment(
            crop_scale=(0.6, 1.0),
            jitter_p=0.0,
            grayscale_p=0.0,
            flip_p=0.0 if method == "rotation" else 0.5,
            mean=mean,
            std=std,
        )
        return v, v
    raise ValueError(
        f"no augmentation preset for method {method!r}; known: simclr, vicreg, "
        "barlow, rotation, jigsaw, supervised"
    )


def two_views(images, augments, generator=None):
    """Two independently augmented views of the same batch."""
    a1, a2 = augments
    return a1(images, generator), a2(images, generator)


# --------------------------------------------------------------------------- pretext tasks


def rotate(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate image ``i`` by ``k[i] × 90°`` counter-clockwise (square images)."""
    _check_images(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotation needs square images, got {tuple(x.shape[-2:])}")
    k = torch.as_tensor(k, device=x.device).long() % 4
    if k.shape != (x.shape[0],):
        raise ValueError(
            f"need one rotation per image: k has shape {tuple(k.shape)}, batch {x.shape[0]}"
        )
    all_rot = torch.stack([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)])  # (4, N, C, H, W)
    return all_rot[k, torch.arange(x.shape[0], device=x.device)]


def rotation_batch(x: torch.Tensor):
    """Every image at 0°, 90°, 180° and 270°: (4N images, their rotation labels 0..3)."""
    _check_images(x)
    views = torch.cat([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return views, labels


def jigsaw_permutations(grid: int = 2, count: int | None = None, seed: int = 0) -> torch.Tensor:
    """A fixed set of tile permutations (one row per permutation of the ``grid²`` tiles).

    - A 2×2 grid (or smaller): all ``(grid²)!`` permutations (24 for 2×2) in lexicographic
      order, or with ``count`` the first ``count`` of them in that order.
    - A larger grid: ``count`` permutations (``count=None`` means 100, as in Noroozi &
      Favaro, 2016) picked greedily, each maximising its minimum Hamming distance to those
      already picked, from a pool of ``20 × count`` permutations drawn with ``seed``, so the
      set is the same on every machine. The identity is always the first.
    """
    tiles = grid * grid
    if tiles <= 4:
        perms = torch.tensor(list(itertools.permutations(range(tiles))))
        return perms if count is None else perms[:count]
    count = count or 100
    g = torch.Generator().manual_seed(seed)
    pool = torch.stack([torch.randperm(tiles, generator=g) for _ in range(20 * count)])
    chosen = [torch.arange(tiles)]
    min_dist = (pool != chosen[0]).sum(1)
    for _ in range(count - 1):
        i = int(min_dist.argmax())
        chosen.append(pool[i])
        min_dist = torch.minimum(min_dist, (pool != pool[i]).sum(1))
    return torch.stack(chosen)


def jigsaw(x: torch.Tensor, perm_index: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """Cut each image into a grid of tiles and reorder them by its own permutation.

    Tile ``j`` of the output is tile ``permutations[perm_index[i], j]`` of image ``i``.
    H and W must be divisible by the grid side (``sqrt`` of the permutation length).
    """
    _check_images(x)
    n, c, h, w = x.shape
    tiles = permutations.shape[1]
    g = int(round(math.sqrt(tiles)))
    if g * g != tiles or h % g or w % g:
        raise ValueError(f"a {g}×{g} jigsaw needs H and W divisible by {g}; got {h}×{w}")
    th, tw = h // g, w // g
    t = x.reshape(n, c, g, th, g, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, tiles, c, th, tw)
    order = permutations.to(x.device)[perm_index.to(x.device)]  # (n, tiles)
    t = t[torch.arange(n, device=x.device).unsqueeze(1), order]
    return t.reshape(n, g, g, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)
