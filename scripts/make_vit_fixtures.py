"""Builds the vision-transformer test fixtures under Tests/Fixtures/vit/ (run by hand):

    /path/to/venv/bin/python scripts/make_vit_fixtures.py

timm's VisionTransformer (pretrained=False) is the reference (trunks.md §A.8): the key names are
VISSL's, blocks are pre-norm with LayerNorm eps 1e-6 and exact GELU. Weights are random (seeded),
every LayerNorm affine and every bias perturbed away from timm's 1/0 init so that gamma/beta
mistakes show. The reference forward runs in float64 from the float32 weights that are saved.

Taps follow VISSL's get_intermediate_features: interms[j] = norm(x after block j), Python indexing
and slicing on that list. Outputs:
  reference.json / reference.bin   inputs, taps, and a bicubic position-grid case
  *.pth / *.torch                  the models, in the checkpoint layouts VISSL loads (§A.7)
"""
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
import tvshim  # noqa: F401,E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import timm  # noqa: E402
from timm.models.beit import Beit  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

timm.layers.set_fused_attn(False)
ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "vit")

MODELS = {
    # name: (timm kwargs, VISSL keys)
    "cls": dict(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, mlp_ratio=4.0, qkv_bias=True,
                class_token=True, global_pool="token"),
    "nocls": dict(img_size=32, patch_size=8, embed_dim=24, depth=4, num_heads=3, mlp_ratio=2.0, qkv_bias=False,
                  class_token=False, global_pool="avg", fc_norm=False),
    "tiny": dict(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0, qkv_bias=True,
                 class_token=True, global_pool="token"),
}

TAPS = {
    "cls": ["lastCLS", "concatCLS2", "concatCLS4", "blkCLS0", "blkCLS-2", "lastMAP", "lastBLK", "concatBLK2",
            "lastCLS"],
    "nocls": ["lastPOOL", "concatPOOL2", "stridePOOL_2_2", "stridePOOL_3", "stridePOOL_2_3", "lastBLK", "concatBLK3"],
}


# VISSL's beit overlays: abs pos-embed, a relative position bias per block, layer scale, q/v bias,
# real final norm (USE_MEAN_POOLING False). timm's Beit with global_pool='token' is that model.
BEIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, mlp_ratio=4.0, qkv_bias=True,
            use_abs_pos_emb=True, use_rel_pos_bias=True, use_shared_rel_pos_bias=False, init_values=0.1,
            global_pool="token")


def build(name, seed):
    kw = MODELS.get(name, BEIT)
    m = (Beit if name == "beit" else VisionTransformer)(num_classes=0, **kw).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in m.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in pname and pname.endswith("weight"):
                p.copy_(1 + 0.3 * r)
            elif pname.endswith("bias"):
                p.copy_(0.2 * r)
            elif pname in ("cls_token", "pos_embed") or "relative_position_bias_table" in pname:
                p.copy_(0.5 * r)
            elif "gamma" in pname:
                p.copy_(0.5 + 0.3 * r)
            else:
                fan_in = p[0].numel()
                p.copy_(r * (1.5 / math.sqrt(fan_in)))
    return m


def interms(m, x):
    m = m.double()
    x = x.double()
    with torch.no_grad():
        h = m.patch_embed(x)
        out = []
        if isinstance(m, Beit):
            h = torch.cat([m.cls_token.expand(h.shape[0], -1, -1), h], 1) + m.pos_embed
            for blk in m.blocks:
                h = blk(h, shared_rel_pos_bias=None)
                out.append(m.norm(h))
        else:
            h = m.norm_pre(m._pos_embed(h))
            for blk in m.blocks:
                h = blk(h)
                out.append(m.norm(h))
        ff = m.forward_features(x)
        assert torch.allclose(ff, out[-1])
    return out


def tap(name, xs, cls, grid):
    if name == "lastCLS":
        return xs[-1][:, 0]
    if name.startswith("blkCLS"):
        return xs[int(name[6:])][:, 0]
    if name.startswith("concatCLS"):
        return torch.cat([t[:, 0] for t in xs[-int(name[9:]):]], -1)
    if name == "lastMAP":
        f = xs[-1][:, 1:]
        return f.reshape(f.shape[0], grid, grid, f.shape[-1])
    if name == "lastBLK":
        return xs[-1]
    if name.startswith("concatBLK"):
        return torch.cat(xs[-int(name[9:]):], -1)
    if name == "lastPOOL":
        return xs[-1].mean(1)
    if name.startswith("concatPOOL"):
        return torch.cat([t.mean(1) for t in xs[-int(name[10:]):]], -1)
    if name.startswith("stridePOOL_"):
        parts = [int(s) for s in name[11:].split("_")]
        if len(parts) == 2:
            count, stride = parts
        else:
            count = parts[0]
            stride, r = divmod(len(xs), count)
            stride = stride + 1 if r else stride
        return torch.cat([t.mean(1) for t in xs[::-stride][:count]], -1)
    raise ValueError(name)


class Blob:
    def __init__(self):
        self.values = []

    def add(self, t):
        flat = t.detach().to(torch.float32).reshape(-1).tolist()
        entry = {"offset": len(self.values), "count": len(flat)}
        self.values.extend(flat)
        return entry


def state_dict(m):
    return {k: v.detach().to(torch.float32).clone() for k, v in m.state_dict().items()}


def save_layouts(sd):
    """The tiny model in every layout of trunks.md §A.7 (plus keys that are not trunk parameters)."""
    head = {"head.weight": torch.randn(5, 16), "head.bias": torch.randn(5)}
    torch.save(dict(sd), os.path.join(ROOT, "tiny_dino_official.pth"))
    loss = {"momentum_teacher.module.trunk." + k: v for k, v in sd.items()}
    loss["momentum_teacher.module.heads.0.mlp.0.weight"] = torch.randn(8, 16)
    loss["center"] = torch.randn(1, 8)
    torch.save({"loss": loss, "phase_idx": 3}, os.path.join(ROOT, "tiny_dino_vissl.torch"))
    teacher = {"module.trunk." + k: v for k, v in sd.items()}
    teacher["module.heads.0.last_layer.weight"] = torch.randn(8, 16)
    torch.save({"loss": {"teacher": teacher, "center": torch.randn(1, 8)}}, os.path.join(ROOT, "tiny_ibot.torch"))
    torch.save({"model": {**sd, **head}}, os.path.join(ROOT, "tiny_deit.pth"))
    classy = {"classy_state_dict": {"base_model": {"model": {"trunk": dict(sd), "heads": {}}}}}
    torch.save(classy, os.path.join(ROOT, "tiny_classy.torch"))
    partial = dict(sd)
    del partial["blocks.0.norm1.weight"]
    del partial["norm.bias"]
    torch.save(partial, os.path.join(ROOT, "tiny_missing.pth"))


def main():
    os.makedirs(ROOT, exist_ok=True)
    blob = Blob()
    cases = []
    g = torch.Generator().manual_seed(7)
    for i, name in enumerate(["cls", "nocls"]):
        m = build(name, 100 + i)
        kw = MODELS[name]
        torch.save(state_dict(m), os.path.join(ROOT, f"{name}.pth"))
        x = torch.randn(2, 3, 32, 32, generator=g)
        xs = interms(m, x)
        grid = kw["img_size"] // kw["patch_size"]
        taps = [{"tap": t, **blob.add(tap(t, xs, kw["class_token"], grid))} for t in TAPS[name]]
        cases.append({"case": name, "model": {k: v for k, v in kw.items()}, "input": [2, 3, 32, 32],
                      "input_data": blob.add(x), "taps": taps})
    # The class-token model at 64 and 48 pixels: VISSL interpolates its 4x4 position grid bicubically
    # by sqrt(npatch / nembed) (2.0 and 1.5); timm is given the grid F.interpolate makes.
    m = build("cls", 100)
    d = MODELS["cls"]["embed_dim"]
    for size in (64, 48):
        pos = m.pos_embed.detach()
        grid = pos[:, 1:].reshape(1, 4, 4, d).permute(0, 3, 1, 2).double()
        scale = math.sqrt((size // 8) ** 2 / 16)
        new = F.interpolate(grid, scale_factor=scale, mode="bicubic").permute(0, 2, 3, 1).reshape(1, -1, d)
        big = VisionTransformer(num_classes=0, **{**MODELS["cls"], "img_size": size}).eval()
        sd = state_dict(m)
        sd["pos_embed"] = torch.cat([pos[:, :1].double(), new], 1)
        big.double().load_state_dict(sd)
        x = torch.randn(1, 3, size, size, generator=g)
        xs = interms(big, x)
        taps = [{"tap": t, **blob.add(tap(t, xs, True, size // 8))} for t in ["lastCLS", "concatCLS2", "lastBLK"]]
        cases.append({"case": f"cls{size}", "model": MODELS["cls"], "input": [1, 3, size, size],
                      "input_data": blob.add(x), "taps": taps, "pos_embed_interpolated": blob.add(new)})
    beit = build("beit", 400)
    sd = state_dict(beit)
    # VISSL stores the index buffer; it must be recomputed, never loaded: a wrong one is saved here.
    for i in range(BEIT["depth"]):
        sd[f"blocks.{i}.attn.relative_position_index"] = torch.zeros(17, 17, dtype=torch.long)
    torch.save({"model": sd}, os.path.join(ROOT, "beit.pth"))
    x = torch.randn(2, 3, 32, 32, generator=g)
    xs = interms(beit, x)
    cases.append({"case": "beit", "model": BEIT, "input": [2, 3, 32, 32], "input_data": blob.add(x),
                  "taps": [{"tap": t, **blob.add(tap(t, xs, True, 4))}
                           for t in ["lastCLS", "concatCLS2", "blkCLS0", "concatCLS4"]]})
    tiny = build("tiny", 300)
    save_layouts(state_dict(tiny))
    x = torch.randn(1, 3, 16, 16, generator=g)
    xs = interms(tiny, x)
    cases.append({"case": "tiny", "model": MODELS["tiny"], "input": [1, 3, 16, 16], "input_data": blob.add(x),
                  "taps": [{"tap": "lastCLS", **blob.add(tap("lastCLS", xs, True, 2))}]})
    with open(os.path.join(ROOT, "reference.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(blob.values)}f", *blob.values))
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump({"generator": "scripts/make_vit_fixtures.py", "timm": timm.__version__, "torch": torch.__version__,
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
