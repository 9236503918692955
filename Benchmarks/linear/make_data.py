#!/usr/bin/env python3
"""Synthetic-but-structured feature stores for the train-linear benchmark (outside git).

Rows are ReLU'd noisy class centroids that live in a 64-d subspace, so a linear head learns
something real; 1000 classes as in ImageNet. Written with h5py in Linprobe's store layout,
row-chunked (64 rows), uncompressed. Usage: make_data.py CACHE_DIR [train_rows] [test_rows]
"""
import json
import os
import sys

import h5py
import numpy as np

CASES = {"d2048": ("res5avg", [2048, 1, 1]), "d9216": ("res2", [256, 6, 6])}


def write(path, split, layer, shape, rows, seed, classes=1000):
    d = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99 + d).standard_normal((64, d)).astype(np.float32) / 8
    centroids = np.random.default_rng(7 + d).standard_normal((classes, 64)).astype(np.float32) @ basis
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs.update({"format": "linprobe.features", "format_version": np.int64(1), "fingerprint": f"bench-{os.path.basename(path)}",
                        "split": split, "complete": np.int64(1), "rows_written": np.int64(rows), "num_classes": np.int64(classes),
                        "class_names": json.dumps([f"c{i}" for i in range(classes)]), "layer_order": json.dumps([layer])})
        ds = f.create_dataset(f"features/{layer}", shape=(rows, d), dtype=np.float32, chunks=(64, d))
        ds.attrs["shape_chw"] = np.array(shape, dtype=np.int64)
        labels = rng.integers(0, classes, rows)
        for start in range(0, rows, 4096):
            y = labels[start:start + 4096]
            x = centroids[y] + 0.6 * rng.standard_normal((len(y), d), dtype=np.float32)
            ds[start:start + len(y)] = np.maximum(x, 0)
        f.create_dataset("targets", data=labels.astype(np.int64))
        f.create_dataset("indices", data=np.arange(rows, dtype=np.int64))
    os.replace(tmp, path)


def main():
    cache = sys.argv[1]
    train_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
    test_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    os.makedirs(cache, exist_ok=True)
    for name, (layer, shape) in CASES.items():
        for split, rows, seed in (("train", train_rows, 1), ("test", test_rows, 2)):
            path = os.path.join(cache, f"{name}_{split}_{rows}.h5")
            if not os.path.exists(path):
                print(f"writing {path}", file=sys.stderr)
                write(path, split, layer, shape, rows, seed)


if __name__ == "__main__":
    main()
