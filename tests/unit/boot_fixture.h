/*
 * A guest for the x86 boot tests (no Test() here): RAM the boot structures and
 * kernels are written into, the kernel_image and error a loader fills in, and
 * the image buffers a test builds. One per test process (Criterion runs every
 * test in its own process), kept in `bfx`. Every RAM byte starts as a fill
 * value, so what the code under test leaves alone stays visible.
 */
#ifndef EMBER_TEST_BOOT_FIXTURE_H
#define EMBER_TEST_BOOT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/guest_mem.h"
#include "x86/loader.h"

#define BFX_MAX_ALLOCS 32
#define BFX_BOOT_RAM (1ULL << 20)   /* bfx_boot_setup */
#define BFX_LOADER_RAM (4ULL << 20) /* bfx_loader_setup */

struct bfx {
    uint8_t *ram;
    struct guest_mem gm;
    struct kernel_image k; /* poisoned with 0x5a, so fields a loader forgets show */
    struct errmsg err;
    void *allocs[BFX_MAX_ALLOCS]; /* freed in bfx_fini, so a failed assertion leaks nothing */
    int nr_allocs;
};
extern struct bfx bfx;

/* `bytes` of RAM, every byte `fill`; k poisoned, err empty. */
void bfx_init(uint64_t bytes, uint8_t fill);
/* Frees the RAM and every tracked buffer (a suite's .fini). */
void bfx_fini(void);
/* Suite .init for the boot-table tests: 1 MiB of 0xee. */
void bfx_boot_setup(void);
/* Suite .init for the loader tests: 4 MiB of 0xcc (so zeroed .bss is visible). */
void bfx_loader_setup(void);
/* Asserts p is not NULL and frees it in bfx_fini; returns p. */
void *bfx_track(void *p);

/*
 * An x86-64 ELF executable (calloc'd, the caller frees it; *size its length):
 * one PT_LOAD of `filesz` bytes of 0x42 loaded at 2 MiB with `memsz` bytes in
 * memory, its entry point at 2 MiB.
 */
uint8_t *bfx_elf_one_load(size_t filesz, uint64_t memsz, size_t *size);

#endif
