"""Writes a SEER-scale `regnet_fsdp` checkpoint in VISSL's layout, with random weights, for the
memory and speed measurements of the largest RegNets (run by hand; nothing is committed).

The default is SEER-3B as VISSL's `regnet3B` linear-evaluation overlays build it (anynet, depths
[1, 4, 4, 1], widths [1840, 3680, 10120, 25760], group width 920, SE 0.25): 12.4 GB of float32.
The tensors are views into one file-backed storage, so the script itself stays small in memory
whatever the model's size; `torch.save` then writes that storage once.

  python scripts/make_seer_checkpoint.py --out seer3b.torch [--depths 1 4 4 1 --widths ...]
  python scripts/make_seer_checkpoint.py --out seer256gf.torch --regnet 27 640 230.83 2.53 373

`--regnet depth w_0 w_a w_m group_width` takes VISSL's parametric form instead (SEER-256GF's
`regnet256Gf_1` overlay above), widths by ClassyVision's algorithm.

The matching Linprobe overrides are printed at the end.
"""
import argparse
import os
import sys
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_regnet_fixtures import expanded_params, vissl_name  # noqa: E402
import tvshim  # noqa: F401,E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.regnet import BlockParams, RegNet  # noqa: E402


def shapes(depths, widths, group_widths, multipliers, strides, se_ratio):
    """VISSL trunk key → shape, from torchvision's RegNet built on the meta device."""
    params = BlockParams(depths, widths, group_widths, multipliers, strides, se_ratio=se_ratio)
    with torch.device("meta"):
        m = RegNet(params, norm_layer=partial(nn.BatchNorm2d, eps=1e-5))
    parts = [[0] * d for d in depths]
    out = {}
    for k, v in m.state_dict().items():
        name = vissl_name(k, parts)
        if name is not None and v.is_floating_point():
            out["_feature_blocks." + name] = tuple(v.shape)
    return out


def fill(view, name, rng):
    """He-scaled convolutions, BatchNorm statistics near identity, so activations stay finite."""
    n = view.numel()
    a = view.view(-1).numpy()
    if name.endswith("running_var"):
        a[:] = rng.uniform(0.5, 1.5, n)
    elif name.endswith("running_mean") or name.endswith("bias"):
        a[:] = rng.normal(0.0, 0.05, n)
    elif view.dim() == 1:
        a[:] = rng.uniform(0.5, 1.0, n)
    else:
        fan_in = int(np.prod(view.shape[1:]))
        step = 1 << 24
        for i in range(0, n, step):
            j = min(n, i + step)
            a[i:j] = rng.standard_normal(j - i, dtype=np.float32) * np.float32((1.0 / fan_in) ** 0.5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--depths", type=int, nargs=4, default=[1, 4, 4, 1])
    p.add_argument("--widths", type=int, nargs=4, default=[1840, 3680, 10120, 25760])
    p.add_argument("--group-width", type=int, default=920)
    p.add_argument("--se-ratio", type=float, default=0.25)
    p.add_argument("--regnet", type=float, nargs=5, metavar=("DEPTH", "W_0", "W_A", "W_M", "GROUP_WIDTH"))
    args = p.parse_args()
    groups = [args.group_width] * 4
    if args.regnet:
        d, w0, wa, wm, gw = args.regnet
        args.widths, args.depths, groups = expanded_params(int(d), w0, wa, wm, int(gw))
    sizes = shapes(args.depths, args.widths, groups, [1.0] * 4, [2] * 4, args.se_ratio)
    total = sum(int(np.prod(s)) for s in sizes.values())
    print(f"{len(sizes)} tensors, {total / 1e9:.3f} G parameters, {total * 4 / 1e9:.2f} GB float32")
    backing = args.out + ".storage"
    flat = torch.from_file(backing, shared=True, size=total, dtype=torch.float32)
    rng = np.random.default_rng(0)
    trunk, offset = {}, 0
    for name, shape in sizes.items():
        n = int(np.prod(shape))
        view = flat[offset:offset + n].view(shape)
        fill(view, name, rng)
        trunk[name] = view
        offset += n
    state = {"classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": {}}}}}
    torch.save(state, args.out)
    os.remove(backing)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e9:.2f} GB)")
    print("overrides: config.MODEL.TRUNK.NAME=regnet_fsdp config.MODEL.TRUNK.REGNET.name=anynet "
          f"config.MODEL.TRUNK.REGNET.depths=[{','.join(map(str, args.depths))}] "
          f"config.MODEL.TRUNK.REGNET.widths=[{','.join(map(str, args.widths))}] "
          f"config.MODEL.TRUNK.REGNET.group_widths=[{','.join(map(str, groups))}] "
          "config.MODEL.TRUNK.REGNET.bottleneck_multipliers=[1.0,1.0,1.0,1.0] "
          "config.MODEL.TRUNK.REGNET.strides=[2,2,2,2] "
          f"config.MODEL.WEIGHTS_INIT.PARAMS_FILE={args.out}")


if __name__ == "__main__":
    main()
