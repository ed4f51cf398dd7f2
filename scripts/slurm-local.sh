#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing `sweep --emit slurm` for real.
#
#   scripts/slurm-local.sh start [STATE_DIR]   # prints: export SLURM_CONF=STATE_DIR/slurm.conf
#   scripts/slurm-local.sh stop  [STATE_DIR]
#
# Needs Debian's slurmctld, slurmd, slurm-client and munge (apt-get install -y slurmctld
# slurmd slurm-client munge) and root. No cgroups (proctrack/linuxproc, task/none), no
# accounting (poll with squeue). The daemons write their pids into STATE_DIR and `stop`
# ends exactly those (munged only when `start` started it).
set -euo pipefail

cmd=${1:-}
state=${2:-${RESPRUNE_SLURM_DIR:-/tmp/resprune-slurm}}
ctld_port=${RESPRUNE_SLURMCTLD_PORT:-6817}
d_port=${RESPRUNE_SLURMD_PORT:-6818}

die() { echo "slurm-local: $*" >&2; exit 1; }

stop_pid() { # pidfile name
  local f=$1 name=$2 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    echo "slurm-local: stopped $name ($pid)" >&2
  fi
  rm -f "$f"
}

case "$cmd" in
start)
  for b in slurmctld slurmd sbatch squeue sinfo scontrol munged munge; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
      die "$b not found: apt-get install -y slurmctld slurmd slurm-client munge"
  done
  export PATH="$PATH:/usr/sbin"
  [ "$(id -u)" = 0 ] || die "must run as root (slurmd starts jobs as their user)"
  mkdir -p "$state/ctld" "$state/d"
  host=$(hostname -s)
  cpus=$(nproc)

  # munge: the key, its run folder, the daemon as the munge user
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
      mkdir -p /etc/munge
      if command -v mungekey >/dev/null 2>&1; then mungekey -c -f -k /etc/munge/munge.key
      else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$state/munged.pid"
    for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged does not answer"
  fi

  cat >"$state/slurm.conf" <<EOF
ClusterName=resprune
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
  export SLURM_CONF="$state/slurm.conf"
  slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start; see $state/slurmctld.log"
  slurmd -f "$SLURM_CONF" || die "slurmd did not start; see $state/slurmd.log"
  up=
  for _ in $(seq 1 150); do
    if scontrol ping 2>/dev/null | grep -q UP; then up=1; break; fi
    sleep 0.2
  done
  [ -n "$up" ] || die "slurmctld does not answer scontrol ping; see $state/slurmctld.log"
  idle=
  for i in $(seq 1 150); do
    st=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1)
    case "$st" in
      idle*|mixed*) idle=1; break ;;
      down*|drain*|unknown*) [ $((i % 10)) = 0 ] && scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  [ -n "$idle" ] || die "node $host is '${st:-?}', not idle; see $state/slurmd.log and $state/slurmctld.log"
  echo "export SLURM_CONF=$SLURM_CONF"
  ;;
stop)
  stop_pid "$state/slurmd.pid" slurmd
  stop_pid "$state/slurmctld.pid" slurmctld
  stop_pid "$state/munged.pid" munged
  ;;
*)
  die "usage: $0 start|stop [STATE_DIR]"
  ;;
esac
