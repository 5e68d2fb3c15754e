#!/usr/bin/env bash
# Start a single-node Slurm (munged + slurmctld + slurmd on this host) for the job-array test.
#   .ci/slurm/up.sh STATE_DIR     writes STATE_DIR/slurm.conf; export SLURM_CONF=STATE_DIR/slurm.conf
# Needs root and Debian's slurm-wlm + munge. Fails loudly (exit 1, daemon logs on stderr) when
# Slurm does not come up: the test that uses it must never skip silently.
set -euo pipefail
S="$(mkdir -p "$1" && cd "$1" && pwd)"
host="$(hostname -s)"
cpus="$(nproc)"
mem="$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)" # MiB; half, never more than the node has
mkdir -p "$S/state" "$S/spool"

fail() {
  echo "slurm-up: $*" >&2
  for f in "$S"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}

# munge: Slurm's authentication. One key per host is enough for a single node.
munge_pid="$(cat /run/munge/munged.pid 2>/dev/null || true)"
if [ -z "$munge_pid" ] || ! kill -0 "$munge_pid" 2>/dev/null; then
  [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key
  chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
  touch "$S/munged.ours" # down.sh stops only a munged this script started
fi
munge -n | unmunge >/dev/null || fail "munge does not round-trip a credential"

# proctrack/cgroup: scancel must reach every process of a task (npm renames its process,
# which proctrack/linuxproc fails to parse); task/cgroup confines a task to its CPUs.
# cred_expire=10 and sched_interval=5 cut the wait before a requeued task runs again from
# ~128 s to ~13 s.
cat > "$S/slurm.conf" <<CONF
ClusterName=styledvq
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
KillWait=5
JobRequeue=0
MailProg=/bin/true
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$S/cgroup.conf" <<CONF
CgroupPlugin=autodetect
ConstrainCores=yes
CONF
export SLURM_CONF="$S/slurm.conf"

# A pid file left by a daemon that died makes the next start fail: remove stale ones.
for d in slurmctld slurmd; do
  pid="$(cat "$S/$d.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then fail "$d already runs (pid $pid); stop it with .ci/slurm/down.sh $S"; fi
  rm -f "$S/$d.pid"
done
rm -f /run/slurmctld.pid /run/slurmd.pid

/usr/sbin/slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start"
/usr/sbin/slurmd -f "$SLURM_CONF" || fail "slurmd did not start"

for _ in $(seq 1 60); do
  state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
  case "$state" in idle*|mix*|alloc*) echo "slurm-up: node $host $state ($cpus CPUs), SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 0.5
done
fail "node $host is not idle after 30 s (state: ${state:-none})"
