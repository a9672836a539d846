#!/usr/bin/python3
"""Makes the shifted Fashion-MNIST data of the retrain-on-drift example.

Reads the Debian dataset (/usr/share/datasets/fashion-mnist, IDX, gzip) and
applies one shift to every image: darker (pixels x BRIGHTNESS, default 0.5,
as from an underexposed camera) and, with --rotate K, turned by K quarter
turns. Writes, from disjoint parts of the dataset:

  OUT/incoming/shift-000K-{images-idx3,labels-idx1}-ubyte
                 SHARDS IDX shard pairs of SHARD_ROWS training images
                 (data/shard_dataset.h), each written as .tmp and renamed,
                 labels first, so a watcher never reads half a shard;
  OUT/holdout-shifted.csv
                 the held-out set of a retraining run: HOLDOUT test images
                 as rows of raw pixels p0..p783 (0..255) plus `label`
                 (data.test_file; the worker normalises them like the shards);
  OUT/stream-shifted.npz
                 STREAM other test images (uint8 [N, 784]) and their labels,
                 sent as prediction traffic by stream.py.

Usage: make_shifted.py OUT [--shards 4] [--shard-rows 3000] [--holdout 2000]
       [--stream 1200] [--brightness 0.5] [--rotate 0] [--dataset DIR]
Needs only numpy (Debian python3-numpy).
"""
import argparse
import gzip
import os
import struct

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with open(path + ".tmp", "wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    os.rename(path + ".tmp", path)


def shift(images, brightness, rotate):
    rotated = np.rot90(images, k=rotate, axes=(1, 2))
    return np.clip(np.rint(rotated.astype(np.float32) * brightness), 0, 255).astype(np.uint8)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--dataset", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--shard-rows", type=int, default=3000)
    p.add_argument("--first-train-row", type=int, default=12000,
                   help="shards start here, after the rows the champion trains on")
    p.add_argument("--holdout", type=int, default=2000)
    p.add_argument("--stream", type=int, default=1200)
    p.add_argument("--brightness", type=float, default=0.5)
    p.add_argument("--rotate", type=int, default=0, help="quarter turns counter-clockwise")
    a = p.parse_args()

    d = a.dataset
    train_x = read_idx(f"{d}/train-images-idx3-ubyte.gz")
    train_y = read_idx(f"{d}/train-labels-idx1-ubyte.gz")
    test_x = read_idx(f"{d}/t10k-images-idx3-ubyte.gz")
    test_y = read_idx(f"{d}/t10k-labels-idx1-ubyte.gz")
    if a.first_train_row + a.shards * a.shard_rows > len(train_x):
        raise SystemExit("--shards x --shard-rows does not fit in the training set")
    if a.holdout + a.stream > len(test_x):
        raise SystemExit("--holdout + --stream does not fit in the test set")

    os.makedirs(f"{a.out}/incoming", exist_ok=True)
    for k in range(a.shards):
        lo = a.first_train_row + k * a.shard_rows
        hi = lo + a.shard_rows
        name = f"{a.out}/incoming/shift-{k:04d}"
        write_idx(f"{name}-labels-idx1-ubyte", train_y[lo:hi])
        write_idx(f"{name}-images-idx3-ubyte", shift(train_x[lo:hi], a.brightness, a.rotate))

    hold_x = shift(test_x[:a.holdout], a.brightness, a.rotate).reshape(a.holdout, -1)
    hold_y = test_y[:a.holdout]
    path = f"{a.out}/holdout-shifted.csv"
    with open(path + ".tmp", "w") as f:
        f.write(",".join(f"p{i}" for i in range(hold_x.shape[1])) + ",label\n")
        for row, label in zip(hold_x, hold_y):
            f.write(",".join(map(str, row.tolist())) + f",{int(label)}\n")
    os.rename(path + ".tmp", path)

    lo, hi = a.holdout, a.holdout + a.stream
    np.savez(f"{a.out}/stream-shifted.npz", x=shift(test_x[lo:hi], a.brightness, a.rotate).reshape(a.stream, -1),
             y=test_y[lo:hi])
    how = f"brightness x{a.brightness}" + (f", turned {90 * a.rotate % 360} degrees" if a.rotate % 4 else "")
    print(f"shifted data ({how}): {a.shards} shards of {a.shard_rows} training images, "
          f"{a.holdout} held-out and {a.stream} stream images, in {a.out}")


if __name__ == "__main__":
    main()
