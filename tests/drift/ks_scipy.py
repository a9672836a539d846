#!/usr/bin/env python3
"""Reference KS values for drift_ks_test: scipy.stats.ks_2samp, default method.

usage: ks_scipy.py CASES OUT
       ks_scipy.py --kstwo GRID OUT
CASES is binary, little-endian: int64 case count, then per case int64 n1,
int64 n2, n1 float64 values of sample a, n2 float64 values of sample b.
OUT gets one line per case: "statistic p_value" (repr precision).
With --kstwo, GRID holds lines "n x" and OUT gets scipy.stats.kstwo.sf(x, n).
"""
import sys

import numpy as np
from scipy import stats


def kstwo(grid, out_path):
    with open(grid) as f, open(out_path, "w") as out:
        for line in f:
            n, x = line.split()
            out.write(f"{float(stats.kstwo.sf(float(x), int(n)))!r}\n")


def main():
    if sys.argv[1] == "--kstwo":
        kstwo(sys.argv[2], sys.argv[3])
        return
    data = open(sys.argv[1], "rb").read()
    count = int(np.frombuffer(data, "<i8", 1, 0)[0])
    pos = 8
    with open(sys.argv[2], "w") as out:
        for _ in range(count):
            n1, n2 = (int(v) for v in np.frombuffer(data, "<i8", 2, pos))
            pos += 16
            a = np.frombuffer(data, "<f8", n1, pos)
            pos += 8 * n1
            b = np.frombuffer(data, "<f8", n2, pos)
            pos += 8 * n2
            r = stats.ks_2samp(a, b)
            out.write(f"{float(r.statistic)!r} {float(r.pvalue)!r}\n")


if __name__ == "__main__":
    main()
