/* ELF vmlinux loader: PT_LOAD segments at their physical addresses. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "x86/layout.h"
#include "x86/loader.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* [off, off+len) lies inside a buffer of `size` bytes, without wrapping. */
static int in_file(uint64_t off, uint64_t len, size_t size) { return off <= size && len <= size - off; }

static int get_ehdr(const uint8_t *file, size_t size, Elf64_Ehdr *eh, struct errmsg *err)
{
    if (size < sizeof(*eh))
        return err_set(err, -ENOEXEC, "ELF header truncated (%zu bytes)", size);
    memcpy(eh, file, sizeof(*eh));
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return err_set(err, -ENOEXEC, "not an ELF file");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return err_set(err, -ENOEXEC, "ELF is not 64-bit little-endian");
    if (eh->e_machine != EM_X86_64)
        return err_set(err, -ENOEXEC, "ELF machine %u is not x86-64", eh->e_machine);
    if (eh->e_phnum == 0)
        return err_set(err, -ENOEXEC, "ELF has no program headers");
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return err_set(err, -ENOEXEC, "ELF program header size %u is not %zu", eh->e_phentsize, sizeof(Elf64_Phdr));
    if (!in_file(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), size))
        return err_set(err, -ENOEXEC, "ELF program headers lie outside the file");
    return 0;
}

static Elf64_Phdr get_phdr(const uint8_t *file, const Elf64_Ehdr *eh, unsigned i)
{
    Elf64_Phdr ph;
    memcpy(&ph, file + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
    return ph;
}

/* Walks one note area looking for Xen's PHYS32_ENTRY. */
static int scan_notes(const uint8_t *p, uint64_t len, uint64_t *entry)
{
    uint64_t off = 0;
    while (len - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, p + off, sizeof(nh));
        off += sizeof(nh);
        uint64_t name_sz = ((uint64_t)nh.n_namesz + 3) & ~3ULL;
        uint64_t desc_sz = ((uint64_t)nh.n_descsz + 3) & ~3ULL;
        if (name_sz > len - off || desc_sz > len - off - name_sz)
            return -EINVAL; /* malformed note area */
        const uint8_t *name = p + off;
        const uint8_t *desc = p + off + name_sz;
        if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 && memcmp(name, "Xen", 4) == 0) {
            if (nh.n_descsz == 4) {
                uint32_t v;
                memcpy(&v, desc, 4);
                *entry = v;
                return 0;
            }
            if (nh.n_descsz == 8) {
                uint64_t v;
                memcpy(&v, desc, 8);
                *entry = v;
                return 0;
            }
        }
        off += name_sz + desc_sz;
    }
    return -ENOENT;
}

int elf_find_pvh_entry(const uint8_t *file, size_t size, uint64_t *entry)
{
    Elf64_Ehdr eh;
    if (get_ehdr(file, size, &eh, NULL))
        return -ENOEXEC;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph = get_phdr(file, &eh, i);
        if (ph.p_type != PT_NOTE || !in_file(ph.p_offset, ph.p_filesz, size))
            continue;
        int rc = scan_notes(file + ph.p_offset, ph.p_filesz, entry);
        if (rc != -ENOENT)
            return rc; /* found (0), or a malformed note area (-EINVAL) */
    }
    return -ENOENT;
}

int load_elf(struct guest_mem *gm, const uint8_t *file, size_t size, int use_pvh, struct kernel_image *out,
             struct errmsg *err)
{
    Elf64_Ehdr eh = {0}; /* get_ehdr fills it or fails */
    int rc = get_ehdr(file, size, &eh, err);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->load_start = UINT64_MAX;
    int loaded = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph = get_phdr(file, &eh, i);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz)
            return err_set(err, -ENOEXEC, "ELF segment %u: file size %#llx exceeds memory size %#llx", i,
                           (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
        if (!in_file(ph.p_offset, ph.p_filesz, size))
            return err_set(err, -ENOEXEC,
                           "ELF segment %u lies outside the file (offset %#llx, size %#llx, file %zu bytes): truncated "
                           "or corrupt",
                           i, (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz, size);
        if (ph.p_paddr < HIMEM_GPA)
            return err_set(err, -ENOEXEC, "ELF segment %u at %#llx overlaps the boot area below 1 MiB", i,
                           (unsigned long long)ph.p_paddr);
        uint8_t *dst = gm_ptr(gm, ph.p_paddr, ph.p_memsz);
        if (!dst)
            return err_set(err, -ENOMEM,
                           "ELF segment %u [%#llx, +%#llx) lies outside guest memory (%llu MiB): give the VM more "
                           "memory",
                           i, (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz,
                           (unsigned long long)(gm->total >> 20));
        memcpy(dst, file + ph.p_offset, ph.p_filesz);
        gm_zero(gm, ph.p_paddr + ph.p_filesz, ph.p_memsz - ph.p_filesz); /* in range: dst was checked */
        if (ph.p_paddr < out->load_start)
            out->load_start = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > out->load_end)
            out->load_end = ph.p_paddr + ph.p_memsz;
        loaded++;
    }
    if (!loaded)
        return err_set(err, -ENOEXEC, "ELF has no loadable segment");

    uint64_t pvh_entry;
    int note = elf_find_pvh_entry(file, size, &pvh_entry);
    if (note == -EINVAL)
        return err_set(err, -ENOEXEC,
                       "ELF note area is malformed (a note's name or description runs past its segment)");
    if (use_pvh && note == 0) {
        if (!gm_ptr(gm, pvh_entry, 1) || pvh_entry >= 0x100000000ULL)
            return err_set(err, -ENOEXEC, "PVH entry %#llx is outside guest memory", (unsigned long long)pvh_entry);
        out->proto = BOOT_PVH;
        out->entry = pvh_entry;
    } else {
        /* vmlinux's e_entry is the physical address of startup_64. */
        if (!gm_ptr(gm, eh.e_entry, 1))
            return err_set(err, -ENOEXEC, "ELF entry %#llx is outside guest memory", (unsigned long long)eh.e_entry);
        out->proto = BOOT_LINUX64;
        out->entry = eh.e_entry;
    }
    out->cmdline_max = CMDLINE_MAX_DEFAULT;
    out->initrd_addr_max = 0x7fffffffULL;
    return 0;
}
