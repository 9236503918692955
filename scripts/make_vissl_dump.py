"""A large VISSL-layout feature dump, for measuring import-features' memory (run by hand).

    $PY scripts/make_vissl_dump.py OUT_DIR ROWS [DIM] [WORLD] [CHUNK_ROWS] [SPLIT] [LAYER]

Writes what VISSL's extract_features engine writes for ROWS images (default 1,281,167: ImageNet's
train split) on WORLD GPUs (default 8) with CHUNK_THRESHOLD CHUNK_ROWS (default 50,000):
rank{R}_chunk{C}_{SPLIT}_{LAYER}_{features,targets,inds}.npy, DistributedSampler's padding
included. Features are float32 [n, DIM] (default 2048) of seeded noise, targets [n, 1] over
1,000 classes. Arrays are written through np.lib.format.open_memmap, a block at a time.
"""
import os
import sys

import numpy as np


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_281_167
    dim = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    world = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    chunk_rows = int(sys.argv[5]) if len(sys.argv) > 5 else 50_000
    split = sys.argv[6] if len(sys.argv) > 6 else "train"
    layer = sys.argv[7] if len(sys.argv) > 7 else "res5avg"
    os.makedirs(out, exist_ok=True)
    total = -(-rows // world) * world
    rng = np.random.default_rng(0)
    for rank in range(world):
        mine = np.arange(rank, total, world) % rows  # padding wraps to the first indices
        for c, start in enumerate(range(0, len(mine), chunk_rows)):
            inds = mine[start:start + chunk_rows].astype(np.int64)
            prefix = f"{out}/rank{rank}_chunk{c}_{split}_{layer}"
            feats = np.lib.format.open_memmap(f"{prefix}_features.npy", mode="w+", dtype=np.float32,
                                              shape=(len(inds), dim))
            for b in range(0, len(inds), 8192):
                feats[b:b + 8192] = rng.standard_normal((min(8192, len(inds) - b), dim), dtype=np.float32)
            feats.flush()
            del feats
            np.save(f"{prefix}_targets.npy", (inds % 1000).reshape(-1, 1))
            np.save(f"{prefix}_inds.npy", inds)
    print(f"{out}: {rows} rows ({total - rows} padded) of {dim} in {world} ranks")


if __name__ == "__main__":
    main()
