"""Builds the trunk and checkpoint test fixtures under Tests/Fixtures/trunk/ (run by hand):

    /path/to/venv/bin/python scripts/make_trunk_fixtures.py

Everything here is PyTorch/torchvision computing the reference; the Swift tests only read
the outputs. Weights and inputs are NOT stored: they come from a PRNG that the Swift tests
implement identically (SplitMix64 seeded with FNV-1a-64 of a tensor's name; value i uses the
i-th output, u = (z >> 40) * 2**-24 in [0, 1)):

    conv weight  (2u - 1) * sqrt(6 / fan_in)
    bn weight    0.5 + u          bn bias  0.2 * (2u - 1)
    running_mean 0.5 * (2u - 1)   running_var 0.5 + 1.5 u
    input        2 * (2u - 1)     (stream name "input:<case>", NCHW order)

each computed in float64 and rounded to float32. Names are "<case>:<torchvision name>".
The reference forward runs in float64 (from those float32 values), BatchNorm in eval mode,
so the stored taps are the exact answer to within float32 rounding of the output.
"""
import collections
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import tvshim  # noqa: F401,E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "trunk")
GOLDEN = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def stream(name, n):
    seed = np.uint64(fnv1a64(name))
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = seed + i * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24


def param_values(case, name, shape):
    n = int(np.prod(shape))
    u = stream(f"{case}:{name}", n)
    if name.endswith("running_mean"):
        v = 0.5 * (2 * u - 1)
    elif name.endswith("running_var"):
        v = 0.5 + 1.5 * u
    elif name.endswith(".bias"):
        v = 0.2 * (2 * u - 1)
    elif len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        v = (2 * u - 1) * math.sqrt(6.0 / fan_in)
    else:  # BatchNorm weight
        v = 0.5 + u
    return v.astype(np.float32).reshape(shape)


BLOCKS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3]),
          101: (Bottleneck, [3, 4, 23, 3])}


class VisslResNet(nn.Module):
    """VISSL's `resnet` trunk (vissl/models/trunks/resnext.py), rebuilt from torchvision the
    way VISSL does it, with its tap names."""

    def __init__(self, depth, width=1, groups=1, wpg=64, l4stride=2, input_type="rgb"):
        super().__init__()
        block, (n1, n2, n3, n4) = BLOCKS[depth]
        model = ResNet(block=block, layers=[n1, n2, n3, n4], groups=groups, width_per_group=wpg)
        model.inplanes = 64 * width
        inner = 64 * width
        self.conv1 = nn.Conv2d(3, model.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(model.inplanes)
        self.relu = model.relu
        self.maxpool = model.maxpool
        self.layer1 = model._make_layer(block, inner, n1)
        self.layer2 = model._make_layer(block, inner * 2, n2, stride=2)
        self.layer3 = model._make_layer(block, inner * 4, n3, stride=2)
        self.layer4 = model._make_layer(block, inner * 8, n4, stride=l4stride)
        self.avgpool = model.avgpool
        self.input_type = input_type

    def forward(self, x):
        if self.input_type == "bgr":
            x = x[:, [2, 1, 0], :, :]
        taps = collections.OrderedDict()
        x = self.relu(self.bn1(self.conv1(x)))
        taps["conv1"] = x
        x = self.maxpool(x)
        taps["res1"] = x
        for name, layer in [("res2", self.layer1), ("res3", self.layer2), ("res4", self.layer3), ("res5", self.layer4)]:
            x = layer(x)
            taps[name] = x
        x = self.avgpool(x)
        taps["res5avg"] = x
        taps["flatten"] = torch.flatten(x, 1)
        return taps


def build(case, cfg):
    net = VisslResNet(cfg["DEPTH"], cfg.get("WIDTH_MULTIPLIER", 1), cfg.get("GROUPS", 1), cfg.get("WIDTH_PER_GROUP", 64),
                      cfg.get("LAYER4_STRIDE", 2), cfg.get("INPUT_TYPE", "rgb"))
    params = []
    sd = net.state_dict()
    new = {}
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            new[name] = t
            continue
        params.append({"name": name, "shape": list(t.shape)})
        new[name] = torch.from_numpy(param_values(case, name, list(t.shape)))
    net.load_state_dict(new)
    return net.double().eval(), params


POOL_OPS = {"AvgPool2d": nn.AvgPool2d, "MaxPool2d": nn.MaxPool2d, "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d,
            "AdaptiveMaxPool2d": nn.AdaptiveMaxPool2d, "Identity": nn.Identity}


def make_input(case, n, h, w):
    return (2 * (2 * stream(f"input:{case}", n * 3 * h * w) - 1)).astype(np.float32).reshape(n, 3, h, w)


class Blob:
    """Float32 little-endian arrays appended to one .bin file, indexed in the manifest."""

    def __init__(self, path):
        self.path = path
        self.parts = []
        self.offset = 0

    def add(self, array):
        a = np.ascontiguousarray(array, dtype="<f4").ravel()
        entry = {"offset": self.offset, "count": int(a.size)}
        self.parts.append(a)
        self.offset += a.size
        return entry

    def write(self):
        np.concatenate(self.parts).astype("<f4").tofile(self.path)


def fidelity_cases(blob):
    cases = []
    specs = [
        ("rn18", {"DEPTH": 18}, (2, 57, 45), None),
        ("rn50", {"DEPTH": 50}, (2, 57, 45), None),
        ("rn50w2", {"DEPTH": 50, "WIDTH_MULTIPLIER": 2}, (1, 57, 45), None),
        ("resnext50_32x4d_l4s1_bgr", {"DEPTH": 50, "GROUPS": 32, "WIDTH_PER_GROUP": 4, "LAYER4_STRIDE": 1,
                                      "INPUT_TYPE": "bgr"}, (1, 32, 32), None),
        ("rn50_vissl224", {"DEPTH": 50}, (1, 224, 224), [
            ["conv1", ["AvgPool2d", [[10, 10], 10, 4]]],
            ["res2", ["AvgPool2d", [[16, 16], 8, 0]]],
            ["res3", ["AvgPool2d", [[13, 13], 5, 0]]],
            ["res4", ["AvgPool2d", [[8, 8], 3, 0]]],
            ["res5", ["AvgPool2d", [[6, 6], 1, 0]]],
            ["res5avg", ["Identity", []]],
            ["res5avg", ["Identity", []]],
        ]),
        ("rn50w2_vissl224", {"DEPTH": 50, "WIDTH_MULTIPLIER": 2}, (1, 224, 224), [
            ["conv1", ["AvgPool2d", [[20, 20], 13, 4]]],
            ["res2", ["AvgPool2d", [[32, 32], 8, 0]]],
            ["res3", ["AvgPool2d", [[13, 13], 7, 0]]],
            ["res4", ["AvgPool2d", [[8, 8], 6, 0]]],
            ["res5", ["AdaptiveAvgPool2d", [[2, 1]]]],
        ]),
    ]
    for case, cfg, (n, h, w), pool_map in specs:
        net, params = build(case, cfg)
        x = make_input(case, n, h, w)
        with torch.no_grad():
            taps = net(torch.from_numpy(x).double())
        resnets = {k: v for k, v in cfg.items() if k != "INPUT_TYPE"}
        entry = {"case": case, "model": {"TRUNK": {"NAME": "resnet", "RESNETS": resnets},
                                         "INPUT_TYPE": cfg.get("INPUT_TYPE", "rgb")},
                 "batch": n, "height": h, "width": w, "parameters": params}
        if pool_map is None:
            entry["taps"] = [{"tap": k, "shape": list(v.shape), **blob.add(v.numpy())} for k, v in taps.items()]
        else:
            outs = []
            for tap, (op, args) in pool_map:
                y = torch.flatten(POOL_OPS[op](*args)(taps[tap]), 1)
                outs.append({"tap": tap, "shape": list(y.shape), **blob.add(y.numpy())})
            entry["pool_map"] = pool_map
            entry["pooled"] = outs
        cases.append(entry)
        print(case, "done", file=sys.stderr)
    return cases


def pool_cases(blob):
    n, c, h, w = 2, 5, 13, 11
    x = (2 * stream("pool:input", n * c * h * w) - 1).astype(np.float32).reshape(n, c, h, w)
    x[0, 1, 3, 4] = 7.0  # a clear maximum
    ops = [
        ["AvgPool2d", [[3, 3], 2, 1]],
        ["AvgPool2d", [[4, 3], [2, 3], [1, 0], True]],
        ["AvgPool2d", [3, 2, 1, False, False]],
        ["AvgPool2d", [5, 2, 2, True, True, 7]],
        ["AvgPool2d", [[10, 10], 10, 4]],
        ["AvgPool2d", [[13, 11]]],
        ["MaxPool2d", [3, 2, 1]],
        ["MaxPool2d", [[3, 2], [2, 1], [1, 0], [2, 1]]],
        ["MaxPool2d", [3, 2, 1, 1, False, True]],
        ["AdaptiveAvgPool2d", [[5, 3]]],
        ["AdaptiveAvgPool2d", [4]],
        ["AdaptiveAvgPool2d", [[None, 7]]],
        ["AdaptiveAvgPool2d", [[2, 1]]],
        ["AdaptiveMaxPool2d", [[3, 5]]],
        ["AdaptiveMaxPool2d", [[20, 1]]],
        ["Identity", []],
    ]
    out = {"input": {"shape": [n, c, h, w], **blob.add(x)}, "ops": []}
    for op, args in ops:
        y = POOL_OPS[op](*args)(torch.from_numpy(x).double())
        out["ops"].append({"op": [op, args], "shape": list(y.shape), **blob.add(y.numpy())})
    # Parameters PyTorch rejects (the Swift side must reject them at configuration time).
    rejected = []
    for op, args in [["AvgPool2d", [3, 1, 2]], ["MaxPool2d", [2, 2, 2]], ["AvgPool2d", [[14, 3], 1, 0]]]:
        try:
            POOL_OPS[op](*args)(torch.from_numpy(x))
        except RuntimeError as e:
            rejected.append({"op": [op, args], "error": str(e).splitlines()[0]})
    out["rejected"] = rejected
    return out


# ---------------------------------------------------------------------------------------------
# Checkpoint formats


def small_state_dict():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    sd = collections.OrderedDict()
    sd["conv.weight"] = base.clone()
    sd["transposed"] = base.t()  # non-contiguous strides
    sd["slice"] = base.view(-1)[5:17].view(3, 4)  # storage offset, shared storage
    sd["half"] = torch.tensor([0.5, -2.0, 65504.0, 6.1035156e-05, 1e-7], dtype=torch.float16)
    sd["bfloat"] = torch.tensor([1.5, -3.25, 1e30, 7.0], dtype=torch.bfloat16)
    sd["double"] = torch.tensor([[1.0 / 3.0, 2.5], [-1e-10, 4.0]], dtype=torch.float64)
    sd["long"] = torch.tensor([1, -2, 3], dtype=torch.int64)
    sd["scalar"] = torch.tensor(2.75)
    sd["param"] = nn.Parameter(torch.ones(2, 2) * 0.25)
    return sd


def expected_values(sd):
    out = {}
    for k, v in sd.items():
        t = v.detach()
        out[k] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                  "values": [float(a) for a in t.to(torch.float64).reshape(-1).tolist()]}
    return out


def write_safetensors(path, tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    codes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int64: "I64"}
    for name, t in tensors.items():
        t = t.detach().contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class TinyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 1)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def legacy_header():
    """The three pickles a legacy torch.save file starts with (magic, protocol, sys info)."""
    import pickle
    import io
    buf = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
                buf, protocol=2)
    return buf.getvalue()


def checkpoint_fixtures():
    d = os.path.join(ROOT, "checkpoints")
    os.makedirs(d, exist_ok=True)
    sd = small_state_dict()
    torch.save(sd, os.path.join(d, "small_zip.pt"))
    torch.save(sd, os.path.join(d, "small_legacy.pt"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(d, "small.safetensors"),
                      {k: v for k, v in sd.items() if k not in ("transposed", "slice", "param", "scalar")},
                      metadata={"format": "pt"})
    expected = expected_values(sd)

    # A tiny "trunk" in the layouts users bring (values per key are the same everywhere).
    trunk = collections.OrderedDict()
    trunk["conv1.weight"] = torch.linspace(-1, 1, 2 * 3 * 7 * 7).reshape(2, 3, 7, 7)
    trunk["bn1.weight"] = torch.tensor([1.0, 2.0])
    trunk["bn1.bias"] = torch.tensor([0.0, -1.0])
    trunk["bn1.running_mean"] = torch.tensor([0.1, 0.2])
    trunk["bn1.running_var"] = torch.tensor([1.0, 4.0])
    trunk["bn1.num_batches_tracked"] = torch.tensor(100)
    trunk["layer1.0.conv1.weight"] = torch.full((2, 2, 3, 3), 0.5)
    expected_trunk = expected_values(trunk)

    def prefixed(prefix, extra=None):
        out = collections.OrderedDict((prefix + k, v) for k, v in trunk.items())
        out.update(extra or {})
        return out

    heads = {"0.channel_bn.weight": torch.ones(2), "0.clf.clf.0.weight": torch.zeros(3, 2)}
    vissl = {
        "phase_idx": 27, "iteration": 140000, "type": "consolidated", "loss": torch.tensor(1.25),
        "classy_state_dict": {
            "train": True, "phase_idx": 27, "num_updates": 140000, "losses": [2.5, 1.25],
            "meters": [{"name": "accuracy_list_meter", "value": {"top_1": np.float64(0.71)}}],
            "optimizer": {"name": "sgd", "options": {"lr": 0.01, "momentum": 0.9}, "state": {0: {"momentum_buffer": torch.zeros(2)}}},
            "base_model": {
                "model": {"trunk": prefixed("_feature_blocks."), "heads": heads},
                "meta": {"trunk": {}, "heads": []},
            },
        },
    }
    torch.save(vissl, os.path.join(d, "vissl_nested.torch"))
    torch.save(prefixed("module."), os.path.join(d, "module_prefix.pth"))
    torch.save({"model_state_dict": prefixed("_feature_blocks.")}, os.path.join(d, "model_state_dict.torch"))
    tv = prefixed("", {"fc.weight": torch.zeros(5, 2), "fc.bias": torch.zeros(5)})
    torch.save(tv, os.path.join(d, "torchvision_names_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": prefixed("module.encoder_q."), "epoch": 200}, os.path.join(d, "moco_style.pth.tar"))

    # Bad inputs.
    zip_bytes = open(os.path.join(d, "small_zip.pt"), "rb").read()
    open(os.path.join(d, "truncated_zip.pt"), "wb").write(zip_bytes[: len(zip_bytes) // 2])
    legacy_bytes = open(os.path.join(d, "small_legacy.pt"), "rb").read()
    open(os.path.join(d, "truncated_legacy.pt"), "wb").write(legacy_bytes[:-20])
    corrupt = bytearray(zip_bytes)
    import zipfile
    with zipfile.ZipFile(os.path.join(d, "small_zip.pt")) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    local = info.header_offset
    name_len, extra_len = struct.unpack("<HH", zip_bytes[local + 26: local + 30])
    corrupt[local + 30 + name_len + extra_len + 5] ^= 0x40  # flip one bit of a tensor's data
    open(os.path.join(d, "corrupt_data.pt"), "wb").write(bytes(corrupt))
    # Replace the object pickle's first BINPERSID opcode by a byte that is no opcode at all.
    import pickletools
    start = len(legacy_header())
    first = next(pos for op, _, pos in pickletools.genops(legacy_bytes[start:]) if op.name == "BINPERSID")
    garbled = bytearray(legacy_bytes)
    garbled[start + first] = 0xFF
    open(os.path.join(d, "corrupt_pickle.pt"), "wb").write(bytes(garbled))
    open(os.path.join(d, "not_a_checkpoint.txt"), "wb").write(b"conv1.weight: this is a YAML file, not weights\n")
    torch.save({"weights": Evil()}, os.path.join(d, "evil_global.pt"))
    torch.save({"type": "shard_list", "shards": ["model_shard0.torch", "model_shard1.torch"]},
               os.path.join(d, "fsdp_shard_list.torch"))
    torch.save(TinyModel(), os.path.join(d, "whole_model.pt"))  # a model object, not a state dict
    # A legacy-format file whose object pickle uses the INST opcode (builds an object by name).
    open(os.path.join(d, "evil_opcode.pt"), "wb").write(legacy_header() + b"\x80\x02(i__main__\nFoo\n.")
    import hashlib
    sha = {fn: hashlib.sha256(open(os.path.join(d, fn), "rb").read()).hexdigest()
           for fn in ("vissl_nested.torch", "small_zip.pt")}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"small": expected, "trunk": expected_trunk, "sha256": sha}, f, indent=1, sort_keys=True)


def main():
    os.makedirs(ROOT, exist_ok=True)
    checkpoint_fixtures()
    blob = Blob(os.path.join(ROOT, "reference.bin"))
    manifest = {
        "generator": "scripts/make_trunk_fixtures.py",
        "torch": torch.__version__,
        "cases": fidelity_cases(blob),
        "pool": pool_cases(blob),
    }
    blob.write()
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(ROOT) for fn in fns)
    print(f"fixtures: {total / 1e6:.2f} MB in {ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
