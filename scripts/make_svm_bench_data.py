"""Generates the VOC07-sized benchmark stores for Benchmarks/svm (run by bench.sh, cached).

5,011 training and 4,952 test rows (VOC07 trainval/test sizes), 20 classes, VOC encoding with
difficult entries; layers of real MobileNetV2 (ImageNet weights) features over real images
(Fashion-MNIST / digits mosaics, see svm_feature_data.py). Recipes (`--recipe NAME`):

- `five-v2` (default): five layers at the widths of VISSL's ResNet-50 VOC07 layers (8,192-9,216-d),
  tapped from shallow to deep (features.1, .3, .6, .10 and features.14's expansion, pooled; see
  TAPS in svm_feature_data.py), the mosaics upscaled to 224x224: the complete five-layer job.
- `v3`: two layers, `mid2048` (2,048-d, features.6 pooled to 8x8) and `exp9216` (9,216-d,
  features.14's expansion pooled to 4x4), the mosaics upscaled to 112x112 (4x cheaper to make).
- `five-hard-v1`: the five layers of `five-v2` with the mosaics shrunk to 4x4 pixels before the
  trunk: features that barely tell the classes apart, so about 250 of each layer's 680 fits run
  to max_iter - the solver's worst case. (Recipe v2 did this by accident: a loop variable
  shadowed the input side. Issue #18's SVM figures and the benchmark tables before 2026-12-05
  were measured on those stores.)

The stores are named after the recipe (train-five-v2.h5, test-five-v2.h5, ...) so a changed
recipe never reuses an old cache.

usage: python scripts/make_svm_bench_data.py OUT_DIR [--recipe five-v2|v3|five-hard-v1]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svm_feature_data as data  # noqa: E402

FIVE = ["b1_9216", "b3_8664", "b6_8192", "b10_9216", "b14_9216"]
# recipe name -> (taps, input side)
RECIPES = {
    "five-v2": (FIVE, 224),
    "v3": (["mid2048", "exp9216"], 112),
    "five-hard-v1": (FIVE, 4),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="five-v2")
    a = p.parse_args()
    taps, size = RECIPES[a.recipe]
    os.makedirs(a.out, exist_ok=True)
    for split, n, seed in (("train", 5011, 1), ("test", 4952, 2)):
        path = os.path.join(a.out, f"{split}-{a.recipe}.h5")
        if os.path.exists(path):
            continue
        t0 = time.time()
        images, targets = data.make_mosaics(n, seed)
        feats, shapes = data.extract(images, taps, size=size)
        data.write_store(path, split, feats, shapes, targets, f"bench-mnv2-mosaic-{a.recipe}-{split}", data.CLASS_NAMES,
                         {"trunk": "torchvision mobilenet_v2 IMAGENET1K_V1", "images": "fashion-mnist+digits 2x2 mosaics",
                          "input_size": size})
        pos = (targets == 1).sum(0)
        print(f"{split}: {n} rows in {time.time() - t0:.0f} s; positives per class {pos.min()}..{pos.max()}, "
              f"difficult entries {(targets == -1).sum()}", file=sys.stderr)


if __name__ == "__main__":
    main()
