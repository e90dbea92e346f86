import pytest
import torch

from sslkit import augment as A
from sslkit import data


def batch_of_copies(n=16, c=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(1, c, size, size, generator=g)
    return img.repeat(n, 1, 1, 1)


@pytest.mark.parametrize(
    "op",
    [
        lambda x, g: A.random_resized_crop(x, generator=g),
        lambda x, g: A.color_jitter(x, p=1.0, generator=g),
        lambda x, g: A.gaussian_blur(x, p=1.0, sigma=(20, 60), kernel_frac=0.4, generator=g),
    ],
)
def test_each_image_draws_its_own_parameters(op):
    x = batch_of_copies()
    out = op(x, torch.Generator().manual_seed(0))
    flat = out.reshape(len(out), -1)
    # identical inputs, different outputs: the parameters are per sample
    distinct = {tuple(row.round(decimals=4).tolist()) for row in flat}
    assert len(distinct) == len(out)


def test_same_seed_same_views_and_different_seed_different_views():
    x = batch_of_copies(c=1)
    aug = A.ViewAugment(blur_p=0.5, solarize_p=0.5)
    v1 = aug(x, torch.Generator().manual_seed(7))
    v2 = aug(x, torch.Generator().manual_seed(7))
    v3 = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(v1, v2) and not torch.equal(v1, v3)


def test_full_crop_without_flip_is_identity_and_forced_flip_mirrors():
    x = torch.rand(4, 3, 10, 10)
    same = A.random_resized_crop(x, scale=(1, 1), ratio=(1, 1), flip_p=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    flipped = A.random_resized_crop(x, scale=(1, 1), ratio=(1, 1), flip_p=1.0)
    assert torch.allclose(flipped, x.flip(-1), atol=1e-5)


def test_crop_zooms_in():
    # A crop of a quarter of the area of a left-to-right ramp spans about half its range.
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).repeat(8, 1, 32, 1)
    out = A.random_resized_crop(ramp, scale=(0.25, 0.25), ratio=(1, 1), flip_p=0.0)
    span = out[:, 0, 16, -1] - out[:, 0, 16, 0]
    assert torch.allclose(span, torch.full_like(span, 0.5 * 31 / 32), atol=0.05)


def test_solarize_and_grayscale_values():
    x = torch.tensor([0.2, 0.5, 0.9]).view(1, 1, 1, 3).repeat(2, 1, 1, 1)
    assert torch.allclose(A.solarize(x, p=1.0)[0, 0, 0], torch.tensor([0.2, 0.5, 0.1]))
    assert torch.equal(A.solarize(x, p=0.0), x)
    rgb = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).repeat(3, 1, 2, 2)
    grey = A.random_grayscale(rgb, p=1.0)
    assert torch.allclose(grey, torch.full_like(rgb, 0.299))
    assert torch.equal(
        A.random_grayscale(rgb[:, :1], p=1.0), rgb[:, :1]
    )  # single channel untouched


def test_blur_keeps_constant_images_and_mass():
    x = torch.full((3, 2, 12, 12), 0.3)
    assert torch.allclose(A.gaussian_blur(x, p=1.0, sigma=(50, 100)), x, atol=1e-6)
    spike = torch.zeros(1, 1, 21, 21)
    spike[..., 10, 10] = 1
    out = A.gaussian_blur(spike, p=1.0, sigma=(200, 200), kernel_frac=0.3)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5) and out[..., 10, 10] < 0.5


def test_jitter_with_p0_is_identity_and_brightness_scales():
    x = torch.rand(5, 3, 6, 6) * 0.5
    assert torch.equal(A.color_jitter(x, p=0.0), x)
    out = A.color_jitter(x, brightness=0.5, contrast=0, saturation=0, hue=0, p=1.0)
    ratio = out / x
    per_image = ratio.view(5, -1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-4)
    assert ((per_image[:, 0] >= 0.5) & (per_image[:, 0] <= 1.5)).all()


def test_views_stay_on_the_input_device_and_dtype():
    x = (torch.rand(4, 3, 8, 8) * 255).to(torch.uint8)
    v = A.ViewAugment()(x)
    assert v.dtype == torch.float32 and v.device == x.device and v.shape == x.shape


def test_presets_skip_colour_ops_for_grayscale_and_normalise():
    ds = data.load("digits")
    v1, v2 = A.preset("vicreg", ds)
    assert v1.mean == ds.mean_std()[0] and v2.solarize_p == 0.2 and v1.solarize_p == 0.0
    views = v1(ds.images[:512])
    assert views.shape == (512, 1, 8, 8)
    assert abs(views.mean().item()) < 0.5 and 0.5 < views.std().item() < 1.5
    s1, s2 = A.preset("simclr", ds)
    assert s1 == s2
    with pytest.raises(ValueError, match="known"):
        A.preset("byol", ds)


def test_rotate_matches_rot90_per_sample():
    x = torch.rand(4, 1, 5, 5)
    k = torch.tensor([0, 1, 2, 3])
    out = A.rotate(x, k)
    for i in range(4):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(-2, -1)))
    views, labels = A.rotation_batch(x)
    assert views.shape == (16, 1, 5, 5) and labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert torch.equal(views[4 * 2 + 1], torch.rot90(x[1], 2, dims=(-2, -1)))
    with pytest.raises(ValueError, match="square"):
        A.rotate(torch.rand(1, 1, 4, 6), torch.tensor([1]))


def test_jigsaw_moves_tiles_by_the_permutation():
    perms = A.jigsaw_permutations(2)
    assert perms.shape == (24, 4) and len({tuple(p.tolist()) for p in perms}) == 24
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(2, 1, 1, 1)
    ident = int((perms == torch.arange(4)).all(1).nonzero()[0])
    swap = int((perms == torch.tensor([1, 0, 2, 3])).all(1).nonzero()[0])
    out = A.jigsaw(x, torch.tensor([ident, swap]), perms)
    assert torch.equal(out[0], x[0])
    # tile 0 (top-left) now holds the old top-right tile and vice versa
    assert torch.equal(out[1, 0, :2, :2], x[1, 0, :2, 2:]) and torch.equal(
        out[1, 0, :2, 2:], x[1, 0, :2, :2]
    )
    assert torch.equal(out[1, 0, 2:], x[1, 0, 2:])


def test_jigsaw_permutation_set_is_fixed_and_spread():
    p = A.jigsaw_permutations(3, count=30)
    assert torch.equal(p, A.jigsaw_permutations(3, count=30))
    dist = (p[:, None, :] != p[None, :, :]).sum(-1)
    dist.fill_diagonal_(9)
    assert dist.min() >= 5  # far apart, unlike random picks
    with pytest.raises(ValueError, match="divisible"):
        A.jigsaw(torch.rand(1, 1, 7, 7), torch.tensor([0]), A.jigsaw_permutations(2))


def test_bad_input_shape_is_explained():
    with pytest.raises(ValueError, match="N×C×H×W"):
        A.random_resized_crop(torch.rand(3, 8, 8))


def test_pixel_features_are_the_images_scaled_to_one_row_each():
    import numpy as np

    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    x = A.pixel_features(images)
    assert x.shape == (5, 48) and x.dtype == torch.float32
    reference = images.numpy().reshape(5, -1).astype(np.float32) / np.float32(255)
    assert torch.equal(x, torch.from_numpy(reference))
    assert torch.equal(x, A.to_float(images).flatten(1))
    assert torch.equal(A.pixel_features(images.numpy()), x)  # arrays as well as tensors
