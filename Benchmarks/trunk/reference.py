"""Reference side of the trunk benchmark: the same work as `bench-trunk` (ResNet-50, all six
canonical VISSL taps with their pool ops, one pass) in PyTorch (channels_last,
inference_mode) or onnxruntime, printed as one JSON line. Run one engine per process so that
each reports its own peak memory.

    python Benchmarks/trunk/reference.py --engine torch|onnxruntime --batch 32 --threads 2
"""
import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import tvshim  # noqa: F401,E402  (before torchvision)
import torch  # noqa: E402
import torchvision  # noqa: E402

# VISSL's canonical ResNet-50 pool-op map (LINEAR_EVAL_FEAT_POOL_OPS_MAP, IN1k linear benchmark).
POOL_MAP = [
    ("conv1", torch.nn.AvgPool2d([10, 10], 10, 4)),
    ("res2", torch.nn.AvgPool2d([16, 16], 8, 0)),
    ("res3", torch.nn.AvgPool2d([13, 13], 5, 0)),
    ("res4", torch.nn.AvgPool2d([8, 8], 3, 0)),
    ("res5", torch.nn.AvgPool2d([6, 6], 1, 0)),
    ("res5avg", torch.nn.Identity()),
]


class Taps(torch.nn.Module):
    """VISSL's feature extractor over a torchvision ResNet: taps conv1 (after ReLU), res2..res5,
    res5avg; each pooled by its op and flattened."""

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
        return tuple(torch.flatten(op(feats[name]), 1) for (name, _), op in zip(POOL_MAP, self.pools))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["torch", "onnxruntime"], required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = Taps(torchvision.models.resnet50()).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    times = []
    cpu = []

    def cpu_now():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    if args.engine == "torch":
        model = model.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(args.warmup + args.iterations):
                t, c = time.perf_counter(), cpu_now()
                outs = model(xc)
                times.append(time.perf_counter() - t)
                cpu.append(cpu_now() - c)
        version = torch.__version__
        detail = {"memory_format": "channels_last", "mkldnn": torch.backends.mkldnn.is_available(),
                  "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    else:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "resnet50_taps.onnx")
            names = [f"{name}_{i}" for i, (name, _) in enumerate(POOL_MAP)]
            torch.onnx.export(model, (x[:1],), path, dynamo=False, opset_version=17, input_names=["x"],
                              output_names=names, dynamic_axes={"x": {0: "n"}, **{o: {0: "n"} for o in names}})
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            for _ in range(args.warmup + args.iterations):
                t, c = time.perf_counter(), cpu_now()
                outs = sess.run(None, {"x": xn})
                times.append(time.perf_counter() - t)
                cpu.append(cpu_now() - c)
        version = ort.__version__
        detail = {"graph_optimization": "default (ORT_ENABLE_ALL)"}
    measured = times[args.warmup:]
    seconds = statistics.median(measured)
    print(json.dumps({
        "engine": args.engine, "version": version, "batch": args.batch, "size": args.size, "threads": args.threads,
        "images_per_second": args.batch / seconds, "seconds_per_batch_median": seconds,
        "seconds_per_batch_all": measured, "cpu_seconds_per_image": sum(cpu[args.warmup:]) / (args.batch * args.iterations), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outputs": {name: int(o.shape[1]) for (name, _), o in zip(POOL_MAP, outs)}, **detail,
    }))


if __name__ == "__main__":
    main()
