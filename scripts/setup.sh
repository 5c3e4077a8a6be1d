#!/usr/bin/env bash
# Installs what the tests need, idempotently: the aarch64 Rust target, Debian's cross linker and
# libc, qemu-user, the OpenSSH client and server and dropbear (the qvit deploy tests run
# throwaway SSH servers on 127.0.0.1), numpy for Debian's python3 (the .npy interop test),
# cargo-fuzz (scripts/test.sh runs each fuzz target briefly), cargo-deb (the .deb of qvit-run),
# and the Mender client, artifact tool and openssl (qvit package and the update module are
# tested against the real Mender tools). A missing prerequisite fails its tests rather than
# skipping them. Safe to run again; does nothing that is already done.
set -euo pipefail
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
# qvit deploy's tests run a throwaway sshd on 127.0.0.1 and reach it with ssh/scp.
command -v ssh >/dev/null && command -v scp >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
# The .npy test writes and reads files with numpy. Debian's package goes to /usr/bin/python3,
# which the test tries when the first python3 on PATH (e.g. a pyenv CPython) lacks numpy.
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
# A server without SFTP, as on Buildroot/OpenWrt/Yocto boards (host/tests/deploy_nosftp.rs); the
# test runs it in a private mount namespace with util-linux's unshare.
[ -x /usr/sbin/dropbear ] || need+=(dropbear-bin)
command -v unshare >/dev/null || need+=(util-linux)
# qvit package writes artifacts with mender-artifact; the tests install them with the real
# client in standalone mode and sign them with keys made by openssl.
command -v mender-artifact >/dev/null || need+=(mender-artifact)
command -v mender >/dev/null || need+=(mender-client)
command -v openssl >/dev/null || need+=(openssl)
# cargo deb reads dependencies with dpkg-shlibdeps.
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
# cargo-fuzz from crates.io (it drives libFuzzer; scripts/fuzz-campaign.sh runs it on stable with
# RUSTC_BOOTSTRAP=1 when no nightly toolchain is installed).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The tests run the Mender client standalone in a sandbox; a daemon started by the package on
# a systemd machine would only poll for a server that does not exist.
if [ -d /run/systemd/system ] && systemctl is-enabled mender-client >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO systemctl disable --now mender-client >/dev/null 2>&1 || true
fi
# cargo-deb, pinned so package layout and control fields do not drift between machines.
CARGO_DEB_VERSION=3.8.0
cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION" ||
  cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
