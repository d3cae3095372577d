#!/usr/bin/env bash
# Runs sweeps one after another in the background (one CPU-heavy job at a time on a small
# machine): each line of QUEUE_FILE is `CONFIG WORKDIR`; waits for PID (optional) first.
#   nohup scripts/run_queue.sh QUEUE_FILE [PID] > runs/queue.log 2>&1 &
# Each sweep logs to WORKDIR.log; a line is skipped when WORKDIR/sweep.json exists (finished).
set -u
queue=$1
if [ $# -ge 2 ]; then
  while kill -0 "$2" 2>/dev/null; do sleep 10; done
fi
while read -r config workdir; do
  [ -z "$config" ] && continue
  if [ -e "$workdir/sweep.json" ]; then echo "skip $workdir (finished)"; continue; fi
  echo "$(date -u +%FT%TZ) start $config -> $workdir"
  python -m rlpt.sweep --config="$config" --workdir="$workdir" > "$workdir.log" 2>&1
  echo "$(date -u +%FT%TZ) end $workdir rc=$?"
done < "$queue"
