"""Fixtures for import-features (run by hand; the tests never need Python).

    $PY scripts/make_import_fixtures.py Tests/Fixtures/import   (PY: a Python with numpy and torch)

vissl/ — what VISSL's extract_features engine writes (vissl/trainer/trainer_main.py, np.save via
vissl/utils/io.py) for a VOC-like dataset extracted on 2 GPUs with CHUNK_THRESHOLD 24 and a batch
of 8 per GPU: per rank and chunk, rank{R}_chunk{C}_{split}_{layer}_{features,targets,inds}.npy.
DistributedSampler(shuffle=False) pads the index list to a multiple of the world size by repeating
its first indices, so with 121 train / 81 test images rank 1's last batch holds a copy of image 0
(features identical, as eval-mode inference gives). Layers as a pool-op map with
SHOULD_FLATTEN_FEATS False writes them: res4 [N, 4, 2, 2] (AdaptiveAvgPool2d to 2×2) and res5avg
[N, 32] (Identity after the trunk's global pool). Targets are [N, 6] in VOC's encoding
(1 present, 0 absent, -1 difficult), inds the dataset indices.

formats/ — one single-label split (40 rows, 10 classes, res5avg [40, 8], res4 [40, 2, 2, 2]) in
every other importable form, all holding the same arrays:
  plain_features.npy + plain_labels.npy        (np.save; the features as float16, '<f2')
  arrays.npz                                   (np.savez: features_res5avg, features_res4, targets,
                                                indices, image_paths)
  trainfeat.pth + trainlabels.pth              (DINO's --dump_features: torch.save of bare tensors)
  dict.pth                                     (torch.save of {"features": {layer: tensor}, "targets",
                                                "inds", "image_paths"}; res5avg a transposed view)
  legacy.pth                                   (the dict in torch's legacy format)
  compressed.npz                               (np.savez_compressed: refused, with a message)

expected.json — what a correct import gives: per split of the dump, the merged row count, the padded
duplicates dropped, the sorted indices, and per layer the float64 sum of the features, the first
row and the last row; the same for formats/.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

WORLD = 2
BATCH = 8
CHUNK_THRESHOLD = 24
VOC_CLASSES = 6


def voc_dataset(n, seed):
    rng = np.random.default_rng(seed)
    centres4 = rng.normal(size=(VOC_CLASSES, 16))
    centres5 = rng.normal(size=(VOC_CLASSES, 32))
    present = rng.random((n, VOC_CLASSES)) < 0.3
    present[np.arange(n), rng.integers(0, VOC_CLASSES, size=n)] = True
    res4 = (present @ centres4 + 1.2 * rng.normal(size=(n, 16))).astype(np.float32).reshape(n, 4, 2, 2)
    res5 = np.maximum(present @ centres5 + 1.2 * rng.normal(size=(n, 32)), 0).astype(np.float32)
    targets = present.astype(np.int64)
    targets[(rng.random((n, VOC_CLASSES)) < 0.1) & present] = -1
    return {"res4": res4, "res5avg": res5}, targets


def distributed_indices(n, rank):
    """DistributedSampler(shuffle=False, drop_last=False): pad to a multiple of WORLD, then stride."""
    total = -(-n // WORLD) * WORLD
    indices = list(range(n))
    indices += indices[: total - n]
    return indices[rank:total:WORLD]


def write_vissl(folder, split, layers, targets):
    """Per rank: batches of BATCH; a chunk is flushed once CHUNK_THRESHOLD rows are buffered."""
    n = targets.shape[0]
    for rank in range(WORLD):
        mine = distributed_indices(n, rank)
        chunk, buffered = 0, []
        for start in range(0, len(mine), BATCH):
            buffered += mine[start:start + BATCH]
            last = start + BATCH >= len(mine)
            if len(buffered) >= CHUNK_THRESHOLD or last:
                inds = np.array(buffered, dtype=np.int64)
                for name, x in layers.items():
                    prefix = f"{folder}/rank{rank}_chunk{chunk}_{split}_{name}"
                    np.save(f"{prefix}_features.npy", x[inds])
                    np.save(f"{prefix}_targets.npy", targets[inds].reshape(len(inds), -1))
                    np.save(f"{prefix}_inds.npy", inds)
                chunk, buffered = chunk + 1, []


def summary(layers, targets, indices, extra=None):
    out = {"rows": int(targets.shape[0]), "indices": [int(i) for i in indices],
           "targets_sum": int(targets.sum()), "targets_shape": list(targets.shape), "layers": {}}
    for name, x in layers.items():
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        out["layers"][name] = {"shape": list(x.shape), "sum": float(flat.sum()),
                               "first_row": [float(v) for v in flat[0]], "last_row": [float(v) for v in flat[-1]]}
    out.update(extra or {})
    return out


def formats(folder):
    rng = np.random.default_rng(11)
    n = 40
    labels = np.arange(n) % 10
    res5 = (rng.normal(size=(10, 8))[labels] + 0.5 * rng.normal(size=(n, 8))).astype(np.float32)
    res5 = res5.astype(np.float16).astype(np.float32)  # exact in float16: the .npy below is '<f2'
    res4 = rng.normal(size=(n, 2, 2, 2)).astype(np.float32)
    paths = np.array([f"class{c}/img{i:03d}.jpg" for i, c in enumerate(labels)])
    indices = np.arange(100, 100 + n, dtype=np.int64)
    np.save(f"{folder}/plain_features.npy", res5.astype(np.float16))
    np.save(f"{folder}/plain_labels.npy", labels.astype(np.int64))
    np.savez(f"{folder}/arrays.npz", features_res5avg=res5, features_res4=res4, targets=labels.astype(np.int64),
             indices=indices, image_paths=paths)
    np.savez_compressed(f"{folder}/compressed.npz", features=res5, targets=labels)
    torch.save(torch.from_numpy(res5), f"{folder}/trainfeat.pth")
    torch.save(torch.from_numpy(labels.astype(np.int64)), f"{folder}/trainlabels.pth")
    transposed = torch.from_numpy(np.ascontiguousarray(res5.T)).t()  # a strided view: column-major rows
    payload = {"features": {"res5avg": transposed, "res4": torch.from_numpy(res4)},
               "targets": torch.from_numpy(labels.astype(np.int64)), "inds": torch.from_numpy(indices),
               "image_paths": [str(p) for p in paths]}
    torch.save(payload, f"{folder}/dict.pth")
    torch.save(payload, f"{folder}/legacy.pth", _use_new_zipfile_serialization=False)
    return summary({"res5avg": res5, "res4": res4}, labels, indices,
                   {"image_paths": [str(p) for p in paths[:3]], "num_classes": 10})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/import"
    for sub in ["vissl", "formats"]:
        shutil.rmtree(f"{out}/{sub}", ignore_errors=True)
        os.makedirs(f"{out}/{sub}")
    expected = {}
    for split, n, seed in [("train", 121, 1), ("test", 81, 2)]:
        layers, targets = voc_dataset(n, seed)
        write_vissl(f"{out}/vissl", split, layers, targets)
        padded = -(-n // WORLD) * WORLD - n
        expected[split] = summary(layers, targets, np.arange(n), {"duplicates_dropped": padded})
    expected["formats"] = formats(f"{out}/formats")
    expected["generator"] = {"numpy": np.__version__, "torch": torch.__version__}
    with open(f"{out}/expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("\n".join(sorted(os.listdir(f"{out}/vissl"))))


if __name__ == "__main__":
    main()
