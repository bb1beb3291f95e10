/*
 * ELF loader: images are built in memory, each in a malloc'd buffer of exactly
 * the file's size so that ASan reports any read past the end of the "file".
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/boot_fixture.h"
#include "x86/loader.h"

#define RAM BFX_LOADER_RAM
#define DATA_OFF 0x200 /* segment data start in the built images */
#define KADDR 0x200000ULL

TestSuite(elf, .init = bfx_loader_setup, .fini = bfx_fini);

/* ---- image builder ---- */

struct img {
    uint8_t *f;
    size_t size;
};

static struct img img_new(size_t size, uint16_t phnum, uint64_t entry)
{
    struct img im = {bfx_track(calloc(1, size)), size};
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = phnum;
    memcpy(im.f, &eh, sizeof(eh));
    return im;
}

static Elf64_Ehdr *ehdr(struct img *im) { return (Elf64_Ehdr *)im->f; }

static void set_phdr(struct img *im, unsigned i, uint32_t type, uint64_t off, uint64_t filesz, uint64_t paddr,
                     uint64_t memsz)
{
    Elf64_Phdr ph = {.p_type = type,
                     .p_flags = PF_R | PF_X,
                     .p_offset = off,
                     .p_vaddr = paddr,
                     .p_paddr = paddr,
                     .p_filesz = filesz,
                     .p_memsz = memsz,
                     .p_align = 0x1000};
    memcpy(im->f + sizeof(Elf64_Ehdr) + i * sizeof(ph), &ph, sizeof(ph));
}

static Elf64_Phdr *phdr(struct img *im, unsigned i)
{
    return (Elf64_Phdr *)(im->f + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

/* Writes one note at `off`; returns its padded length. */
static size_t put_note(struct img *im, size_t off, const char *name, uint32_t namesz, uint32_t type, const void *desc,
                       uint32_t descsz)
{
    Elf64_Nhdr nh = {.n_namesz = namesz, .n_descsz = descsz, .n_type = type};
    memcpy(im->f + off, &nh, sizeof(nh));
    size_t at = off + sizeof(nh);
    memcpy(im->f + at, name, namesz);
    at += (namesz + 3) & ~3u;
    memcpy(im->f + at, desc, descsz);
    at += (descsz + 3) & ~3u;
    return at - off;
}

/* One PT_LOAD: 0x100 bytes of data, 0x300 in memory, at KADDR; entry at KADDR. */
static struct img good_image(void)
{
    struct img im = img_new(DATA_OFF + 0x100, 1, KADDR);
    set_phdr(&im, 0, PT_LOAD, DATA_OFF, 0x100, KADDR, 0x300);
    for (int i = 0; i < 0x100; i++)
        im.f[DATA_OFF + i] = (uint8_t)(i ^ 0xa5);
    return im;
}

/* good_image plus a PT_NOTE with an unrelated GNU note and then Xen's PHYS32_ENTRY. */
static struct img pvh_image(uint32_t descsz, uint64_t pvh_entry)
{
    size_t note_off = DATA_OFF + 0x100;
    struct img im = img_new(note_off + 0x40, 2, KADDR);
    set_phdr(&im, 0, PT_LOAD, DATA_OFF, 0x100, KADDR, 0x300);
    size_t n = put_note(&im, note_off, "GNU", 4, NT_GNU_BUILD_ID, "0123456789abcdefghij", 20);
    n += put_note(&im, note_off + n, "Xen", 4, 18, &pvh_entry, descsz);
    set_phdr(&im, 1, PT_NOTE, note_off, n, 0, 0);
    cr_assert_leq(note_off + n, im.size);
    im.size = note_off + n; /* the note is the last thing in the file */
    return im;
}

static void expect_error(struct img *im, int want_rc)
{
    int rc = load_elf(&bfx.gm, im->f, im->size, 1, &bfx.k, &bfx.err);
    cr_assert_eq(rc, want_rc, "rc %d, want %d (%s)", rc, want_rc, bfx.err.text);
    cr_assert_neq(bfx.err.text[0], '\0', "an error needs a message");
}

/* ---- good images ---- */

Test(elf, good_image_loads_at_paddr_with_bss_zeroed)
{
    struct img im = good_image();
    cr_assert_eq(load_elf(&bfx.gm, im.f, im.size, 1, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(memcmp(bfx.ram + KADDR, im.f + DATA_OFF, 0x100), 0);
    for (uint64_t i = 0x100; i < 0x300; i++)
        cr_assert_eq(bfx.ram[KADDR + i], 0, "bss byte %#llx not zeroed", (unsigned long long)i);
    cr_assert_eq(bfx.ram[KADDR + 0x300], 0xcc, "wrote past memsz");
    cr_assert_eq(bfx.ram[KADDR - 1], 0xcc, "wrote before paddr");
    cr_assert_eq(bfx.k.proto, BOOT_LINUX64);
    cr_assert_eq(bfx.k.entry, KADDR);
    cr_assert_eq(bfx.k.is_bzimage, 0);
    cr_assert_eq(bfx.k.load_start, KADDR);
    cr_assert_eq(bfx.k.load_end, KADDR + 0x300);
    cr_assert_eq(bfx.k.cmdline_max, 2048);
    cr_assert_eq(bfx.k.initrd_addr_max, 0x7fffffffULL);
}

Test(elf, two_segments_span_and_non_load_ignored)
{
    struct img im = img_new(DATA_OFF + 0x200, 4, KADDR + 0x100000);
    set_phdr(&im, 0, PT_LOAD, DATA_OFF + 0x100, 0x100, KADDR + 0x100000, 0x100);
    set_phdr(&im, 1, PT_GNU_STACK, 0, 0, 0, 0);
    set_phdr(&im, 2, PT_LOAD, DATA_OFF, 0x100, KADDR, 0x1000);
    set_phdr(&im, 3, PT_LOAD, 0, 0, 0x1000, 0); /* memsz 0: skipped, even below 1 MiB */
    memset(im.f + DATA_OFF, 0x11, 0x100);
    memset(im.f + DATA_OFF + 0x100, 0x22, 0x100);
    cr_assert_eq(load_elf(&bfx.gm, im.f, im.size, 1, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.ram[KADDR], 0x11);
    cr_assert_eq(bfx.ram[KADDR + 0xff], 0x11);
    cr_assert_eq(bfx.ram[KADDR + 0x100], 0);
    cr_assert_eq(bfx.ram[KADDR + 0x100000], 0x22);
    cr_assert_eq(bfx.k.load_start, KADDR);
    cr_assert_eq(bfx.k.load_end, KADDR + 0x100100);
    cr_assert_eq(bfx.k.entry, KADDR + 0x100000);
    cr_assert_eq(bfx.ram[0x1000], 0xcc);
}

Test(elf, pvh_note_4_byte_desc)
{
    struct img im = pvh_image(4, KADDR + 0x40);
    cr_assert_eq(load_elf(&bfx.gm, im.f, im.size, 1, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.proto, BOOT_PVH);
    cr_assert_eq(bfx.k.entry, KADDR + 0x40);
    uint64_t e = 0;
    cr_assert_eq(elf_find_pvh_entry(im.f, im.size, &e), 0);
    cr_assert_eq(e, KADDR + 0x40);
}

Test(elf, pvh_note_8_byte_desc)
{
    struct img im = pvh_image(8, KADDR + 0x80);
    cr_assert_eq(load_elf(&bfx.gm, im.f, im.size, 1, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.proto, BOOT_PVH);
    cr_assert_eq(bfx.k.entry, KADDR + 0x80);
}

Test(elf, pvh_note_ignored_when_use_pvh_0)
{
    struct img im = pvh_image(4, KADDR + 0x40);
    cr_assert_eq(load_elf(&bfx.gm, im.f, im.size, 0, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.proto, BOOT_LINUX64);
    cr_assert_eq(bfx.k.entry, KADDR);
}

Test(elf, other_notes_do_not_select_pvh)
{
    /* Right type, wrong name; right name, wrong type; odd desc size. */
    size_t note_off = DATA_OFF + 0x100;
    uint64_t entry = KADDR + 0x40;
    struct img im = img_new(note_off + 0x60, 2, KADDR);
    set_phdr(&im, 0, PT_LOAD, DATA_OFF, 0x100, KADDR, 0x100);
    size_t n = put_note(&im, note_off, "Xem", 4, 18, &entry, 4);
    n += put_note(&im, note_off + n, "Xen", 4, 17, &entry, 4);
    n += put_note(&im, note_off + n, "Xen", 4, 18, &entry, 6);
    n += put_note(&im, note_off + n, "Xe", 3, 18, &entry, 4);
    set_phdr(&im, 1, PT_NOTE, note_off, n, 0, 0);
    cr_assert_leq(note_off + n, im.size);
    uint64_t e = 0;
    cr_assert_eq(elf_find_pvh_entry(im.f, im.size, &e), -ENOENT);
    cr_assert_eq(load_elf(&bfx.gm, im.f, im.size, 1, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.proto, BOOT_LINUX64);
    cr_assert_eq(bfx.k.entry, KADDR);
}

Test(elf, find_pvh_entry_absent_or_not_elf)
{
    struct img im = good_image();
    uint64_t e = 0x77;
    cr_assert_eq(elf_find_pvh_entry(im.f, im.size, &e), -ENOENT);
    cr_assert_eq(e, 0x77);
    im.f[0] = 'X';
    cr_assert_eq(elf_find_pvh_entry(im.f, im.size, &e), -ENOEXEC);
}

Test(elf, pvh_entry_outside_memory_refused)
{
    struct img im = pvh_image(8, RAM + 0x1000);
    expect_error(&im, -ENOEXEC);
    im = pvh_image(8, 0x100000000ULL + 0x1000);
    expect_error(&im, -ENOEXEC);
}

Test(elf, entry_outside_memory_refused)
{
    struct img im = good_image();
    ehdr(&im)->e_entry = 0xffffffff81000000ULL;
    expect_error(&im, -ENOEXEC);
}

/* ---- malformed images ---- */

static void expect_truncated_header(size_t size)
{
    struct img full = good_image();
    uint8_t *cut = bfx_track(malloc(size ? size : 1));
    memcpy(cut, full.f, size);
    memset(&bfx.err, 0, sizeof(bfx.err));
    int rc = load_elf(&bfx.gm, cut, size, 1, &bfx.k, &bfx.err);
    cr_assert_eq(rc, -ENOEXEC, "size %zu: rc %d", size, rc);
    cr_assert_neq(bfx.err.text[0], '\0');
}

Test(elf, truncated_header)
{
    expect_truncated_header(0);
    expect_truncated_header(4);
    expect_truncated_header(sizeof(Elf64_Ehdr) - 1);
    /* header complete but program headers cut off */
    expect_truncated_header(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) - 1);
}

Test(elf, bad_magic)
{
    struct img im = good_image();
    im.f[1] = 'e';
    expect_error(&im, -ENOEXEC);
}

Test(elf, wrong_class)
{
    struct img im = good_image();
    im.f[EI_CLASS] = ELFCLASS32;
    expect_error(&im, -ENOEXEC);
}

Test(elf, wrong_endianness)
{
    struct img im = good_image();
    im.f[EI_DATA] = ELFDATA2MSB;
    expect_error(&im, -ENOEXEC);
}

Test(elf, wrong_machine)
{
    struct img im = good_image();
    ehdr(&im)->e_machine = EM_386;
    expect_error(&im, -ENOEXEC);
    cr_assert(strstr(bfx.err.text, "3") != NULL, "message names the machine: %s", bfx.err.text);
}

Test(elf, no_program_headers)
{
    struct img im = good_image();
    ehdr(&im)->e_phnum = 0;
    expect_error(&im, -ENOEXEC);
}

Test(elf, wrong_phentsize)
{
    struct img im = good_image();
    ehdr(&im)->e_phentsize = sizeof(Elf64_Phdr) - 8;
    expect_error(&im, -ENOEXEC);
    im = good_image();
    ehdr(&im)->e_phentsize = 0xffff;
    expect_error(&im, -ENOEXEC);
}

Test(elf, phoff_outside_file)
{
    struct img im = good_image();
    ehdr(&im)->e_phoff = im.size;
    expect_error(&im, -ENOEXEC);
    ehdr(&im)->e_phoff = im.size - sizeof(Elf64_Phdr) + 1;
    expect_error(&im, -ENOEXEC);
    ehdr(&im)->e_phoff = UINT64_MAX - 8; /* + table size wraps */
    expect_error(&im, -ENOEXEC);
}

Test(elf, phnum_times_phentsize_beyond_file)
{
    struct img im = good_image();
    ehdr(&im)->e_phnum = 0xffff; /* 0xffff * 56 bytes: far past the file */
    expect_error(&im, -ENOEXEC);
}

Test(elf, segment_data_outside_file)
{
    struct img im = good_image();
    phdr(&im, 0)->p_offset = im.size - 0x80; /* 0x100 bytes from here run 0x80 past the end */
    expect_error(&im, -ENOEXEC);
    phdr(&im, 0)->p_offset = im.size + 1;
    phdr(&im, 0)->p_filesz = 0;
    expect_error(&im, -ENOEXEC);
    phdr(&im, 0)->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
    phdr(&im, 0)->p_filesz = 0x100;
    expect_error(&im, -ENOEXEC);
}

Test(elf, filesz_greater_than_memsz)
{
    struct img im = good_image();
    phdr(&im, 0)->p_memsz = 0xff;
    expect_error(&im, -ENOEXEC);
    cr_assert_eq(bfx.ram[KADDR], 0xcc, "nothing loaded");
}

Test(elf, segment_outside_guest_memory)
{
    struct img im = good_image();
    phdr(&im, 0)->p_paddr = RAM - 0x100; /* memsz 0x300 runs past the end */
    expect_error(&im, -ENOMEM);
    phdr(&im, 0)->p_paddr = RAM;
    expect_error(&im, -ENOMEM);
    phdr(&im, 0)->p_paddr = UINT64_MAX - 0x100; /* paddr + memsz wraps */
    expect_error(&im, -ENOMEM);
    phdr(&im, 0)->p_paddr = KADDR;
    phdr(&im, 0)->p_memsz = UINT64_MAX;
    expect_error(&im, -ENOMEM);
}

Test(elf, segment_below_1mib)
{
    struct img im = good_image();
    phdr(&im, 0)->p_paddr = 0x7000;
    expect_error(&im, -ENOEXEC);
    cr_assert_eq(bfx.ram[0x7000], 0xcc, "boot area untouched");
    phdr(&im, 0)->p_paddr = 0xfff00; /* starts below, ends above 1 MiB */
    expect_error(&im, -ENOEXEC);
}

Test(elf, no_pt_load)
{
    struct img im = good_image();
    phdr(&im, 0)->p_type = PT_NOTE;
    expect_error(&im, -ENOEXEC);
    phdr(&im, 0)->p_type = PT_LOAD;
    phdr(&im, 0)->p_memsz = 0;
    phdr(&im, 0)->p_filesz = 0;
    expect_error(&im, -ENOEXEC);
}

/* A Xen note whose desc runs past the end of the note area (and of the file). */
static struct img truncated_note_image(void)
{
    struct img im = pvh_image(8, KADDR + 0x80);
    im.size -= 4;                /* cut the last 4 bytes of the desc off the file */
    phdr(&im, 1)->p_filesz -= 4; /* and off the note area */
    uint8_t *exact = bfx_track(malloc(im.size));
    memcpy(exact, im.f, im.size);
    im.f = exact;
    return im;
}

Test(elf, malformed_note_area_never_reads_out_of_bounds)
{
    /* ASan checks the reads; the entry must never come from a truncated note. */
    struct img im = truncated_note_image();
    uint64_t e = 0;
    cr_assert_neq(elf_find_pvh_entry(im.f, im.size, &e), 0);
    int rc = load_elf(&bfx.gm, im.f, im.size, 1, &bfx.k, &bfx.err);
    cr_assert(rc < 0 || bfx.k.proto == BOOT_LINUX64, "no PVH entry from a malformed note");

    /* Huge namesz / descsz must not wrap the bounds checks. */
    Elf64_Nhdr *nh = (Elf64_Nhdr *)(im.f + phdr(&im, 1)->p_offset);
    nh->n_namesz = 0xfffffffd;
    cr_assert_neq(elf_find_pvh_entry(im.f, im.size, &e), 0);
    nh->n_namesz = 4;
    nh->n_descsz = 0xffffffff;
    cr_assert_neq(elf_find_pvh_entry(im.f, im.size, &e), 0);

    /* Note area outside the file. */
    phdr(&im, 1)->p_offset = im.size - 8;
    cr_assert_neq(elf_find_pvh_entry(im.f, im.size, &e), 0);
    phdr(&im, 1)->p_offset = UINT64_MAX - 4;
    cr_assert_neq(elf_find_pvh_entry(im.f, im.size, &e), 0);
}

Test(elf, BUG_malformed_note_area_is_an_error)
{
    /*
     * BUG / spec mismatch (x86/loader_elf.c scan_notes + load_elf): a malformed note
     * area is silently treated as "no PVH note" and the kernel boots through its
     * 64-bit entry instead; the brief requires a negative errno and a message.
     */
    struct img im = truncated_note_image();
    expect_error(&im, -ENOEXEC);
}
