"""Checks a ViT feature store written by `linprobe extract` against timm on the same images.

The store must come from a `vision_transformer` trunk with a class token, tap `lastCLS`, and the
transforms Resize(256) → Resize([224, 224]) → ToTensor → Normalize(ImageNet) (as in
pipelines/voc07_vit_svm.yaml); the checkpoint is a flat state dict with timm's key names (the
official DINO layout). timm computes the class token through the final LayerNorm from the same
checkpoint, with torchvision+PIL doing the transforms, and the script prints the worst relative
error per image (|ours − timm|∞ / |timm|∞).

    python scripts/compare_vit_store.py --store WORK/features/FP/test.h5 --data DATA_ROOT \
        --checkpoint vitl16_dino.pth --model vit_large_patch16_224
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import tvshim  # noqa: F401,E402  (before timm, which imports torchvision)
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import transforms  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--data", required=True, help="the folder the store's image_paths are relative to")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--model", required=True, help="timm model name, e.g. vit_large_patch16_224")
    args = ap.parse_args()
    model = timm.create_model(args.model, pretrained=False, num_classes=0)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"), strict=True)
    model.eval()
    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.Resize([224, 224]),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    with h5py.File(args.store, "r") as h:
        ours = h["features/lastCLS"][:]
        paths = [p.decode() for p in h["image_paths"][:]]
    batch = torch.stack([tf(Image.open(os.path.join(args.data, p)).convert("RGB")) for p in paths])
    with torch.inference_mode():
        tokens = model.forward_features(batch)
    theirs = tokens[:, 0].numpy()
    worst = np.abs(ours - theirs).max(axis=1) / np.abs(theirs).max(axis=1)
    for p, w in zip(paths, worst):
        print(f"{p}: relative error {w:.2e}")
    print(f"{len(paths)} images, {ours.shape[1]} features, worst relative error {worst.max():.2e}")


if __name__ == "__main__":
    main()
