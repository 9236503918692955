"""Builds the end-to-end extraction fixtures under Tests/Fixtures/extract/ (run by hand):

    /path/to/venv/bin/python scripts/make_extract_fixtures.py

What VISSL computes for a small ImageFolder dataset made of the committed image fixtures
(Tests/Fixtures/images/files: photos, grayscale, CMYK/YCCK JPEG, palette, alpha and 16-bit PNG,
odd sizes, one file that is not an image): PIL opens each file and converts it to RGB
(`vissl/data/disk_dataset.py`), an unreadable one is replaced by VISSL's gray image
(128, DEFAULT_GRAY_IMG_SIZE square), torchvision's transforms make the tensor, and the trunk —
VISSL's `resnet` (ResNet-18 here) rebuilt from torchvision by scripts/make_trunk_fixtures.py,
BatchNorm in eval mode, float64 — gives the taps, which VISSL's pool ops pool and flatten.

The weights are not stored: they are the trunk fixtures' PRNG weights of case `extract_rn18`
(see scripts/make_trunk_fixtures.py), which the Swift test writes to a safetensors file.

Writes:
  dataset.json   the ImageFolder layout (class folder -> files copied from images/files, plus
                 files that must be ignored), the pipeline (transforms per split, pool map), and
                 per split: image paths, targets, unreadable flags, layer names and shape_chw,
                 and the offset of each layer's [N, D] float32 block in features.bin
  features.bin   expected pooled features, float32 little-endian
"""
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tvshim  # noqa: F401,E402  (before torchvision)
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from make_trunk_fixtures import POOL_OPS, build  # noqa: E402

ROOT = os.path.join(HERE, "..", "Tests", "Fixtures")
OUT = os.path.join(ROOT, "extract")
FILES = os.path.join(ROOT, "images", "files")
CASE = "extract_rn18"
GRAY = 224

LAYOUT = {
    "animals": ["photo_500x375.jpg", "photo_375x500.jpg", "garbage.jpg", "progressive_67x45.jpg", "tall_24x160.jpg",
                "wide_300x40.jpg"],
    "bytes": ["cmyk_43x31.jpg", "ycck_37x29.jpg", "gray_50x70.jpg", "palette_52x38.png", "palette_trns_52x38.png",
              "rgba_52x38.png", "la_52x38.png", "rgb16_33x27.png", "gray16_52x38.png", "tiny_1x1.jpg"],
}
# Files torchvision's ImageFolder does not list (extension not an image extension).
IGNORED = {"animals": ["README.txt"], "bytes": ["animation.gif"]}

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TRANSFORMS = {
    "TEST": [{"name": "Resize", "size": 72}, {"name": "CenterCrop", "size": 64}, {"name": "ToTensor"},
             {"name": "Normalize", "mean": MEAN, "std": STD}],
    "TRAIN": [{"name": "Resize", "size": [64, 64], "interpolation": 3}, {"name": "ToTensor"},
              {"name": "Normalize", "mean": MEAN, "std": STD}],
}
POOL_MAP = [
    ["conv1", ["AvgPool2d", [[10, 10], 10, 4]]],
    ["res2", ["AvgPool2d", [[4, 4], 4, 0]]],
    ["res3", ["MaxPool2d", [3, 2, 1]]],
    ["res4", ["AdaptiveAvgPool2d", [[2, 1]]]],
    ["res5", ["AdaptiveMaxPool2d", [1]]],
    ["res5avg", ["Identity", []]],
    ["res5avg", ["Identity", []]],
]


def torchvision_transform(spec):
    steps = []
    for s in spec:
        kw = {k: v for k, v in s.items() if k != "name"}
        if s["name"] == "Resize":
            interp = {2: T.InterpolationMode.BILINEAR, 3: T.InterpolationMode.BICUBIC}[kw.pop("interpolation", 2)]
            steps.append(T.Resize(kw["size"], interpolation=interp))
        elif s["name"] == "CenterCrop":
            steps.append(T.CenterCrop(kw["size"]))
        elif s["name"] == "ToTensor":
            steps.append(T.ToTensor())
        elif s["name"] == "Normalize":
            steps.append(T.Normalize(kw["mean"], kw["std"]))
        else:
            raise ValueError(s["name"])
    return T.Compose(steps)


def vissl_open(path):
    """VISSL's disk_dataset loading: PIL + convert("RGB"), gray image when that fails."""
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB"), False
    except Exception:
        return Image.fromarray(np.full((GRAY, GRAY, 3), 128, dtype=np.uint8)), True


def layer_names():
    seen = {}
    names = []
    for tap, _ in POOL_MAP:
        k = seen.get(tap, 0)
        seen[tap] = k + 1
        names.append(tap if k == 0 else f"{tap}_{k}")
    return names


def main():
    os.makedirs(OUT, exist_ok=True)
    net, _ = build(CASE, {"DEPTH": 18})
    net32, _ = build(CASE, {"DEPTH": 18})
    net32 = net32.float()
    classes = sorted(LAYOUT)
    samples = [(f"{c}/{f}", i) for i, c in enumerate(classes) for f in sorted(LAYOUT[c])]
    blocks = []
    offset = 0
    splits = {}
    worst32 = 0.0
    for split in ["TRAIN", "TEST"]:
        tf = torchvision_transform(TRANSFORMS[split])
        xs, unreadable = [], []
        for rel, _ in samples:
            img, bad = vissl_open(os.path.join(FILES, os.path.basename(rel)))
            xs.append(tf(img))
            unreadable.append(int(bad))
        x = torch.stack(xs)
        with torch.no_grad():
            taps = net(x.double())
            taps32 = net32(x)
        layers = []
        for name, (tap, (op, args)) in zip(layer_names(), POOL_MAP):
            y = torch.flatten(POOL_OPS[op](*args)(taps[tap]), 1).numpy()
            y32 = torch.flatten(POOL_OPS[op](*args)(taps32[tap]), 1).numpy()
            worst32 = max(worst32, float(np.abs(y32 - y).max() / np.abs(y).max()))
            shape = list(POOL_OPS[op](*args)(taps[tap]).shape[1:])
            a = np.ascontiguousarray(y, dtype="<f4")
            layers.append({"name": name, "shape_chw": shape, "offset": offset, "count": int(a.size)})
            blocks.append(a.ravel())
            offset += a.size
        splits[split] = {"image_paths": [rel for rel, _ in samples], "targets": [t for _, t in samples],
                         "unreadable": unreadable, "input": list(x.shape[1:]), "layers": layers}
    np.concatenate(blocks).astype("<f4").tofile(os.path.join(OUT, "features.bin"))
    doc = {
        "generator": "scripts/make_extract_fixtures.py",
        "torch": torch.__version__,
        "weights_case": CASE,
        "depth": 18,
        "gray_image_size": GRAY,
        "classes": {c: sorted(LAYOUT[c]) for c in classes},
        "ignored": IGNORED,
        "transforms": TRANSFORMS,
        "pool_map": POOL_MAP,
        "splits": splits,
        "float32_torch_vs_float64_max_relative": worst32,
    }
    with open(os.path.join(OUT, "dataset.json"), "w") as f:
        json.dump(doc, f, indent=1)
    size = os.path.getsize(os.path.join(OUT, "features.bin"))
    print(f"{len(samples)} images, {offset} floats ({size / 1e6:.2f} MB); float32 torch vs float64: "
          f"max |diff| / max |y| = {worst32:.2e}", file=sys.stderr)


if __name__ == "__main__":
    main()
