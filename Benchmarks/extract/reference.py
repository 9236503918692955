"""Reference side of the extraction benchmark: what VISSL's extract_features does on a CPU, done
the fast PyTorch way — torchvision ImageFolder (PIL open + convert("RGB")), VISSL's test transform
(Resize 256, CenterCrop 224, ToTensor, Normalize), a DataLoader with `--workers` processes,
ResNet-50 with VISSL's canonical six-tap pool map, and every batch's features appended to an
HDF5 file (h5py), as Linprobe stores them.

The trunk runs in PyTorch (`--engine torch`: channels_last, inference_mode) or in onnxruntime
(`--engine onnxruntime --onnx FILE`: the same six-tap network exported once by `--export FILE`,
CPU provider, `--threads` intra-op threads, sequential execution), fed by the same DataLoader.

    python Benchmarks/extract/reference.py --export FILE.onnx
    python Benchmarks/extract/reference.py --data DIR --out FILE.h5 [--engine torch|onnxruntime]
        [--onnx FILE.onnx] [--workers N] [--threads T] [--batch 32]

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
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tvshim  # noqa: F401,E402  (before torchvision)
import h5py  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402

from vissl_taps import POOL_MAP, Taps  # noqa: E402


def export(path):
    """The six-tap ResNet-50 (random weights, seed 0) as ONNX with a dynamic batch dimension."""
    torch.manual_seed(0)
    model = Taps(torchvision.models.resnet50()).eval()
    names = [f"{name}_{i}" for i, (name, _) in enumerate(POOL_MAP)]
    torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), path, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=names,
                      dynamic_axes={"x": {0: "n"}, **{o: {0: "n"} for o in names}})


def onnx_model(path, threads):
    """A callable batch → tuple of numpy arrays, running the exported network in onnxruntime."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x.numpy()})


def torch_model():
    torch.manual_seed(0)
    model = Taps(torchvision.models.resnet50()).eval().to(memory_format=torch.channels_last)
    return lambda x: [o.numpy() for o in model(x.contiguous(memory_format=torch.channels_last))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export")
    ap.add_argument("--data")
    ap.add_argument("--out")
    ap.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch")
    ap.add_argument("--onnx")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    if args.export:
        export(args.export)
        return
    if not (args.data and args.out) or (args.engine == "onnxruntime" and not args.onnx):
        ap.error("--data and --out are required (and --onnx with --engine onnxruntime)")
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    model = onnx_model(args.onnx, args.threads) if args.engine == "onnxruntime" else torch_model()
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
            outs = model(x)
            if sets is None:
                sets = [f.create_dataset(f"features/{name}", shape=(0, o.shape[1]), maxshape=(None, o.shape[1]),
                                         dtype="f4", chunks=(args.batch, o.shape[1]))
                        for (name, _), o in zip(POOL_MAP, outs)]
                targets = f.create_dataset("targets", shape=(0,), maxshape=(None,), dtype="i8")
            b = x.shape[0]
            for ds, o in zip(sets, outs):
                ds.resize(n + b, axis=0)
                ds[n:n + b] = o
            targets.resize(n + b, axis=0)
            targets[n:n + b] = y.numpy()
            n += b
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"engine": args.engine, "images": n, "workers": args.workers, "threads": args.threads,
                      "setup_seconds": setup, "seconds": seconds, "images_per_second": n / seconds,
                      "peak_rss_mb": own, "worker_peak_rss_mb": children}))


if __name__ == "__main__":
    main()
