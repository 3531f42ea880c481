#!/usr/bin/env bash
# The agent's overhead on a real program: Debian's redis-server under riptide-run (defaults: heap profiler
# at 512 KiB, leak observations every 30 s, endpoints served) against the same redis-server alone, in
# alternating pairs (A then B, then B then A, ...), each run a fresh server on a loopback port.
# Prints each pair's requests/s for SET and GET and the median ratio (agent / alone) per test.
#
#   benchmarks/agent/redis_overhead.sh [BUILD_DIR] [PAIRS] [REQUESTS]
#   benchmarks/agent/redis_overhead.sh build/release 7 300000
set -euo pipefail
build=${1:-build/release}
pairs=${2:-7}
requests=${3:-300000}
riptide_run="$build/bin/riptide-run"
[ -x "$riptide_run" ] || { echo "redis_overhead: $riptide_run not found; build the riptide_run target" >&2; exit 2; }
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "redis_overhead: redis-server and redis-benchmark are needed (scripts/install-deps)" >&2; exit 2; }

port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# One run: starts redis (alone or under riptide-run), benchmarks it, stops it; prints "SET_RPS GET_RPS".
run_once() {
  local mode=$1
  local -a server=(redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work")
  if [ "$mode" = agent ]; then server=("$riptide_run" --port 0 -- "${server[@]}"); fi
  "${server[@]}" >"$work/$mode.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local csv
  csv=$(redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$requests" -r 100000 -d 128 --csv 2>/dev/null)
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  echo "$csv" | awk -F'","' '/^"SET"/ {set=$2} /^"GET"/ {get=$2} END {print set, get}'
}

echo "pair  alone_set  agent_set  ratio_set  alone_get  agent_get  ratio_get"
ratios_set=()
ratios_get=()
for pair in $(seq "$pairs"); do
  if [ $((pair % 2)) -eq 1 ]; then
    read -r a_set a_get < <(run_once alone)
    read -r b_set b_get < <(run_once agent)
  else
    read -r b_set b_get < <(run_once agent)
    read -r a_set a_get < <(run_once alone)
  fi
  r_set=$(awk -v a="$a_set" -v b="$b_set" 'BEGIN {printf "%.4f", b / a}')
  r_get=$(awk -v a="$a_get" -v b="$b_get" 'BEGIN {printf "%.4f", b / a}')
  ratios_set+=("$r_set")
  ratios_get+=("$r_get")
  printf "%4d  %9.0f  %9.0f  %9s  %9.0f  %9.0f  %9s\n" "$pair" "$a_set" "$b_set" "$r_set" "$a_get" "$b_get" "$r_get"
done
median() { printf "%s\n" "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
all=("${ratios_set[@]}" "${ratios_get[@]}")
echo "median ratio agent/alone: SET $(median "${ratios_set[@]}")  GET $(median "${ratios_get[@]}")  both $(median "${all[@]}")"
echo "range: SET $(printf "%s\n" "${ratios_set[@]}" | sort -g | sed -n '1p;$p' | paste -sd-)  GET $(printf "%s\n" "${ratios_get[@]}" | sort -g | sed -n '1p;$p' | paste -sd-)"
