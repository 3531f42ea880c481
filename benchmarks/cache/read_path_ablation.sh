#!/usr/bin/env bash
# Where a cache hit's time goes: builds cache_benchmark's Zipf hit and get + put rows against copies of the
# cache headers with one more part of the read path's policy bookkeeping removed each time
# (read_path_ablation.patch), then runs the variants alternated so the machine's drift falls on all alike.
#
#   0 full             the library as it is
#   1 no_recording     a hit is not recorded at all (hash, read section, probe, expiry check, hit count)
#   2 ring_only        recorded in the stripe's ring, then discarded (no drain, no lock)
#   3 drain_only       rings drained under the shard lock and their nodes looked up, no policy work
#   4 sketch_only      drained and counted in the frequency sketch
#   5 no_simulation    everything but the window simulation (on reads and on writes)
#
# Usage: benchmarks/cache/read_path_ablation.sh [build dir, default build/release] [rounds, default 5]
# The build dir must hold a built cache_benchmark (cmake --build <dir> --target cache_benchmark); its
# libraries and flags are reused, only the benchmark's translation unit is rebuilt per variant. An
# experiment, not part of the library: if the patch no longer applies, update it to the shard's code.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
rounds=${2:-5}
names=(full no_recording ring_only drain_only sketch_only no_simulation)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/include" "$work/include"
patch --quiet -d "$work" -p1 <"$root/benchmarks/cache/read_path_ablation.patch"

commands=$(ninja -C "$build" -t commands benchmarks/cache/cache_benchmark)
compile=$(grep -- '-c .*benchmarks/cache/cache_benchmark.cpp' <<<"$commands" | tail -1)
link=$(grep -- '-o benchmarks/cache/cache_benchmark ' <<<"$commands" | tail -1)
[[ -n $compile && -n $link ]] || { echo "no cache_benchmark commands in $build" >&2; exit 2; }
object=benchmarks/cache/CMakeFiles/cache_benchmark.dir/cache_benchmark.cpp.o
for v in "${!names[@]}"; do
  # The build's own compile and link lines, writing this variant's object and program instead.
  cmd=${compile//-I$root\/include /-I$work/include -DABLATION=$v }
  cmd=${cmd//-o $object/-o $work/v$v.o}
  cmd=${cmd//-MD -MT $object -MF $object.d/}
  (cd "$build" && eval "$cmd")
  ln=${link//: && /}
  ln=${ln// && :/}
  ln=${ln//$object/$work/v$v.o}
  ln=${ln//-o benchmarks\/cache\/cache_benchmark /-o $work/bench$v }
  (cd "$build" && eval "$ln")
done

echo "round, variant, benchmark, threads, ns per operation (wall), operations/s total"
for ((r = 1; r <= rounds; r++)); do
  for v in "${!names[@]}"; do
    "$work/bench$v" --benchmark_filter='BM_L1HitZipf|BM_L1GetOrPut' --benchmark_min_time=0.3 2>/dev/null |
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
