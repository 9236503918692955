#!/usr/bin/env python3
"""Exports Linprobe's embedded demo data from Debian's `dataset-fashion-mnist` package.

Run by hand (needs numpy and Pillow); the output is committed under data/demo/:

  data/demo/fashion/{train,val}/<class>/<id>.png   ImageFolder layout (`disk_folder`), a
                                                   class-balanced seeded subset
  data/demo/voc/                                   the VOC2007 directory layout (JPEGImages/ and
                                                   ImageSets/Main/<class>_{trainval,test}.txt):
                                                   2x2 mosaics of Fashion-MNIST items, so an
                                                   image holds 1-3 classes; faint items are
                                                   marked difficult (VOC label 0)

Usage: python3 scripts/make_demo_data.py [--source /usr/share/datasets/fashion-mnist] [--out data/demo]
"""
import argparse
import gzip
import os
import shutil

import numpy as np
from PIL import Image

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    kind, dims = data[2], data[3]
    assert kind == 0x08, "expected unsigned bytes"
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def balanced(labels, per_class, rng, exclude=()):
    picked = []
    excluded = set(exclude)
    for c in range(10):
        pool = [i for i in np.flatnonzero(labels == c) if i not in excluded]
        picked.extend(rng.choice(pool, size=per_class, replace=False).tolist())
    return picked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default="data/demo")
    ap.add_argument("--train-per-class", type=int, default=30)
    ap.add_argument("--val-per-class", type=int, default=10)
    ap.add_argument("--voc-trainval", type=int, default=120)
    ap.add_argument("--voc-test", type=int, default=80)
    args = ap.parse_args()
    rng = np.random.default_rng(20261130)

    images = read_idx(os.path.join(args.source, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.source, "train-labels-idx1-ubyte.gz"))
    test_images = read_idx(os.path.join(args.source, "t10k-images-idx3-ubyte.gz"))
    test_labels = read_idx(os.path.join(args.source, "t10k-labels-idx1-ubyte.gz"))

    fashion = os.path.join(args.out, "fashion")
    shutil.rmtree(fashion, ignore_errors=True)
    for split, imgs, lbls, n in (("train", images, labels, args.train_per_class),
                                 ("val", test_images, test_labels, args.val_per_class)):
        for i in balanced(lbls, n, rng):
            folder = os.path.join(fashion, split, CLASSES[lbls[i]])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(imgs[i], mode="L").save(os.path.join(folder, f"{split}_{i:05d}.png"), optimize=True)

    voc = os.path.join(args.out, "voc")
    shutil.rmtree(voc, ignore_errors=True)
    os.makedirs(os.path.join(voc, "JPEGImages"))
    os.makedirs(os.path.join(voc, "ImageSets", "Main"))
    entries = {c: {"trainval": [], "test": []} for c in CLASSES}
    image_id = 0
    for split, imgs, lbls, n in (("trainval", images, labels, args.voc_trainval),
                                 ("test", test_images, test_labels, args.voc_test)):
        for _ in range(n):
            image_id += 1
            name = f"{image_id:06d}"
            canvas = np.zeros((56, 56), dtype=np.uint8)
            status = {}  # class -> 1 present, 0 difficult
            count = rng.integers(1, 4)
            for slot in rng.choice(4, size=count, replace=False):
                i = int(rng.integers(len(lbls)))
                c = CLASSES[lbls[i]]
                faint = rng.random() < 0.15
                tile = (imgs[i].astype(np.float32) * (0.3 if faint else 1.0)).astype(np.uint8)
                y, x = divmod(int(slot), 2)
                canvas[28 * y:28 * y + 28, 28 * x:28 * x + 28] = tile
                status[c] = max(status.get(c, 0), 0 if faint else 1)
            rgb = np.stack([canvas, canvas, (canvas * 0.8).astype(np.uint8)], axis=-1)
            Image.fromarray(rgb, mode="RGB").save(os.path.join(voc, "JPEGImages", name + ".jpg"), quality=90)
            for c in CLASSES:
                label = {1: " 1", 0: " 0"}.get(status.get(c), "-1")
                entries[c][split].append(f"{name} {label}")
    for c in CLASSES:
        for split in ("trainval", "test"):
            with open(os.path.join(voc, "ImageSets", "Main", f"{c}_{split}.txt"), "w") as f:
                f.write("\n".join(entries[c][split]) + "\n")
    for split in ("trainval", "test"):
        ids = [e.split()[0] for e in entries[CLASSES[0]][split]]
        with open(os.path.join(voc, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")


if __name__ == "__main__":
    main()
