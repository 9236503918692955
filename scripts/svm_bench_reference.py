"""VISSL's VOC07 SVM protocol in scikit-learn, as the benchmark's reference side, on a subset.

Per class and cost, exactly what VISSL's SVMTrainer does (tools/train_svm.py): LinearSVC(C,
class_weight {1: 2, -1: 1}, squared hinge, dual, tol 1e-4, max_iter 2000) under a 3-fold
cross_val_score with scoring="average_precision", then a refit on all training rows; the
first cost with the best mean CV AP is the class's choice, scored with VISSL's AP on the test
rows. Features are loaded as float64 and L2-normalised as VISSL does.

The full job (20 classes x 11 costs x 4 fits = 880 fits per layer) takes scikit-learn hours on
2 cores, so this runs only the first --classes classes of each layer. Every (layer, class, cost)
is one job (3 CV fits + the refit) in a pool of --workers processes; each job measures its own
CPU time, so the full job's CPU time can be estimated as (CPU time of the subset) x 20 / classes
on the same machine.

usage: python scripts/svm_bench_reference.py TRAIN.h5 TEST.h5 [--layers a,b] [--classes N] [--workers N] [--max-iter N]
Prints one JSON line per layer (layer, classes, fits, not_converged, cpu_seconds, chosen_costs,
aps, mAP over the subset) and a last line with total_seconds, workers and the largest worker's peak_rss_mb_worker.
"""
import argparse
import json
import multiprocessing as mp
import os
import resource
import time
import warnings

import numpy as np

COSTS = [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0]
_ARGS = None
_DATA = {}


def vissl_ap(targets, scores):
    targets = np.array(targets > 0, dtype=np.float32)
    ind = np.argsort(scores)[::-1]
    tp = targets[ind].astype(np.float64)
    fp = (tp < 1).astype(np.float64)
    P = np.cumsum(tp) / (np.cumsum(tp) + np.cumsum(fp))
    R = np.cumsum(tp) / np.sum(targets)
    mrec = np.concatenate([[0.0], R, [1.0]])
    mpre = np.concatenate([[0.0], P, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def load(path, layer):
    import h5py
    with h5py.File(path, "r") as f:
        x = np.array(f["features"][layer]).astype(np.float64)
        t = np.array(f["targets"])
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None], t


def layer_data(layer):
    if layer not in _DATA:
        _DATA[layer] = (load(_ARGS.train, layer), load(_ARGS.test, layer))
    return _DATA[layer]


def run_job(job):
    """One (layer, class, cost): VISSL's 3-fold CV AP and the refit's test decision values."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import LinearSVC

    layer, c, j = job
    (x, t), (xt, _) = layer_data(layer)
    start = time.process_time()
    labels = t[:, c].astype(np.int32).copy()
    labels[labels == 0] = -1
    clf = LinearSVC(C=COSTS[j], class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2",
                    loss="squared_hinge", tol=0.0001, dual=True, max_iter=_ARGS.max_iter)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", ConvergenceWarning)
        scores = cross_val_score(clf, x, labels, cv=3, scoring="average_precision")
        clf.fit(x, labels)
    not_converged = sum(1 for m in w if issubclass(m.category, ConvergenceWarning))
    cpu = time.process_time() - start
    return layer, c, j, float(scores.mean()), clf.decision_function(xt), not_converged, cpu


def init(args):
    global _ARGS
    _ARGS = args


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--layers", default=None)
    p.add_argument("--classes", type=int, default=1, help="first N classes (the subset); 0 = all")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--max-iter", type=int, default=2000, help="LinearSVC max_iter (VISSL: 2000)")
    a = p.parse_args()
    import h5py
    with h5py.File(a.train, "r") as f:
        layers = a.layers.split(",") if a.layers else json.loads(f.attrs["layer_order"])
        total_classes = f["targets"].shape[1]
    ncls = total_classes if a.classes <= 0 else min(a.classes, total_classes)
    # Costliest first (large costs run to max_iter), so the pool's workers finish together.
    jobs = [(layer, c, j) for j in reversed(range(len(COSTS))) for layer in layers for c in range(ncls)]
    start = time.time()
    with mp.get_context("fork").Pool(a.workers, initializer=init, initargs=(a,)) as pool:
        results = pool.map(run_job, jobs, chunksize=1)
    wall = time.time() - start
    with h5py.File(a.test, "r") as f:
        tt = np.array(f["targets"])
    rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    for layer in layers:
        rows = [r for r in results if r[0] == layer]
        cv = np.zeros((ncls, len(COSTS)))
        decisions = {}
        for _, c, j, ap, dec, _, _ in rows:
            cv[c, j] = ap
            decisions[(c, j)] = dec
        chosen = np.argmax(cv, axis=1)
        aps = []
        for c in range(ncls):
            keep = tt[:, c] != -1
            aps.append(100.0 * vissl_ap(tt[keep, c], decisions[(c, int(chosen[c]))][keep]))
        print(json.dumps({
            "layer": layer, "classes": ncls, "total_classes": total_classes, "fits": ncls * len(COSTS) * 4,
            "not_converged": int(sum(r[5] for r in rows)), "cpu_seconds": float(sum(r[6] for r in rows)),
            "chosen_costs": [COSTS[int(j)] for j in chosen], "aps": aps, "mAP": float(np.mean(aps))}), flush=True)
    print(json.dumps({"total_seconds": wall, "workers": a.workers, "peak_rss_mb_worker": rss_worker}), flush=True)


if __name__ == "__main__":
    main()
