"""Makes the image fixtures of LinprobeDataTests and their expected values from PIL + torchvision.

Run by hand from the repository root (the tests never run Python):

    /path/to/venv/bin/python scripts/make_image_fixtures.py

Writes Tests/Fixtures/images/:
  files/<name>               small image files of many kinds (JPEG variants, PNG variants, broken)
  decode.json                per file: PIL's mode and size and the SHA-256 of
                             `Image.open(f).convert("RGB")` bytes, or PIL's error
  decoded/<name>.npy         PIL's RGB array for the small files (to show differences)
  transforms.json            transform cases: image, VISSL-style TRANSFORMS list (or a fixed
                             resized-crop box), expected array file
  expected/<case>.npy        torchvision's output: uint8 HxWx3 for PIL-stage pipelines, float32
                             CxHxW where the pipeline ends in ToTensor/Normalize
  versions.json              Pillow / torchvision / libjpeg-turbo versions used

and Tests/Fixtures/data/ (datasets):
  npy/*.npy                  NumPy files of every dtype/layout the filelist reader must handle
                             (written by numpy itself), described in npy.json
  filelist_*.npy             a small disk_filelist dataset over the image fixtures (relative paths)
  voc/                       a miniature PASCAL VOC layout; voc.json = VISSL's listing and targets
  data_limit.json            VISSL's DATA_LIMIT subsets (np.random.seed + np.random.choice,
                             balanced and unbalanced) for several sizes, seeds and skips

Image content is synthetic (seeded numpy) except two photos derived from scikit-learn's bundled
sample images (china.jpg, flower.jpg), cropped and scaled to typical ImageNet sizes.
"""

import ctypes
import ctypes.util
import hashlib
import io
import json
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, "scripts")
import tvshim  # noqa: E402,F401  (must precede torchvision)

import PIL  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402
import torchvision.transforms.functional as F  # noqa: E402
from PIL import Image, PngImagePlugin, features  # noqa: E402

ROOT = os.path.join("Tests", "Fixtures", "images")
FILES = os.path.join(ROOT, "files")
DECODED = os.path.join(ROOT, "decoded")
EXPECTED = os.path.join(ROOT, "expected")
rng = np.random.RandomState(20261129)


# ----------------------------------------------------------------------------- synthetic content

def scene(h, w, seed):
    """A photo-like RGB array: gradients, a few shapes, texture and noise."""
    r = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 40 + 160 * x / max(w - 1, 1)
    img[..., 1] = 60 + 150 * y / max(h - 1, 1)
    img[..., 2] = 128 + 90 * np.sin(x / 7.0) * np.cos(y / 11.0)
    for _ in range(4):
        cy, cx, rad = r.randint(0, h), r.randint(0, w), r.randint(2, max(3, min(h, w) // 2))
        mask = (y - cy) ** 2 + (x - cx) ** 2 < rad ** 2
        img[mask] = r.randint(0, 256, size=3)
    img += r.normal(0, 12, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- a PNG writer
# Written out by hand so that every colour type, bit depth, tRNS, interlacing and colour-space
# chunk can be produced (PIL cannot write 16-bit RGB(A), low bit depths, or Adam7).

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_rows(samples, bit_depth):
    """samples: H x (W*channels) integer array -> list of packed row bytes."""
    rows = []
    for row in samples:
        if bit_depth == 16:
            rows.append(row.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(row.astype(np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            padded = np.zeros(((len(row) + per - 1) // per) * per, dtype=np.int64)
            padded[: len(row)] = row
            out = bytearray()
            for i in range(0, len(padded), per):
                v = 0
                for k in range(per):
                    v = (v << bit_depth) | int(padded[i + k])
                out.append(v)
            rows.append(bytes(out))
    return rows


def _filtered(rows, bpp, filter_cycle):
    """Applies PNG filters (0 none, 1 sub, 2 up, 3 average, 4 paeth) row by row."""
    out = bytearray()
    prev = bytes(len(rows[0])) if rows else b""
    for i, raw in enumerate(rows):
        f = filter_cycle[i % len(filter_cycle)]
        line = bytearray(len(raw))
        for j in range(len(raw)):
            a = raw[j - bpp] if j >= bpp else 0
            b = prev[j]
            c = prev[j - bpp] if j >= bpp else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[j] = (raw[j] - p) & 0xFF
        out.append(f)
        out += line
        prev = raw
    return bytes(out)


def write_png(path, samples, color_type, bit_depth, palette=None, trns=None, interlace=False,
              extra=(), filters=(0, 1, 2, 3, 4)):
    """samples: H x W x channels integer array in the file's sample values."""
    h, w = samples.shape[:2]
    ch = samples.shape[2]
    bpp = max(1, ch * bit_depth // 8)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    if not interlace:
        data = _filtered(_pack_rows(samples.reshape(h, w * ch), bit_depth), bpp, filters)
    else:
        data = b""
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            data += _filtered(_pack_rows(sub.reshape(sub.shape[0], -1), bit_depth), bpp, filters)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    for kind, payload in extra:
        out += _chunk(kind, payload)
    if palette is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    out += _chunk(b"IDAT", zlib.compress(data, 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


# ----------------------------------------------------------------------------- TurboJPEG (YCCK)

def ycck_jpeg(cmyk, quality=90):
    """Compresses a CMYK array with the system TurboJPEG, which writes YCCK (Adobe transform 2)."""
    lib = ctypes.CDLL(ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0")
    lib.tjInitCompress.restype = ctypes.c_void_p
    lib.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ulong),
                                ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.tjFree.argtypes = [ctypes.c_void_p]
    lib.tjDestroy.argtypes = [ctypes.c_void_p]
    handle = lib.tjInitCompress()
    h, w, _ = cmyk.shape
    buf = ctypes.c_void_p()
    size = ctypes.c_ulong(0)
    TJPF_CMYK, TJSAMP_420 = 11, 2
    rc = lib.tjCompress2(handle, np.ascontiguousarray(cmyk).tobytes(), w, 0, h, TJPF_CMYK,
                         ctypes.byref(buf), ctypes.byref(size), TJSAMP_420, quality, 4096)
    assert rc == 0, "tjCompress2 failed"
    data = ctypes.string_at(buf, size.value)
    lib.tjFree(buf)
    lib.tjDestroy(handle)
    return data


# ----------------------------------------------------------------------------- the files

def make_files():
    os.makedirs(FILES, exist_ok=True)

    def save(name, im, **kw):
        im.save(os.path.join(FILES, name), **kw)

    def raw(name, data):
        with open(os.path.join(FILES, name), "wb") as f:
            f.write(data)

    # Photos at typical ImageNet sizes (landscape 500x375, portrait 375x500).
    from sklearn.datasets import load_sample_image
    china = Image.fromarray(load_sample_image("china.jpg"))  # 640x427
    w0, h0 = china.size
    cw = int(h0 * 4 / 3)
    china = china.crop(((w0 - cw) // 2, 0, (w0 - cw) // 2 + cw, h0)).resize((500, 375), Image.LANCZOS)
    save("photo_500x375.jpg", china, quality=90)
    flower = Image.fromarray(load_sample_image("flower.jpg"))
    w0, h0 = flower.size
    ch = int(w0 * 4 / 3)
    flower = flower.transpose(Image.ROTATE_90)  # 427x640
    w0, h0 = flower.size
    ch = int(w0 * 4 / 3)
    flower = flower.crop((0, (h0 - ch) // 2, w0, (h0 - ch) // 2 + ch)).resize((375, 500), Image.LANCZOS)
    save("photo_375x500.jpg", flower, quality=88)

    # JPEG variants.
    a = scene(45, 67, 1)
    save("rgb420_67x45.jpg", Image.fromarray(a), quality=85)
    save("rgb444_67x45.jpg", Image.fromarray(a), quality=92, subsampling=0)
    save("rgb422_67x45.jpg", Image.fromarray(a), quality=80, subsampling=1)
    save("progressive_67x45.jpg", Image.fromarray(a), quality=85, progressive=True)
    save("optimized_restart_67x45.jpg", Image.fromarray(a), quality=75, optimize=True, restart_marker_blocks=3)
    save("gray_50x70.jpg", Image.fromarray(scene(70, 50, 2)).convert("L"), quality=90)
    save("gray_progressive_33x21.jpg", Image.fromarray(scene(21, 33, 3)).convert("L"), quality=70, progressive=True)
    cmyk = Image.fromarray(scene(31, 43, 4)).convert("CMYK")
    save("cmyk_43x31.jpg", cmyk, quality=90)
    k = rng.randint(0, 256, size=(29, 37, 4)).astype(np.uint8)
    k[..., :3] = scene(29, 37, 5)
    raw("ycck_37x29.jpg", ycck_jpeg(k))
    save("tiny_1x1.jpg", Image.fromarray(np.array([[[200, 30, 90]]], dtype=np.uint8)), quality=95)
    save("wide_300x40.jpg", Image.fromarray(scene(40, 300, 6)), quality=85)
    save("tall_24x160.jpg", Image.fromarray(scene(160, 24, 7)), quality=85)
    save("odd_7x5.jpg", Image.fromarray(scene(5, 7, 8)), quality=95)

    # PNG via PIL (adaptive filters as real files have).
    b = scene(38, 52, 9)
    save("rgb_52x38.png", Image.fromarray(b))
    rgba = np.dstack([b, rng.randint(0, 256, size=b.shape[:2]).astype(np.uint8)])
    save("rgba_52x38.png", Image.fromarray(rgba, "RGBA"))
    save("gray_52x38.png", Image.fromarray(b).convert("L"))
    save("la_52x38.png", Image.fromarray(rgba, "RGBA").convert("LA"))
    pal = Image.fromarray(b).convert("P", palette=Image.ADAPTIVE, colors=50)
    save("palette_52x38.png", pal)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    save("palette_trns_52x38.png", pal_t, transparency=3)
    save("bilevel_52x38.png", Image.fromarray(b).convert("1"))
    g16 = (np.arange(38 * 52, dtype=np.uint16).reshape(38, 52) * 31).astype(np.uint16)
    g16[:4, :10] = np.arange(40).reshape(4, 10)  # some values below 256 (kept by PIL's I;16 -> RGB)
    save("gray16_52x38.png", Image.fromarray(g16))

    # Hand-written PNG variants.
    c = scene(27, 33, 10).astype(np.int64)
    write_png(os.path.join(FILES, "rgb16_33x27.png"), c * 257 + rng.randint(0, 257, size=c.shape), 2, 16)
    alpha16 = rng.randint(0, 65536, size=(27, 33, 1))
    alpha16[0, :5, 0] = [0, 65535, 1, 255, 32768]
    alpha16[1, :, 0] = 65535
    rgba16 = np.concatenate([c * 257 + rng.randint(0, 257, size=c.shape), alpha16], axis=2)
    write_png(os.path.join(FILES, "rgba16_33x27.png"), rgba16, 6, 16)
    write_png(os.path.join(FILES, "rgba16_interlaced_33x27.png"), rgba16, 6, 16, interlace=True)
    ga16 = np.concatenate([c[..., :1] * 257 + 100, alpha16], axis=2)
    write_png(os.path.join(FILES, "ga16_33x27.png"), ga16, 4, 16)
    write_png(os.path.join(FILES, "gray2_33x27.png"), (c[..., :1] // 64), 0, 2)
    write_png(os.path.join(FILES, "gray4_33x27.png"), (c[..., :1] // 16), 0, 4)
    pal16 = rng.randint(0, 256, size=(16, 3))
    write_png(os.path.join(FILES, "palette4_33x27.png"), (c[..., :1] // 16), 3, 4, palette=pal16)
    write_png(os.path.join(FILES, "palette4_trns_33x27.png"), (c[..., :1] // 16), 3, 4, palette=pal16,
              trns=bytes([0, 128, 255, 7]))
    gkey = c[..., :1].copy()
    gkey[::3, ::4] = 77
    write_png(os.path.join(FILES, "gray_trns_33x27.png"), gkey, 0, 8, trns=struct.pack(">H", 77))
    ckey = c.copy()
    ckey[::2, ::5] = [10, 20, 30]
    write_png(os.path.join(FILES, "rgb_trns_33x27.png"), ckey, 2, 8, trns=struct.pack(">HHH", 10, 20, 30))
    g16key = c[..., :1] * 3
    g16key[::4, ::3] = 200
    write_png(os.path.join(FILES, "gray16_trns_33x27.png"), g16key, 0, 16, trns=struct.pack(">H", 200))
    c16key = c * 257
    c16key[1::3, ::2] = [1000, 2000, 60000]
    write_png(os.path.join(FILES, "rgb16_trns_33x27.png"), c16key, 2, 16, trns=struct.pack(">HHH", 1000, 2000, 60000))
    write_png(os.path.join(FILES, "rgb_interlaced_33x27.png"), c, 2, 8, interlace=True)
    write_png(os.path.join(FILES, "gamma10_33x27.png"), c, 2, 8,
              extra=[(b"gAMA", struct.pack(">I", 100000)),
                     (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))])
    write_png(os.path.join(FILES, "srgb_chunk_33x27.png"), c, 2, 8, extra=[(b"sRGB", b"\x00")])
    write_png(os.path.join(FILES, "gamma16_33x27.png"), c * 257, 2, 16, extra=[(b"gAMA", struct.pack(">I", 45455))])

    # Broken and unsupported files.
    with open(os.path.join(FILES, "rgb420_67x45.jpg"), "rb") as f:
        jpg = f.read()
    raw("truncated_half.jpg", jpg[: len(jpg) // 2])
    raw("truncated_no_eoi.jpg", jpg[:-2])
    raw("trailing_garbage.jpg", jpg + b"this is not image data")
    with open(os.path.join(FILES, "rgb_52x38.png"), "rb") as f:
        png = f.read()
    raw("truncated_half.png", png[: len(png) // 2])
    raw("corrupt_idat.png", png[:60] + bytes(reversed(png[60:200])) + png[200:])
    raw("garbage.jpg", bytes(rng.randint(0, 256, size=500).astype(np.uint8)))
    raw("empty.jpg", b"")
    raw("text.png", b"this is a text file, not an image\n")
    save("animation.gif", Image.fromarray(b).convert("P"))
    raw("png_named.jpg", png)


# ----------------------------------------------------------------------------- expected decodes

SMALL = 40 * 1000  # arrays up to this many bytes are stored for diagnosis


def make_decode_expectations():
    os.makedirs(DECODED, exist_ok=True)
    out = {}
    for name in sorted(os.listdir(FILES)):
        path = os.path.join(FILES, name)
        entry = {}
        try:
            with Image.open(path) as im:
                entry["mode"] = im.mode
                entry["format"] = im.format
                rgb = np.asarray(im.convert("RGB"))
            entry["width"], entry["height"] = int(rgb.shape[1]), int(rgb.shape[0])
            entry["sha256"] = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()
            if rgb.nbytes <= SMALL:
                np.save(os.path.join(DECODED, name + ".npy"), rgb)
                entry["array"] = "decoded/" + name + ".npy"
            if name.startswith(("rgba16", "ga16")):
                with Image.open(path) as im:
                    np.save(os.path.join(DECODED, name + ".alpha.npy"), np.asarray(im.convert("RGBA"))[..., 3].copy())
        except Exception as e:  # noqa: BLE001 - PIL's verdict is the expectation
            entry["error"] = f"{type(e).__name__}: {e}"
        out[name] = entry
    with open(os.path.join(ROOT, "decode.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


# ----------------------------------------------------------------------------- expected transforms

def rgb(name):
    return Image.open(os.path.join(FILES, name)).convert("RGB")


def make_transform_expectations():
    os.makedirs(EXPECTED, exist_ok=True)
    cases = []
    norm = {"name": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

    def build(spec):
        ts = []
        for t in spec:
            args = {k: v for k, v in t.items() if k != "name"}
            ts.append(getattr(T, t["name"])(**args))
        return T.Compose(ts)

    def add(case, image, spec=None, fixed=None):
        img = rgb(image)
        if spec is not None:
            out = build(spec)(img)
        else:
            out = F.resized_crop(img, fixed["top"], fixed["left"], fixed["height"], fixed["width"],
                                 fixed["size"], interpolation=T.InterpolationMode(
                                     {2: "bilinear", 3: "bicubic", 1: "lanczos", 4: "box", 5: "hamming"}[fixed["interpolation"]]))
            if fixed.get("flip"):
                out = F.hflip(out)
        if isinstance(out, torch.Tensor):
            arr = out.numpy().astype(np.float32)
            kind = "float32"
        else:
            arr = np.asarray(out)
            kind = "uint8"
        np.save(os.path.join(EXPECTED, case + ".npy"), arr)
        entry = {"case": case, "image": image, "kind": kind, "expected": "expected/" + case + ".npy",
                 "shape": list(arr.shape)}
        if spec is not None:
            entry["transforms"] = spec
        else:
            entry["resized_crop"] = fixed
        cases.append(entry)

    test_tf = [{"name": "Resize", "size": 256}, {"name": "CenterCrop", "size": 224}]
    add("photo_test_transform_u8", "photo_500x375.jpg", test_tf)
    add("photo_portrait_test_transform_u8", "photo_375x500.jpg", test_tf)
    add("photo_test_transform_full", "photo_500x375.jpg", test_tf + [{"name": "ToTensor"}, norm])
    add("photo_voc_squash", "photo_500x375.jpg", [{"name": "Resize", "size": 256}, {"name": "Resize", "size": [224, 224]}])
    add("photo_bicubic_resize", "photo_375x500.jpg", [{"name": "Resize", "size": 100, "interpolation": 3}])
    for image in ["rgb420_67x45.jpg", "tall_24x160.jpg", "wide_300x40.jpg", "odd_7x5.jpg", "gray_50x70.jpg",
                  "cmyk_43x31.jpg", "rgba_52x38.png", "tiny_1x1.jpg"]:
        stem = image.rsplit(".", 1)[0]
        add(f"{stem}_resize32", image, [{"name": "Resize", "size": 32}])
        add(f"{stem}_resize40_bicubic", image, [{"name": "Resize", "size": 40, "interpolation": 3}])
    add("wide_resize_maxsize", "wide_300x40.jpg", [{"name": "Resize", "size": 30, "max_size": 120}])
    add("rgb420_resize_hw", "rgb420_67x45.jpg", [{"name": "Resize", "size": [20, 90]}])
    add("rgb420_resize_list1", "rgb420_67x45.jpg", [{"name": "Resize", "size": [50]}])
    add("rgb420_lanczos", "rgb420_67x45.jpg", [{"name": "Resize", "size": 30, "interpolation": 1}])
    add("rgb420_box", "rgb420_67x45.jpg", [{"name": "Resize", "size": 30, "interpolation": 4}])
    add("rgb420_hamming", "rgb420_67x45.jpg", [{"name": "Resize", "size": 30, "interpolation": 5}])
    add("rgb420_nearest", "rgb420_67x45.jpg", [{"name": "Resize", "size": 30, "interpolation": 0}])
    add("rgb420_nearest_up", "odd_7x5.jpg", [{"name": "Resize", "size": 13, "interpolation": 0}])
    # CenterCrop: smaller, larger (zero padding), mixed, odd differences (Python's round half-even).
    add("centercrop_small", "rgb420_67x45.jpg", [{"name": "CenterCrop", "size": 20}])
    add("centercrop_odd", "rgb420_67x45.jpg", [{"name": "CenterCrop", "size": [40, 60]}])
    add("centercrop_pad", "odd_7x5.jpg", [{"name": "CenterCrop", "size": 12}])
    add("centercrop_mixed", "rgb420_67x45.jpg", [{"name": "CenterCrop", "size": [52, 30]}])
    add("centercrop_twice", "rgb420_67x45.jpg", [{"name": "CenterCrop", "size": 21}, {"name": "CenterCrop", "size": 30}])
    add("pad_then_resize", "odd_7x5.jpg", [{"name": "CenterCrop", "size": 10}, {"name": "Resize", "size": 24}])
    add("resize_crop_resize", "photo_500x375.jpg",
        [{"name": "Resize", "size": 80}, {"name": "CenterCrop", "size": 64}, {"name": "Resize", "size": 48, "interpolation": 3}])
    add("to_tensor_only", "odd_7x5.jpg", [{"name": "ToTensor"}])
    add("raw_then_normalize_photo", "rgb420_67x45.jpg",
        [{"name": "Resize", "size": 24}, {"name": "CenterCrop", "size": 20}, {"name": "ToTensor"}, norm])
    add("normalize_one_channel", "odd_7x5.jpg", [{"name": "ToTensor"}, {"name": "Normalize", "mean": [0.5], "std": [0.25]}])
    # The deterministic part of RandomResizedCrop: crop box + resize (+ flip), as torchvision does it.
    boxes = [
        ("photo_500x375.jpg", 30, 70, 200, 260, [224, 224], 2, False),
        ("photo_500x375.jpg", 0, 0, 375, 500, [224, 224], 2, True),
        ("photo_375x500.jpg", 123, 45, 61, 80, [224, 224], 2, False),
        ("photo_375x500.jpg", 200, 10, 150, 300, [224, 224], 3, True),
        ("rgb420_67x45.jpg", 3, 5, 30, 40, [24, 24], 2, False),
        ("rgb420_67x45.jpg", 10, 20, 9, 7, [31, 17], 3, False),
    ]
    for i, (image, top, left, h, w, size, interp, flip) in enumerate(boxes):
        add(f"resized_crop_{i}", image, fixed={"top": top, "left": left, "height": h, "width": w,
                                               "size": size, "interpolation": interp, "flip": flip})
    add("flip_after_resize", "rgb420_67x45.jpg", [{"name": "Resize", "size": 30}, {"name": "RandomHorizontalFlip", "p": 1.0}])
    add("flip_never", "rgb420_67x45.jpg", [{"name": "Resize", "size": 30}, {"name": "RandomHorizontalFlip", "p": 0.0}])
    add("flip_then_crop", "rgb420_67x45.jpg", [{"name": "RandomHorizontalFlip", "p": 1.0}, {"name": "CenterCrop", "size": [20, 31]},
                                               {"name": "Resize", "size": 16}])
    with open(os.path.join(ROOT, "transforms.json"), "w") as f:
        json.dump(cases, f, indent=1)


def make_resize_sweep():
    """Image.resize of one small image to many random sizes with every filter: all outputs
    concatenated in resize_sweep.npy, the sizes in resize_sweep.json."""
    src = rgb("rgb420_67x45.jpg").crop((5, 3, 5 + 37, 3 + 29))  # 37x29
    r = np.random.RandomState(11)
    filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
               "box": Image.BOX, "hamming": Image.HAMMING, "nearest": Image.NEAREST}
    cases, chunks, offset = [], [], 0
    for i in range(150):
        name = list(filters)[i % len(filters)]
        w, h = int(r.randint(1, 80)), int(r.randint(1, 80))
        out = np.asarray(src.resize((w, h), filters[name]))
        cases.append({"filter": name, "width": w, "height": h, "offset": offset})
        chunks.append(out.reshape(-1))
        offset += out.size
    np.save(os.path.join(EXPECTED, "resize_sweep.npy"), np.concatenate(chunks))
    with open(os.path.join(ROOT, "resize_sweep.json"), "w") as f:
        json.dump({"source": "rgb420_67x45.jpg", "crop": [5, 3, 37, 29], "cases": cases}, f)


# ----------------------------------------------------------------------------- dataset fixtures

DATA = os.path.join("Tests", "Fixtures", "data")


def make_npy_fixtures():
    d = os.path.join(DATA, "npy")
    os.makedirs(d, exist_ok=True)
    cases = {}

    def put(name, arr, version=None, **expect):
        path = os.path.join(d, name)
        if version is None:
            np.save(path, arr, allow_pickle=True)
        else:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, arr, version=version, allow_pickle=True)
        cases[name] = expect

    paths = ["a/x.jpg", "b/ü.png", "c/long_name_" + "z" * 40 + ".jpeg", ""]
    put("unicode_le.npy", np.array(paths), dtype="<U", values=paths, shape=[4])
    put("unicode_be.npy", np.array(paths).astype(">U57"), dtype=">U", values=paths, shape=[4])
    put("bytes.npy", np.array([p.encode() for p in paths]), dtype="|S", values=paths, shape=[4])
    put("unicode_v2.npy", np.array(paths), version=(2, 0), dtype="<U", values=paths, shape=[4])
    put("unicode_v3.npy", np.array(paths), version=(3, 0), dtype="<U", values=paths, shape=[4])
    ints = [3, -1, 0, 7, 2**31 - 1]
    put("int32_le.npy", np.array(ints, dtype="<i4"), values=ints, shape=[5])
    put("int64_be.npy", np.array(ints, dtype=">i8"), values=ints, shape=[5])
    put("int16.npy", np.array(ints[:4], dtype="<i2"), values=ints[:4], shape=[4])
    put("uint8.npy", np.array([0, 255, 7], dtype="u1"), values=[0, 255, 7], shape=[3])
    m = np.array([[1, 0, -1], [0, 0, 1]], dtype=np.int32)
    put("multi_label.npy", m, values=m.reshape(-1).tolist(), shape=[2, 3])
    put("multi_label_fortran.npy", np.asfortranarray(m.astype(np.int64)), values=m.reshape(-1).tolist(), shape=[2, 3])
    put("float_labels.npy", np.array([0.0, 1.5]), values=[0.0, 1.5], shape=[2])
    put("object.npy", np.array(["a", 1, None], dtype=object), error="pickled object array")
    put("scalar_int.npy", np.array(5, dtype=np.int64), values=[5], shape=[])
    with open(os.path.join(DATA, "npy.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)


def make_filelist_fixture():
    # Paths relative to Tests/Fixtures/images (the tests resolve them from there).
    names = ["files/rgb420_67x45.jpg", "files/gray_50x70.jpg", "files/palette_52x38.png", "files/missing.jpg",
             "files/truncated_half.jpg", "files/cmyk_43x31.jpg"]
    np.save(os.path.join(DATA, "filelist_images.npy"), np.array(names))
    np.save(os.path.join(DATA, "filelist_labels_str.npy"), np.array(["dog", "cat", "dog", "bird", "cat", "zebra"]))
    np.save(os.path.join(DATA, "filelist_labels_int.npy"), np.array([1, 0, 1, 4, 0, 2], dtype=np.int32))
    np.save(os.path.join(DATA, "filelist_labels_short.npy"), np.array([1, 0], dtype=np.int64))
    np.save(os.path.join(DATA, "filelist_empty.npy"), np.array([], dtype="<U1"))


def vissl_voc_listing(root, split):
    """VISSL's get_voc_images_labels_info (vissl/data/datasets/pascal_voc.py), same steps."""
    import glob
    data_dir = os.path.join(root, "ImageSets", "Main")

    def valid(files):
        return [f for f in files if len(f.split("/")[-1].split("_")) == 2]

    test_files = valid(glob.glob(os.path.join(data_dir, "*_test.txt")))
    train_files = glob.glob(os.path.join(data_dir, "*_trainval.txt"))
    if len(test_files) == 0:
        train_files = glob.glob(os.path.join(data_dir, "*_train.txt"))
        test_files = glob.glob(os.path.join(data_dir, "*_val.txt"))
    test_files, train_files = valid(test_files), valid(train_files)
    files = train_files if split == "train" else test_files
    table = {}
    for k, path in enumerate(sorted(files)):
        with open(path) as f:
            for line in f:
                try:
                    name, label = line.strip().split()
                    if name not in table:
                        table[name] = -np.ones(len(files), dtype=np.int32)
                    label = int(label)
                    label = 0 if label == -1 else (-1 if label == 0 else label)
                    table[name][k] = label
                except Exception:  # noqa: BLE001 - VISSL skips malformed lines
                    pass
    ids = sorted(table)
    classes = [os.path.basename(f).split(".")[0].split("_")[0] for f in sorted(files)]
    return {"images": [f"JPEGImages/{i}.jpg" for i in ids], "targets": [table[i].tolist() for i in ids], "classes": classes}


def make_voc_fixture():
    root = os.path.join(DATA, "voc")
    main = os.path.join(root, "ImageSets", "Main")
    jpeg = os.path.join(root, "JPEGImages")
    os.makedirs(main, exist_ok=True)
    os.makedirs(jpeg, exist_ok=True)
    r = np.random.RandomState(7)
    train_ids = ["000005", "000007", "000009", "000012", "000016"]
    test_ids = ["000001", "000002", "000003", "000004"]
    for i in train_ids + test_ids:
        Image.fromarray(scene(12, 16, int(i))).save(os.path.join(jpeg, i + ".jpg"), quality=80)
    for cls in ["person", "aeroplane", "cat"]:
        for split, ids in [("trainval", train_ids), ("test", test_ids)]:
            with open(os.path.join(main, f"{cls}_{split}.txt"), "w") as f:
                for i in ids:
                    f.write(f"{i} {r.choice([-1, 0, 1])}\n" if i != "000009" else f"{i}  {r.choice([-1, 1])}\n")
                if cls == "cat" and split == "trainval":
                    f.write("garbage line with four fields\n\n")
    # Files VISSL ignores: no underscore, two underscores.
    with open(os.path.join(main, "trainval.txt"), "w") as f:
        f.write("\n".join(train_ids) + "\n")
    with open(os.path.join(main, "cat_trainval_extra.txt"), "w") as f:
        f.write("000005 1\n")
    out = {"train": vissl_voc_listing(root, "train"), "test": vissl_voc_listing(root, "val")}
    with open(os.path.join(DATA, "voc.json"), "w") as f:
        json.dump(out, f, indent=1)


def make_data_limit_fixture():
    cases = []
    for n, k, skip, seed in [(10, 3, 0, 0), (100, 10, 0, 0), (100, 10, 5, 1), (1000, 200, 17, 31337),
                             (5011, 500, 0, 0), (37, 37, 0, 2**32 - 1)]:
        np.random.seed(seed)
        idx = np.random.choice(n, size=skip + k, replace=False)[skip:]
        cases.append({"n": n, "limit": k, "skip": skip, "seed": seed, "balanced": False, "indices": idx.tolist()})
    r = np.random.RandomState(3)
    for n, classes, k, skip, seed in [(60, 3, 9, 0, 0), (200, 7, 20, 3, 5), (50, 5, 12, 6, 9)]:
        labels = r.randint(0, classes, size=n)
        # VISSL's balanced_sub_sampling (vissl/data/data_helper.py), same numpy calls.
        groups = {}
        for i, label in enumerate(labels):
            groups.setdefault(int(label), []).append(i)
        unique = sorted(groups)
        sq, sr = divmod(skip, len(unique))
        nq, nr = divmod(k, len(unique))
        np.random.seed(seed)
        for i, label in enumerate(unique):
            take = nq + (1 if i < nr else 0)
            sk = sq + (1 if i < sr else 0)
            groups[label] = np.random.choice(groups[label], size=sk + take, replace=False)[sk:]
        idx = np.concatenate([groups[label] for label in unique])
        cases.append({"n": n, "limit": k, "skip": skip, "seed": seed, "balanced": True, "labels": labels.tolist(),
                      "indices": [int(x) for x in idx]})
    with open(os.path.join(DATA, "data_limit.json"), "w") as f:
        json.dump(cases, f)


def main():
    if not os.path.exists("Package.swift"):
        sys.exit("run from the repository root")
    make_files()
    make_decode_expectations()
    make_transform_expectations()
    make_resize_sweep()
    os.makedirs(DATA, exist_ok=True)
    make_npy_fixtures()
    make_filelist_fixture()
    make_voc_fixture()
    make_data_limit_fixture()
    versions = {"pillow": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
                "libjpeg_turbo": features.version("libjpeg_turbo"), "numpy": np.__version__}
    with open(os.path.join(ROOT, "versions.json"), "w") as f:
        json.dump(versions, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(ROOT) for n in ns)
    total += sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(DATA) for n in ns)
    print(f"wrote {ROOT} and {DATA}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
