#!/usr/bin/env python3
"""Reference predictions of Python torch for the serving test.

Loads a state dict exported by `gantry ckpt export` (storage export_version)
into the nn.Sequential that Gantry's builtin mlp is (model/models.h:
Flatten -> [Linear -> ReLU]* -> Linear), preprocesses the first N IDX test
images as training does ((x / 255 - mean) / std, float32), and prints the
logits as JSON: {"torch": version, "logits": [[...], ...]}.

usage: torch_reference.py STATE_DICT IMAGES_IDX_GZ N HIDDEN(comma list) MEAN STD
"""
import gzip
import json
import struct
import sys

import torch


def main():
    path, images, n, hidden, mean, std = sys.argv[1:7]
    n = int(n)
    hidden = [int(h) for h in hidden.split(",") if h]
    with gzip.open(images, "rb") as f:
        raw = f.read()
    _, _, ndim = struct.unpack(">HBB", raw[:4])
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    rows, cols = dims[1], dims[2]
    body = raw[4 + 4 * ndim:4 + 4 * ndim + n * rows * cols]
    x = torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(n, 1, rows, cols)
    x = x.to(torch.float32).div(255.0).sub_(float(mean)).div_(float(std))

    layers = [torch.nn.Flatten()]
    width = rows * cols
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 10))
    net = torch.nn.Sequential(*layers)
    net.load_state_dict(torch.load(path))
    net.eval()
    with torch.no_grad():
        logits = net(x)
    json.dump({"torch": torch.__version__, "logits": logits.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
