#!/usr/bin/env bash
# Pause figures of `churn` for two builds, run alternately N times so that
# machine noise hits both alike. For each run it prints: the build, M ops/s,
# the mutator-observed pin/repin maximum (us), the upper bound of the
# highest non-empty `MemStats::blocked_hist` bucket (the longest interval a
# thread was blocked by the collector is below it, us), the same for
# `assist_hist` (mark assists) and the assists' total (ms), the longest stop
# (us), and the peaks of mapped heap and of what the memory limit covers
# (MiB).
#
#   scripts/churn-pauses.sh 8 /tmp/tricolor-old target/release/tricolor
#
# Extra environment (e.g. TRICOLOR_MEMLIMIT) applies to both builds.
set -euo pipefail
n=$1 a=$2 b=$3
for _ in $(seq "$n"); do
  for bin in "$a" "$b"; do
    "$bin" run churn --live 1000000 --ops 10000000 --threads 2 --json 2>/dev/null | tail -1 |
      python3 -c '
import json, sys
d = json.load(sys.stdin)
m = d["mem_stats"]
def top(h):
    return (2 << max([i for i, c in enumerate(h) if c] or [0])) // 1000
print(sys.argv[1], round(d["ops_per_s"] / 1e6, 2),
      "pin_max_us", d["mutator_pauses"]["max_ns"] // 1000,
      "blocked_max_below_us", top(m["blocked_hist"]),
      "assist_max_below_us", top(m["assist_hist"]),
      "assist_total_ms", m["assist_total_ns"] // 1000000,
      "stop_max_us", d["pauses"]["max_ns"] // 1000,
      "mapped_mib", d["peak_mapped_bytes"] >> 20,
      "limited_mib", d.get("peak_limited_bytes", d["peak_mapped_bytes"]) >> 20)
' "$bin"
  done
done
