/*
 * What the API and config-file fuzzers must not do to the machine they run on
 * (often as root): write files where a fuzzed path points, or start a VM. Every
 * string under a key that names a file Ember would write or map
 * (log_path, metrics_path, serial_out_path, snapshot_path, mem_file_path, ...)
 * becomes /dev/null; the files Ember only reads (kernel_image_path, initrd_path,
 * path_on_host) keep theirs, as they open read-only and without blocking.
 */
#ifndef EMBER_FUZZ_DEFUSE_H
#define EMBER_FUZZ_DEFUSE_H

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static inline bool fuzz_read_only_key(const char *key)
{
    return !strcmp(key, "kernel_image_path") || !strcmp(key, "initrd_path") || !strcmp(key, "path_on_host");
}

/*
 * Rewrites, at any depth, every "*_path" (or "path"/"uds_path"/"socket") string Ember would write or connect to;
 * returns how many it rewrote.
 */
static inline size_t fuzz_defuse(json_t *v)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(v); i++)
        n += fuzz_defuse(json_array_get(v, i));
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        json_t *e = json_object_iter_value(it);
        size_t klen = strlen(key);
        bool pathish = (klen >= 4 && !strcmp(key + klen - 4, "path")) || !strcmp(key, "socket");
        if (json_is_string(e) && pathish && !fuzz_read_only_key(key)) {
            json_object_iter_set_new(v, it, json_string("/dev/null"));
            n++;
        } else {
            n += fuzz_defuse(e);
        }
    }
    return n;
}

#endif
