"""Reference side of the extraction benchmark: what VISSL's extract_features does on a CPU, done
the fast PyTorch way — torchvision ImageFolder (PIL open + convert("RGB")), VISSL's test transform
(Resize 256, CenterCrop 224, ToTensor, Normalize), a DataLoader with `--workers` processes,
ResNet-50 in channels_last under inference_mode with VISSL's canonical six-tap pool map, and
every batch's features appended to an HDF5 file (h5py), as Linprobe stores them.

    python Benchmarks/extract/reference.py --data DIR --out FILE.h5 [--workers N] [--threads T] [--batch 32]

Prints one JSON line: images, wall seconds of the streaming loop, images per second, peak RSS
(this process and its DataLoader workers).
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import tvshim  # noqa: F401,E402  (before torchvision)
import h5py  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402

POOL_MAP = [
    ("conv1", torch.nn.AvgPool2d([10, 10], 10, 4)),
    ("res2", torch.nn.AvgPool2d([16, 16], 8, 0)),
    ("res3", torch.nn.AvgPool2d([13, 13], 5, 0)),
    ("res4", torch.nn.AvgPool2d([8, 8], 3, 0)),
    ("res5", torch.nn.AvgPool2d([6, 6], 1, 0)),
    ("res5avg", torch.nn.Identity()),
]


class Taps(torch.nn.Module):
    """VISSL's feature extractor over a torchvision ResNet: every tap pooled and flattened."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.pools = torch.nn.ModuleList([op for _, op in POOL_MAP])

    def forward(self, x):
        n = self.net
        feats = {}
        x = n.relu(n.bn1(n.conv1(x)))
        feats["conv1"] = x
        x = n.maxpool(x)
        for name, layer in zip(["res2", "res3", "res4", "res5"], [n.layer1, n.layer2, n.layer3, n.layer4]):
            x = layer(x)
            feats[name] = x
        feats["res5avg"] = n.avgpool(x)
        return [torch.flatten(op(feats[name]), 1) for (name, _), op in zip(POOL_MAP, self.pools)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Taps(torchvision.models.resnet50()).eval().to(memory_format=torch.channels_last)
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    dataset = torchvision.datasets.ImageFolder(args.data, transform=tf)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=False, num_workers=args.workers,
                                         persistent_workers=False)
    setup = time.perf_counter() - start
    t0 = time.perf_counter()
    n = 0
    with h5py.File(args.out, "w") as f, torch.inference_mode():
        sets = None
        for x, y in loader:
            outs = model(x.contiguous(memory_format=torch.channels_last))
            if sets is None:
                sets = [f.create_dataset(f"features/{name}", shape=(0, o.shape[1]), maxshape=(None, o.shape[1]),
                                         dtype="f4", chunks=(args.batch, o.shape[1]))
                        for (name, _), o in zip(POOL_MAP, outs)]
                targets = f.create_dataset("targets", shape=(0,), maxshape=(None,), dtype="i8")
            b = x.shape[0]
            for ds, o in zip(sets, outs):
                ds.resize(n + b, axis=0)
                ds[n:n + b] = o.numpy()
            targets.resize(n + b, axis=0)
            targets[n:n + b] = y.numpy()
            n += b
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"engine": "pytorch", "images": n, "workers": args.workers, "threads": args.threads,
                      "setup_seconds": setup, "seconds": seconds, "images_per_second": n / seconds,
                      "peak_rss_mb": own, "worker_peak_rss_mb": children}))


if __name__ == "__main__":
    main()
