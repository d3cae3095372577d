#!/usr/bin/env bash
# Runs sweeps one after another in the background (one CPU-heavy job at a time on a small
# machine): each line of QUEUE_FILE is `CONFIG WORKDIR [more rlpt.sweep flags]`, e.g.
# `configs/x.py:arms=b runs/x_b --sft_from=runs/x`; waits for PID (optional) first.
#   nohup scripts/run_queue.sh QUEUE_FILE [PID] > runs/queue.log 2>&1 &
# Each sweep logs to WORKDIR.log; a line is skipped when WORKDIR/sweep.json exists (finished).
set -u
queue=$1
if [ $# -ge 2 ]; then
  while kill -0 "$2" 2>/dev/null; do sleep 10; done
fi
while read -r config workdir extra; do
  [ -z "$config" ] && continue
  if [ -e "$workdir/sweep.json" ]; then echo "skip $workdir (finished)"; continue; fi
  echo "$(date -u +%FT%TZ) start $config -> $workdir"
  # shellcheck disable=SC2086  # extra: flags, split on spaces
  python -m rlpt.sweep --config="$config" --workdir="$workdir" $extra > "$workdir.log" 2>&1
  echo "$(date -u +%FT%TZ) end $workdir rc=$?"
done < "$queue"
