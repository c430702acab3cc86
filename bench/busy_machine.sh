#!/usr/bin/env bash
# 2-thread against 1-thread latency of a model, quiet and with one CPU-bound competitor (issue 17's
# busy-machine check; bench/RESULTS.md, "Busy machine"). Three alternating rounds per batch size;
# prints one line per round: condition, batch, t1 and t2 median ms (adalog bench --json), load.
#   bash bench/busy_machine.sh ADALOG MODEL [quiet|competitor ...]
set -u
ADALOG=${1:?usage: busy_machine.sh ADALOG MODEL [quiet|competitor ...]}
MODEL=${2:?usage: busy_machine.sh ADALOG MODEL [quiet|competitor ...]}
shift 2
CONDS=${*:-quiet competitor}
PY=/usr/bin/python3
med() {
  "$ADALOG" bench "$MODEL" --batch "$1" --threads "$2" --runs "$3" --warmup 2 --json |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["median_ms"])'
}
for cond in $CONDS; do
  CP=
  if [ "$cond" = competitor ]; then
    "$PY" -c 'while True: pass' &
    CP=$!
    trap 'kill $CP 2>/dev/null' EXIT
    sleep 1
  fi
  for bs in 1 8; do
    runs=20
    [ "$bs" = 8 ] && runs=6
    for rep in 1 2 3; do
      echo "$cond b$bs round$rep t1 $(med "$bs" 1 "$runs") t2 $(med "$bs" 2 "$runs") load $(cut -d' ' -f1 /proc/loadavg)"
    done
  done
  [ -n "$CP" ] && kill "$CP"
done
