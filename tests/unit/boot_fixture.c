/* The x86 boot test fixture (boot_fixture.h); it has no tests of its own. */
#include "tests/unit/boot_fixture.h"

#include <criterion/criterion.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

struct bfx bfx;

void bfx_init(uint64_t bytes, uint8_t fill)
{
    bfx.ram = malloc(bytes);
    cr_assert_not_null(bfx.ram);
    memset(bfx.ram, fill, bytes);
    cr_assert_eq(guest_mem_init_with(&bfx.gm, bytes, bfx.ram), 0);
    memset(&bfx.k, 0x5a, sizeof(bfx.k));
    memset(&bfx.err, 0, sizeof(bfx.err));
}

void bfx_fini(void)
{
    while (bfx.nr_allocs)
        free(bfx.allocs[--bfx.nr_allocs]);
    free(bfx.ram);
    bfx.ram = NULL;
}

void bfx_boot_setup(void) { bfx_init(BFX_BOOT_RAM, 0xee); }

void bfx_loader_setup(void) { bfx_init(BFX_LOADER_RAM, 0xcc); }

void *bfx_track(void *p)
{
    cr_assert_not_null(p);
    cr_assert_lt(bfx.nr_allocs, BFX_MAX_ALLOCS);
    bfx.allocs[bfx.nr_allocs++] = p;
    return p;
}

uint8_t *bfx_elf_one_load(size_t filesz, uint64_t memsz, size_t *size)
{
    *size = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + filesz;
    uint8_t *e = calloc(1, *size);
    cr_assert_not_null(e);
    Elf64_Ehdr eh = {.e_type = ET_EXEC,
                     .e_machine = EM_X86_64,
                     .e_version = EV_CURRENT,
                     .e_entry = 0x200000,
                     .e_phoff = sizeof(Elf64_Ehdr),
                     .e_ehsize = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr),
                     .e_phnum = 1};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    Elf64_Phdr ph = {.p_type = PT_LOAD,
                     .p_offset = *size - filesz,
                     .p_paddr = 0x200000,
                     .p_filesz = filesz,
                     .p_memsz = memsz};
    memcpy(e, &eh, sizeof(eh));
    memcpy(e + sizeof(eh), &ph, sizeof(ph));
    memset(e + *size - filesz, 0x42, filesz);
    return e;
}
