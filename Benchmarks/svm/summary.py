"""Prints Benchmarks/svm's table from one run's outputs (called by bench.sh).

usage: python summary.py TMP REPEATS CLASSES MAX_ITER CORES SOLVER
TMP holds ours<r>.jsonl / ours<r>.time (Linprobe, r = 1..REPEATS) and, unless the reference was
skipped (SVM_BENCH_REFERENCE=0), ref.jsonl / ref.time (scikit-learn on the subset).
"""
import json
import os
import statistics
import sys


def lines(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def gnu_time(path):
    return json.loads(open(path).read().strip().splitlines()[-1].replace("%", ""))


def main():
    tmp, repeats, classes, max_iter, cores, solver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    ours = [lines(f"{tmp}/ours{r}.jsonl") for r in range(1, repeats + 1)]
    ours_time = [gnu_time(f"{tmp}/ours{r}.time") for r in range(1, repeats + 1)]
    layers = [line["layer"] for line in ours[0] if "layer" in line]  # the store's layer order
    runs = {layer: [next(line for line in run if line.get("layer") == layer) for run in ours] for layer in layers}
    ncls = len(runs[layers[0]][0]["aps"])
    ref = None
    if os.path.exists(f"{tmp}/ref.jsonl"):
        ref = lines(f"{tmp}/ref.jsonl")
        ref_layers = {line["layer"]: line for line in ref if "layer" in line}
        ref_total = next(line for line in ref if "total_seconds" in line)
        total, sub = ref_layers[layers[0]]["total_classes"], ref_layers[layers[0]]["classes"]
        scale = ncls / sub

    print(f"VOC07-sized SVM job: 5011 train / 4952 test rows, 11 costs, 3 folds, max_iter {max_iter}, {len(layers)} layers, {cores} cores")
    of_total = f" of {total}" if ref is not None else ""
    print(f"  Linprobe (SVM.solver: {solver}): {ncls}{of_total} classes, measured, median of {repeats} run(s)")
    if ref is not None:
        print(f"  scikit-learn (VISSL's protocol): the first {sub} class(es) measured ({sub * 44} of VISSL's {ncls * 44} fits per layer);"
              f" its time for {ncls} classes estimated as x {scale:g}")
    else:
        print("  scikit-learn not run (SVM_BENCH_REFERENCE=0)")
    if max_iter != 2000:
        print(f"  SHORTENED: max_iter {max_iter} instead of VISSL's 2000 (SVM_BENCH_MAX_ITER)")
    head = f"  {'layer':9} {'Linprobe mAP':>12} {'fits':>5} {'not conv.':>9} {'layer s':>8}"
    if ref is not None:
        head += f" | first {sub} class(es): {'Linprobe AP':>11} {'sklearn AP':>10} {'same cost':>9}"
    print(head)
    for layer in layers:
        o = runs[layer][0]
        m = statistics.median(x["mAP"] for x in runs[layer])
        s = statistics.median(x["timings"]["total_seconds"] for x in runs[layer])
        row = f"  {layer:9} {m:12.3f} {o['fits']:5d} {o['not_converged']:9d} {s:8.1f}"
        if ref is not None:
            r = ref_layers[layer]
            our_ap = statistics.mean(o["aps"][:sub])
            same = sum(1 for a, b in zip(o["chosen_costs"][:sub], r["chosen_costs"]) if a == b)
            row += f" | {'':18} {our_ap:11.3f} {r['mAP']:10.3f} {f'{same}/{sub}':>9}"
        print(row)

    wall = statistics.median(t["wall_s"] for t in ours_time)
    cpu = statistics.median(t["user_s"] + t["sys_s"] for t in ours_time)
    rss = max(t["peak_rss_kb"] for t in ours_time) / 1024.0
    if ref is None:
        print(f"  whole job: wall {wall:.1f} s ({wall / 60:.2f} min), CPU {cpu:.1f} s (user+sys), peak RSS {rss:.0f} MB")
        return
    ref_cpu = sum(ref_layers[layer]["cpu_seconds"] for layer in layers)
    est_cpu = ref_cpu * scale
    est_wall = est_cpu / cores
    print(f"  {'':12} {'Linprobe':>12} {'sklearn subset':>15} {'sklearn est.':>13} {'ratio':>7}")
    print(f"  {'CPU s':12} {cpu:12.1f} {ref_cpu:15.1f} {est_cpu:13.1f} {est_cpu / cpu:6.1f}x  (user+sys; per-fit CPU times x {scale:g})")
    print(f"  {'wall s':12} {wall:12.1f} {ref_total['total_seconds']:15.1f} {est_wall:13.1f} {est_wall / wall:6.1f}x  (estimate: CPU / {cores} cores)")
    print(f"  {'peak RSS MB':12} {rss:12.0f} {ref_total['peak_rss_mb_worker']:15.0f} {'':>13}          (sklearn: largest of {ref_total['workers']} worker processes)")


if __name__ == "__main__":
    main()
