/*
 * Dynamic instruction counts per guest code address for qemu-user 7.2 (TCG plugin API v1),
 * to attribute an aarch64 program's instructions to its functions (see by_fn.py).
 *
 * Every translation block gets an inline add of its instruction count into a counter keyed by
 * the block's start address (blocks translated again share the counter). At exit the plugin
 * writes one "address count" line per executed block to FILE. Exact and deterministic, like
 * insn.c; single-threaded guests only. The API entry points are declared by hand as in insn.c
 * (Debian 12's qemu-user 7.2 ships without qemu-plugin.h).
 *
 * Usage: qemu-aarch64 -plugin ./libinsn_by_fn.so,out=FILE prog args...
 * Build: gcc -O2 -shared -fPIC -o libinsn_by_fn.so insn_by_fn.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_info_t;
struct qemu_plugin_tb;

enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* Open-addressing table of block start addresses; never moves, so inline adds can target it. */
#define SLOTS (1u << 20)
static struct slot {
    uint64_t vaddr;
    uint64_t count;
    int used;
} table[SLOTS];
static char out_path[512];

static struct slot *slot_for(uint64_t vaddr)
{
    uint64_t h = (vaddr * 0x9E3779B97F4A7C15ull) >> 44;
    for (uint32_t i = 0; i < SLOTS; i++) {
        struct slot *s = &table[(h + i) & (SLOTS - 1)];
        if (!s->used) {
            s->used = 1;
            s->vaddr = vaddr;
            return s;
        }
        if (s->vaddr == vaddr)
            return s;
    }
    return NULL;
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    struct slot *s = slot_for(qemu_plugin_tb_vaddr(tb));
    if (s)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &s->count,
                                                 qemu_plugin_tb_n_insns(tb));
}

static void on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *dst = out_path[0] ? fopen(out_path, "w") : stderr;
    if (!dst)
        return;
    for (uint32_t i = 0; i < SLOTS; i++)
        if (table[i].used && table[i].count)
            fprintf(dst, "%llx %llu\n", (unsigned long long)table[i].vaddr,
                    (unsigned long long)table[i].count);
    if (dst != stderr)
        fclose(dst);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            strncpy(out_path, argv[i] + 4, sizeof out_path - 1);
        } else {
            fprintf(stderr, "insn_by_fn plugin: unknown argument '%s' (expected out=FILE)\n",
                    argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
