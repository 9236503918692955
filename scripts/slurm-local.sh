#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for `make slurm-demo`, the Slurm end-to-end test and
# users who want to try `linprobe slurm` without a cluster.
#
#   scripts/slurm-local.sh up       install Debian's slurm-wlm and munge if missing, write
#                                    /etc/slurm/slurm.conf sized to this machine, start munged,
#                                    slurmctld and slurmd (by hand: no systemd needed)
#   scripts/slurm-local.sh down     stop the daemons this script started (by their pid files)
#   scripts/slurm-local.sh status   sinfo and squeue
#
# Runs as root (or through sudo). The configuration is only written when /etc/slurm/slurm.conf is
# absent or was written by this script, so an existing cluster's configuration is never replaced.
set -euo pipefail

MARK="# written by linprobe scripts/slurm-local.sh"
CONF=/etc/slurm/slurm.conf
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

install_packages() {
    local missing=""
    for p in slurmctld slurmd slurm-client munge; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
    fi
}

write_config() {
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        echo "$CONF exists and was not written by this script; using it as it is"
        return
    fi
    local host node cpus mem
    host=$(hostname -s)
    # `slurmd -C` prints this machine's NodeName line (CPUs, sockets, cores, threads, memory).
    node=$(slurmd -C | head -1)
    cpus=$(nproc)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    $SUDO mkdir -p /etc/slurm
    $SUDO tee "$CONF" >/dev/null <<CONFIG
$MARK
ClusterName=linprobe
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus / 2))
ReturnToService=2
SlurmUser=slurm
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONFIG
    # Slurm 22.05 refuses CgroupPlugin=disabled; v1 works with the plugins above.
    echo 'CgroupPlugin=cgroup/v1' | $SUDO tee /etc/slurm/cgroup.conf >/dev/null
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts a daemon with nothing of its caller: stdin/stdout/stderr on /dev/null and every other
# descriptor closed. A daemon that kept one (munged keeps what it inherits) would hold a caller's
# pipe or socket open for as long as it runs, and a caller waiting for this script's output or exit
# (a test) would wait for the daemon instead.
detached() {
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec "$@" </dev/null >/dev/null 2>&1
    )
}

up() {
    install_packages
    write_config
    $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
    $SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [ -f /etc/munge/munge.key ] || $SUDO mungekey --create 2>/dev/null || $SUDO create-munge-key
    running /run/munge/munged.pid || detached $SUDO runuser -u munge -- /usr/sbin/munged
    $SUDO mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
    $SUDO chown slurm:slurm /var/spool/slurmctld /var/log/slurm /run/slurm
    running /run/slurm/slurmctld.pid || detached $SUDO /usr/sbin/slurmctld
    running /run/slurm/slurmd.pid || detached $SUDO /usr/sbin/slurmd
    local host state
    host=$(hostname -s)
    for _ in $(seq 1 60); do
        state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
        case "$state" in
            idle* | mix* | alloc*) echo "slurm is up: $(sinfo -h -o '%P %a %D %t %N')"; return 0 ;;
            down* | drain*) $SUDO scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    echo "slurm did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
    return 1
}

stop() {
    local name=$1 pidfile=$2
    if running "$pidfile"; then
        local pid
        pid=$(cat "$pidfile")
        $SUDO kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        # A daemon started with SIGTERM blocked (a parent's signal mask is inherited) ignores it.
        if kill -0 "$pid" 2>/dev/null; then
            $SUDO kill -KILL "$pid"
            echo "stopped $name (SIGKILL: it did not exit on SIGTERM within 10 s)"
        else
            echo "stopped $name"
        fi
    fi
}

down() {
    stop slurmd /run/slurm/slurmd.pid
    stop slurmctld /run/slurm/slurmctld.pid
    stop munged /run/munge/munged.pid
}

status() {
    if ! command -v sinfo >/dev/null; then echo "slurm is not installed (scripts/slurm-local.sh up)"; return 1; fi
    sinfo
    squeue
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
