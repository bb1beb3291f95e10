#include "jailer/elfdeps.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where glibc's loader looks when there is no ld.so.cache (`ld.so --help`: "system search path"). */
static const char *const system_dirs[] =
    {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib", "/lib64", "/usr/lib64"};

/* Copies the NUL-terminated string at buf[off], which must end inside buf and fit in out. */
static int copy_str(const unsigned char *buf, size_t len, uint64_t off, char *out, size_t max)
{
    if (off >= len)
        return -ENOEXEC;
    const unsigned char *end = memchr(buf + off, '\0', len - off);
    if (!end || (size_t)(end - (buf + off)) >= max)
        return -ENOEXEC;
    memcpy(out, buf + off, (size_t)(end - (buf + off)) + 1);
    return 0;
}

/* The file offset of virtual address va, through the PT_LOAD headers. */
static int va_to_off(const unsigned char *buf, const Elf64_Ehdr *eh, uint64_t va, uint64_t *off)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, buf + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD && va >= ph.p_vaddr && va - ph.p_vaddr < ph.p_filesz) {
            *off = ph.p_offset + (va - ph.p_vaddr);
            return 0;
        }
    }
    return -ENOEXEC;
}

int jl_elf_parse(const unsigned char *buf, size_t len, struct jl_elf_info *info)
{
    memset(info, 0, sizeof(*info));
    Elf64_Ehdr eh;
    if (len < sizeof(eh))
        return -ENOEXEC;
    memcpy(&eh, buf, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return -ENOEXEC;
    info->machine = eh.e_machine;
    Elf64_Phdr dyn = {0};
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, buf + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_INTERP) {
            if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset ||
                copy_str(buf, ph.p_offset + ph.p_filesz, ph.p_offset, info->interp, sizeof(info->interp)))
                return -ENOEXEC;
        } else if (ph.p_type == PT_DYNAMIC) {
            dyn = ph;
            info->dynamic = 1;
        }
    }
    if (!info->dynamic)
        return 0;
    if (dyn.p_offset > len || dyn.p_filesz > len - dyn.p_offset)
        return -ENOEXEC;
    uint64_t strtab_va = 0, strsz = 0, runpath = UINT64_MAX, rpath = UINT64_MAX;
    size_t n = dyn.p_filesz / sizeof(Elf64_Dyn);
    for (int pass = 0; pass < 2; pass++) { /* pass 0 finds the string table, pass 1 reads the strings */
        uint64_t strtab = 0;
        if (pass == 1) {
            if (!strtab_va || va_to_off(buf, &eh, strtab_va, &strtab) || strtab > len || strsz > len - strtab)
                return -ENOEXEC;
        }
        for (size_t i = 0; i < n; i++) {
            Elf64_Dyn d;
            memcpy(&d, buf + dyn.p_offset + i * sizeof(d), sizeof(d));
            if (d.d_tag == DT_NULL)
                break;
            if (pass == 0) {
                if (d.d_tag == DT_STRTAB)
                    strtab_va = d.d_un.d_ptr;
                else if (d.d_tag == DT_STRSZ)
                    strsz = d.d_un.d_val;
                else if (d.d_tag == DT_RUNPATH)
                    runpath = d.d_un.d_val;
                else if (d.d_tag == DT_RPATH)
                    rpath = d.d_un.d_val;
            } else if (d.d_tag == DT_NEEDED) {
                if (info->n_needed == JL_ELF_MAX_NEEDED || d.d_un.d_val >= strsz ||
                    copy_str(buf, strtab + strsz, strtab + d.d_un.d_val, info->needed[info->n_needed], 256))
                    return -ENOEXEC;
                info->n_needed++;
            }
        }
        if (pass == 1) {
            uint64_t rp = runpath != UINT64_MAX ? runpath : rpath; /* DT_RUNPATH overrides DT_RPATH */
            char all[PATH_MAX];
            if (rp == UINT64_MAX)
                break;
            if (rp >= strsz || copy_str(buf, strtab + strsz, strtab + rp, all, sizeof(all)))
                return -ENOEXEC;
            for (char *save = NULL, *tok = strtok_r(all, ":", &save); tok && info->n_runpath < JL_ELF_MAX_RUNPATH;
                 tok = strtok_r(NULL, ":", &save))
                snprintf(info->runpath[info->n_runpath++], PATH_MAX, "%s", tok);
        }
    }
    return 0;
}

static int parse_file(const char *path, struct jl_elf_info *info)
{
    memset(info, 0, sizeof(*info)); /* no interpreter, no machine when the file cannot be read */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return -ENOEXEC;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -errno;
    int rc = jl_elf_parse(map, (size_t)st.st_size, info);
    munmap(map, (size_t)st.st_size);
    return rc;
}

static int have_path(const struct jl_elf_deps *deps, const char *name)
{
    for (size_t i = 0; i < deps->n; i++) {
        const char *slash = strrchr(deps->path[i], '/');
        if (strcmp(slash ? slash + 1 : deps->path[i], name) == 0)
            return 1;
    }
    return 0;
}

/* Finds name for an object at obj_path with the given runpath; the first candidate of the right machine wins. */
static int find_lib(const char *name, const char *obj_path, const struct jl_elf_info *obj, int machine, char *out,
                    struct jl_elf_info *scratch)
{
    char origin[PATH_MAX];
    snprintf(origin, sizeof(origin), "%s", obj_path);
    char *slash = strrchr(origin, '/');
    if (slash)
        *slash = '\0';
    size_t nsys = sizeof(system_dirs) / sizeof(system_dirs[0]);
    for (size_t i = 0; i < obj->n_runpath + nsys; i++) {
        char dir[PATH_MAX];
        const char *d = i < obj->n_runpath ? obj->runpath[i] : system_dirs[i - obj->n_runpath];
        if (strncmp(d, "$ORIGIN", 7) == 0)
            snprintf(dir, sizeof(dir), "%s%s", origin, d + 7);
        else
            snprintf(dir, sizeof(dir), "%s", d);
        if (dir[0] != '/')
            continue; /* a relative runpath would depend on the working directory */
        if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
            continue;
        if (parse_file(out, scratch) == 0 && scratch->machine == machine)
            return 0;
    }
    return -ENOENT;
}

int jl_elf_deps(const char *exec_path, struct jl_elf_deps *deps, struct errmsg *err)
{
    memset(deps, 0, sizeof(*deps));
    struct jl_elf_info *info = malloc(sizeof(*info)), *scratch = malloc(sizeof(*scratch));
    int rc = info && scratch ? 0 : -ENOMEM;
    if (!rc && (rc = parse_file(exec_path, info)))
        err_set(err, rc, "%s: not an x86-64 ELF executable (%s)", exec_path, strerror(-rc));
    if (rc || !info->interp[0]) /* static: nothing to copy */
        goto out;
    int machine = info->machine;
    snprintf(deps->path[deps->n++], PATH_MAX, "%s", info->interp);
    /* Breadth first: deps->path doubles as the work list; entry 0 (the interpreter) is not scanned. */
    const char *obj_path = exec_path;
    for (size_t next = 1;; next++) {
        for (size_t i = 0; i < info->n_needed; i++) {
            const char *name = info->needed[i];
            if (have_path(deps, name))
                continue;
            if (deps->n == JL_ELF_MAX_LIBS) {
                rc = err_set(err, -E2BIG, "%s: more than %d shared libraries", exec_path, JL_ELF_MAX_LIBS);
                goto out;
            }
            if (strchr(name, '/')) {
                snprintf(deps->path[deps->n++], PATH_MAX, "%s", name);
                continue;
            }
            if (find_lib(name, obj_path, info, machine, deps->path[deps->n], scratch)) {
                rc = err_set(err, -ENOENT,
                             "%s needs %s, which is not in its runpath nor in the loader's system directories "
                             "(the jail has no ld.so.cache): link the exec file statically",
                             obj_path, name);
                goto out;
            }
            deps->n++;
        }
        if (next >= deps->n)
            break;
        obj_path = deps->path[next];
        if ((rc = parse_file(obj_path, info))) {
            err_set(err, rc, "%s: %s", obj_path, strerror(-rc));
            goto out;
        }
    }
out:
    free(info);
    free(scratch);
    return rc;
}
