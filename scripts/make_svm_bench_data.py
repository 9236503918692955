"""Generates the VOC07-sized benchmark stores for Benchmarks/svm (run by bench.sh, cached).

5,011 training and 4,952 test rows (VOC07 trainval/test sizes), 20 classes, VOC encoding with
difficult entries; two layers of real MobileNetV2 (ImageNet weights) features over real images
(Fashion-MNIST / digits mosaics, see svm_feature_data.py): `mid2048` (2,048-d, features.6 pooled
to 8x8) and `exp9216` (9,216-d, features.14's expansion pooled to 4x4). The mosaics are upscaled
to 112x112 (not 224): 4x cheaper on a 2-core machine, same taps and pooled sizes.

The stores are named after the recipe version (train-v2.h5, test-v2.h5) so a changed recipe
never reuses an old cache.

usage: python scripts/make_svm_bench_data.py OUT_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svm_feature_data as data  # noqa: E402

RECIPE = "v2"
SIZE = 112


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for split, n, seed in (("train", 5011, 1), ("test", 4952, 2)):
        path = os.path.join(out, f"{split}-{RECIPE}.h5")
        if os.path.exists(path):
            continue
        t0 = time.time()
        images, targets = data.make_mosaics(n, seed)
        feats, shapes = data.extract(images, ["mid2048", "exp9216"], size=SIZE)
        data.write_store(path, split, feats, shapes, targets, f"bench-mnv2-mosaic-{RECIPE}-{split}", data.CLASS_NAMES,
                         {"trunk": "torchvision mobilenet_v2 IMAGENET1K_V1", "images": "fashion-mnist+digits 2x2 mosaics",
                          "input_size": SIZE})
        pos = (targets == 1).sum(0)
        print(f"{split}: {n} rows in {time.time() - t0:.0f} s; positives per class {pos.min()}..{pos.max()}, "
              f"difficult entries {(targets == -1).sum()}", file=sys.stderr)


if __name__ == "__main__":
    main()
