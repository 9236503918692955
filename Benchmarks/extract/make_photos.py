"""Builds the extraction benchmark's image folders from photos available offline (run by
Benchmarks/extract/bench.sh; output under .bench-cache/, never committed).

    python make_photos.py OUT_DIR COUNT [--size WxH] [--classes K]

Sources, whichever are installed: OpenCV's sample photos (Debian `opencv-doc`:
/usr/share/doc/opencv-doc/examples/data), scikit-learn's sample images, scikit-image's data
photos, and the repository's two test photos. Each output image is a seeded random crop
(50-100 % of the area, 4:3 landscape or 3:4 portrait) of one source, resized to the requested
size (default 500x375, a typical ImageNet/VOC size), maybe mirrored, saved as a baseline JPEG
(quality 85-95, 4:2:0) in an ImageFolder layout of K class folders.
"""
import glob
import os
import random
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SKIP = ("left0", "left1", "right0", "right1", "digits", "chessboard", "alphabet", "logo", "mask", "gradient", "text", "notes", "imageText", "sudoku",
        "templ", "tmpl", "pic", "detect_blob", "ellipses", "aloeGT", "graf")


def sources():
    paths = []
    cv = "/usr/share/doc/opencv-doc/examples/data"
    for ext in ("jpg", "png"):
        paths += sorted(glob.glob(os.path.join(cv, "*." + ext)))
    try:
        import sklearn.datasets
        d = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
        paths += sorted(glob.glob(os.path.join(d, "*.jpg")))
    except ImportError:
        pass
    try:
        import skimage.data
        d = os.path.dirname(skimage.data.__file__)
        paths += sorted(glob.glob(os.path.join(d, "*.jpg")) + glob.glob(os.path.join(d, "*.png")))
    except ImportError:
        pass
    paths += sorted(glob.glob(os.path.join(REPO, "Tests", "Fixtures", "images", "files", "photo_*.jpg")))
    images = []
    for p in paths:
        name = os.path.basename(p)
        if any(s in name for s in SKIP):
            continue
        try:
            im = Image.open(p)
            im.load()
        except Exception:
            continue
        if min(im.size) < 240:
            continue
        images.append((name, im.convert("RGB")))
    return images


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, count = sys.argv[1], int(sys.argv[2])
    width, height, classes = 500, 375, 4
    args = sys.argv[3:]
    for i, a in enumerate(args):
        if a == "--size":
            width, height = (int(v) for v in args[i + 1].split("x"))
        if a == "--classes":
            classes = int(args[i + 1])
    images = sources()
    if not images:
        sys.exit("no source photos found (install opencv-doc or scikit-image)")
    rng = random.Random(1234)
    for k in range(classes):
        os.makedirs(os.path.join(out, f"class{k}"), exist_ok=True)
    for i in range(count):
        name, im = images[i % len(images)]
        portrait = rng.random() < 0.25
        w, h = (height, width) if portrait else (width, height)
        aspect = w / h
        W, H = im.size
        area = W * H * rng.uniform(0.5, 1.0)
        cw = min(W, int(round((area * aspect) ** 0.5)))
        ch = min(H, int(round(cw / aspect)))
        cw = min(cw, int(round(ch * aspect)))
        x, y = rng.randint(0, W - cw), rng.randint(0, H - ch)
        crop = im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        path = os.path.join(out, f"class{i % classes}", f"img_{i:05d}.jpg")
        crop.save(path, "JPEG", quality=rng.randint(85, 95))
    print(f"{count} images from {len(images)} source photos in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
