"""Reference data for the LinprobeSVM tests (run by hand; the tests never need Python).

    $PY scripts/make_svm_fixtures.py Tests/Fixtures/svm   (PY: a Python with scikit-learn, torch, torchvision, h5py)
    $PY scripts/make_svm_fixtures.py Tests/Fixtures/svm --converged-only   (converged_reference.json alone)

Writes small feature stores in Linprobe's layout (with h5py) and what VISSL's protocol gives on
them, computed with scikit-learn's LinearSVC with VISSL's exact settings
(vissl/utils/svm_utils/svm_trainer.py) and VISSL's AP function (evaluate.py) re-implemented:

- real_{train,test}.h5: MobileNetV2 (ImageNet weights) features (late160 tap) of Fashion-MNIST and
  digits mosaics, 20 classes, VOC encoding with difficult entries.
- synth_{train,test}.h5: hard synthetic cases: score ties (duplicate and all-zero rows), a class
  with one positive training row, a class without training positives, a class without test
  positives, a class with two positives (a fold without positives), all-difficult rows.
- places_{train,test}.h5: single-label real features (Fashion-MNIST tiles) for the Places205-style
  low-shot variant.

- converged_reference.json: the same protocol with every fit at its optimum (liblinear's primal
  Newton solver to tol 1e-12), for `SVM.solver: converged`; and single fits' weights and decision values.

scikit-learn's liblinear draws its coordinate order from `random_state` (VISSL leaves it None);
the protocol is run with random_state 0, 1, 2 and every seed's choice is recorded, so the tests
can tell a real disagreement from scikit-learn's own run-to-run spread.
"""
import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svm_feature_data as data  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

warnings.simplefilter("ignore")

VISSL_COSTS = [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0]
SEEDS = [0, 1, 2]


# MARK: - VISSL's AP (evaluate.py), with the sort kind as a parameter

def vissl_ap(targets, scores, kind="quicksort"):
    targets = np.array(targets > 0, dtype=np.float32)
    ind = np.argsort(scores, kind=kind)[::-1]
    sortcounts = targets[ind].astype(np.float64)
    tp = sortcounts
    fp = (sortcounts < 1).astype(np.float64)
    P = np.cumsum(tp) / (np.cumsum(tp) + np.cumsum(fp))
    numinst = np.sum(targets)
    if numinst == 0:
        return None, None
    R = np.cumsum(tp) / numinst
    mrec = np.concatenate([[0.0], R, [1.0]])
    mpre = np.concatenate([[0.0], P, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    ap = float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))
    # VOC2007 devkit 11-point AP on the same ranking.
    ap11 = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        p = 0.0 if np.sum(R >= t) == 0 else np.max(P[R >= t])
        ap11 += p / 11.0
    return ap, float(ap11)


def normalize(x):
    x = x.astype(np.float64)
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]


def svc(cost, seed, max_iter=2000):
    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2", loss="squared_hinge",
                     tol=0.0001, dual=True, max_iter=max_iter, random_state=seed)


def first_argmax(values):
    """numpy's argmax (NaN first), as VISSL's get_best_cost_value."""
    return int(np.argmax(np.array(values, dtype=np.float64)))


def clean(v):
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else v


# MARK: - VISSL's VOC07 protocol (SVMTrainer.train/test)

def standard_protocol(xtr, ttr, xte, tte, costs, folds=3):
    ftr, fte = normalize(xtr), normalize(xte)
    out = {"costs": costs, "folds": folds, "classes": []}
    aps, aps11 = [], []
    for c in range(ttr.shape[1]):
        labels = ttr[:, c].astype(np.int32).copy()
        labels[labels == 0] = -1
        rec = {"index": c, "train_positives": int((labels == 1).sum())}
        if rec["train_positives"] == 0:
            rec["skipped"] = True
            out["classes"].append(rec)
            continue
        try:
            rec["test_folds"] = [int(f) for f in _test_folds(labels, folds)]
        except ValueError:
            rec["test_folds"] = None
        by_seed = []
        for seed in SEEDS:
            means, per_fold, iters = [], [], []
            for cost in costs:
                scores = cross_val_score(svc(cost, seed), ftr, labels, cv=folds, scoring="average_precision")
                means.append(clean(np.mean(scores)))
                per_fold.append([clean(s) for s in scores])
            chosen = first_argmax([np.nan if m is None else m for m in means])
            clf = svc(costs[chosen], seed).fit(ftr, labels)
            pred = clf.decision_function(fte)
            keep = tte[:, c] != -1
            ap, ap11 = vissl_ap(tte[keep, c], pred[keep], kind="stable")
            ap_default, _ = vissl_ap(tte[keep, c], pred[keep])
            by_seed.append({"cv_ap": means, "cv_ap_folds": per_fold, "chosen": chosen, "test_ap": ap, "test_ap_11": ap11,
                            "test_ap_default_sort": ap_default, "n_iter": int(clf.n_iter_)})
        ref = by_seed[0]
        rec.update({
            "cv_ap": ref["cv_ap"], "cv_ap_folds": ref["cv_ap_folds"], "chosen_cost_index": ref["chosen"],
            "chosen_by_seed": [b["chosen"] for b in by_seed],
            "test_ap": ref["test_ap"], "test_ap_11point": ref["test_ap_11"],
            "test_ap_default_sort": ref["test_ap_default_sort"],
            "test_ap_by_seed": [b["test_ap"] for b in by_seed],
            "refit_n_iter": ref["n_iter"],
        })
        if ref["test_ap"] is not None:
            aps.append(ref["test_ap"])
            aps11.append(ref["test_ap_11"])
        out["classes"].append(rec)
    out["mAP"] = 100.0 * float(np.mean(aps))
    out["mAP_11point"] = 100.0 * float(np.mean(aps11))
    return out


def _test_folds(labels, folds):
    t = np.empty(len(labels), dtype=int)
    for i, (_, te) in enumerate(StratifiedKFold(folds).split(np.zeros(len(labels)), labels)):
        t[te] = i
    return t


def solver_reference(xtr, ttr, xte, cls, costs):
    """Decision values of single fits (full training set) for a direct solver comparison."""
    ftr, fte = normalize(xtr), normalize(xte)
    labels = ttr[:, cls].astype(np.int32).copy()
    labels[labels == 0] = -1
    out = []
    for cost in costs:
        clf = svc(cost, 0).fit(ftr, labels)
        dual = LinearSVC(C=cost, class_weight={1: 2, -1: 1}, penalty="l2", loss="squared_hinge", tol=1e-10, dual=True,
                         max_iter=200000, random_state=0).fit(ftr, labels)
        out.append({"class": cls, "cost": cost, "n_iter": int(clf.n_iter_),
                    "decision": [float(v) for v in clf.decision_function(fte)],
                    "decision_tight": [float(v) for v in dual.decision_function(fte)]})
    return out


# MARK: - Low-shot (svm_low_shot_trainer.py) with Linprobe's seeded sampler re-implemented

M64 = (1 << 64) - 1


def splitmix_step(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


def mix_seed(parts):
    h = 0xCBF29CE484222325
    for p in parts:
        z = (p + 0x9E3779B97F4A7C15 + h) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        h = z ^ (z >> 31)
    return h


class Xoshiro:
    def __init__(self, seed):
        x = seed
        self.s = []
        for _ in range(4):
            x, v = splitmix_step(x)
            self.s.append(v)

    def next(self):
        s = self.s
        r = (((s[1] * 5) & M64) << 7 | ((s[1] * 5) & M64) >> 57) & M64
        r = (r * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & M64
        return r

    def below(self, bound):
        m = self.next() * bound
        low = m & M64
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                m = self.next() * bound
                low = m & M64
        return m >> 64


def pick(pool, count, rng):
    p = list(pool)
    for i in range(count):
        j = i + rng.below(len(p) - i)
        p[i], p[j] = p[j], p[i]
    return p[:count]


def low_shot(xtr, ttr, xte, tte, costs, ks, samples, voc, seed=0, folds=3):
    ftr, fte = normalize(xtr), normalize(xte)
    if voc:
        width = ttr.shape[1]
        classes = list(range(width))
    else:
        classes = list(range(int(max(ttr.max(), tte.max())) + 1))
    by_k = []
    for k in ks:
        maps, honest = [], []
        for s in samples:
            per_cost = np.zeros((len(classes), len(costs)))
            honest_aps = []
            if not voc:
                rows = []
                for c in classes:
                    rng = Xoshiro(mix_seed([seed, 0x4C530002, s, k, c]))
                    rows += pick(list(np.flatnonzero(ttr == c)), k, rng)
                rows = sorted(rows)
            for ci, c in enumerate(classes):
                if voc:
                    rng = Xoshiro(mix_seed([seed, 0x4C530001, s, k, c]))
                    pos = pick(list(np.flatnonzero(ttr[:, c] == 1)), k, rng)
                    neg = pick(list(np.flatnonzero(ttr[:, c] == 0)), (width - 1) * k, rng)
                    r = sorted(pos + neg)
                    y = np.where(np.isin(r, pos), 1, -1)
                else:
                    r = rows
                    y = np.where(ttr[r] == c, 1, -1)
                for j, cost in enumerate(costs):
                    pred = svc(cost, 0).fit(ftr[r], y).decision_function(fte)
                    if voc:
                        keep = tte[:, c] != -1
                        ap, _ = vissl_ap(tte[keep, c], pred[keep], kind="stable")
                    else:
                        keep = tte >= 0
                        ap, _ = vissl_ap((tte[keep] == c).astype(int), pred[keep], kind="stable")
                    per_cost[ci, j] = ap
                if k >= folds:
                    cv = [np.mean(cross_val_score(svc(cost, 0), ftr[r], y, cv=folds, scoring="average_precision")) for cost in costs]
                    honest_aps.append(per_cost[ci, first_argmax(cv)])
            maps.append(per_cost.mean(axis=0))
            if honest_aps:
                honest.append(float(np.mean(honest_aps)))
        maps = np.array(maps)
        mean = maps.mean(axis=0)
        j = int(np.argmax(mean))
        rec = {"k": k, "per_sample_map": (100 * maps).tolist(), "vissl_cost_index": j,
               "vissl_mean": 100 * float(mean[j]), "vissl_min": 100 * float(maps[:, j].min()),
               "vissl_max": 100 * float(maps[:, j].max()), "vissl_std": 100 * float(maps[:, j].std())}
        if honest:
            rec["cv_mean"] = 100 * float(np.mean(honest))
        by_k.append(rec)
    return {"costs": costs, "k_values": ks, "sample_inds": samples, "by_k": by_k}


# MARK: - Data

def synthetic(seed=7):
    rng = np.random.default_rng(seed)
    d, ntr, nte, ncls = 24, 150, 120, 6
    centers = rng.normal(size=(ncls, d)) * 1.2

    def rows(n, force):
        x = np.abs(rng.normal(size=(n, d)) * 0.8)
        t = np.zeros((n, ncls), np.int64)
        for i in range(n):
            present = rng.random(ncls) < 0.25
            for c in np.flatnonzero(present):
                x[i] += np.abs(centers[c])
                t[i, c] = 1
            for c in range(ncls):
                if rng.random() < 0.05:
                    t[i, c] = -1
        force(x, t)
        return x.astype(np.float32), t

    def force_train(x, t):
        t[:, 1] = np.where(t[:, 1] == 1, 0, t[:, 1]); t[3, 1] = 1        # one positive
        t[:, 2] = np.where(t[:, 2] == 1, 0, t[:, 2])                       # no positives
        t[:, 5] = np.where(t[:, 5] == 1, 0, t[:, 5]); t[10, 5] = 1; t[20, 5] = 1  # two positives
        t[140:145, :] = -1                                                 # all-difficult rows
        x[145:150] = 0                                                     # all-zero rows

    def force_test(x, t):
        t[:, 3] = np.where(t[:, 3] == 1, 0, t[:, 3])                       # no test positives
        x[100:110] = x[100]                                                # ten identical rows ...
        t[100:110, 4] = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 0])           # ... with mixed labels
        x[110:116] = 0                                                     # all-zero rows: tied scores
        t[110:116, 0] = np.array([1, 0, 0, 1, 0, 0])
        t[116:120, :] = -1                                                 # all-difficult rows

    xtr, ttr = rows(ntr, force_train)
    xte, tte = rows(nte, force_test)
    return xtr, ttr, xte, tte, [f"s{c}" for c in range(ncls)]


def places_like(seed=11):
    tiles, cls = data.load_tiles()
    rng = np.random.default_rng(seed)
    pick_rows = lambda n_per: np.concatenate([rng.choice(np.flatnonzero(cls == c), n_per, replace=False) for c in range(10)])
    tr, te = pick_rows(30), pick_rows(20)

    def images(idx):
        out = np.zeros((len(idx), 56, 56), np.uint8)
        out[:, 14:42, 14:42] = tiles[idx]
        return out

    return images(tr), cls[tr], images(te), cls[te]


# MARK: - The converged solver (SVM.solver: converged)

def exact_svc(cost):
    """The optimum of VISSL's objective to ~machine precision: liblinear's primal Newton (TRON)."""
    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2", loss="squared_hinge",
                     tol=1e-12, dual=False, max_iter=100000)


def read_store(path, layer):
    import h5py
    with h5py.File(path, "r") as f:
        return np.asarray(f["features"][layer], dtype=np.float32), np.asarray(f["targets"])


def converged_protocol(xtr, ttr, xte, tte, costs, folds=3):
    """VISSL's protocol with every fit at its optimum (no seeds: the optimum has no visiting order)."""
    ftr, fte = normalize(xtr), normalize(xte)
    out = {"costs": costs, "folds": folds, "classes": []}
    aps = []
    for c in range(ttr.shape[1]):
        labels = ttr[:, c].astype(np.int32).copy()
        labels[labels == 0] = -1
        rec = {"index": c}
        if (labels == 1).sum() == 0:
            rec["skipped"] = True
            out["classes"].append(rec)
            continue
        try:
            test_folds = _test_folds(labels, folds)
        except ValueError:
            test_folds = None
        per_fold = []
        for cost in costs:
            row = []
            for f in range(folds):
                if test_folds is None:
                    row.append(None)
                    continue
                tr, te = test_folds != f, test_folds == f
                if len(set(labels[tr])) < 2:
                    row.append(None)
                    continue
                pred = exact_svc(cost).fit(ftr[tr], labels[tr]).decision_function(ftr[te])
                row.append(clean(average_precision_score(labels[te] > 0, pred)))
            per_fold.append(row)
        means = [None if any(v is None for v in r) else float(np.mean(r)) for r in per_fold]
        chosen = first_argmax([np.nan if m is None else m for m in means])
        pred = exact_svc(costs[chosen]).fit(ftr, labels).decision_function(fte)
        keep = tte[:, c] != -1
        ap, _ = vissl_ap(tte[keep, c], pred[keep], kind="stable")
        rec.update({"cv_ap": means, "cv_ap_folds": per_fold, "chosen_cost_index": chosen, "test_ap": ap})
        if ap is not None:
            aps.append(ap)
        out["classes"].append(rec)
    out["mAP"] = 100.0 * float(np.mean(aps))
    return out


def converged_fits(xtr, ttr, xte, cls, costs):
    """Single fits on every training row: weights (D, then the bias weight) and test decision values."""
    ftr, fte = normalize(xtr), normalize(xte)
    labels = ttr[:, cls].astype(np.int32).copy()
    labels[labels == 0] = -1
    out = []
    for cost in costs:
        clf = exact_svc(cost).fit(ftr, labels)
        out.append({"class": cls, "cost": cost, "n_iter": int(clf.n_iter_),
                    "weights": [float(v) for v in clf.coef_[0]] + [float(clf.intercept_[0])],
                    "decision": [float(v) for v in clf.decision_function(fte)]})
    return out


def converged_references(out):
    """converged_reference.json from the committed real and synthetic stores."""
    x_tr, t_tr = read_store(f"{out}/real_train.h5", "late160")
    x_te, t_te = read_store(f"{out}/real_test.h5", "late160")
    xs_tr, ts_tr = read_store(f"{out}/synth_train.h5", "feat")
    xs_te, ts_te = read_store(f"{out}/synth_test.h5", "feat")
    refs = {
        "solver": "sklearn LinearSVC(dual=False, tol=1e-12, max_iter=100000), VISSL's class weights and bias",
        "real_fits": converged_fits(x_tr, t_tr, x_te, 0, [0.01, 1.0, 100.0, 1000.0]),
        "real": converged_protocol(x_tr, t_tr, x_te, t_te, VISSL_COSTS),
        "synth": converged_protocol(xs_tr, ts_tr, xs_te, ts_te, VISSL_COSTS),
    }
    print("converged real:", refs["real"]["mAP"], "synth:", refs["synth"]["mAP"], file=sys.stderr)
    with open(f"{out}/converged_reference.json", "w") as f:
        json.dump(refs, f, indent=1)
        f.write("\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if sys.argv[2:] == ["--converged-only"]:
        # Only the converged solver's reference, from the stores already there.
        converged_references(out)
        return
    refs = {}

    # Real multi-label features.
    imgs_tr, t_tr = data.make_mosaics(400, seed=21)
    imgs_te, t_te = data.make_mosaics(400, seed=22)
    f_tr, shapes = data.extract(imgs_tr, ["late160"])
    f_te, _ = data.extract(imgs_te, ["late160"])
    data.write_store(f"{out}/real_train.h5", "train", f_tr, shapes, t_tr, "fixture-real-train-v1", data.CLASS_NAMES)
    data.write_store(f"{out}/real_test.h5", "test", f_te, shapes, t_te, "fixture-real-test-v1", data.CLASS_NAMES)
    x_tr, x_te = f_tr["late160"], f_te["late160"]
    refs["real"] = standard_protocol(x_tr, t_tr, x_te, t_te, VISSL_COSTS)
    refs["real_solver"] = solver_reference(x_tr, t_tr, x_te, 0, [0.01, 1.0, 100.0])
    refs["real_low_shot"] = low_shot(x_tr, t_tr, x_te, t_te, [0.1, 1.0, 10.0], [1, 2, 4], [1, 2], voc=True)
    print("real:", refs["real"]["mAP"], file=sys.stderr)

    # Hard synthetic cases.
    xs_tr, ts_tr, xs_te, ts_te, names = synthetic()
    shapes = {"feat": [24, 1, 1]}
    data.write_store(f"{out}/synth_train.h5", "train", {"feat": xs_tr}, shapes, ts_tr, "fixture-synth-train-v1", names)
    data.write_store(f"{out}/synth_test.h5", "test", {"feat": xs_te}, shapes, ts_te, "fixture-synth-test-v1", names)
    refs["synth"] = standard_protocol(xs_tr, ts_tr, xs_te, ts_te, VISSL_COSTS)
    print("synth:", refs["synth"]["mAP"], file=sys.stderr)

    # Single-label (Places205-style) low-shot.
    p_tr, y_tr, p_te, y_te = places_like()
    g_tr, pshapes = data.extract(p_tr, ["late160"])
    g_te, _ = data.extract(p_te, ["late160"])
    data.write_store(f"{out}/places_train.h5", "train", g_tr, pshapes, y_tr.astype(np.int64), "fixture-places-train-v1", data.CLASS_NAMES[:10])
    data.write_store(f"{out}/places_test.h5", "test", g_te, pshapes, y_te.astype(np.int64), "fixture-places-test-v1", data.CLASS_NAMES[:10])
    refs["places_low_shot"] = low_shot(g_tr["late160"], y_tr, g_te["late160"], y_te, [0.1, 1.0, 10.0], [1, 5], [1, 2], voc=False)

    # AP functions on scores with ties (against scikit-learn and VISSL's code).
    rng = np.random.default_rng(5)
    ap_cases = []
    for n in (7, 40, 200):
        scores = np.round(rng.normal(size=n), 1)  # rounding makes many ties
        labels = (rng.random(n) < 0.3).astype(int)
        labels[0] = 1
        ap, ap11 = vissl_ap(labels, scores, kind="stable")
        ap_cases.append({"scores": scores.tolist(), "labels": labels.tolist(),
                         "sklearn_ap": float(average_precision_score(labels, scores)), "vissl_ap": ap, "voc11_ap": ap11})
    refs["ap_cases"] = ap_cases

    with open(f"{out}/reference.json", "w") as f:
        json.dump(refs, f, indent=1)
        f.write("\n")
    converged_references(out)


if __name__ == "__main__":
    main()
