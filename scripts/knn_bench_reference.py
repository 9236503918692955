"""Brute-force kNN references for Benchmarks/knn (run by bench.sh; never by the tests).

    $PY scripts/knn_bench_reference.py numpy|torch TRAIN.h5 TEST.h5 [K SIGMA L2 THREADS]

torch: VISSL's run_knn_at_layer on the CPU (NEAREST_NEIGHBOR.USE_CUDA False): all features in
       memory, the test rows in chunks, torch.mm against every training row, Tensor.topk, one-hot
       scatter, exp(distance / sigma), sort of the class scores.
numpy: the same algorithm in NumPy (matmul, argpartition for the k best, then their sort).
Chunks are 500 test rows, what VISSL's N_test // 100 gives on ImageNet's 50,000 validation images,
so the measured rate per similarity is the one VISSL's loop reaches on the full problem (on a
smaller test set N_test // 100 would make the GEMMs smaller and slower).
Both use THREADS threads (torch.set_num_threads; NumPy's BLAS through OPENBLAS_NUM_THREADS / OMP_NUM_THREADS,
set by bench.sh before the interpreter starts). Prints one JSON line: seconds of the search and vote
(loading the features excluded, reported apart), top-1 / top-5, peak RSS.
"""
import json
import resource
import sys
import time

import h5py
import numpy as np


def load(path):
    with h5py.File(path, "r") as f:
        return f["features/res5avg"][:].astype(np.float32), f["targets"][:].astype(np.int64)


def normalize(x):
    return x / np.maximum(np.sqrt((x * x).sum(axis=1, keepdims=True)), np.float32(1e-12))


CHUNK = 500


def numpy_knn(train, y_tr, test, y_te, k, sigma):
    classes = int(y_tr.max()) + 1
    step = CHUNK
    c1 = c5 = 0
    for start in range(0, len(y_te), step):
        sims = test[start:start + step] @ train.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, part, 1)
        order = np.argsort(-top, axis=1, kind="stable")
        dist = np.take_along_axis(top, order, 1)
        idx = np.take_along_axis(part, order, 1)
        probs = np.zeros((len(idx), classes), dtype=np.float32)
        rows = np.repeat(np.arange(len(idx)), k)
        np.add.at(probs, (rows, y_tr[idx].ravel()), np.exp(dist / np.float32(sigma)).ravel())
        pred = np.argsort(-probs, axis=1, kind="stable")[:, :5]
        t = y_te[start:start + step][:, None]
        c1 += int((pred[:, :1] == t).sum())
        c5 += int((pred == t).sum())
    return c1, c5


def torch_knn(train, y_tr, test, y_te, k, sigma):
    import torch

    train_t = torch.from_numpy(train).t()
    test_t = torch.from_numpy(test)
    labels = torch.from_numpy(y_tr).view(-1, 1)
    targets_all = torch.from_numpy(y_te).view(-1, 1)
    classes = int(labels.max()) + 1
    step = CHUNK
    c1 = c5 = 0
    with torch.no_grad():
        for start in range(0, len(y_te), step):
            features = test_t[start:start + step]
            targets = targets_all[start:start + step]
            batch = targets.shape[0]
            similarity = torch.mm(features, train_t)
            distances, indices = similarity.topk(k, largest=True, sorted=True)
            neighbours = torch.gather(labels.view(1, -1).expand(batch, -1), 1, indices)
            one_hot = torch.zeros(batch * k, classes)
            one_hot.scatter_(1, neighbours.view(-1, 1), 1)
            weights = distances.clone().div_(sigma).exp_()
            probs = torch.sum(one_hot.view(batch, -1, classes) * weights.view(batch, -1, 1), 1)
            _, predictions = probs.sort(1, True)
            correct = predictions.eq(targets.view(-1, 1))
            c1 += int(correct.narrow(1, 0, 1).sum().item())
            c5 += int(correct.narrow(1, 0, 5).sum().item())
    return c1, c5


def main():
    impl, train_path, test_path = sys.argv[1:4]
    k = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    sigma = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
    l2 = (sys.argv[6] if len(sys.argv) > 6 else "1") == "1"
    threads = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    t0 = time.time()
    train, y_tr = load(train_path)
    test, y_te = load(test_path)
    if l2:
        train, test = normalize(train), normalize(test)
    load_seconds = time.time() - t0
    if impl == "torch":
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        version = torch.__version__
        run = torch_knn
    else:
        version = np.__version__
        run = numpy_knn
    t1 = time.time()
    c1, c5 = run(train, y_tr, test, y_te, k, sigma)
    seconds = time.time() - t1
    m = len(y_te)
    print(json.dumps({
        "impl": impl, "version": version, "seconds": seconds, "load_seconds": load_seconds,
        "top_1": c1 * 100.0 / m, "top_5": c5 * 100.0 / m, "correct_top_1": c1, "correct_top_5": c5,
        "similarities_per_second": len(y_tr) * m / seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 / 1024.0,
    }))


if __name__ == "__main__":
    main()
