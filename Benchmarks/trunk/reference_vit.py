"""Reference side of the ViT trunk benchmark: the work of `bench-trunk --vit s16|b16` (VISSL's
dino_vit overlay taps concatCLS4 + lastCLS: every block output through the final LayerNorm, one
pass) with timm's VisionTransformer in PyTorch (inference_mode) or onnxruntime, one JSON line.
One engine per process, so that each reports its own peak memory.

    python Benchmarks/trunk/reference_vit.py --engine torch|onnxruntime --model s16|b16 --batch 8 --threads 2
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
import tvshim  # noqa: F401,E402  (before timm, which imports torchvision)
import torch  # noqa: E402
import timm  # noqa: E402

MODELS = {"s16": "vit_small_patch16_224", "b16": "vit_base_patch16_224"}


class Taps(torch.nn.Module):
    """concatCLS4 and lastCLS as VISSL's get_intermediate_features computes them."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def forward(self, x):
        m = self.vit
        h = m._pos_embed(m.patch_embed(x))
        cls = []
        for i, blk in enumerate(m.blocks):
            h = blk(h)
            if i >= len(m.blocks) - 4:
                cls.append(m.norm(h)[:, 0])
        return torch.cat(cls, -1), cls[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["torch", "onnxruntime"], required=True)
    ap.add_argument("--model", choices=sorted(MODELS), required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = Taps(timm.create_model(MODELS[args.model], pretrained=False, num_classes=0)).eval()
    x = torch.randn(args.batch, 3, 224, 224)
    times, cpu = [], []

    def cpu_now():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    if args.engine == "torch":
        with torch.inference_mode():
            for _ in range(args.warmup + args.iterations):
                t, c = time.perf_counter(), cpu_now()
                model(x)
                times.append(time.perf_counter() - t)
                cpu.append(cpu_now() - c)
        version = torch.__version__
    else:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "vit.onnx")
            torch.onnx.export(model, (x[:1],), path, dynamo=False, opset_version=17, input_names=["x"],
                              output_names=["concatCLS4", "lastCLS"],
                              dynamic_axes={"x": {0: "n"}, "concatCLS4": {0: "n"}, "lastCLS": {0: "n"}})
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            for _ in range(args.warmup + args.iterations):
                t, c = time.perf_counter(), cpu_now()
                sess.run(None, {"x": xn})
                times.append(time.perf_counter() - t)
                cpu.append(cpu_now() - c)
        version = ort.__version__
    measured = times[args.warmup:]
    seconds = statistics.median(measured)
    print(json.dumps({
        "engine": args.engine, "version": version, "model": args.model, "batch": args.batch, "threads": args.threads,
        "images_per_second": args.batch / seconds, "seconds_per_batch_all": measured,
        "cpu_seconds_per_image": sum(cpu[args.warmup:]) / (args.batch * args.iterations),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
