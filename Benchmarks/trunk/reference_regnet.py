"""Reference side of the RegNet trunk benchmark: the work of `bench-trunk --regnet NAME` (VISSL's
regnet8Gf ImageNet-1k overlay taps: res4 AdaptiveAvgPool2d [3, 3], res5 [6, 1], avgpool; one pass)
with torchvision's RegNet in PyTorch (channels_last or contiguous, inference_mode), built from ClassyVision's
stage widths (torchvision's own regnet_y_8gf() has other widths), one JSON line. Peak memory is
this process's.

    python Benchmarks/trunk/reference_regnet.py --model regnet_y_8gf --batch 8 --threads 2
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time
from functools import partial

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from make_regnet_fixtures import NAMED, expanded_params  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.regnet import BlockParams, RegNet  # noqa: E402


class Taps(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m
        self.p4, self.p5 = nn.AdaptiveAvgPool2d((3, 3)), nn.AdaptiveAvgPool2d((6, 1))

    def forward(self, x):
        m = self.m
        f = m.stem(x)
        f = m.trunk_output.block1(f)
        f = m.trunk_output.block2(f)
        r4 = m.trunk_output.block3(f)
        r5 = m.trunk_output.block4(r4)
        return self.p4(r4), self.p5(r5), m.avgpool(r5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="regnet_y_8gf", choices=sorted(NAMED))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--layout", choices=["channels_last", "contiguous"], default="channels_last")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    d, w0, wa, wm, gw, se = NAMED[args.model]
    widths, depths, groups = expanded_params(d, w0, wa, wm, gw)
    params = BlockParams(depths, widths, groups, [1.0] * len(widths), [2] * len(widths), se_ratio=0.25 if se else None)
    net = RegNet(params, norm_layer=partial(nn.BatchNorm2d, eps=1e-5, momentum=0.1))
    fmt = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    model = Taps(net).eval().to(memory_format=fmt)
    x = torch.randn(args.batch, 3, 224, 224).to(memory_format=fmt)
    times, cpu = [], []

    def cpu_now():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    with torch.inference_mode():
        for _ in range(args.warmup + args.iterations):
            t, c = time.perf_counter(), cpu_now()
            model(x)
            times.append(time.perf_counter() - t)
            cpu.append(cpu_now() - c)
    measured = times[args.warmup:]
    print(json.dumps({
        "engine": "torch", "layout": args.layout, "version": torch.__version__, "model": args.model, "widths": widths,
        "batch": args.batch, "threads": args.threads, "images_per_second": args.batch / statistics.median(measured),
        "seconds_per_batch_all": measured, "cpu_seconds_per_image": sum(cpu[args.warmup:]) / (args.batch * args.iterations),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
