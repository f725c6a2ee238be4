#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the lab's Slurm check (and for trying
# `lab sweep --slurm` by hand): munged, slurmctld and slurmd as root on localhost, with a
# private config, state and log directory, so nothing under /etc/slurm is touched.
#
#   source scripts/slurm-cluster.sh; cluster_up DIR   # exports SLURM_CONF; daemons started
#   cluster_down DIR                                 # stops the daemons this started
#
# Installs Debian's slurm-wlm and munge first if they are missing (needs root).
set -euo pipefail

cluster_install() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    echo "slurm-cluster: installing slurm-wlm and munge" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

cluster_up() {
    local dir=$1
    cluster_install
    mkdir -p "$dir"/{state,spool,log,munge}
    dir=$(cd "$dir" && pwd)
    # munge: its own key and socket under DIR, so a machine's running munged is left alone.
    if [ ! -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge:munge "$dir/munge" 2>/dev/null || true
    chmod 700 "$dir/munge"
    chmod 400 "$dir/munge/munge.key"
    local socket="$dir/munge/munge.socket"
    munged --force --key-file="$dir/munge/munge.key" --socket="$socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    # The node as slurmd sees it (CPUs, sockets, memory), renamed to localhost.
    local node
    node=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/')
    cat >"$dir/slurm.conf" <<CONF
ClusterName=labcheck
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=30
MinJobAge=600
$node State=UNKNOWN
PartitionName=lab Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF" -N localhost
    local i
    for i in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm-cluster: up ($SLURM_CONF)" >&2
            return 0
        fi
        sleep 0.5
    done
    echo "slurm-cluster: the node did not come up; logs in $dir/log" >&2
    sinfo >&2 || true
    return 1
}

cluster_down() {
    local dir=$1 f
    for f in slurmd.pid slurmctld.pid munge/munged.pid; do
        if [ -s "$dir/$f" ]; then
            kill "$(cat "$dir/$f")" 2>/dev/null || true
        fi
    done
}
