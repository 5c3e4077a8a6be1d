/*
 * Dynamic instruction counter for qemu-user 7.2 (TCG plugin API v1).
 *
 * Debian 12 ships qemu-user 7.2 with plugin support but without qemu-plugin.h, so the few API
 * entry points used here are declared by hand (they match the 7.2 ABI; the API changed in qemu
 * 8/9, so this file is tied to 7.2). Counts are exact and deterministic: every executed guest
 * instruction is counted through an inline add per translation block, and SDOT/SMMLA/SMLAL/
 * SADALP/MUL (vector) through an inline add per matching instruction. qemu's disassembler
 * prints the dot-product/matrix instructions as .byte, so they are classified by encoding.
 *
 * Usage: qemu-aarch64 -plugin ./libinsn.so[,out=FILE] prog args...
 * Prints "insns=N sdot=N smmla=N smlal=N sadalp=N mul=N" to FILE (appended) or stderr at exit.
 * Single-threaded guests only (the inline adds are not atomic across vCPU threads).
 *
 * Build: gcc -O2 -shared -fPIC -o libinsn.so insn.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_info_t; /* opaque here: only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* One counter per class; index 0 is the total. */
enum { TOTAL, SDOT, SMMLA, SMLAL, SADALP, MUL, N_COUNTERS };
static const char *const counter_names[N_COUNTERS] = {"insns", "sdot",   "smmla",
                                                      "smlal", "sadalp", "mul"};
static uint64_t counters[N_COUNTERS];
static char out_path[512];

/* Which class an A64 instruction word belongs to, or TOTAL for "none of the tracked ones". */
static int classify(uint32_t insn)
{
    if ((insn & 0xBFE0FC00u) == 0x0E809400u) /* SDOT Vd.{2S,4S}, Vn.{8B,16B}, Vm.{8B,16B} */
        return SDOT;
    if ((insn & 0xBF00F400u) == 0x0F00E000u && (insn & 0x00C00000u) == 0x00800000u)
        return SDOT; /* SDOT by element: Vd.{2S,4S}, Vn, Vm.4B[idx] (size=10, U=0) */
    if ((insn & 0xFFE0FC00u) == 0x4E80A400u) /* SMMLA Vd.4S, Vn.16B, Vm.16B */
        return SMMLA;
    if ((insn & 0xBF20FC00u) == 0x0E208000u) /* SMLAL/SMLAL2 (vector), any size */
        return SMLAL;
    if ((insn & 0xBF3FFC00u) == 0x0E206800u) /* SADALP, any size */
        return SADALP;
    if ((insn & 0xBF20FC00u) == 0x0E209C00u) /* MUL (vector), any size */
        return MUL;
    return TOTAL;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &counters[TOTAL], n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word;
        int cls;
        if (qemu_plugin_insn_size(insn) != sizeof word)
            continue;
        memcpy(&word, qemu_plugin_insn_data(insn), sizeof word); /* A64 is little-endian here */
        cls = classify(word);
        if (cls != TOTAL)
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &counters[cls], 1);
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    FILE *f = out_path[0] ? fopen(out_path, "a") : NULL;
    FILE *dst = f ? f : stderr;
    (void)id;
    (void)userdata;
    for (int c = 0; c < N_COUNTERS; c++)
        fprintf(dst, "%s%s=%llu", c ? " " : "", counter_names[c], (unsigned long long)counters[c]);
    fputc('\n', dst);
    if (f)
        fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else {
            fprintf(stderr, "insn plugin: unknown argument '%s' (expected out=FILE)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
