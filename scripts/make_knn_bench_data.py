"""An ImageNet-shaped kNN problem for Benchmarks/knn (run by bench.sh; never by the tests).

    $PY scripts/make_knn_bench_data.py OUT_DIR TRAIN_ROWS TEST_ROWS [DIM] [CLASSES]

Writes OUT_DIR/train-<N>.h5 and OUT_DIR/test-<M>.h5 in Linprobe's store layout (h5py): one layer
res5avg of DIM (default 2048) non-negative features — a ReLU of class centre + noise, like a ResNet's
pooled res5 — and single-label targets over CLASSES (default 1000) classes, written in blocks so
memory stays small. Deterministic (seeded); an existing complete file is kept.
"""
import json
import os
import sys

import h5py
import numpy as np


def write(path, rows, dim, classes, seed, centres, split):
    if os.path.exists(path):
        return
    rng = np.random.default_rng(seed)
    tmp = path + ".tmp"
    block = 8192
    with h5py.File(tmp, "w") as f:
        d = f.create_dataset("features/res5avg", shape=(rows, dim), dtype=np.float32, chunks=(128, dim))
        d.attrs["shape_chw"] = np.array([dim, 1, 1], dtype=np.int64)
        labels = rng.integers(0, classes, size=rows).astype(np.int64)
        for start in range(0, rows, block):
            y = labels[start:start + block]
            x = centres[y] + 2.0 * rng.standard_normal((len(y), dim), dtype=np.float32)
            d[start:start + len(y)] = np.maximum(x, 0)
        f.create_dataset("targets", data=labels)
        f.create_dataset("indices", data=np.arange(rows, dtype=np.int64))
        f.attrs["format"] = "linprobe.features"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["fingerprint"] = f"knn-bench-{split}-{rows}-{dim}"
        f.attrs["split"] = split
        f.attrs["complete"] = np.int64(1)
        f.attrs["rows_written"] = np.int64(rows)
        f.attrs["num_classes"] = np.int64(classes)
        f.attrs["class_names"] = json.dumps([])
        f.attrs["layer_order"] = json.dumps(["res5avg"])
    os.replace(tmp, path)


def main():
    out, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dim = int(sys.argv[4]) if len(sys.argv) > 4 else 2048
    classes = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    os.makedirs(out, exist_ok=True)
    centres = np.random.default_rng(0).standard_normal((classes, dim), dtype=np.float32) * 0.55
    write(f"{out}/train-{n}x{dim}.h5", n, dim, classes, 1, centres, "train")
    write(f"{out}/test-{m}x{dim}.h5", m, dim, classes, 2, centres, "test")


if __name__ == "__main__":
    main()
