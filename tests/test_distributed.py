"""Data-parallel training on CPU: 2 gloo processes against 1 process on the same global batch."""

import os
import socket
import time

import torch
import torch.multiprocessing as mp

from sslkit import distributed, losses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(fn, world: int, *args, timeout: float = 120):
    """Run ``fn(rank, *args)`` in ``world`` fresh processes joined by gloo; their exit codes."""
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_entry, args=(r, world, port, fn, args)) for r in range(world)]
    for p in procs:
        p.start()
    deadline = time.time() + timeout
    for p in procs:
        p.join(max(1, deadline - time.time()))
    codes = []
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
            codes.append("hung")
        else:
            codes.append(p.exitcode)
    return codes


def _entry(rank, world, port, fn, args):
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    distributed.init_from_env(timeout_s=float(os.environ.get("SSLKIT_TEST_TIMEOUT", "60")))
    try:
        fn(rank, *args)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


# --------------------------------------------------------------------------- losses

LOSSES = {
    "vicreg": lambda a, b: losses.vicreg(a, b).total,
    "barlow": lambda a, b: losses.barlow_twins(a, b).total,
    "nt_xent": lambda a, b: losses.nt_xent(a, b).total,
}


def _batch():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)
    net = torch.nn.Linear(6, 5)
    with torch.no_grad():
        net.weight.copy_(torch.randn(5, 6, generator=g))
        net.bias.copy_(torch.randn(5, generator=g))
    return x1, x2, net


def _losses_on_shards(rank, out):
    results = {}
    for name, loss_fn in LOSSES.items():
        x1, x2, net = _batch()
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        idx = distributed.shard(torch.arange(16))
        z1, z2 = ddp(x1[idx]), ddp(x2[idx])
        loss = loss_fn(distributed.gather(z1), distributed.gather(z2))
        loss.backward()
        results[name] = {"loss": loss.detach(), "grads": [p.grad for p in net.parameters()]}
    if rank == 0:
        torch.save(results, out)


def test_losses_over_two_processes_equal_one_process_on_the_whole_batch(tmp_path):
    out = tmp_path / "rank0.pt"
    assert _run(_losses_on_shards, 2, str(out)) == [0, 0]
    got = torch.load(out)
    for name, loss_fn in LOSSES.items():
        x1, x2, net = _batch()
        loss = loss_fn(net(x1), net(x2))
        loss.backward()
        assert torch.allclose(got[name]["loss"], loss.detach(), atol=1e-5), name
        for g, p in zip(got[name]["grads"], net.parameters()):
            assert torch.allclose(g, p.grad, atol=1e-5), name


def test_one_process_is_the_identity():
    z = torch.randn(4, 3)
    assert distributed.gather(z) is z and distributed.world_size() == 1 and distributed.is_main()
    assert torch.equal(distributed.shard(torch.arange(8)), torch.arange(8))


# --------------------------------------------------------------------------- training


def _data():
    from sslkit import data

    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(32) % 4
    return data.Dataset("t", images, labels, labels % 2, tuple("abcd"), ("x", "y"))


def _model_and_method():
    from sslkit import models
    from sslkit.methods import JointEmbedding

    def plain(x, g=None):  # deterministic views: the comparison is of the arithmetic
        return x.float() / 255

    def flipped(x, g=None):
        return x.float().flip(-1) / 255

    method = JointEmbedding("vicreg", (plain, flipped), losses.vicreg, projector=(16,))
    torch.manual_seed(0)
    backbone = models.build_backbone("convnet", 1, 8, (4, 8, 8, 8))
    return models.SSLModel(backbone, method.make_head(backbone.out_dim)), method


def _sgd(params, lr, weight_decay):
    return torch.optim.SGD(params, lr=lr)


def _plain_sgd():
    """AdamW's first steps move every weight by about ±lr whatever the gradient's size, so a
    parameter whose gradient is zero by construction (the projector's bias: VICReg ignores a
    shift of the embeddings) moves by the sign of rounding noise. Plain SGD compares the
    arithmetic of the two runs (losses, gathering, BatchNorm, averaging), not that noise."""
    from sslkit import train

    train._adamw = _sgd  # in a child process of the test only


def _train(rank, out, folder):
    from sslkit.train import fit

    _plain_sgd()
    model, method = _model_and_method()
    fit(model, method, _data(), epochs=1, batch_size=16, lr=1e-1, progress=False,
        checkpoint_dir=folder, checkpoint_every=1)  # fmt: skip
    if rank == 0:
        torch.save(model.state_dict(), out)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())


def test_two_steps_on_two_processes_reach_the_weights_of_one(tmp_path, monkeypatch):
    from sslkit import train
    from sslkit.train import fit

    out, folder = tmp_path / "ddp.pt", tmp_path / "ckpt"
    assert _run(_train, 2, str(out), str(folder)) == [0, 0]
    ddp = torch.load(out)
    monkeypatch.setattr(train, "_adamw", _sgd)  # as the two processes did (see _plain_sgd)
    model, method = _model_and_method()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, method, _data(), epochs=1, batch_size=16, lr=1e-1, progress=False)
    moved = max((v - start[k]).abs().max().item() for k, v in model.state_dict().items()
                if v.is_floating_point())  # fmt: skip
    assert moved > 1e-2  # the steps changed the weights, so equal weights say something
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(ddp[k], v, atol=1e-5), k
    # rank 0 alone kept the books: one checkpoint of each name, which resumes in one process
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_1.pt", "last.pt"]
    again, method = _model_and_method()
    history = fit(again, method, _data(), epochs=1, batch_size=16, lr=1e-1, progress=False,
                  resume=folder / "last.pt")  # fmt: skip
    assert (history.phase == "step").any()  # the two steps of the 2-process run, resumed


def _die(rank, folder):
    from sslkit.train import fit

    model, method = _model_and_method()
    calls = []

    def dying(net, images, labels, generator=None):
        calls.append(1)
        if rank == 1 and len(calls) == 3:  # the first step of epoch 2, without a word
            os._exit(3)
        return method(net, images, labels, generator)

    fit(model, dying, _data(), epochs=3, batch_size=16, lr=1e-2, progress=False,
        checkpoint_dir=folder, checkpoint_every=1, sync_batchnorm=True)  # fmt: skip


def test_a_dead_rank_stops_the_other_and_leaves_a_checkpoint(tmp_path, monkeypatch):
    from sslkit.train import fit

    monkeypatch.setenv("SSLKIT_TEST_TIMEOUT", "20")
    folder = tmp_path / "ckpt"
    started = time.time()
    codes = _run(_die, 2, str(folder), timeout=90)
    assert codes[1] == 3 and codes[0] not in (0, "hung"), codes
    assert time.time() - started < 90
    model, method = _model_and_method()

    def same(net, images, labels, generator=None):  # the dying run's method, alive
        return method(net, images, labels, generator)

    history = fit(model, same, _data(), epochs=3, batch_size=16, lr=1e-2, progress=False,
                  resume=folder / "last.pt", stop_after=1)  # fmt: skip
    assert history.epoch.max() == 1  # the last complete checkpoint: epoch 1


# --------------------------------------------------------------------------- the train cache


def _train_with_an_unwritable_cache(rank, folder, out):
    """Both ranks train one run together (a collective in each step); rank 0's cache write
    fails (planted). Every rank must end with rank 0's whole result."""
    from sslkit import cache
    from sslkit.experiment import runs

    os.environ["SSLKIT_CACHE"] = folder

    def no_space(obj, path):
        raise OSError(28, "No space left on device (planted)")

    cache.atomic_save = no_space

    class Job:
        def compute(self):
            x = torch.ones(1) * (rank + 1)
            torch.distributed.all_reduce(x)  # a rank that trains alone waits here forever
            return {"trained_by": torch.tensor(float(rank)), "sum": x}

        def check(self, result):
            pass

    result = runs._train_or_load(Job(), {"planted": 1}, cache=True)
    torch.save(result, f"{out}.{rank}")


def test_a_cache_that_cannot_be_written_leaves_no_rank_training_alone(tmp_path):
    out = tmp_path / "result"
    codes = _run(_train_with_an_unwritable_cache, 2, str(tmp_path / "cache"), str(out))
    assert codes == [0, 0], codes
    for rank in (0, 1):
        result = torch.load(f"{out}.{rank}")
        assert result["trained_by"].item() == 0.0 and result["sum"].item() == 3.0


def _stop_one(rank, out):
    """Rank 1 stops (SIGSTOP) at its third step; rank 0 must end with PeerLost, in words (and
    then kills the stopped rank, which nothing else would end)."""
    import signal

    from sslkit.train import fit

    model, method = _model_and_method()
    calls = []

    def stopping(net, images, labels, generator=None):
        calls.append(1)
        if rank == 1 and len(calls) == 3:
            with open(f"{out}.pid", "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGSTOP)
        return method(net, images, labels, generator)

    started = time.time()
    try:
        fit(model, stopping, _data(), epochs=3, batch_size=16, lr=1e-2, progress=False)
    except distributed.PeerLost as e:
        with open(out, "w") as f:
            f.write(f"{time.time() - started:.1f}\n{e}")
        with open(f"{out}.pid") as f:
            os.kill(int(f.read()), signal.SIGKILL)
        raise


def test_a_stopped_rank_ends_the_job_in_words_within_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKIT_TEST_TIMEOUT", "5")
    out = tmp_path / "said.txt"
    codes = _run(_stop_one, 2, str(out), timeout=30)
    assert codes[0] not in (0, "hung") and codes[1] == -9, codes  # the stopped one: killed
    seconds, said = out.read_text().split("\n", 1)
    assert float(seconds) < 2 * 5, seconds
    assert "rank 0 of 2: another process of the job stopped answering within 5 s" in said
    assert "Resume from the last checkpoint" in said


def _train_with_caches_that_disagree(rank, folder, out):
    """Rank 1's cache holds the run, rank 0's does not (planted): rank 0 decides for both, so
    both train together (a collective per step) and end with rank 0's result."""
    from sslkit import cache
    from sslkit.experiment import runs

    os.environ["SSLKIT_CACHE"] = f"{folder}/{rank}"
    config = {"planted": 2}
    if rank == 1:
        cache.cached("train", config, lambda: {"trained_by": torch.tensor(-1.0)})

    class Job:
        def compute(self):
            x = torch.ones(1) * (rank + 1)
            torch.distributed.all_reduce(x)  # a rank that loads instead leaves the other waiting
            return {"trained_by": torch.tensor(float(rank)), "sum": x}

        def check(self, result):
            pass

    torch.save(runs._train_or_load(Job(), config, cache=True), f"{out}.{rank}")


def test_rank_0_decides_whether_a_stored_run_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKIT_TEST_TIMEOUT", "10")
    out = tmp_path / "result"
    codes = _run(_train_with_caches_that_disagree, 2, str(tmp_path / "c"), str(out), timeout=60)
    assert codes == [0, 0], codes
    for rank in (0, 1):
        result = torch.load(f"{out}.{rank}")
        assert result["trained_by"].item() == 0.0 and result["sum"].item() == 3.0
