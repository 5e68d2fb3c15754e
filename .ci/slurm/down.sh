#!/usr/bin/env bash
# Stop what .ci/slurm/up.sh STATE_DIR started, by pid file: slurmd, slurmctld, and munged
# if up.sh started it.
set -uo pipefail
S="$1"
for d in slurmd slurmctld; do
  pid="$(cat "$S/$d.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || continue
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$S/$d.pid"
done
if [ -f "$S/munged.ours" ]; then
  pid="$(cat /run/munge/munged.pid 2>/dev/null || true)"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -f "$S/munged.ours"
fi
exit 0
