/*
 * What a dynamically linked exec file needs inside the jail: its ELF
 * interpreter and, recursively, every DT_NEEDED library, found where the
 * dynamic loader looks when it has no /etc/ld.so.cache (the jail has none):
 * the object's DT_RUNPATH (or DT_RPATH), then the loader's system
 * directories. A static exec file (Firecracker's case) needs nothing.
 */
#ifndef EMBER_JAILER_ELFDEPS_H
#define EMBER_JAILER_ELFDEPS_H

#include <limits.h>
#include <stddef.h>

#include "core/errmsg.h"

#define JL_ELF_MAX_NEEDED 64
#define JL_ELF_MAX_RUNPATH 8
#define JL_ELF_MAX_LIBS 64

/* What one ELF file says about its dynamic linking (strings copied out). */
struct jl_elf_info {
    int machine;           /* e_machine */
    char interp[PATH_MAX]; /* PT_INTERP, "" if none */
    int dynamic;           /* has PT_DYNAMIC */
    size_t n_needed;
    char needed[JL_ELF_MAX_NEEDED][256];
    size_t n_runpath; /* DT_RUNPATH, else DT_RPATH, split at ':' ($ORIGIN not expanded) */
    char runpath[JL_ELF_MAX_RUNPATH][PATH_MAX];
};

/* Parses an ELF64 little-endian image held in memory; every offset is bounds-checked. 0 or -ENOEXEC. */
int jl_elf_parse(const unsigned char *buf, size_t len, struct jl_elf_info *info);

/* The files to copy into the jail, each at its path (absolute, as the loader will look it up). */
struct jl_elf_deps {
    size_t n;
    char path[JL_ELF_MAX_LIBS][PATH_MAX];
};

/* Resolves everything exec_path needs (interpreter first); n = 0 for a static file. */
int jl_elf_deps(const char *exec_path, struct jl_elf_deps *deps, struct errmsg *err);

#endif
