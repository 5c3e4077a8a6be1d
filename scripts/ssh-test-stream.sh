#!/usr/bin/env bash
# Test stand-in for ssh, used by host/tests/deploy_nosftp.rs: the test links it as `ssh` first in
# PATH. What qvit deploy streams into `cat > FILE` on a box without SFTP is damaged the way a bad
# link would, for bundle uploads (FILE ends in .qvit.part-*); everything else goes to the real ssh.
#   QVIT_TEST_SSH_MODE=truncate  send the first half, then fail like a dropped connection (exit 255)
#   QVIT_TEST_SSH_MODE=short     send the first half and report success (a lying transfer)
#   QVIT_TEST_SSH_MODE=corrupt   flip one byte in the middle and report success
#   QVIT_TEST_REAL_SSH           the real ssh (default /usr/bin/ssh)
set -euo pipefail
real=${QVIT_TEST_REAL_SSH:-/usr/bin/ssh}
mode=${QVIT_TEST_SSH_MODE:-}
script=${!#}
case "$script" in
  "cat > "*.qvit.part-*) ;;
  *) exec "$real" "$@" ;;
esac
[ -n "$mode" ] || exec "$real" "$@"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
size=$(stat -c %s "$tmp")
half=$((size / 2))
case "$mode" in
  truncate | short)
    head -c "$half" "$tmp" | "$real" "$@"
    if [ "$mode" = truncate ]; then
      echo "ssh-test-stream.sh: connection dropped (simulated)" >&2
      exit 255
    fi
    ;;
  corrupt)
    byte=$(od -An -tu1 -j "$half" -N1 "$tmp" | tr -d ' ')
    printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$tmp" bs=1 seek="$half" conv=notrunc status=none
    "$real" "$@" < "$tmp"
    ;;
  *) echo "ssh-test-stream.sh: unknown QVIT_TEST_SSH_MODE=$mode" >&2; exit 2 ;;
esac
