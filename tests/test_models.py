import pytest
import torch

from sslkit.models import ConvNet, Projector, ResNet18, SSLModel, build_backbone


def test_convnet_stages_in_one_pass():
    net = ConvNet(1, (8, 16, 32), image_size=28)
    x = torch.randn(3, 1, 28, 28)
    feats = net.forward_stages(x)
    assert [f.shape for f in feats] == [(3, 8), (3, 16), (3, 32)]
    net.eval()
    assert torch.allclose(net(x), net.forward_stages(x)[-1], atol=1e-6)
    assert net.stage_names == ("stage1", "stage2", "stage3") and net.out_dim == 32


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: ConvNet(1, (8, 16, 32), image_size=28), (2, 1, 28, 28)),
        (lambda: ConvNet(1, (4, 8, 16, 32), image_size=4), (2, 1, 4, 4)),  # pooling stops
        (lambda: ResNet18(3), (2, 3, 32, 32)),
    ],
)
def test_stage_dims_are_the_widths_of_the_features_of_each_stage(build, shape):
    net = build()
    assert tuple(f.shape[1] for f in net.forward_stages(torch.randn(shape))) == net.stage_dims


def test_convnet_handles_tiny_images():
    net = ConvNet(1, (4, 8, 16, 32), image_size=8)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 32)


def test_resnet18_is_cifar_style():
    net = ResNet18(3)
    assert net.stem[0].stride == (1, 1) and net.stem[0].kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    feats = net.forward_stages(torch.randn(2, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    assert build_backbone("resnet18", 1, 28).stem[0].in_channels == 1


def test_projector_layers_and_ssl_model():
    p = Projector(16, (32, 8))
    kinds = [type(m).__name__ for m in p]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear"] and p.out_dim == 8
    head = Projector(16, (), out_dim=4)
    assert len(head) == 1 and head.out_dim == 4
    model = SSLModel(ConvNet(1, (8, 16)), Projector(16, (8,)))
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 8)
