#!/usr/bin/env python3
"""Times scipy.stats.ks_2samp + wasserstein_distance over the arrays that
bench_drift --dump DIR wrote, checks the p-values against Gantry's, and prints
one JSON line with the ratio (scipy seconds / Gantry seconds, Gantry's median
from the same run). usage: drift_vs_scipy.py DIR [rounds]
"""
import json
import statistics
import sys
import time

import numpy as np
from scipy import stats


def main():
    d = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    nr, nc, cols = (int(x) for x in open(f"{d}/shape.txt").read().split())
    ref = np.fromfile(f"{d}/ref.u8", np.uint8).reshape(nr, cols).astype(np.float64)
    cur = np.fromfile(f"{d}/cur.u8", np.uint8).reshape(nc, cols).astype(np.float64)
    gantry = np.loadtxt(f"{d}/gantry.txt").reshape(cols, 3)
    g_full, g_compare = (float(x) for x in open(f"{d}/gantry_seconds.txt").read().split())
    # Columns extracted before timing: scipy gets contiguous arrays.
    ref_cols = [np.ascontiguousarray(ref[:, j]) for j in range(cols)]
    cur_cols = [np.ascontiguousarray(cur[:, j]) for j in range(cols)]
    times, p, s, w = [], None, None, None
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = [stats.ks_2samp(a, b) for a, b in zip(ref_cols, cur_cols)]
        wd = [stats.wasserstein_distance(a, b) for a, b in zip(ref_cols, cur_cols)]
        times.append(time.perf_counter() - t0)
        p = np.array([r.pvalue for r in res])
        s = np.array([r.statistic for r in res])
        w = np.array(wd)
    max_p = float(np.max(np.abs(p - gantry[:, 1])))
    max_s = float(np.max(np.abs(s - gantry[:, 0])))
    max_w = float(np.max(np.abs(w - gantry[:, 2]) / np.maximum(1.0, w)))
    med = statistics.median(times)
    print(json.dumps({
        "bench": "drift", "metric": "drift_784_vs_scipy", "unit": "x", "n": rounds,
        "value": round(med / g_full, 2),
        "gantry": {"median": g_full, "unit": "s", "compare_only": g_compare},
        "baseline": {"min": min(times), "median": med, "max": max(times), "unit": "s"},
        "max_abs_p_diff": max_p, "max_abs_statistic_diff": max_s, "max_rel_wasserstein_diff": max_w,
        "note": "scipy %s ks_2samp + wasserstein_distance per feature; gantry = profile build + "
                "compare (KS, PSI, JS, W1); 1 thread" % __import__("scipy").__version__}))
    if max_p >= 1e-6:
        print(f"drift_vs_scipy: p-values differ by {max_p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
