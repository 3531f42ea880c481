#!/usr/bin/env bash
# Where a cache hit's time goes: builds cache_benchmark's Zipf hit and get + put rows against copies of the
# cache headers with parts of the read path's policy bookkeeping removed (read_path_ablation.patch), then
# runs the variants alternated so the machine's drift falls on all alike.
#
#   0 full             the library as it is
#   1 no_recording     a hit is not recorded at all (hash, read section, probe, expiry check, hit count)
#   2 ring_only        recorded in the stripe's ring, then discarded (no drain, no lock)
#   3 drain_only       rings drained under the shard lock and their nodes looked up, no policy work
#   4 sketch_only      drained and counted in the frequency sketch
#   5 no_simulation    everything but the window simulation (on reads and on writes)
#   6 one_in_four      everything, for every fourth hit of a reader stripe only (a lossy read buffer)
#
# With a traces directory (e.g. ../shared/traces), cache_trace_replay is rebuilt for "full" and
# "one_in_four" too and replays OLTP and P3 at 10,000 and 50,000 entries: what recording a quarter of the
# hits costs in hit ratio (one thread, so every hit is subject to the sampling: its worst case).
#
# Usage: benchmarks/cache/read_path_ablation.sh [build dir, default build/release] [rounds, default 5]
#          [traces directory]
# The build dir must hold a built cache_benchmark (cmake --build <dir> --target cache_benchmark
# cache_trace_replay); its libraries and flags are reused, only the benchmark's translation unit is rebuilt per variant. An
# experiment, not part of the library: if the patch no longer applies, update it to the shard's code.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
rounds=${2:-5}
traces=${3:-}
names=(full no_recording ring_only drain_only sketch_only no_simulation one_in_four)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/include" "$work/include"
patch --quiet -d "$work" -p1 <"$root/benchmarks/cache/read_path_ablation.patch"

# build_variant <program> <variant>: the build's own compile and link lines for benchmarks/cache/<program>,
# against the patched headers, writing $work/<program><variant> instead of the build's files.
build_variant() {
  local program=$1 v=$2 commands compile link object cmd ln
  commands=$(ninja -C "$build" -t commands "benchmarks/cache/$program")
  compile=$(grep -- "-c .*benchmarks/cache/$program.cpp" <<<"$commands" | tail -1)
  link=$(grep -- "-o benchmarks/cache/$program " <<<"$commands" | tail -1)
  [[ -n $compile && -n $link ]] || { echo "no $program commands in $build" >&2; exit 2; }
  object=benchmarks/cache/CMakeFiles/$program.dir/$program.cpp.o
  cmd=${compile//-I$root\/include /-I$work/include -DABLATION=$v }
  cmd=${cmd//-o $object/-o $work/$program$v.o}
  cmd=${cmd//-MD -MT $object -MF $object.d/}
  (cd "$build" && eval "$cmd")
  ln=${link//: && /}
  ln=${ln// && :/}
  ln=${ln//$object/$work/$program$v.o}
  ln=${ln//-o benchmarks\/cache\/$program /-o $work/$program$v }
  (cd "$build" && eval "$ln")
}
for v in "${!names[@]}"; do build_variant cache_benchmark "$v"; done

echo "round, variant, benchmark, threads, ns per operation (wall), operations/s total"
: >"$work/results"
for ((r = 1; r <= rounds; r++)); do
  for v in "${!names[@]}"; do
    "$work/cache_benchmark$v" --benchmark_filter='BM_L1HitZipf|BM_L1GetOrPut' --benchmark_min_time=0.3 2>/dev/null |
      awk -v name="${names[$v]}" -v round="$r" '/^BM_L1/ {
        split($1, parts, "/"); sub("threads:", "", parts[3]); sub("items_per_second=", "", $NF)
        print round ", " name ", " parts[1] ", " parts[3] ", " $2 ", " $NF }' | tee -a "$work/results"
  done
done

echo
echo "medians over $rounds rounds: variant, benchmark, threads, ns per operation, operations/s total"
# Grouped by variant, benchmark and threads, fastest first; the middle row of each group is its median.
sort -t, -k2,2 -k3,3 -k4,4n -k5,5g "$work/results" | awk -F', ' '
  function flush() { if (n > 0) print rows[int((n + 1) / 2)]; n = 0 }
  { key = $2 FS $3 FS $4; if (key != last) flush(); last = key; rows[++n] = $2 ", " $3 ", " $4 ", " $5 ", " $6 }
  END { flush() }'

[[ -n $traces ]] || exit 0
echo
echo "hit ratio (cache_trace_replay, one thread): variant, then its JSON lines without the fixed shares"
for v in 0 6; do
  build_variant cache_trace_replay "$v"
  for trace in OLTP P3; do
    "$work/cache_trace_replay$v" --trace "$traces/$trace.lis.zst" --capacity 10000 --capacity 50000 --policy all |
      sed -e 's/"fixed":{[^}]*},//' -e "s/^/${names[$v]} $trace /"
  done
done
