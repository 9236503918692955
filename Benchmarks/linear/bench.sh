#!/usr/bin/env bash
# train-linear benchmark: VISSL's ImageNet schedule (28 epochs, milestones 8/16/24, batch 256,
# SGD momentum 0.9 Nesterov, wd 5e-4) for an eval_mlp head on 50,000-row stores of 2,048 and
# 9,216 features, 1000 classes — Linprobe (streaming from the HDF5 store) against PyTorch
# (same heads, features in RAM, same batch and threads), in one run, as a ratio.
#
# Both sides run LINEAR_BENCH_EPOCHS epochs (default 2) of the 28-epoch schedule; the 28-epoch
# figures are the median epoch time × 28 for both sides (stated in the table).
# Data is synthetic but structured and lives in .bench-cache/linear (not in git).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -n "${PY:-}" ] || source Benchmarks/venv.sh
EPOCHS="${LINEAR_BENCH_EPOCHS:-2}"
THREADS="${LINEAR_BENCH_THREADS:-2}"
ROWS="${LINEAR_BENCH_ROWS:-50000}"
TEST_ROWS="${LINEAR_BENCH_TEST_ROWS:-10000}"
# Trunk throughput for "VISSL's way" (trunk re-run every epoch): PyTorch ResNet-50
# channels_last, 2 threads, batch 32 on this machine (shared/reference/environment.md §5).
TRUNK_IMG_S="${LINEAR_BENCH_TRUNK_IMG_S:-25.3}"
CACHE=.bench-cache/linear
mkdir -p "$CACHE"
"$PY" Benchmarks/linear/make_data.py "$CACHE" "$ROWS" "$TEST_ROWS"
swift build -c release -Xswiftc -enable-testing --product linear-bench >/dev/null
BIN=.build/release/linear-bench

config() {  # $1 = in_channels, $2 = dim
  cat <<JSON
{"SEED_VALUE": 1, "DATA": {"TRAIN": {"BATCHSIZE_PER_REPLICA": 32}}, "DISTRIBUTED": {"NUM_NODES": 1, "NUM_PROC_PER_NODE": 8},
 "MODEL": {"HEAD": {"PARAMS": [["eval_mlp", {"in_channels": $1, "dims": [$2, 1000]}]]}},
 "LOSS": {"name": "cross_entropy_multiple_output_single_target"},
 "METERS": {"name": "accuracy_list_meter", "accuracy_list_meter": {"topk_values": [1, 5]}},
 "OPTIMIZER": {"name": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005, "num_epochs": 28,
   "regularize_bn": false, "regularize_bias": true,
   "param_schedulers": {"lr": {"auto_lr_scaling": {"auto_scale": true, "base_value": 0.01, "base_lr_batch_size": 256},
     "name": "multistep", "values": [0.01, 0.001, 0.0001, 0.00001], "milestones": [8, 16, 24], "update_interval": "epoch"}}}}
JSON
}

results=()
for spec in "d2048 2048 2048" "d9216 256 9216"; do
  read -r name channels dim <<<"$spec"
  cfg="$CACHE/$name.json"
  config "$channels" "$dim" >"$cfg"
  work="$CACHE/work-$name"
  rm -rf "$work"
  train="$CACHE/${name}_train_${ROWS}.h5"
  test="$CACHE/${name}_test_${TEST_ROWS}.h5"
  # Warm the page cache for both sides alike.
  cat "$train" "$test" >/dev/null
  ours=$("$BIN" --train "$train" --test "$test" --config "$cfg" --workdir "$work" --threads "$THREADS" --epochs "$EPOCHS")
  ref=$("$PY" Benchmarks/linear/reference.py --train "$train" --test "$test" --config "$cfg" --epochs "$EPOCHS" --threads "$THREADS")
  results+=("$name|$dim|$ours|$ref")
done

bash Benchmarks/machine.sh
"$PY" - "$ROWS" "$TEST_ROWS" "$EPOCHS" "$THREADS" "$TRUNK_IMG_S" "${results[@]}" <<'PYEOF'
import json, statistics, sys
rows, test_rows, epochs, threads, trunk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
print(f"train-linear: eval_mlp head, {rows} train / {test_rows} test rows, 1000 classes, batch 256, {threads} threads;")
print(f"{epochs} measured epochs per side of the 28-epoch schedule, 28-epoch = median epoch x 28 (both sides)")
print(f"{'features':>9} | {'Linprobe s/epoch':>16} | {'PyTorch s/epoch':>15} | {'ratio':>6} | {'Linprobe 28 ep':>14} | {'PyTorch 28 ep':>13} | {'top-1 ours/torch':>16}")
for item in sys.argv[6:]:
    name, dim, ours, ref = item.split("|")
    o, r = json.loads(ours), json.loads(ref)
    mo, mr = statistics.median(o["epoch_seconds"]), statistics.median(r["epoch_seconds"])
    print(f"{dim:>9} | {mo:16.2f} | {mr:15.2f} | {mr / mo:5.2f}x | {28 * mo / 60:11.1f} min | {28 * mr / 60:10.1f} min | "
          f"{o['top_1'][-1]:7.2f} / {r['top_1'][-1]:.2f}")
    print(f"{'':>9}   (PyTorch also spent {r['load_seconds']:.1f} s loading the store into RAM; Linprobe streams it)")
trunk_epoch = rows / trunk
print(f"VISSL's way re-runs the trunk every epoch: {rows} images / {trunk} img/s = {trunk_epoch / 60:.0f} min per epoch of trunk")
print(f"forward alone, x 28 epochs = {28 * trunk_epoch / 3600:.1f} h; Linprobe extracts once ({trunk_epoch / 60:.0f} min) and then trains from the store")
for item in sys.argv[6:]:
    name, dim, ours, ref = item.split("|")
    mo = statistics.median(json.loads(ours)["epoch_seconds"])
    ours_total = trunk_epoch + 28 * mo
    vissl_total = 28 * (trunk_epoch + mo)
    print(f"  {dim}-d head: VISSL's way ~{vissl_total / 3600:.1f} h vs extract once + train ~{ours_total / 3600:.2f} h -> {vissl_total / ours_total:.1f}x structural speed-up")
PYEOF
