#!/usr/bin/env python3
"""PyTorch reference for the train-linear benchmark: the same VISSL heads, trained the way a
cached-features PyTorch script does it (features loaded into RAM from the same store with h5py,
one randperm per epoch, index-select batches, SGD with VISSL's parameter groups, evaluation on
the test split after every epoch). Prints per-epoch wall times as JSON.

Usage: reference.py --train T.h5 --test V.h5 --config cfg.json --epochs E --threads N
"""
import argparse
import json
import math
import time

import h5py
import numpy as np
import torch
import torch.nn as nn


class EvalMLP(nn.Module):
    def __init__(self, in_channels, dims, eps, momentum):
        super().__init__()
        self.channel_bn = nn.BatchNorm2d(in_channels, eps=eps, momentum=momentum)
        self.clf = nn.Sequential(nn.Linear(dims[0], dims[1]))
        self.in_channels = in_channels

    def forward(self, x):
        n = x.shape[0]
        x = x.reshape(n, self.in_channels, -1, 1)
        return self.clf(torch.flatten(self.channel_bn(x), start_dim=1))


def load(path):
    with h5py.File(path, "r") as f:
        order = json.loads(f.attrs["layer_order"])
        x = torch.from_numpy(f[f"features/{order[0]}"][...])
        y = torch.from_numpy(f["targets"][...])
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train"), ap.add_argument("--test"), ap.add_argument("--config")
    ap.add_argument("--epochs", type=int), ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))
    t0 = time.perf_counter()
    x, y = load(a.train)
    tx, ty = load(a.test)
    load_seconds = time.perf_counter() - t0

    head_cfg = cfg["MODEL"]["HEAD"]
    name, args = head_cfg["PARAMS"][0]
    torch.manual_seed(cfg["SEED_VALUE"])
    head = EvalMLP(args["in_channels"], args["dims"], 1e-5, 0.1)
    opt = cfg["OPTIMIZER"]
    lin = head.clf[0]
    groups = [{"params": [lin.weight, lin.bias], "weight_decay": opt["weight_decay"]},
              {"params": [head.channel_bn.weight, head.channel_bn.bias], "weight_decay": 0.0}]
    sgd = torch.optim.SGD(groups, lr=0.01, momentum=opt["momentum"], nesterov=opt["nesterov"])
    lr_cfg = opt["param_schedulers"]["lr"]
    batch = cfg["DATA"]["TRAIN"]["BATCHSIZE_PER_REPLICA"] * cfg["DISTRIBUTED"]["NUM_PROC_PER_NODE"]
    n = len(y)
    steps = math.ceil(n / batch)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
    epoch_seconds, train_seconds, top1 = [], [], []
    start = time.perf_counter()
    for epoch in range(a.epochs):
        e0 = time.perf_counter()
        milestone = sum(1 for m in lr_cfg["milestones"] if m <= epoch)
        for g in sgd.param_groups:
            g["lr"] = lr_cfg["values"][milestone]
        head.train()
        perm = torch.randperm(n)
        total = 0.0
        for b in range(steps):
            idx = perm[b * batch:(b + 1) * batch]
            out = head(x[idx])
            loss = loss_fn(out, y[idx])
            sgd.zero_grad(set_to_none=True)
            loss.backward()
            sgd.step()
            total += float(loss.detach())
        train_seconds.append(time.perf_counter() - e0)
        head.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(ty), batch):
                out = head(tx[s:s + batch])
                correct += int((out.argmax(dim=1) == ty[s:s + batch]).sum())
        top1.append(100.0 * correct / len(ty))
        epoch_seconds.append(time.perf_counter() - e0)
    print(json.dumps({"load_seconds": load_seconds, "total_seconds": time.perf_counter() - start,
                      "epoch_seconds": epoch_seconds, "train_seconds": train_seconds, "top_1": top1,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
