#!/usr/bin/env bash
# A/B timing of two commands that print their own time in ms as the first
# word of stdout (the tricolor-bench alloc-* binaries do). Runs them
# alternately N times, so that machine noise hits both alike, and prints
# the min and median of each and the ratios B/A.
#
#   scripts/ab.sh 21 target/release/alloc-system 20000 -- target/release/alloc-tracking 20000
#
# A command may start with `env VAR=value`. With AB_WALL=1 the script
# times each command itself (wall ms) instead of reading its output:
#
#   AB_WALL=1 scripts/ab.sh 7 env TRICOLOR_MEMPROFILERATE=0 target/release/tricolor run binary-trees --depth 20 \
#       -- target/release/tricolor run binary-trees --depth 20
set -euo pipefail
n=$1
shift
a=() b=() cur=a
for x in "$@"; do
  if [ "$x" = "--" ]; then cur=b; continue; fi
  if [ $cur = a ]; then a+=("$x"); else b+=("$x"); fi
done
if [ ${#a[@]} -eq 0 ] || [ ${#b[@]} -eq 0 ]; then
  echo "usage: $0 N CMD_A... -- CMD_B..." >&2
  exit 2
fi
one() {
  if [ "${AB_WALL:-0}" = 1 ]; then
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s%N)
    echo $(((e - s) / 1000000))
  else
    "$@" 2>/dev/null | head -1 | cut -d' ' -f1
  fi
}
ra=() rb=()
for _ in $(seq "$n"); do
  ra+=("$(one "${a[@]}")")
  rb+=("$(one "${b[@]}")")
done
python3 - "${ra[*]}" "${rb[*]}" <<'PY'
import statistics as s, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
print("A min %.1f med %.1f | B min %.1f med %.1f | B/A min %.3f med %.3f"
      % (min(a), s.median(a), min(b), s.median(b), min(b) / min(a), s.median(b) / s.median(a)))
PY
