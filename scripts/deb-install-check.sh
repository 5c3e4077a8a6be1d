#!/usr/bin/env bash
# Installs the amd64 qvit-run package with dpkg -i, runs qvit-run from PATH (version, info,
# info --verify on the committed golden bundle) and checks the Mender update module landed,
# then removes the package again unless it was installed before this run.
#
# Usage: scripts/deb-install-check.sh target/debian/qvit-run_<version>_amd64.deb
# dpkg -i needs root: run as root or with password-less sudo. Without either the check is
# skipped, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:?usage: $0 PACKAGE.deb}
[ -f "$deb" ] || { echo "error: $deb does not exist" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
elif [ "${CI:-}" = true ]; then
  echo "error: dpkg -i needs root or password-less sudo, and CI=true" >&2
  exit 1
else
  echo "SKIPPED: dpkg -i $deb needs root or password-less sudo"
  exit 0
fi

was_installed=false
if dpkg-query -W -f='${Status}' qvit-run 2>/dev/null | grep -q 'install ok installed'; then
  was_installed=true
fi
"${SUDO[@]}" dpkg -i "$deb"

# A PATH of system directories only, so nothing from the build tree can stand in.
sys_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
version=$(dpkg-deb -f "$deb" Version)
bundle=$PWD/models/golden/tiny.qvit
fail() { echo "error: $*" >&2; exit 1; }
found=$(env PATH=$sys_path sh -c 'command -v qvit-run') || fail "qvit-run is not in PATH after dpkg -i"
[ "$found" = /usr/bin/qvit-run ] || fail "qvit-run found at $found, not /usr/bin/qvit-run"
got=$(cd / && env PATH=$sys_path qvit-run --version)
[ "$got" = "qvit-run $version" ] || fail "qvit-run --version says '$got', the package is $version"
(cd / && env PATH=$sys_path qvit-run info "$bundle")
(cd / && env PATH=$sys_path qvit-run info --verify "$bundle" | grep -q '^verify: *ok') ||
  fail "qvit-run info --verify did not report ok"
[ -x /usr/share/mender/modules/v3/qvit ] || fail "the Mender update module is not installed"
cmp /usr/share/mender/modules/v3/qvit device/mender/qvit || fail "installed update module differs"
echo "ok: $deb installs qvit-run $version into /usr/bin and the qvit Mender update module"

if [ "$was_installed" = false ]; then
  "${SUDO[@]}" dpkg -r qvit-run
  [ ! -e /usr/bin/qvit-run ] || fail "dpkg -r left /usr/bin/qvit-run"
  [ ! -e /usr/share/mender/modules/v3/qvit ] || fail "dpkg -r left the update module"
  echo "ok: dpkg -r qvit-run removed it again"
else
  echo "note: qvit-run was installed before this check; the tested package stays installed"
fi
