#!/usr/bin/python3
"""The demo job (configs/jobs/fashion_mnist.yaml) as a plain PyTorch DDP
script: the peer that bench/ddp.sh runs side by side with gantry-worker.

Same model (MLP 784-256-128-10, as worker/models.cc builds it), data and
normalisation (worker/idx_reader.h), per-rank batch, global sampling (each
rank takes its slice of one shuffled global batch), SGD settings and step
count; per step it also does the bookkeeping Gantry's trainer does (loss and
correct count read back). No evaluation and no checkpoints: this is the bare
training loop.

Run one process per rank with env:// variables (Debian's torchrun 1.13 fails
under Python 3.11):
  MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 WORLD_SIZE=2 RANK=r \
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 ddp_peer.py DATA_DIR STEPS
Rank 0 prints one JSON line: {"samples_per_sec", "loop_seconds", "steps", ...}.
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


def load_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    data_dir, steps = sys.argv[1], int(sys.argv[2])
    batch, lr, momentum, seed = 64, 0.05, 0.9, 42
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method="env://")
    rank, world = dist.get_rank(), dist.get_world_size()

    images = torch.from_numpy(load_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).copy())
    labels = torch.from_numpy(load_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    x_all = images.to(torch.float32).div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD).unsqueeze(1)
    n = x_all.shape[0]

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=momentum)
    global_batch = batch * world
    per_epoch = n // global_batch

    dist.barrier()
    t0 = time.perf_counter()
    loss_sum = correct = count = 0.0
    epoch, perm = -1, None
    for step in range(steps):
        e, k = divmod(step, per_epoch)
        if e != epoch:
            epoch = e
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        begin = k * global_batch + rank * batch
        idx = perm[begin:begin + batch]
        x, y = x_all.index_select(0, idx), labels.index_select(0, idx)
        opt.zero_grad()
        logits = ddp(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * batch
        correct += logits.argmax(1).eq(y).sum().item()
        count += batch
    dist.barrier()
    loop = time.perf_counter() - t0
    sums = torch.tensor([loss_sum, correct, count], dtype=torch.float64)
    dist.all_reduce(sums)
    if rank == 0:
        # The BLAS LibTorch calls: the libblas.so.3 this process mapped.
        blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/libblas.so" in l})
        print(json.dumps({"blas": ",".join(blas),"samples_per_sec": steps * global_batch / loop, "loop_seconds": loop, "steps": steps,
                          "ranks": world, "threads": threads, "loss": sums[0].item() / sums[2].item(),
                          "accuracy": sums[1].item() / sums[2].item()}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
