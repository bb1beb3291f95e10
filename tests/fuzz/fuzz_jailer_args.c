/*
 * ember-jailer's command line (jailer/args.c): the input split on NUL bytes
 * is argv after the program name (at most 64 arguments). The parser only
 * lstat()s the --exec-file it is given; nothing is created.
 *
 * Invariants: an error has a message; a command line accepted (without --help
 * or --version) holds a valid id, a file name for the jail, an absolute
 * chroot base of its own without a trailing '/', a relative parent cgroup
 * without '..', cgroup version 1 or 2, distinct --cgroup files and resource
 * limits with exactly one no-file, and the arguments after "--" inside argv.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "jailer/args.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz invariant violated: %s\n", what);
    abort();
}

/* A "." or ".." component in a '/'-separated path. */
static int dot_component(const char *path)
{
    for (const char *c = path; *c;) {
        size_t len = strcspn(c, "/");
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return 1;
        c += len + (c[len] == '/');
    }
    return 0;
}

static void check(const struct jl_args *a, int argc, char **argv)
{
    if (!a->id || !jl_valid_id(a->id))
        fail("invalid id accepted");
    if (!a->exec_name[0] || strchr(a->exec_name, '/') || !strcmp(a->exec_name, "..") || !strcmp(a->exec_name, "."))
        fail("exec name is not a file name");
    size_t n = strlen(a->chroot_base);
    if (a->chroot_base[0] != '/' || n < 2 || a->chroot_base[n - 1] == '/' || dot_component(a->chroot_base))
        fail("chroot base is not an absolute directory of its own");
    if (!a->parent_cgroup[0] || a->parent_cgroup[0] == '/' || dot_component(a->parent_cgroup))
        fail("parent cgroup escapes the cgroup root");
    if (a->cgroup_version != 1 && a->cgroup_version != 2)
        fail("cgroup version");
    if (a->n_cgroups > JL_MAX_CGROUPS || a->n_rlimits < 1 || a->n_rlimits > JL_MAX_RLIMITS)
        fail("counts");
    for (size_t i = 0; i < a->n_cgroups; i++) {
        if (!memchr(a->cgroups[i].file, 0, JL_CG_FILE_MAX) || !memchr(a->cgroups[i].value, 0, JL_CG_VALUE_MAX) ||
            !a->cgroups[i].file[0])
            fail("cgroup file or value");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(a->cgroups[i].file, a->cgroups[j].file))
                fail("one cgroup file twice");
    }
    int nofile = 0;
    for (size_t i = 0; i < a->n_rlimits; i++)
        nofile += a->rlimits[i].resource == RLIMIT_NOFILE;
    if (nofile != 1)
        fail("no-file limit missing or twice");
    if (a->n_extra < 0 || a->n_extra > argc || (a->n_extra && a->extra + a->n_extra != argv + argc))
        fail("arguments after --");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One copy with a NUL after every argument: the parser may keep pointers into it. */
    char *buf = malloc(size + 1);
    char *argv[MAX_ARGS + 2];
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    argv[argc++] = "ember-jailer";
    for (size_t pos = 0; pos <= size && argc <= MAX_ARGS; argc++) {
        argv[argc] = buf + pos;
        pos += strlen(buf + pos) + 1;
    }
    argv[argc] = NULL;
    struct jl_args a;
    struct errmsg err = {{0}};
    int rc = jl_parse_args(argc, argv, &a, &err);
    if (rc && !err.text[0])
        fail("an error without a message");
    if (rc == 0 && !a.help && !a.version)
        check(&a, argc, argv);
    free(buf);
    return 0;
}
