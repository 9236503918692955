"""Builds the AlexNet and Lab test fixtures under Tests/Fixtures/alexnet/ (run by hand):

    /path/to/venv/bin/python scripts/make_alexnet_fixtures.py

The reference is a PyTorch transcription of VISSL's five modules (vissl/models/trunks/alexnet_*.py,
trunks.md §C): nine feature blocks conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5, flatten;
taps are the block outputs (convN post-ReLU). DeepCluster's fixed Sobel (gray 1x1 conv with weights
1/3, then the two 3x3 Sobel kernels) runs first; colorization takes channel 0 of its input.

Weights follow scripts/make_trunk_fixtures.py's generator (SplitMix64 seeded with FNV-1a-64 of
"<case>:<parameter>"), so the Swift tests regenerate them instead of reading a file; BatchNorm
statistics are random. The forward runs in float64 from the float32 weights. Inputs are small
(2 x 3 x 67 x 75: the smallest size that leaves pool5 non-empty for every variant) and non-square.

Outputs:
  reference.json / reference.bin   per variant: every tap, some through pool ops (inputs are regenerated
                                    from the stream "input:alexnet_<variant>", scaled as make_input says)
  bvlc_vissl.torch                  {"model_state_dict": {"_feature_blocks.*"}} for alexnet_bvlc
  deepcluster_vissl.torch           the same for alexnet_deepcluster, plus VISSL's sobel.* constants
                                    (tensors are strided views of small storages: the files stay small)
  lab.json                          OpenCV 8-bit Lab (cv2.cvtColor BGR2LAB) of real photos of the repo
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from make_trunk_fixtures import stream  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "alexnet")
VARIANTS = ["bvlc", "colorization", "deepcluster", "jigsaw", "rotnet"]
TAPS = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten"]


def lrn():
    return nn.LocalResponseNorm(size=5, alpha=0.0001, beta=0.75)


def conv_block(cin, cout, k, s, p, g, bn):
    layers = [nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=p, groups=g)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class VisslAlexNet(nn.Module):
    """The five VISSL AlexNets, block for block."""

    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2)  # noqa: E731
        if variant == "bvlc":
            blocks = [conv_block(3, 96, 11, 4, 0, 1, False), nn.Sequential(lrn(), pool()),
                      conv_block(96, 256, 5, 1, 2, 2, False), nn.Sequential(lrn(), pool()),
                      conv_block(256, 384, 3, 1, 1, 1, False), conv_block(384, 384, 3, 1, 1, 2, False),
                      conv_block(384, 256, 3, 1, 1, 2, False)]
        elif variant == "colorization":
            blocks = [conv_block(1, 96, 11, 4, 0, 1, True), pool(), conv_block(96, 256, 5, 1, 2, 2, True), pool(),
                      conv_block(256, 384, 3, 1, 1, 1, True), conv_block(384, 384, 3, 1, 1, 2, True),
                      conv_block(384, 256, 3, 1, 1, 2, True)]
        elif variant == "deepcluster":
            gray = nn.Conv2d(3, 1, kernel_size=1, stride=1, padding=0)
            gray.weight.data.fill_(1.0 / 3.0)
            gray.bias.data.zero_()
            sob = nn.Conv2d(1, 2, kernel_size=3, stride=1, padding=1)
            sob.weight.data[0, 0].copy_(torch.FloatTensor([[1, 0, -1], [2, 0, -2], [1, 0, -1]]))
            sob.weight.data[1, 0].copy_(torch.FloatTensor([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]))
            sob.bias.data.zero_()
            self.sobel = nn.Sequential(gray, sob)
            blocks = [conv_block(2, 96, 11, 4, 2, 1, True), pool(), conv_block(96, 256, 5, 1, 2, 1, True), pool(),
                      conv_block(256, 384, 3, 1, 1, 1, True), conv_block(384, 384, 3, 1, 1, 1, True),
                      conv_block(384, 256, 3, 1, 1, 1, True)]
        elif variant == "jigsaw":
            blocks = [conv_block(3, 96, 11, 2, 0, 1, False), nn.Sequential(pool(), lrn()),
                      conv_block(96, 256, 5, 1, 2, 2, False), nn.Sequential(pool(), lrn()),
                      conv_block(256, 384, 3, 1, 1, 1, True), conv_block(384, 384, 3, 1, 1, 2, True),
                      conv_block(384, 256, 3, 1, 1, 2, True)]
        else:  # rotnet
            blocks = [conv_block(3, 64, 11, 4, 2, 1, True), pool(), conv_block(64, 192, 5, 1, 2, 1, True), pool(),
                      conv_block(192, 384, 3, 1, 1, 1, True), conv_block(384, 256, 3, 1, 1, 1, True),
                      conv_block(256, 256, 3, 1, 1, 1, True)]
        self._feature_blocks = nn.ModuleList(blocks + [pool(), nn.Flatten()])

    def forward(self, x):
        if self.variant == "colorization":
            x = torch.split(x, [1, 2], dim=1)[0]
        if self.variant == "deepcluster":
            x = self.sobel(x)
        out = {}
        for name, block in zip(TAPS, self._feature_blocks):
            x = block(x)
            out[name] = x
        return out


def trunk_state(m):
    """Trunk parameters by Linprobe's names (VISSL's without `_feature_blocks.`)."""
    sd = m.state_dict()
    return {k[len("_feature_blocks."):]: v for k, v in sd.items()
            if k.startswith("_feature_blocks.") and not k.endswith("num_batches_tracked")}


def param_values(case, name, shape):
    """make_trunk_fixtures.py's scheme, on VISSL's AlexNet names."""
    n = int(np.prod(shape))
    u = stream(f"{case}:{name}", n)
    if name.endswith("running_mean"):
        v = 0.5 * (2 * u - 1)
    elif name.endswith("running_var"):
        v = 0.5 + 1.5 * u
    elif name.endswith(".bias"):
        v = 0.2 * (2 * u - 1)
    elif len(shape) == 4:
        v = (2 * u - 1) * math.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
    else:
        v = 0.5 + u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def build(variant):
    m = VisslAlexNet(variant).eval()
    prefix = "_feature_blocks."
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if k.startswith(prefix) and not k.endswith("num_batches_tracked"):
                v.copy_(param_values(f"alexnet_{variant}", k[len(prefix):], list(v.shape)))
    return m


def make_input(variant, shape):
    u = stream(f"input:alexnet_{variant}", int(np.prod(shape)))
    scale = {"bvlc": 120.0, "colorization": 50.0}.get(variant, 2.0)
    return torch.from_numpy((scale * (2 * u - 1)).astype(np.float32).reshape(shape))


class Blob:
    def __init__(self):
        self.values = []

    def add(self, t):
        flat = t.detach().to(torch.float32).reshape(-1).tolist()
        entry = {"offset": len(self.values), "count": len(flat)}
        self.values.extend(flat)
        return entry


# What is stored per variant, as (tap, VISSL pool op): the early maps through pools (a strided
# average keeps every value in play while the file stays small; adaptive bins that overlap), the
# later ones as they are.
OUTPUTS = [
    ("conv1", ["AvgPool2d", [[3, 3], 2, 0]]), ("conv1", ["AdaptiveMaxPool2d", [3]]),
    ("conv1", ["AdaptiveMaxPool2d", [[2, 5]]]), ("pool1", ["AvgPool2d", [[2, 2], 2, 0]]),
    ("conv2", ["AvgPool2d", [[2, 2], 2, 0]]), ("pool2", ["Identity", []]), ("conv3", ["Identity", []]),
    ("conv4", ["Identity", []]), ("conv5", ["Identity", []]), ("conv5", ["AdaptiveMaxPool2d", [1]]),
    ("pool5", ["Identity", []]), ("flatten", ["Identity", []]),
]


def pool_op(op):
    name, args = op
    if name == "Identity":
        return lambda t: t
    if name == "AvgPool2d":
        return nn.AvgPool2d(*args)
    return nn.AdaptiveMaxPool2d(*args)


def strided_copy(t, g):
    """A view with the tensor's shape on a small random storage (strides 7, 5, 3, 1 …)."""
    strides = [7, 5, 3, 1][-t.dim():] if t.dim() > 1 else [1]
    size = sum((n - 1) * s for n, s in zip(t.shape, strides)) + 1
    base = torch.randn(size, generator=g, dtype=torch.float64).float()
    scale = t.abs().max().item() / 2 or 1.0
    return (base * scale).as_strided(tuple(t.shape), tuple(strides))


def vissl_checkpoint(variant, g, with_sobel=False):
    m = build(variant)
    sd = {}
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if k.endswith("running_var"):
                sd[k] = (0.5 + v.abs())  # stays a variance
            elif k.endswith("num_batches_tracked") or k.startswith("sobel"):
                sd[k] = v.clone()
            else:
                sd[k] = strided_copy(v, g)
        m.load_state_dict({k: v.contiguous() for k, v in sd.items()})
    if not with_sobel:
        sd = {k: v for k, v in sd.items() if not k.startswith("sobel")}
    torch.save({"model_state_dict": sd}, os.path.join(ROOT, f"{variant}_vissl.torch"))
    return m


# Real photos of the repository's fixtures (crops keep the file small): the RGB bytes PIL decodes
# are stored with OpenCV's answer, so the Swift test does not depend on a JPEG decoder.
PHOTOS = [("images/files/photo_375x500.jpg", 0, 0), ("images/files/photo_375x500.jpg", 150, 200),
          ("images/files/photo_375x500.jpg", 300, 300), ("images/files/photo_375x500.jpg", 40, 330),
          ("images/files/rgb444_67x45.jpg", 10, 10), ("images/files/ycck_37x29.jpg", 5, 5)]


def lab_fixture():
    import cv2
    from PIL import Image
    cases = []
    for rel, top, left in PHOTOS:
        img = np.array(Image.open(os.path.join(ROOT, "..", rel)).convert("RGB"))[top:top + 16, left:left + 24]
        lab = cv2.cvtColor(np.ascontiguousarray(img[:, :, ::-1]), cv2.COLOR_BGR2LAB)
        lab32 = lab.astype(np.float32)
        l_tensor = lab32[:, :, 0] * (100.0 / 255.0) - 50.0  # ImgPil2LabTensor's float32 arithmetic
        cases.append({"photo": rel, "top": top, "left": left, "height": img.shape[0], "width": img.shape[1],
                      "rgb": img.reshape(-1).tolist(), "lab8": lab.reshape(-1).tolist(),
                      "L_tensor": [float(v) for v in l_tensor.reshape(-1)]})
    with open(os.path.join(ROOT, "lab.json"), "w") as f:
        json.dump({"generator": "scripts/make_alexnet_fixtures.py", "opencv": cv2.__version__, "cases": cases}, f)
        f.write("\n")


def main():
    os.makedirs(ROOT, exist_ok=True)
    blob = Blob()
    cases = []
    for variant in VARIANTS:
        # The smallest sizes that leave pool5 non-empty, non-square (jigsaw's conv1 has stride 2).
        shape = [2, 3, 43, 47] if variant == "jigsaw" else [2, 3, 67, 75]
        m = build(variant).double()
        x = make_input(variant, shape)
        with torch.no_grad():
            taps = m(x.double())
        entries = [{"tap": t, "op": op, "shape": list(pool_op(op)(taps[t]).shape[1:]),
                    **blob.add(pool_op(op)(taps[t]))} for t, op in OUTPUTS]
        cases.append({"case": f"alexnet_{variant}", "input": shape, "taps": entries})
    g = torch.Generator().manual_seed(14)
    for variant, sobel in [("bvlc", False), ("deepcluster", True)]:
        m = vissl_checkpoint(variant, g, sobel).double()
        x = make_input(variant, [1, 3, 67, 67])
        with torch.no_grad():
            taps = m(x.double())
        out = [("conv1", OUTPUTS[0][1]), ("conv5", OUTPUTS[8][1])]
        cases.append({"case": f"{variant}_vissl.torch", "trunk": f"alexnet_{variant}", "input": [1, 3, 67, 67],
                      "taps": [{"tap": t, "op": op, **blob.add(pool_op(op)(taps[t]))} for t, op in out]})
    with open(os.path.join(ROOT, "reference.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(blob.values)}f", *blob.values))
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump({"generator": "scripts/make_alexnet_fixtures.py", "torch": torch.__version__, "cases": cases},
                  f, indent=1)
        f.write("\n")
    lab_fixture()


if __name__ == "__main__":
    main()
