/*
 * Device state images: a growable little-endian writer and a bounds-checked
 * reader. Each device writes one section: a header (its name and a format
 * version) and a body of fixed-width fields. Errors are sticky: a writer that
 * ran out of memory, or a reader that met a short or garbled image, ignores
 * further calls and reports the first failure at the end, so a device's save
 * and restore read as a plain list of fields.
 */
#ifndef EMBER_STATE_H
#define EMBER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"

struct state_writer {
    uint8_t *buf;
    size_t len, cap;
    int err; /* 0 or -ENOMEM */
};

struct state_reader {
    const uint8_t *buf;
    size_t len, pos;
    int err; /* 0 or -EINVAL once the image was short */
};

void state_writer_init(struct state_writer *w);
void state_writer_free(struct state_writer *w);
void state_put_u8(struct state_writer *w, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t v);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_put_bytes(struct state_writer *w, const void *p, size_t n);
/* Starts a section (name up to 255 bytes, version); returns the mark state_end needs. */
size_t state_begin(struct state_writer *w, const char *name, uint32_t version);
/* Ends the section begun at `mark` (records its length); 0 or the writer's error. */
int state_end(struct state_writer *w, size_t mark);

void state_reader_init(struct state_reader *r, const void *buf, size_t len);
uint8_t state_get_u8(struct state_reader *r);
uint16_t state_get_u16(struct state_reader *r);
uint32_t state_get_u32(struct state_reader *r);
uint64_t state_get_u64(struct state_reader *r);
void state_get_bytes(struct state_reader *r, void *p, size_t n);
/*
 * Opens the next section, which must be `name` with a version from 1 to
 * max_version: *version receives it and *body a reader over exactly its body.
 * -EINVAL with a message otherwise.
 */
int state_open(struct state_reader *r, const char *name, uint32_t max_version, uint32_t *version,
               struct state_reader *body, struct errmsg *err);
/* A section's body was read completely and nothing was short: 0, else -EINVAL with a message. */
int state_close(const struct state_reader *body, const char *name, struct errmsg *err);

#endif
