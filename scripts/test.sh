#!/usr/bin/env bash
# The whole test suite: native (x86_64) tests of every crate, then the kernels and the device
# runtime cross-compiled for aarch64 and run under qemu-user twice, as a Cortex-A53 (Pi 3: NEON
# only; SDOT/I8MM tiers report skipped) and as `max` (dotprod + i8mm; SVE off so nothing picks
# SVE code), then qvit-run for aarch64 against the x86 build on the same bundle, then the
# Debian packages (cargo deb, amd64 and arm64) checked with dpkg-deb and the amd64 one
# installed with dpkg -i (as root; scripts/deb-install-check.sh).
#
# Prerequisites (scripts/setup.sh installs them): rustup target aarch64-unknown-linux-gnu,
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user, openssh-server, dropbear-bin,
# cargo-fuzz, cargo-deb, mender-client, mender-artifact, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
AARCH64=aarch64-unknown-linux-gnu

step() { printf '\n=== %s\n' "$*"; }

step "native tests (x86_64)"
cargo test --workspace

step "API docs (the workspace's rustdoc lints are errors)"
cargo doc --workspace --no-deps

step "fuzz smoke: each cargo-fuzz target for 30 s (scripts/fuzz-campaign.sh --smoke 30)"
# cargo-fuzz comes from crates.io through scripts/setup.sh, and runs on the stable toolchain when
# there is no nightly, so under CI=true nothing excuses skipping it.
if command -v cargo-fuzz >/dev/null; then
  FUZZ_NICE=0 scripts/fuzz-campaign.sh --smoke "${QVIT_FUZZ_SMOKE_SECONDS:-30}"
elif [ "${CI:-}" = true ]; then
  echo "cargo-fuzz is missing (scripts/setup.sh installs it)" >&2
  exit 1
else
  echo "SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz --locked, or scripts/setup.sh)"
fi

step "aarch64 build of the device runtime (plain cargo, no target-cpu flags)"
cargo build --target "$AARCH64" -p qvit-device --bin qvit-run

for cpu in cortex-a53 max,sve=off; do
  step "aarch64 tests under qemu, QEMU_CPU=$cpu"
  # --nocapture shows which kernels report SKIPPED for lack of a CPU feature on this model.
  # QVIT_TEST_RUNNER: tests that re-run their own binary (forced tiers) go through qemu too.
  QEMU_CPU=$cpu QVIT_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    cargo test --target "$AARCH64" -p qvit-kernels -- --nocapture
  # Tests that spawn qvit-run go through qemu too (QVIT_TEST_RUNNER).
  QEMU_CPU=$cpu QVIT_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    cargo test --target "$AARCH64" -p qvit-device
done

step "qvit-run aarch64 (qemu) vs x86_64 on the same bundle"
QVIT_AARCH64_RUN="$PWD/target/$AARCH64/debug/qvit-run" \
  cargo test -p qvit-host --test cross_isa -- --ignored --nocapture

step "Debian packages of qvit-run (cargo deb, amd64 and arm64), read with dpkg-deb"
# cargo deb prints the path of the package it wrote as its last line.
amd64_deb=$(cargo deb -p qvit-device | tail -n 1)
arm64_deb=$(cargo deb -p qvit-device --target "$AARCH64" | tail -n 1)
QVIT_DEB_AMD64="$amd64_deb" QVIT_DEB_ARM64="$arm64_deb" \
  cargo test -p qvit-host --test deb_package -- --ignored --nocapture

step "the amd64 package installed with dpkg -i, qvit-run run from PATH"
scripts/deb-install-check.sh "$amd64_deb"
