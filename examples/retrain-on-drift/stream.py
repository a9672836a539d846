#!/usr/bin/python3
"""Sends shifted images to a gantry-serve deployment as prediction traffic,
gives feedback (the true label of every row) and measures the live accuracy
from the responses.

Usage: stream.py URL MODEL NPZ [--rows N] [--batch 16]
Prints one JSON line: rows, correct, accuracy (argmax of the returned logits
vs the true labels), the versions that answered (rows per version) and the
server's live accuracy over its feedback window (the last feedback answer).
"""
import argparse
import json
import urllib.request

import numpy as np


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("model")
    p.add_argument("npz")
    p.add_argument("--rows", type=int, default=0, help="0: all")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tag", default="s", help="request id prefix")
    a = p.parse_args()
    d = np.load(a.npz)
    x, y = d["x"], d["y"]
    n = len(x) if a.rows <= 0 else min(a.rows, len(x))
    base = f"{a.url}/v2/models/{a.model}"
    correct, versions, live = 0, {}, None
    for start in range(0, n, a.batch):
        rows = x[start:start + a.batch]
        rid = f"{a.tag}-{start}"
        out = post(base + "/infer", {"id": rid, "inputs": [{"name": "input", "datatype": "UINT8",
                                                            "shape": [len(rows), rows.shape[1]],
                                                            "data": rows.reshape(-1).tolist()}]})
        logits = np.array(out["outputs"][0]["data"], dtype=np.float32).reshape(len(rows), -1)
        pred = logits.argmax(axis=1)
        v = out["model_version"]
        versions[v] = versions.get(v, 0) + len(rows)
        for i, label in enumerate(y[start:start + a.batch]):
            correct += int(pred[i] == label)
            fb = post(base + "/feedback", {"id": f"{rid}/{i}", "label": int(label)})
            live = fb.get("accuracy", live)
    print(json.dumps({"rows": n, "correct": correct, "accuracy": correct / n, "versions": versions,
                      "server_live_accuracy": live}))


if __name__ == "__main__":
    main()
