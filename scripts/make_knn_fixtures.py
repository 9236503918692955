"""Reference data for the LinprobeKNN tests (run by hand; the tests never need Python).

    $PY scripts/make_knn_fixtures.py Tests/Fixtures/knn   (PY: a Python with numpy, torch and h5py)

Writes small feature stores in Linprobe's layout with h5py and what VISSL's and DINO's kNN
benchmarks give on them:

- single_{train,test}.h5: 500 / 200 rows, 10 classes, two layers (res4 [4, 2, 2], res5avg [32, 1, 1])
  of clustered float32 features, scaled so that VISSL's exp(s / 0.1) stays finite without L2
  normalisation.
- voc_{train,test}.h5: 300 / 120 rows, 6 classes in VOC's encoding (1 present, 0 absent,
  -1 difficult), one layer (feat [24, 1, 1]).
- expected.json: per case (protocol, layer, TOPK, SIGMA, L2_NORM_FEATS) the top-1 / top-5 counts
  and percentages of every k, or the mAP and per-class AP (multi-label).

Single-label cases are computed twice and must agree exactly:
  numpy  - a transcription of VISSL's vissl/utils/knn_utils.py::run_knn_at_layer (test rows in
           N_test // 100 chunks, torch.mm, topk, one-hot scatter, exp(distance / sigma),
           descending sort of the class scores, Accuracies.from_batch) and of DINO's
           eval_knn.py::knn_classifier (normalised features, T, min(5, k) top-5 columns), with
           stable sorts: equal similarities keep the lower training row, equal class scores the
           lower class index;
  torch  - the same operations with torch (torch.mm, Tensor.topk, scatter_, Tensor.sort) as the
           two tools call them.
With 10 classes torch's CPU sort is stable (it is not beyond 16 elements), so torch's own
tie order agrees with the stable rule; the script also reports, for every case, the smallest gap
between the k-th and (k+1)-th similarity and between the class scores that decide top-1 / top-5,
so a reader sees that no decision is closer than float rounding could move.

Multi-label cases have no VISSL or DINO counterpart (their kNN takes single-label targets): the
expected values are a numpy transcription of Linprobe's definition — a class scores the weights
exp((s_j - s_1) / sigma) of the neighbours marked 1 for it; AP per class is VOC's all-points AP
(VISSL's get_precision_recall ranking: stable ascending sort reversed) over the test rows not
marked -1; mAP is the mean over classes with a positive.
"""
import json
import os
import sys

import h5py
import numpy as np
import torch

CLASSES = 10


def write_store(path, split, layers, shapes, targets, fingerprint, num_classes):
    """A store in Linprobe's layout, written with h5py (DESIGN.md "Feature store")."""
    n = targets.shape[0]
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        g = f.create_group("features")
        for name, x in layers.items():
            d = g.create_dataset(name, data=x.astype(np.float32), chunks=(min(64, n), x.shape[1]))
            d.attrs["shape_chw"] = np.array(shapes[name], dtype=np.int64)
        f.create_dataset("targets", data=targets.astype(np.int64))
        f.create_dataset("indices", data=np.arange(n, dtype=np.int64))
        f.create_dataset("image_paths", data=[f"{split}/{i:05d}.png" for i in range(n)], dtype=h5py.string_dtype())
        f.attrs["format"] = "linprobe.features"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["fingerprint"] = fingerprint
        f.attrs["split"] = split
        f.attrs["complete"] = np.int64(1)
        f.attrs["rows_written"] = np.int64(n)
        f.attrs["num_classes"] = np.int64(num_classes)
        f.attrs["class_names"] = json.dumps([f"class{c}" for c in range(num_classes)])
        f.attrs["layer_order"] = json.dumps(list(layers))
    os.replace(tmp, path)


def clustered(rng, labels, dim, spread, scale):
    centres = rng.normal(size=(CLASSES, dim))
    return ((centres[labels] + spread * rng.normal(size=(labels.shape[0], dim))) * scale).astype(np.float32)


def single_label_data(seed=3):
    rng = np.random.default_rng(seed)
    y_tr = np.repeat(np.arange(CLASSES), 50)
    y_te = rng.integers(0, CLASSES, size=200)
    layers = {}
    for name, dim, spread, scale in [("res4", 16, 1.6, 0.2), ("res5avg", 32, 2.4, 0.08)]:
        both = clustered(rng, np.concatenate([y_tr, y_te]), dim, spread, scale)
        layers[name] = (both[: len(y_tr)], both[len(y_tr):])
    return layers, y_tr, y_te


def voc_data(seed=5, classes=6, dim=24):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))

    def rows(n):
        present = rng.random((n, classes)) < 0.3
        present[np.arange(n), rng.integers(0, classes, size=n)] = True
        x = present.astype(np.float64) @ centres + 1.8 * rng.normal(size=(n, dim))
        t = present.astype(np.int64)
        t[(rng.random((n, classes)) < 0.08) & present] = -1  # difficult
        return (0.15 * x).astype(np.float32), t

    return rows(300), rows(120)


# MARK: - numpy transcriptions


def l2_normalize(x):
    """torch.nn.functional.normalize(x, dim=1, p=2): x / max(||x||, 1e-12), in float32."""
    norm = np.sqrt((x.astype(np.float32) ** 2).sum(axis=1, keepdims=True, dtype=np.float32))
    return (x / np.maximum(norm, np.float32(1e-12))).astype(np.float32)


def ranked(x):
    """Indices sorting each row descending; equal values keep the lower index first."""
    return np.argsort(-x, axis=1, kind="stable")


def numpy_knn(train, y_tr, test, y_te, k, sigma, normalize, dino, num_classes=None):
    train = l2_normalize(train) if normalize else train.astype(np.float32)
    test = l2_normalize(test) if normalize else test.astype(np.float32)
    classes = num_classes if dino else int(y_tr.max()) + 1
    m = len(y_te)
    step = m // 100
    c1 = c5 = 0
    top5_columns = min(5, k) if dino else (5 if classes >= 5 else 0)
    for start in range(0, m, step):
        f, t = test[start:start + step], y_te[start:start + step]
        sim = (f @ train.T).astype(np.float32)
        order = ranked(sim)[:, :k]
        dist = np.take_along_axis(sim, order, axis=1)
        votes = y_tr[order]
        one_hot = np.zeros((len(t), k, classes), dtype=np.float32)
        np.put_along_axis(one_hot, votes[:, :, None], 1, axis=2)
        weights = np.exp(dist / np.float32(sigma)).astype(np.float32)
        probs = (one_hot * weights[:, :, None]).sum(axis=1, dtype=np.float32)
        predictions = ranked(probs)
        correct = predictions == t[:, None]
        c1 += int(correct[:, :1].sum())
        c5 += int(correct[:, :top5_columns].sum())
    return c1, c5


def numpy_margins(train, y_tr, test, y_te, k, sigma, normalize, dino, num_classes):
    """Smallest relative gap at the k-th similarity and between the deciding class scores."""
    train = l2_normalize(train) if normalize else train
    test = l2_normalize(test) if normalize else test
    sim = (test @ train.T).astype(np.float64)
    s = -np.sort(-sim, axis=1)
    gap = np.inf
    if k < sim.shape[1]:
        gap = float(np.min((s[:, k - 1] - s[:, k]) / np.maximum(np.abs(s[:, k - 1]), 1e-9)))
    classes = num_classes if dino else int(y_tr.max()) + 1
    order = ranked(sim)[:, :k]
    w = np.exp((np.take_along_axis(sim, order, 1) - s[:, :1]) / sigma)
    scores = np.zeros((len(y_te), classes))
    np.add.at(scores, (np.repeat(np.arange(len(y_te)), k), y_tr[order].ravel()), w.ravel())
    srt = -np.sort(-scores, axis=1)
    score_gap = np.inf
    for cut in [1, 5]:
        if cut < classes:
            a, b = srt[:, cut - 1], srt[:, cut]
            mask = a > 0
            if mask.any():
                score_gap = min(score_gap, float(np.min((a[mask] - b[mask]) / a[mask])))
    return gap, score_gap


def voc_ap(scores, positive):
    """VOC all-points AP along VISSL's ranking (stable ascending sort, reversed)."""
    order = np.argsort(scores, kind="stable")[::-1]
    pos = positive[order]
    if pos.sum() == 0:
        return None
    tp = np.cumsum(pos)
    fp = np.cumsum(~pos)
    rec = tp / pos.sum()
    prec = tp / np.maximum(tp + fp, 1)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def numpy_multilabel(train, t_tr, test, t_te, k, sigma, normalize):
    train = l2_normalize(train) if normalize else train
    test = l2_normalize(test) if normalize else test
    sim = (test @ train.T).astype(np.float32)
    order = ranked(sim)[:, :k]
    dist = np.take_along_axis(sim, order, 1).astype(np.float64)
    w = np.exp((dist - dist[:, :1]) / sigma)
    votes = (t_tr[order] == 1).astype(np.float64)  # (m, k, C)
    scores = (votes * w[:, :, None]).sum(axis=1)
    per_class = []
    for c in range(t_te.shape[1]):
        keep = t_te[:, c] != -1
        ap = voc_ap(scores[keep, c], t_te[keep, c] == 1)
        per_class.append(None if ap is None else ap * 100)
    defined = [a for a in per_class if a is not None]
    return (sum(defined) / len(defined) if defined else None), per_class


# MARK: - torch, as VISSL's knn_utils and DINO's eval_knn call it


def torch_knn(train, y_tr, test, y_te, k, sigma, normalize, dino, num_classes=None):
    train, test = torch.from_numpy(train).float(), torch.from_numpy(test).float()
    if normalize:
        train = torch.nn.functional.normalize(train, dim=1, p=2)
        test = torch.nn.functional.normalize(test, dim=1, p=2)
    labels = torch.from_numpy(y_tr).long().view(-1, 1)
    targets_all = torch.from_numpy(y_te).long().view(-1, 1)
    classes = num_classes if dino else int(labels.max()) + 1
    train_t = train.t()
    m = targets_all.shape[0]
    step = m // 100
    c1 = c5 = 0
    for start in range(0, m, step):
        features = test[start:start + step]
        targets = targets_all[start:start + step]
        batch = targets.shape[0]
        similarity = torch.mm(features, train_t)
        distances, indices = similarity.topk(k, largest=True, sorted=True)
        candidates = labels.view(1, -1).expand(batch, -1)
        neighbours = torch.gather(candidates, 1, indices)
        one_hot = torch.zeros(batch * k, classes)
        one_hot.scatter_(1, neighbours.view(-1, 1), 1)
        weights = distances.clone().div_(sigma).exp_()
        probs = torch.sum(torch.mul(one_hot.view(batch, -1, classes), weights.view(batch, -1, 1)), 1)
        _, predictions = probs.sort(1, True)
        correct = predictions.eq(targets.view(-1, 1))
        c1 += int(correct.narrow(1, 0, 1).sum().item())
        if dino:
            c5 += int(correct.narrow(1, 0, min(5, k)).sum().item())
        elif correct.shape[1] >= 5:
            c5 += int(correct.narrow(1, 0, 5).sum().item())
    return c1, c5


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/knn"
    os.makedirs(out, exist_ok=True)
    layers, y_tr, y_te = single_label_data()
    shapes = {"res4": [4, 2, 2], "res5avg": [32, 1, 1]}
    write_store(f"{out}/single_train.h5", "train", {n: v[0] for n, v in layers.items()}, shapes, y_tr,
                "fixture-knn-single-train-v1", CLASSES)
    write_store(f"{out}/single_test.h5", "test", {n: v[1] for n, v in layers.items()}, shapes, y_te,
                "fixture-knn-single-test-v1", CLASSES)
    (x_vtr, t_vtr), (x_vte, t_vte) = voc_data()
    write_store(f"{out}/voc_train.h5", "train", {"feat": x_vtr}, {"feat": [24, 1, 1]}, t_vtr,
                "fixture-knn-voc-train-v1", t_vtr.shape[1])
    write_store(f"{out}/voc_test.h5", "test", {"feat": x_vte}, {"feat": [24, 1, 1]}, t_vte,
                "fixture-knn-voc-test-v1", t_vte.shape[1])

    cases = [
        ("vissl", "res5avg", [1, 5, 20, 200], 0.1, False),
        ("vissl", "res5avg", [10, 20], 0.07, True),
        ("vissl", "res4", [200], 0.1, True),
        ("vissl", "res4", [3, 50], 0.5, False),
        ("dino", "res5avg", [10, 20, 100, 200], 0.07, True),
        ("dino", "res4", [10, 20, 100, 200], 0.07, True),
    ]
    expected = {"single": [], "multi_label": []}
    for protocol, layer, ks, sigma, normalize in cases:
        dino = protocol == "dino"
        train, test = layers[layer]
        results = []
        for k in ks:
            a = numpy_knn(train, y_tr, test, y_te, k, sigma, normalize, dino, CLASSES)
            b = torch_knn(train, y_tr, test, y_te, k, sigma, normalize, dino, CLASSES)
            gap, score_gap = numpy_margins(train, y_tr, test, y_te, k, sigma, normalize, dino, CLASSES)
            agree = a == b
            print(f"{protocol:5} {layer:7} k={k:3} sigma={sigma} l2={normalize}: numpy top1/top5 {a}, torch {b}"
                  f"{'' if agree else '  DIFFER'}; min gap at k {gap:.2e}, deciding scores {score_gap:.2e}")
            if not agree:
                raise SystemExit("numpy and torch disagree")
            m = len(y_te)
            results.append({"k": k, "correct_top_1": a[0], "correct_top_5": a[1],
                            "top_1": a[0] * 100.0 / m, "top_5": a[1] * 100.0 / m,
                            "min_similarity_gap": gap if np.isfinite(gap) else None,
                            "min_score_gap": score_gap if np.isfinite(score_gap) else None})
        expected["single"].append({"protocol": protocol, "layer": layer, "topk": ks, "sigma": sigma,
                                   "l2_norm_feats": normalize, "num_classes": CLASSES, "test_rows": len(y_te),
                                   "results": results})
    for ks, sigma, normalize in [([5, 20], 0.1, True), ([1, 10], 0.07, False)]:
        results = []
        for k in ks:
            mean, per_class = numpy_multilabel(x_vtr, t_vtr, x_vte, t_vte, k, sigma, normalize)
            print(f"multi-label k={k} sigma={sigma} l2={normalize}: mAP {mean:.4f}")
            results.append({"k": k, "mAP": mean, "per_class_ap": per_class})
        expected["multi_label"].append({"layer": "feat", "topk": ks, "sigma": sigma, "l2_norm_feats": normalize,
                                        "results": results})
    expected["generator"] = {"numpy": np.__version__, "torch": torch.__version__, "h5py": h5py.__version__}
    with open(f"{out}/expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
