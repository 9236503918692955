"""Builds the RegNet test fixtures under Tests/Fixtures/regnet/ (run by hand):

    /path/to/venv/bin/python scripts/make_regnet_fixtures.py

The reference is torchvision's RegNet built from explicit stage parameters (trunks.md §B.6: not
torchvision's regnet_y_* constructors, whose width rounding differs from ClassyVision's), with
the stage widths computed by ClassyVision's RegNetParams.get_expanded_params, transcribed below
(numpy float64, every rounding half-to-even). Its keys are renamed to VISSL's (§B.4).

Weights and inputs come from the PRNG of scripts/make_trunk_fixtures.py (SplitMix64 seeded with
FNV-1a-64 of "<case>:<VISSL name>"; BatchNorm statistics and affine randomised), which the Swift
tests implement too; the parametric and regnet_fsdp cases are also saved as VISSL checkpoints
(classy_state_dict) so that the tests load them through MODEL.WEIGHTS_INIT. The reference forward
runs in float64. Outputs:
  reference.json / reference.bin   cases (config, input, taps) and the widths of every named config
  parametric.torch, fsdp.torch     VISSL-layout checkpoints of those two cases
"""
import json
import math
import os
import struct
import sys
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_trunk_fixtures import param_values, stream  # noqa: E402
import tvshim  # noqa: F401,E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.regnet import BlockParams, RegNet  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "regnet")

# ClassyVision's named models (classy_vision/models/regnet.py): depth, w_0, w_a, w_m, group width, SE.
NAMED = {
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, True),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, True),
    "regnet_y_1.6gf": (27, 48, 20.71, 2.65, 24, True),
    "regnet_y_3.2gf": (21, 80, 42.63, 2.66, 24, True),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, True),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, True),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, True),
    "regnet_y_64gf": (20, 368, 102.79, 2.05, 496, True),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264, True),
    "regnet_y_256gf": (27, 640, 124.47, 2.04, 848, True),
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, False),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, False),
    "regnet_x_1.6gf": (18, 80, 34.01, 2.25, 24, False),
    "regnet_x_3.2gf": (25, 88, 26.31, 2.25, 48, False),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, False),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, False),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, False),
}
# Parametric configs of VISSL's overlays (SEER and the 64gf overlay).
PARAMETRIC = {
    "regnet64Gf_3": (20, 352, 147.48, 2.4, 328),
    "regnet256Gf_1": (27, 640, 230.83, 2.53, 373),
    "regnet10B": (27, 1744, 620.83, 2.52, 1010),
}


def expanded_params(depth, w_0, w_a, w_m, group_width, bottleneck_multiplier=1.0):
    """ClassyVision's RegNetParams.get_expanded_params → (widths, depths, group widths)."""
    widths_cont = np.arange(depth) * w_a + w_0
    block_capacity = np.round(np.log(widths_cont / w_0) / np.log(w_m))
    block_widths = (np.round(np.divide(w_0 * np.power(w_m, block_capacity), 8)) * 8).astype(int).tolist()
    splits = [w != wp for w, wp in zip(block_widths + [0], [0] + block_widths)]
    stage_widths = [w for w, t in zip(block_widths, splits[:-1]) if t]
    stage_depths = np.diff([d for d, t in enumerate(splits) if t]).tolist()
    b = bottleneck_multiplier
    w_bot = [int(w * b) for w in stage_widths]
    groups = [min(group_width, w) for w in w_bot]
    w_bot = [int(round(w / g) * g) for w, g in zip(w_bot, groups)]
    return [int(w / b) for w in w_bot], stage_depths, groups


def se_widths(widths, depths, stem=32, ratio=0.25):
    out, w_in = [], stem
    for w, d in zip(widths, depths):
        out.append([int(round(ratio * w_in))] + ([int(round(ratio * w))] if d > 1 else []))
        w_in = w
    return out


def vissl_name(k, parts=None):
    """torchvision key → VISSL trunk key below _feature_blocks. (None: not a trunk tensor).
    `parts[s][i]` is block i's -part group in stage s (regnet_fsdp layout)."""
    if k.startswith("fc.") or k.endswith("num_batches_tracked"):
        return None
    if k.startswith("stem."):
        return "conv1.stem." + k[len("stem."):]
    _, stage, block, rest = k.split(".", 3)  # trunk_output.block{s}.block{s}-{i}.rest
    s = int(stage[len("block"):])
    i = int(block.split("-")[1])
    for a, b in [("proj.0.", "proj."), ("proj.1.", "bn."), ("f.se.fc1.", "f.se.excitation.0."),
                 ("f.se.fc2.", "f.se.excitation.2."), ("f.c.0.", "f.c."), ("f.c.1.", "f.final_bn.")]:
        if rest.startswith(a):
            rest = b + rest[len(a):]
    group = f"{stage}-part{parts[s - 1][i]}." if parts is not None else ""
    return f"res{s + 1}.{group}{block}.{rest}"


def build(case, depths, widths, group_widths, multipliers, strides, se_ratio, stem_width=32, parts=None):
    params = BlockParams(depths, widths, group_widths, multipliers, strides, se_ratio=se_ratio)
    m = RegNet(params, stem_width=stem_width, norm_layer=partial(nn.BatchNorm2d, eps=1e-5, momentum=0.1)).eval()
    sd, names = {}, {}
    with torch.no_grad():
        for k, v in m.state_dict().items():
            name = vissl_name(k, parts)
            if name is None or not v.is_floating_point():
                continue
            t = torch.from_numpy(param_values(case, name, tuple(v.shape)))
            v.copy_(t)
            sd["_feature_blocks." + name] = t.clone()
    return m.double(), sd


def taps(m, x):
    out = {}
    with torch.no_grad():
        f = m.stem(x)
        out["conv1"] = f
        for s, block in enumerate(m.trunk_output.children()):
            f = block(f)
            out[f"res{s + 2}"] = f
        out["avgpool"] = m.avgpool(f)
    return out


def make_input(case, n, h, w, bgr=False):
    x = torch.from_numpy((2 * (2 * stream(f"input:{case}", n * 3 * h * w) - 1)).astype(np.float32))
    x = x.reshape(n, 3, h, w).double()
    # VISSL's INPUT_TYPE bgr: the trunk sees x[:, [2, 1, 0]].
    return x, (x[:, [2, 1, 0]] if bgr else x)


class Blob:
    def __init__(self):
        self.values = []

    def add(self, t):
        flat = t.detach().to(torch.float32).reshape(-1).tolist()
        entry = {"offset": len(self.values), "count": len(flat)}
        self.values.extend(flat)
        return entry


def add_case(blob, cases, case, regnet, model, size, bgr=False):
    x, seen = make_input(case, 2, size, size, bgr)
    out = taps(model, seen)
    cases.append({"case": case, "regnet": regnet, "input_type": "bgr" if bgr else "rgb", "input": [2, 3, size, size],
                  "taps": [{"tap": t, "shape": list(v.shape[1:]), **blob.add(v)} for t, v in out.items()]})


def classy(sd):
    return {"classy_state_dict": {"base_model": {"model": {"trunk": sd, "heads": {"0.channel_bn.weight": torch.ones(4)}}}}}


def main():
    os.makedirs(ROOT, exist_ok=True)
    blob, cases = Blob(), []
    # 1. A named model: regnet_y_400mf, weights from the PRNG (not stored), 64-pixel input.
    depth, w0, wa, wm, gw, _ = NAMED["regnet_y_400mf"]
    widths, depths, groups = expanded_params(depth, w0, wa, wm, gw)
    m, _ = build("named", depths, widths, groups, [1.0] * 4, [2] * 4, 0.25)
    add_case(blob, cases, "named", {"name": "regnet_y_400mf"}, m, 64)
    # 2. A parametric model (4 stages, stem width 24, bgr input), saved as a VISSL checkpoint.
    cfg = {"depth": 7, "w_0": 16, "w_a": 24.0, "w_m": 2.0, "group_width": 8, "stem_width": 24}
    widths, depths, groups = expanded_params(7, 16, 24.0, 2.0, 8)
    m, sd = build("parametric", depths, widths, groups, [1.0] * 4, [2] * 4, 0.25, stem_width=24)
    torch.save(classy(sd), os.path.join(ROOT, "parametric.torch"))
    add_case(blob, cases, "parametric", cfg, m, 48, bgr=True)
    # 3. regnet_fsdp, anynet form: stage_checkpoints put blocks in -part{g} groups (§B.4).
    fsdp = {"name": "anynet", "depths": [1, 2, 3, 1], "widths": [16, 32, 48, 64], "group_widths": [8, 8, 16, 16],
            "bottleneck_multipliers": [1.0, 1.0, 1.0, 0.5], "strides": [2, 2, 2, 2],
            "stage_checkpoints": [[1], [1], [1, 2], []]}
    parts = [[0], [0, 1], [0, 1, 2], [0]]
    m, sd = build("fsdp", fsdp["depths"], fsdp["widths"], fsdp["group_widths"], fsdp["bottleneck_multipliers"],
                  fsdp["strides"], 0.25, parts=parts)
    torch.save(classy(sd), os.path.join(ROOT, "fsdp.torch"))
    add_case(blob, cases, "fsdp", fsdp, m, 32)
    # 4. Widths of every named and overlay config by ClassyVision's algorithm.
    widths = {}
    for name, (d, w0, wa, wm, gw, se) in NAMED.items():
        w, dd, g = expanded_params(d, w0, wa, wm, gw)
        widths[name] = {"widths": w, "depths": dd, "group_widths": g, "se": se_widths(w, dd) if se else None}
    for name, (d, w0, wa, wm, gw) in PARAMETRIC.items():
        w, dd, g = expanded_params(d, w0, wa, wm, gw)
        widths[name] = {"regnet": {"depth": d, "w_0": w0, "w_a": wa, "w_m": wm, "group_width": gw},
                        "widths": w, "depths": dd, "group_widths": g, "se": se_widths(w, dd)}
    with open(os.path.join(ROOT, "reference.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(blob.values)}f", *blob.values))
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump({"generator": "scripts/make_regnet_fixtures.py", "torch": torch.__version__, "cases": cases,
                   "widths": widths}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
