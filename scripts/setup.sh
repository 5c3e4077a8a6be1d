#!/usr/bin/env bash
# Installs what the tests need, idempotently: the aarch64 Rust target, Debian's cross linker and
# libc, qemu-user, the OpenSSH client and server (the qvit deploy tests run a throwaway sshd on
# 127.0.0.1), and numpy for Debian's python3 (the .npy interop test). A missing prerequisite
# fails its tests rather than skipping them. Safe to run again; does nothing that is already done.
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
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
