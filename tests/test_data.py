import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from sslkit import data


def write_idx(path, array: np.ndarray, magic_type=0x08, truncate=0):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(
        struct.pack(">i", s) for s in array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    if truncate:
        payload = payload[:-truncate]
    with gzip.open(path, "wb") as f:
        f.write(payload)


def fake_fashion(folder, n_train=12, n_test=6, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labs = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", imgs)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labs)
        out[split] = (imgs, labs)
    return out


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """No Debian package and no network: the only data is what a test writes."""
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")

    def refuse(*args, **kwargs):
        raise RuntimeError("network disabled in tests")

    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd, "FashionMNIST", refuse)
    monkeypatch.setattr(tvd, "CIFAR10", refuse)
    monkeypatch.setattr(tvd, "CIFAR100", refuse)


def test_digits_fixed_split_and_dtypes():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (1, 8, 8)
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.labels.dtype == torch.int64
    assert torch.equal(train.coarse_labels, train.labels % 2)
    assert int(train.images.max()) == 255
    again = data.load("digits", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)


def test_fashion_mnist_reads_idx_from_root(tmp_path, no_system_data):
    written = fake_fashion(tmp_path)
    ds = data.load("fashion-mnist", "train", root=tmp_path)
    imgs, labs = written["train"]
    assert ds.images.shape == (12, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert np.array_equal(ds.images[:, 0].numpy(), imgs)
    assert np.array_equal(ds.labels.numpy(), labs)
    # garment groups: T-shirt 0, Pullover 2, Coat 4, Shirt 6 -> upper body; Trouser 1, Dress 3 -> 1;
    # ...
    expected = np.array([0, 1, 0, 1, 0, 2, 0, 2, 3, 2])[labs]
    assert np.array_equal(ds.coarse_labels.numpy(), expected)
    assert ds.classes[9] == "Ankle boot" and ds.coarse_classes[2] == "footwear"
    test = data.load("fashion-mnist", "test", root=tmp_path)
    assert len(test) == 6


def test_fashion_mnist_from_env_variable(tmp_path, monkeypatch, no_system_data):
    fake_fashion(tmp_path)
    monkeypatch.setenv("SSLKIT_DATA", str(tmp_path))
    assert len(data.load("fashion-mnist")) == 12


def test_wrong_magic_number_is_a_clear_error(tmp_path, no_system_data):
    fake_fashion(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 28)), magic_type=0x0D)
    with pytest.raises(data.CorruptDataError, match="magic number"):
        data.load("fashion-mnist", root=tmp_path)


def test_truncated_idx_is_a_clear_error(tmp_path, no_system_data):
    fake_fashion(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 28)), truncate=100)
    with pytest.raises(data.CorruptDataError, match="truncated"):
        data.load("fashion-mnist", root=tmp_path)


@pytest.mark.parametrize(
    "shape, said", [((12, 1, 1), "expected N×28×28"), ((0, 28, 28), "no images")]
)
def test_idx_images_of_another_size_or_none_are_refused(tmp_path, no_system_data, shape, said):
    fake_fashion(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(shape))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(shape[0]))
    with pytest.raises(data.CorruptDataError, match=said):
        data.load("fashion-mnist", root=tmp_path)


def test_not_a_gzip_file(tmp_path, no_system_data):
    fake_fashion(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip")
    with pytest.raises(data.CorruptDataError, match="cannot be read"):
        data.load("fashion-mnist", root=tmp_path)


def test_missing_data_names_three_ways(tmp_path, no_system_data, monkeypatch):
    monkeypatch.setenv("SSLKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("fashion-mnist")
    msg = str(err.value)
    assert "SSLKIT_DATA" in msg and "dataset-fashion-mnist" in msg and "download" in msg
    assert "network disabled" in msg  # the reason the download failed is kept
    with pytest.raises(data.DataNotFoundError, match="SSLKIT_DATA"):
        data.load("cifar100", root=tmp_path / "empty", download=False)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="digits, fashion-mnist, cifar10, cifar100"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split"):
        data.load("digits", "validation")


def fake_cifar100(folder, n=10, seed=0):
    rng = np.random.default_rng(seed)
    d = folder / "cifar-100-python"
    d.mkdir(parents=True)
    fine_names = [f"fine{i}" for i in range(100)]
    coarse_names = [f"coarse{i}" for i in range(20)]
    written = {}
    for split in ("train", "test"):
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).tolist()
        coarse = rng.integers(0, 20, size=n).tolist()  # deliberately not derivable from fine
        with open(d / split, "wb") as f:
            pickle.dump({b"data": x, b"fine_labels": fine, b"coarse_labels": coarse}, f)
        written[split] = (x, fine, coarse)
    with open(d / "meta", "wb") as f:
        pickle.dump(
            {
                b"fine_label_names": [s.encode() for s in fine_names],
                b"coarse_label_names": [s.encode() for s in coarse_names],
            },
            f,
        )
    return written


def test_cifar100_coarse_labels_come_from_the_archive(tmp_path, no_system_data):
    written = fake_cifar100(tmp_path)
    ds = data.load("cifar100", "test", root=tmp_path)
    x, fine, coarse = written["test"]
    assert ds.images.shape == (10, 3, 32, 32)
    assert np.array_equal(ds.images.reshape(10, -1).numpy(), x)  # CHW layout, as stored
    assert ds.labels.tolist() == fine and ds.coarse_labels.tolist() == coarse
    assert ds.classes[3] == "fine3" and ds.coarse_classes[19] == "coarse19"


def test_cifar10_animals_vs_vehicles(tmp_path, no_system_data):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    for i in range(1, 6):
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": np.zeros((10, 3072), np.uint8), b"labels": list(range(10))}, f)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((10, 3072), np.uint8), b"labels": list(range(10))}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names]}, f)
    ds = data.load("cifar10", "train", root=tmp_path)
    assert len(ds) == 50
    vehicle = [ds.coarse_classes[c] == "vehicle" for c in ds.coarse_labels[:10].tolist()]
    assert vehicle == [n in ("airplane", "automobile", "ship", "truck") for n in names]


def test_corrupt_cifar_pickle(tmp_path, no_system_data):
    fake_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"\x80garbage")
    with pytest.raises(data.CorruptDataError, match="CIFAR pickle"):
        data.load("cifar100", "train", root=tmp_path)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_a_planted_cifar_pickle_cannot_run_code(tmp_path, no_system_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_cifar100(tmp_path)
    with open(tmp_path / "cifar-100-python" / "train", "wb") as f:
        pickle.dump({b"data": _Exploit()}, f)
    with pytest.raises(
        data.CorruptDataError, match="posix.system is not part of the CIFAR format|system"
    ):
        data.load("cifar100", "train", root=tmp_path)
    assert not (tmp_path / "PWNED").exists()
    with open(tmp_path / "cifar-100-python" / "train", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(data.CorruptDataError, match="holds a dict, this one a list"):
        data.load("cifar100", "train", root=tmp_path)


def test_cifar_wrong_row_length(tmp_path, no_system_data):
    fake_cifar100(tmp_path)
    with open(tmp_path / "cifar-100-python" / "test", "wb") as f:
        pickle.dump(
            {
                b"data": np.zeros((4, 100), np.uint8),
                b"fine_labels": [0] * 4,
                b"coarse_labels": [0] * 4,
            },
            f,
        )
    with pytest.raises(data.CorruptDataError, match="3072"):
        data.load("cifar100", "test", root=tmp_path)


def test_subset_is_fixed_and_select_keeps_everything_aligned():
    ds = data.load("digits")
    a, b = ds.subset(100, seed=3), ds.subset(100, seed=3)
    assert torch.equal(a.images, b.images) and len(a) == 100
    assert not torch.equal(ds.subset(100, seed=4).labels, a.labels)
    assert ds.subset(None) is ds
    idx = torch.tensor([5, 0, 7])
    s = ds.select(idx)
    assert torch.equal(s.images, ds.images[idx]) and torch.equal(
        s.coarse_labels, ds.coarse_labels[idx]
    )


def test_dataset_rejects_mismatched_labels():
    with pytest.raises(data.CorruptDataError, match="labels"):
        data.Dataset(
            "x",
            torch.zeros(3, 1, 2, 2, dtype=torch.uint8),
            torch.zeros(2, dtype=torch.long),
            torch.zeros(3, dtype=torch.long),
            ("a",),
            ("b",),
        )


def test_mean_std_matches_numpy():
    ds = data.load("digits")
    mean, std = ds.mean_std()
    x = ds.images.numpy() / 255
    assert mean[0] == pytest.approx(x.mean(), abs=1e-9)
    assert std[0] == pytest.approx(x.std(ddof=1), abs=1e-9)


def test_a_silent_server_times_out_with_the_three_ways_to_get_the_data(tmp_path, monkeypatch):
    """A server that accepts the connection and never answers: the download gives up."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", [url])
    monkeypatch.setenv("SSLKIT_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    start = time.monotonic()
    with pytest.raises(data.DataNotFoundError, match=r"timed out.*\(1\).*\(2\).*\(3\)"):
        data.load("fashion-mnist", "train")
    assert time.monotonic() - start < 30
    server.close()
    monkeypatch.setenv("SSLKIT_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="positive number of seconds"):
        data.download_timeout()


def test_an_explicit_root_is_used_or_fails(tmp_path):
    """Even where the Debian copy exists, root= that lacks the files is an error, not a detour."""
    with pytest.raises(data.DataNotFoundError, match=str(tmp_path)):
        data.load("fashion-mnist", "train", root=tmp_path)
    with pytest.raises(data.DataNotFoundError, match=str(tmp_path)):
        data.load("cifar10", "train", root=tmp_path)


def test_negative_cifar_labels_are_rejected(tmp_path, no_system_data):
    fake_cifar100(tmp_path)
    with open(tmp_path / "cifar-100-python" / "test", "wb") as f:
        pickle.dump(
            {
                b"data": np.zeros((4, 3072), np.uint8),
                b"fine_labels": [0, 1, -1, 2],
                b"coarse_labels": [0] * 4,
            },
            f,
        )
    with pytest.raises(data.CorruptDataError, match="out of range"):
        data.load("cifar100", "test", root=tmp_path)


def test_a_corrupt_gzip_stream_names_the_file(tmp_path, no_system_data):
    import gzip as gz

    fake_fashion(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = gz.compress(b"\x00\x00\x08\x01" + b"\x00" * 200)
    path.write_bytes(
        raw[:12] + bytes(b ^ 0xFF for b in raw[12:30]) + raw[30:]
    )  # a damaged deflate stream
    with pytest.raises(data.CorruptDataError, match="train-labels-idx1-ubyte.gz"):
        data.load("fashion-mnist", root=tmp_path)


def test_an_idx_header_that_promises_too_much_is_refused_by_name(tmp_path, no_system_data):
    fake_fashion(tmp_path)
    header = bytes([0, 0, 8, 3]) + b"".join(struct.pack(">I", 2**31 - 1) for _ in range(3))
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + b"\x00" * 100)
    with pytest.raises(data.CorruptDataError, match="train-images-idx3-ubyte.gz.*more than any"):
        data.load("fashion-mnist", root=tmp_path)


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_promises(tmp_path, no_system_data):
    fake_fashion(tmp_path)
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 12)
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb", compresslevel=9) as f:
        f.write(header)
        for _ in range(100):  # 100 MB of zeros in about 100 kB
            f.write(bytes(2**20))
    with pytest.raises(data.CorruptDataError, match="train-labels-idx1-ubyte.gz.*more bytes"):
        data.load("fashion-mnist", root=tmp_path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        (b"fine_labels", [0, 1, 0.7, 2], "must hold integers"),
        (b"data", np.full((4, 3072), 300), "out of range"),
        (b"coarse_labels", "abc", "must hold integers"),
    ],
)
def test_cifar_values_are_never_coerced(tmp_path, no_system_data, key, value, message):
    fake_cifar100(tmp_path)
    d = {
        b"data": np.zeros((4, 3072), np.uint8),
        b"fine_labels": [0, 1, 2, 3],
        b"coarse_labels": [0] * 4,
    }
    d[key] = value
    with open(tmp_path / "cifar-100-python" / "test", "wb") as f:
        pickle.dump(d, f)
    with pytest.raises(data.CorruptDataError, match=f"cifar-100-python/test: .*{message}"):
        data.load("cifar100", "test", root=tmp_path)


def test_a_server_that_drips_bytes_hits_the_total_deadline(monkeypatch):
    """Planted: a local server that sends one byte every 0.3 s, far below any socket timeout."""
    import http.server
    import threading
    import time
    import urllib.request

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("SSLKIT_DOWNLOAD_DEADLINE", "1.5")
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="SSLKIT_DOWNLOAD_DEADLINE"):
            data._download(lambda: urllib.request.urlopen(url).read())
    finally:
        server.shutdown()
    assert time.monotonic() - started < 5
