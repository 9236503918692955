"""Generates the VOC07-sized benchmark stores for Benchmarks/svm (run by bench.sh, cached).

5,011 training and 4,952 test rows (VOC07 trainval/test sizes), 20 classes, VOC encoding with
difficult entries; two layers of real MobileNetV2 (ImageNet weights) features over real images:
`mid2048` (2,048-d) and `exp9216` (9,216-d). See svm_feature_data.py.

usage: python scripts/make_svm_bench_data.py OUT_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svm_feature_data as data  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for split, n, seed in (("train", 5011, 1), ("test", 4952, 2)):
        path = os.path.join(out, f"{split}.h5")
        if os.path.exists(path):
            continue
        t0 = time.time()
        images, targets = data.make_mosaics(n, seed)
        feats, shapes = data.extract(images, ["mid2048", "exp9216"])
        data.write_store(path, split, feats, shapes, targets, f"bench-mnv2-mosaic-v1-{split}", data.CLASS_NAMES,
                         {"trunk": "torchvision mobilenet_v2 IMAGENET1K_V1", "images": "fashion-mnist+digits 2x2 mosaics"})
        pos = (targets == 1).sum(0)
        print(f"{split}: {n} rows in {time.time() - t0:.0f} s; positives per class {pos.min()}..{pos.max()}, "
              f"difficult entries {(targets == -1).sum()}", file=sys.stderr)


if __name__ == "__main__":
    main()
