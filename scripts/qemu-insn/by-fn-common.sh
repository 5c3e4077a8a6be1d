# Shared by the scripts that attribute aarch64 instructions to functions (sourced, not run):
# builds qvit-run for aarch64 linked at fixed addresses (by_fn.py maps addresses to symbols) and
# the insn_by_fn plugin, and counts one and two inferences of a bundle under qemu-user.
# Expects `root`, `work` (a scratch directory) and `bundle` to be set; sets `bin`.

td=${CARGO_TARGET_DIR_FN:-$root/target-insn-fn}
CARGO_TARGET_DIR=$td RUSTFLAGS="-C relocation-model=static" \
    cargo build -q --release --target aarch64-unknown-linux-gnu -p qvit-device --bin qvit-run
bin=$td/aarch64-unknown-linux-gnu/release/qvit-run
gcc -O2 -Wall -Wextra -shared -fPIC -o "$work/plugin.so" "$root/scripts/qemu-insn/insn_by_fn.c"

# count QEMU_CPU [TAG] -> $work/TAG_{1,2}.txt (plugin counts) and .json (bench reports); TAG
# defaults to QEMU_CPU and must not contain a comma (the plugin's argument separator).
count() {
    local cpu=$1 tag=${2:-$1}
    for it in 1 2; do
        QEMU_CPU=$cpu qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin "$work/plugin.so,out=$work/${tag}_$it.txt" \
            "$bin" bench "$bundle" --threads 1 --json --iters $it --warmup 0 >"$work/${tag}_$it.json"
    done
}
