#!/usr/bin/env python3
"""Reference data for the train-linear fidelity tests (run by hand; tests never need Python).

Builds small feature stores of real features (a seeded random conv net over Fashion-MNIST,
Debian's `dataset-fashion-mnist`), then trains VISSL's heads on them with PyTorch exactly as
VISSL does (eval_mlp = BatchNorm2d → flatten → Linear; mlp = Linear[/BN1d/ReLU]; summed
per-head cross-entropy with ignore_index −1, or VISSL's masked BCE; SGD with momentum,
coupled weight decay, VISSL's parameter groups; ClassyVision/fvcore LR schedules evaluated at
VISSL's `where`), with the same initial weights and batch order that the fixture exports.

Writes Tests/Fixtures/linear/{features_train,features_test,multi_train,multi_test}.h5 and one
JSON per run (config, initial weights, per-epoch permutations, per-step losses, per-epoch
metrics, final weights).

Usage (from the repository root):
    pip install --no-deps --target /tmp/fvc fvcore   # the scheduler code VISSL uses (pure Python)
    PYTHONPATH=/tmp/fvc python scripts/make_linear_fixtures.py
"""
import gzip
import json
import math
import os
import struct
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

try:
    from fvcore.common import param_scheduler as fv
except ImportError:  # pragma: no cover
    sys.exit("needs fvcore's param_scheduler (pip install --no-deps --target /tmp/fvc fvcore; PYTHONPATH=/tmp/fvc)")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "linear")
MNIST = "/usr/share/datasets/fashion-mnist"
N_TRAIN, N_TEST = 1200, 500
torch.set_num_threads(1)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data[4 + 4 * dims:], dtype=np.uint8).reshape(shape)


def features(images):
    """A seeded random conv net: a [16, 3, 3] map and a flat 64-d vector per image."""
    torch.manual_seed(1234)
    conv1 = nn.Conv2d(1, 16, 5, stride=2)
    conv2 = nn.Conv2d(16, 64, 3)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - 0.2860) / 0.3530
    with torch.no_grad():
        a = torch.relu(conv1(x))                       # 16 × 12 × 12
        fmap = nn.AvgPool2d(4, stride=4)(a)            # 16 × 3 × 3
        b = torch.relu(conv2(a))                       # 64 × 10 × 10
        flat = b.mean(dim=(2, 3))                      # 64
    return fmap.reshape(len(images), -1).numpy().astype(np.float32), flat.numpy().astype(np.float32)


def write_store(path, split, layers, targets, num_classes):
    """A store in Linprobe's layout written by h5py (as a user bringing PyTorch features would)."""
    n = len(targets)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "linprobe.features"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["fingerprint"] = "fixture-" + os.path.basename(path)
        f.attrs["split"] = split
        f.attrs["complete"] = np.int64(1)
        f.attrs["rows_written"] = np.int64(n)
        f.attrs["num_classes"] = np.int64(num_classes)
        f.attrs["class_names"] = json.dumps([f"class{i}" for i in range(num_classes)])
        f.attrs["layer_order"] = json.dumps([name for name, _, _ in layers])
        for name, values, shape in layers:
            ds = f.create_dataset(f"features/{name}", data=values, chunks=(64, values.shape[1]), compression="gzip", shuffle=True)
            ds.attrs["shape_chw"] = np.array(shape, dtype=np.int64)
        f.create_dataset("targets", data=np.asarray(targets, dtype=np.int64))
        f.create_dataset("indices", data=np.arange(n, dtype=np.int64))
        f.create_dataset("image_paths", data=[f"img_{i}.png" for i in range(n)], dtype=h5py.string_dtype())


# ----------------------------------------------------------------------------- heads as VISSL


class EvalMLP(nn.Module):
    def __init__(self, in_channels, dims, eps, momentum):
        super().__init__()
        self.channel_bn = nn.BatchNorm2d(in_channels, eps=eps, momentum=momentum)
        self.clf = MLP(dims, eps=eps, momentum=momentum)

    def forward(self, x, shape):
        x = x.reshape(x.shape[0], *shape)
        return self.clf(torch.flatten(self.channel_bn(x), start_dim=1))


class MLP(nn.Module):
    def __init__(self, dims, use_bn=False, use_relu=False, eps=1e-5, momentum=0.1):
        super().__init__()
        layers = []
        for i in range(1, len(dims)):
            layers.append(nn.Linear(dims[i - 1], dims[i]))
            if i == len(dims) - 1:
                break
            if use_bn:
                layers.append(nn.BatchNorm1d(dims[i], eps=eps, momentum=momentum))
            if use_relu:
                layers.append(nn.ReLU(inplace=True))
        self.clf = nn.Sequential(*layers)

    def forward(self, x, shape=None):
        return self.clf(x)


def build_head(entry, seed, eps, momentum):
    torch.manual_seed(seed)  # every head from the same RNG state (VISSL's _MODEL_INIT_SEED)
    name, args = entry
    if name == "eval_mlp":
        return EvalMLP(args["in_channels"], args["dims"], eps, momentum)
    return MLP(args["dims"], args.get("use_bn", False), args.get("use_relu", False), eps, momentum)


def state(module, with_buffers=True):
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = {"shape": list(v.shape), "values": [float(x) for x in v.detach().reshape(-1).tolist()]}
    return out


# ----------------------------------------------------------------------------- LR as VISSL


def resolve_lr(cfg):
    """VISSL's infer_learning_rate for the schedules used here, then fvcore's scheduler."""
    opt = cfg["OPTIMIZER"]
    lr = dict(opt["param_schedulers"]["lr"])
    batch = cfg["DATA"]["TRAIN"]["BATCHSIZE_PER_REPLICA"] * cfg["DISTRIBUTED"]["NUM_PROC_PER_NODE"] * cfg["DISTRIBUTED"]["NUM_NODES"]
    auto = lr["auto_lr_scaling"]
    scaled = auto["base_value"] * batch / auto["base_lr_batch_size"]
    if lr["name"] == "multistep":
        gamma = round(lr["values"][1] / lr["values"][0], 6)
        values = [round(scaled * gamma ** i, 8) for i in range(len(lr["values"]))]
        sched = fv.MultiStepParamScheduler(values=values, num_updates=opt["num_epochs"], milestones=lr["milestones"])
    elif lr["name"] == "cosine":
        mult = lr["end_value"] / lr["start_value"]
        sched = fv.CosineParamScheduler(start_value=scaled, end_value=scaled * mult)
    else:
        raise ValueError(lr["name"])
    return sched, lr.get("update_interval", "epoch"), batch


def vissl_percent(x):
    return 100.0 * round(float(x), 6)


def voc_ap(scores, targets):
    """VISSL's get_precision_recall (VOC all-points interpolated AP), targets 1/0 (−1 removed)."""
    npos = int((targets > 0).sum())
    if npos == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    tp = (targets[order] > 0).astype(np.float64)
    fp = 1 - tp
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos
    prec = tp / (tp + fp)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def train_run(name, cfg, store_layers, train_feats, train_targets, test_feats, test_targets, multi_label):
    seed = cfg["SEED_VALUE"]
    head_cfg = cfg["MODEL"]["HEAD"]
    eps, mom = head_cfg["BATCHNORM_EPS"], head_cfg["BATCHNORM_MOMENTUM"]
    heads = [build_head(e, seed, eps, mom) for e in head_cfg["PARAMS"]]
    shapes = [shape for _, shape in store_layers]
    initial = [state(h) for h in heads]

    opt_cfg = cfg["OPTIMIZER"]
    wd = opt_cfg["weight_decay"]
    reg, unreg = [], []
    for h in heads:
        for m in h.modules():
            if isinstance(m, nn.Linear):
                reg.append(m.weight)
                (reg if opt_cfg["regularize_bias"] else unreg).append(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                (reg if opt_cfg["regularize_bn"] else unreg).append(m.weight)
                (reg if opt_cfg["regularize_bn"] and opt_cfg["regularize_bias"] else unreg).append(m.bias)
    groups = [{"params": reg, "weight_decay": wd}, {"params": unreg, "weight_decay": 0.0}]
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=opt_cfg["momentum"], nesterov=opt_cfg["nesterov"])
    sched, interval, batch = resolve_lr(cfg)
    epochs = opt_cfg["num_epochs"]
    n = len(train_targets)
    steps_per_epoch = math.ceil(n / batch)

    xs = [torch.from_numpy(f) for f in train_feats]
    ts = torch.from_numpy(np.asarray(train_targets, dtype=np.int64))
    txs = [torch.from_numpy(f) for f in test_feats]
    tts = torch.from_numpy(np.asarray(test_targets, dtype=np.int64))
    ce = nn.CrossEntropyLoss(ignore_index=-1)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    topk = cfg["METERS"]["accuracy_list_meter"]["topk_values"]

    def head_loss(out, t):
        if not multi_label:
            return ce(out, t)
        mask = t == -1
        per_class = (~mask).sum(dim=0)
        per_class = per_class.masked_fill(per_class == 0, 1)
        return torch.sum(bce(out, t.float()).masked_fill(mask, 0) / per_class)

    permutations, steps, epoch_metrics = [], [], []
    for epoch in range(epochs):
        g = torch.Generator()
        g.manual_seed(seed + epoch)  # DistributedSampler style: reseeded per epoch
        perm = torch.randperm(n, generator=g)
        permutations.append(perm.tolist())
        for h in heads:
            h.train()
        if interval == "epoch":
            lr = sched(epoch / epochs)
        loss_sums = [0.0] * len(heads)
        correct = [[0] * len(topk) for _ in heads]
        labelled = 0
        for b in range(steps_per_epoch):
            rows = perm[b * batch:(b + 1) * batch]
            if interval == "step":
                lr = sched((epoch * steps_per_epoch + b) / (epochs * steps_per_epoch))
            for grp in optimizer.param_groups:
                grp["lr"] = lr
            t = ts[rows]
            optimizer.zero_grad()
            losses, outs = [], []
            for i, h in enumerate(heads):
                out = h(xs[i][rows], shapes[i])
                outs.append(out)
                losses.append(head_loss(out, t))
            total = sum(losses)
            total.backward()
            optimizer.step()
            steps.append({"epoch": epoch, "step": epoch * steps_per_epoch + b, "lr": lr, "losses": [float(l.detach()) for l in losses]})
            for i in range(len(heads)):
                loss_sums[i] += float(losses[i])
            if not multi_label:
                valid = t != -1
                labelled += int(valid.sum())
                for i, out in enumerate(outs):
                    _, pred = out.detach().topk(max(topk), dim=1)
                    for j, k in enumerate(topk):
                        hit = (pred[:, :k] == t.unsqueeze(1)).any(dim=1) & valid
                        correct[i][j] += int(hit.sum())
        # Test phase (BN running statistics).
        for h in heads:
            h.eval()
        per_head = []
        with torch.no_grad():
            for i, h in enumerate(heads):
                out = h(txs[i], shapes[i])
                m = {"train_loss": loss_sums[i] / steps_per_epoch, "test_loss": float(head_loss(out, tts))}
                if multi_label:
                    s, tt = out.numpy(), tts.numpy()
                    aps = []
                    for c in range(tt.shape[1]):
                        keep = tt[:, c] != -1
                        aps.append(voc_ap(s[keep, c], tt[keep, c]))
                    valid = [a for a in aps if a is not None]
                    m["test_mAP"] = vissl_percent(np.mean(valid))
                else:
                    valid = tts != -1
                    _, pred = out.topk(max(topk), dim=1)
                    for j, k in enumerate(topk):
                        hit = (pred[:, :k] == tts.unsqueeze(1)).any(dim=1) & valid
                        m[f"test_top_{k}"] = vissl_percent(int(hit.sum()) / int(valid.sum()))
                        m[f"train_top_{k}"] = vissl_percent(correct[i][j] / labelled)
                per_head.append(m)
        epoch_metrics.append(per_head)
        print(name, "epoch", epoch + 1, [{k: round(v, 4) for k, v in m.items()} for m in per_head])

    doc = {
        "config": cfg, "initial_weights": initial, "permutations": permutations, "steps": steps,
        "epochs": epoch_metrics, "final_weights": [state(h) for h in heads],
        "torch_version": torch.__version__,
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def base_config(heads, lr, epochs, per_replica, procs, nesterov, wd, regularize_bn, loss="cross_entropy_multiple_output_single_target"):
    return {
        "SEED_VALUE": 7,
        "TEST_EVERY_NUM_EPOCH": 1,
        "DATA": {"TRAIN": {"BATCHSIZE_PER_REPLICA": per_replica}},
        "DISTRIBUTED": {"NUM_NODES": 1, "NUM_PROC_PER_NODE": procs},
        "MODEL": {"HEAD": {"PARAMS": heads, "BATCHNORM_EPS": 1e-5, "BATCHNORM_MOMENTUM": 0.1, "PARAMS_MULTIPLIER": 1.0}},
        "LOSS": {"name": loss, loss: {"ignore_index": -1} if loss.startswith("cross") else {"reduction": "none"}},
        "METERS": {"name": "accuracy_list_meter" if loss.startswith("cross") else "mean_ap_list_meter",
                   "accuracy_list_meter": {"topk_values": [1, 5]}},
        "OPTIMIZER": {"name": "sgd", "momentum": 0.9, "nesterov": nesterov, "weight_decay": wd, "num_epochs": epochs,
                      "regularize_bn": regularize_bn, "regularize_bias": True, "param_schedulers": {"lr": lr}},
    }


def schedule_samples():
    """fvcore scheduler values for VISSL's benchmark schedules after VISSL's auto-scaling (done by
    hand here from the configs' numbers), at VISSL's `where` points."""
    cases = []

    def add(name, lr_node, epochs, per_replica, procs, nodes, sched, steps_per_epoch=None):
        if steps_per_epoch is None:
            wheres = [e / epochs for e in range(epochs)]
        else:
            total = epochs * steps_per_epoch
            wheres = [s / total for s in range(0, total, max(1, total // 97))]
        cases.append({"name": name, "lr": lr_node, "num_epochs": epochs, "per_replica": per_replica, "procs": procs,
                      "nodes": nodes, "where": wheres, "expected": [sched(w) for w in wheres]})

    in1k = {"auto_lr_scaling": {"auto_scale": True, "base_value": 0.01, "base_lr_batch_size": 256},
            "name": "multistep", "values": [0.01, 0.001, 0.0001, 0.00001], "milestones": [8, 16, 24], "update_interval": "epoch"}
    add("in1k_multistep", in1k, 28, 32, 8, 1,
        fv.MultiStepParamScheduler(values=[0.01, 0.001, 0.0001, 0.00001], num_updates=28, milestones=[8, 16, 24]))
    # Same config on a global batch of 64: values regenerated as 0.0025 * 0.1^i, rounded to 8 decimals.
    add("in1k_multistep_bs64", in1k, 28, 16, 4, 1,
        fv.MultiStepParamScheduler(values=[round(0.0025 * 0.1 ** i, 8) for i in range(4)], num_updates=28, milestones=[8, 16, 24]))
    places = dict(in1k, milestones=[4, 8, 12])
    add("places_multistep_step", dict(places, update_interval="step"), 14, 32, 8, 1,
        fv.MultiStepParamScheduler(values=[0.01, 0.001, 0.0001, 0.00001], num_updates=14, milestones=[4, 8, 12]), steps_per_epoch=37)
    cos = {"auto_lr_scaling": {"auto_scale": True, "base_value": 0.3, "base_lr_batch_size": 256},
           "name": "cosine", "start_value": 0.3, "end_value": 0.0, "update_interval": "step"}
    add("final_output_cosine", cos, 100, 32, 8, 1, fv.CosineParamScheduler(0.3, 0.0), steps_per_epoch=50)
    add("cosine_bs512", dict(cos, start_value=0.01, end_value=0.0001), 50, 64, 8, 1,
        fv.CosineParamScheduler(0.6, 0.006), steps_per_epoch=20)
    # vit_high_lr: linear warm-up 10 % then cosine; on one node VISSL drops the warm-up.
    comp = {"auto_lr_scaling": {"auto_scale": True, "base_value": 0.3, "base_lr_batch_size": 256},
            "name": "composite", "update_interval": "step", "interval_scaling": ["rescaled", "rescaled"], "lengths": [0.1, 0.9],
            "schedulers": [{"name": "linear", "start_value": 0.1, "end_value": 0.3}, {"name": "cosine", "start_value": 0.3, "end_value": 0.0}]}
    add("vit_composite_one_node", comp, 100, 32, 8, 1, fv.CosineParamScheduler(0.3, 0.0), steps_per_epoch=10)
    # Two nodes: warm-up from the per-node LR 0.3 to the global 0.6, then cosine 0.6 → 0.
    add("vit_composite_two_nodes", comp, 100, 32, 8, 2,
        fv.CompositeParamScheduler([fv.LinearParamScheduler(0.3, 0.6), fv.CosineParamScheduler(0.6, 0.0)],
                                   lengths=[0.1, 0.9], interval_scaling=["rescaled", "rescaled"]), steps_per_epoch=10)
    noauto = {"name": "multistep", "values": [0.1, 0.01, 0.001], "milestones": [30, 60], "update_interval": "epoch"}
    add("defaults_no_autoscale", noauto, 90, 256, 8, 1,
        fv.MultiStepParamScheduler(values=[0.1, 0.01, 0.001], num_updates=90, milestones=[30, 60]))
    with open(os.path.join(OUT, "schedules.json"), "w") as f:
        json.dump(cases, f, indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    schedule_samples()
    train_images = read_idx(f"{MNIST}/train-images-idx3-ubyte.gz")[:N_TRAIN]
    train_labels = read_idx(f"{MNIST}/train-labels-idx1-ubyte.gz")[:N_TRAIN].astype(np.int64)
    test_images = read_idx(f"{MNIST}/t10k-images-idx3-ubyte.gz")[:N_TEST]
    test_labels = read_idx(f"{MNIST}/t10k-labels-idx1-ubyte.gz")[:N_TEST].astype(np.int64)
    fmap_tr, flat_tr = features(train_images)
    fmap_te, flat_te = features(test_images)

    rng = np.random.default_rng(5)
    train_single = train_labels.copy()
    train_single[rng.random(N_TRAIN) < 0.02] = -1  # a few unlabelled rows (ignore_index)
    single_layers = [("map", [16, 3, 3]), ("flat", [64, 1, 1]), ("flat_1", [64, 1, 1])]
    write_store(f"{OUT}/features_train.h5", "train", [("map", fmap_tr, [16, 3, 3]), ("flat", flat_tr, [64, 1, 1]),
                                                      ("flat_1", flat_tr, [64, 1, 1])], train_single, 10)
    write_store(f"{OUT}/features_test.h5", "test", [("map", fmap_te, [16, 3, 3]), ("flat", flat_te, [64, 1, 1]),
                                                    ("flat_1", flat_te, [64, 1, 1])], test_labels, 10)

    heads = [["eval_mlp", {"in_channels": 16, "dims": [144, 10]}], ["mlp", {"dims": [64, 10]}],
             ["mlp", {"dims": [64, 32, 10], "use_bn": True, "use_relu": True}]]
    feats_tr, feats_te = [fmap_tr, flat_tr, flat_tr], [fmap_te, flat_te, flat_te]

    multistep = {"auto_lr_scaling": {"auto_scale": True, "base_value": 0.1, "base_lr_batch_size": 256},
                 "name": "multistep", "values": [0.1, 0.01], "milestones": [3], "update_interval": "epoch"}
    cfg = base_config(heads, multistep, 4, 32, 8, True, 5e-4, False)
    train_run("run_multistep", cfg, single_layers, feats_tr, train_single, feats_te, test_labels, False)

    cosine = {"auto_lr_scaling": {"auto_scale": True, "base_value": 0.1, "base_lr_batch_size": 256},
              "name": "cosine", "start_value": 0.1, "end_value": 0.001, "update_interval": "step"}
    cfg = base_config(heads, cosine, 4, 32, 4, False, 1e-4, True)
    train_run("run_cosine", cfg, single_layers, feats_tr, train_single, feats_te, test_labels, False)

    # Multi-label (VOC encoding): the class is present, others absent, ~5 % entries "difficult".
    def multi(labels):
        t = np.zeros((len(labels), 10), dtype=np.int64)
        t[np.arange(len(labels)), labels] = 1
        t[rng.random(t.shape) < 0.05] = -1
        return t
    mtr, mte = multi(train_labels), multi(test_labels)
    write_store(f"{OUT}/multi_train.h5", "train", [("flat", flat_tr, [64, 1, 1]), ("flat_1", flat_tr, [64, 1, 1])], mtr, 10)
    write_store(f"{OUT}/multi_test.h5", "test", [("flat", flat_te, [64, 1, 1]), ("flat_1", flat_te, [64, 1, 1])], mte, 10)
    mheads = [["eval_mlp", {"in_channels": 64, "dims": [64, 10]}], ["mlp", {"dims": [64, 10]}]]
    cfg = base_config(mheads, multistep, 3, 64, 4, True, 5e-4, False, loss="bce_logits_multiple_output_single_target")
    cfg["OPTIMIZER"]["param_schedulers"]["lr"] = dict(multistep, milestones=[2])
    train_run("run_multilabel", cfg, [("flat", [64, 1, 1]), ("flat_1", [64, 1, 1])], [flat_tr, flat_tr], mtr, [flat_te, flat_te], mte, True)


if __name__ == "__main__":
    main()
