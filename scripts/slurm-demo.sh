#!/usr/bin/env bash
# `make slurm-demo`: the demo pipeline through a local one-node Slurm with 3 extraction shards per
# split; waits for the jobs and prints the same table as `make demo`.
#   scripts/slurm-demo.sh <linprobe binary> <work folder>
set -euo pipefail
BIN=${1:?usage: $0 <linprobe binary> <work folder>}
WORK=${2:?usage: $0 <linprobe binary> <work folder>}
here=$(cd "$(dirname "$0")" && pwd)

"$here/slurm-local.sh" up
submitted=$("$BIN" slurm demo --workdir "$WORK" --shards 3)
echo "$submitted"
ids=$(awk -F'\t' '$2 != "-" {print $2}' <<<"$submitted" | paste -sd, -)
if [ -n "$ids" ]; then
    echo "waiting for jobs $ids (squeue -j $ids)"
    while [ -n "$(squeue --noheader --jobs "$ids" 2>/dev/null)" ]; do sleep 2; done
fi
if [ ! -f "$WORK/reports/demo/report.md" ]; then
    echo "the jobs ended without a report; logs in $WORK/slurm/demo/logs" >&2
    exit 1
fi
"$BIN" report demo --workdir "$WORK"
