#!/usr/bin/env bash
# A real one-node Slurm on this machine, for the Slurm executor's tests (and .ci/run).
#
#   scripts/ci/start_slurm.sh DIR     # as root; prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/ci/stop_slurm.sh DIR      # stops what this started, by the PIDs in DIR
#
# Installs Debian's slurm-wlm and munge with apt when they are missing, then writes into DIR
# (created if needed; everything the cluster owns lives there, nothing in /etc):
#   munge/munge.key, munge/munged.pid ...  a munged of its own (own key, socket and PID file)
#   slurm.conf, cgroup.conf                one node "localhost" (all cores, MEMORY_MIB of memory),
#                                          one partition "debug", memory enforced by cgroup v1
#                                          (a job over --mem ends OUT_OF_MEMORY), no accounting
#                                          database (sacct is off: states come from squeue)
#   slurmctld.pid, slurmd.pid, *.log       the two daemons, on two free loopback ports
#   env                                    `export SLURM_CONF=...` for the commands (sbatch, ...)
# and waits until the node is idle. Exits non-zero saying why when Slurm cannot run here.
#
# Env: SLURM_NODE_MEMORY_MIB (default 6144: what jobs may ask for in all),
#      SLURM_MIN_JOB_AGE (default 3600: seconds a finished job stays visible to squeue).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "start_slurm.sh: needs root (munged, slurmd and cgroups)" >&2
    exit 1
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    echo "start_slurm.sh: installing slurm-wlm and munge with apt" >&2
    "$(dirname "$0")/apt_install.sh" slurm-wlm munge >/dev/null
fi
if ! id munge >/dev/null 2>&1; then
    echo "start_slurm.sh: no user munge (the munge package creates it)" >&2
    exit 1
fi
if [[ ! -d /sys/fs/cgroup/memory ]]; then
    echo "start_slurm.sh: no cgroup v1 memory controller at /sys/fs/cgroup/memory: memory cannot be enforced here" >&2
    exit 1
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- munge: its own key, socket and PID file under DIR ----------------------------------------
mkdir -p "$dir/munge"
chown munge:munge "$dir/munge"
chmod 711 "$dir/munge"  # munged wants its socket's folder searchable by all
if [[ ! -f $dir/munge/munge.key ]]; then
    head -c 1024 /dev/urandom > "$dir/munge/munge.key"
fi
chown munge:munge "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
socket=$dir/munge/munge.socket
runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed"
for _ in $(seq 1 50); do [[ -S $socket ]] && break; sleep 0.1; done
if [[ ! -S $socket ]]; then
    echo "start_slurm.sh: munged did not start (see $dir/munge/munged.log)" >&2
    exit 1
fi

# --- slurm.conf and cgroup.conf ---------------------------------------------------------------
mkdir -p "$dir/state" "$dir/spool"
cpus=$(nproc)
memory=${SLURM_NODE_MEMORY_MIB:-6144}
cat > "$dir/slurm.conf" <<EOF
# A one-node cluster for starfish-batch's tests, written by scripts/ci/start_slurm.sh.
ClusterName=starfishci
SlurmctldHost=localhost
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
# Memory is enforced: a job over --mem is killed by the cgroup and ends OUT_OF_MEMORY.
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
ReturnToService=2
# No accounting database (as on many small clusters): finished jobs stay in squeue this long.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=${SLURM_MIN_JOB_AGE:-3600}
KillWait=5
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
cat > "$dir/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
IgnoreSystemd=yes
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF
export SLURM_CONF=$dir/slurm.conf
echo "export SLURM_CONF=$dir/slurm.conf" > "$dir/env"

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 1 100); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
    [[ $state == idle ]] && break
    sleep 0.2
done
if [[ $state != idle ]]; then
    echo "start_slurm.sh: the node is '${state:-not known}', not idle (see $dir/slurmctld.log, $dir/slurmd.log)" >&2
    exit 1
fi
echo "export SLURM_CONF=$dir/slurm.conf"
