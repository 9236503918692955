"""VISSL's VOC07 SVM protocol with VISSL's parallel layout, as the benchmark's reference side.

One process per layer (tools/train_svm.py), each loading the layer as float64, normalising,
then one thread per class (SVMTrainer.train) looping over the costs: 3-fold cross_val_score
with scoring="average_precision" plus a refit (880 LinearSVC fits per layer with 20 classes and
11 costs); then the first cost with the best mean CV AP per class and VISSL's test AP.

usage: python scripts/svm_bench_reference.py TRAIN.h5 TEST.h5 [--layers a,b] [--class-threads N] [--classes N] [--max-iter N]
Prints one JSON line per layer: layer, mAP, seconds, peak_rss_mb, fits, not_converged.
"""
import argparse
import json
import multiprocessing as mp
import os
import resource
import threading
import time
import warnings

import numpy as np

COSTS = [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0]


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


def run_layer(train_path, test_path, layer, class_threads, max_classes, max_iter, queue):
    import h5py
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import LinearSVC

    start = time.time()
    with h5py.File(train_path, "r") as f:
        x = np.array(f["features"][layer]).astype(np.float64)
        t = np.array(f["targets"])
    x = x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]
    ncls = t.shape[1] if max_classes <= 0 else min(max_classes, t.shape[1])
    ap_matrix = np.zeros((ncls, len(COSTS)))
    models = {}
    not_converged = [0]
    lock = threading.Lock()

    def train_cls(c):
        labels = t[:, c].astype(np.int32).copy()
        labels[labels == 0] = -1
        for j, cost in enumerate(COSTS):
            clf = LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2",
                            loss="squared_hinge", tol=0.0001, dual=True, max_iter=max_iter)
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always", ConvergenceWarning)
                scores = cross_val_score(clf, x, labels, cv=3, scoring="average_precision")
                clf.fit(x, labels)
            with lock:
                not_converged[0] += sum(1 for m in w if issubclass(m.category, ConvergenceWarning))
                ap_matrix[c, j] = scores.mean()
                models[(c, j)] = clf

    classes = list(range(ncls))
    while classes:
        batch, classes = classes[:class_threads], classes[class_threads:]
        threads = [threading.Thread(target=train_cls, args=(c,)) for c in batch]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    chosen = np.argmax(ap_matrix, axis=1)
    with h5py.File(test_path, "r") as f:
        xt = np.array(f["features"][layer]).astype(np.float64)
        tt = np.array(f["targets"])
    xt = xt / (np.linalg.norm(xt, axis=1) + 1e-5)[:, None]
    aps = []
    for c in range(ncls):
        pred = models[(c, int(chosen[c]))].decision_function(xt)
        keep = tt[:, c] != -1
        aps.append(vissl_ap(tt[keep, c], pred[keep]))
    queue.put({"layer": layer, "mAP": 100.0 * float(np.mean(aps)), "seconds": time.time() - start,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               "fits": ncls * len(COSTS) * 4, "not_converged": not_converged[0], "class_threads": class_threads,
               "chosen_costs": [COSTS[int(j)] for j in chosen]})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--layers", default=None)
    p.add_argument("--class-threads", type=int, default=20)
    p.add_argument("--classes", type=int, default=0, help="first N classes only (0 = all)")
    p.add_argument("--max-iter", type=int, default=2000, help="LinearSVC max_iter (VISSL: 2000)")
    a = p.parse_args()
    import h5py
    with h5py.File(a.train, "r") as f:
        layers = a.layers.split(",") if a.layers else json.loads(f.attrs["layer_order"])
    queue = mp.get_context("fork").Queue()
    start = time.time()
    procs = [mp.get_context("fork").Process(target=run_layer, args=(a.train, a.test, layer, a.class_threads, a.classes, a.max_iter, queue)) for layer in layers]
    for pr in procs:
        pr.start()
    results = [queue.get() for _ in procs]
    for pr in procs:
        pr.join()
    for r in sorted(results, key=lambda r: r["layer"]):
        print(json.dumps(r), flush=True)
    print(json.dumps({"total_seconds": time.time() - start, "peak_rss_mb_sum": sum(r["peak_rss_mb"] for r in results)}), flush=True)


if __name__ == "__main__":
    main()
