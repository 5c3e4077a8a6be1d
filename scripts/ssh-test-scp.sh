#!/usr/bin/env bash
# Test stand-in for scp, used by host/tests/deploy_ssh.rs: the test links it as `scp` first in
# PATH. Uploads of .qvit files are damaged the way a bad link would; everything else (and every
# upload without a mode) goes to the real scp untouched.
#   QVIT_TEST_SCP_MODE=truncate  send the first half, then fail like a dropped connection (exit 1)
#   QVIT_TEST_SCP_MODE=short     send the first half and report success (a lying transfer)
#   QVIT_TEST_SCP_MODE=corrupt   flip one byte in the middle and report success
#   QVIT_TEST_REAL_SCP           the real scp (default /usr/bin/scp)
set -euo pipefail
real=${QVIT_TEST_REAL_SCP:-/usr/bin/scp}
args=("$@")
n=${#args[@]}
src=${args[n-2]}
mode=${QVIT_TEST_SCP_MODE:-}
case "$src" in
  *.qvit) ;;
  *) exec "$real" "$@" ;;
esac
[ -n "$mode" ] || exec "$real" "$@"
tmp=$(mktemp --suffix=.qvit)
trap 'rm -f "$tmp"' EXIT
size=$(stat -c %s "$src")
half=$((size / 2))
case "$mode" in
  truncate | short) head -c "$half" "$src" > "$tmp" ;;
  corrupt)
    cp "$src" "$tmp"
    byte=$(od -An -tu1 -j "$half" -N1 "$src" | tr -d ' ')
    printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$tmp" bs=1 seek="$half" conv=notrunc status=none
    ;;
  *) echo "ssh-test-scp.sh: unknown QVIT_TEST_SCP_MODE=$mode" >&2; exit 2 ;;
esac
args[n-2]=$tmp
"$real" "${args[@]}"
if [ "$mode" = truncate ]; then
  echo "ssh-test-scp.sh: connection dropped (simulated)" >&2
  exit 1
fi
