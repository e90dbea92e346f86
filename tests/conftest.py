import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

from sslkit import runtime  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    """Every test gets empty result and data caches, on disk and in memory, and no
    $SSLKIT_DATA / $SSLKIT_PROFILE."""
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path / "runs-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("SSLKIT_DATA", raising=False)
    monkeypatch.delenv("SSLKIT_PROFILE", raising=False)
    runtime.clear_caches()  # nothing in memory from another test (its data or its runs)
    yield
    runtime.clear_caches()
