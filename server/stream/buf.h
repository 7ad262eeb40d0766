/* Growable byte buffer used by every layer of server/stream/ (private to the
 * component).  Bytes live in data[off, off+len); appends grow the tail,
 * consumers eat from the head.  An allocation failure sets the sticky `oom`
 * flag instead of failing each call, so encoders stay void and the caller
 * checks once per round. */
#ifndef CRISP_STREAM_BUF_H
#define CRISP_STREAM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_buf {
    uint8_t *data;
    size_t off, len, cap;
    bool oom;
} st_buf;

static inline uint8_t *st_buf_head(const st_buf *b) { return b->data ? b->data + b->off : NULL; }

/* Room for n more bytes at the tail; NULL (and oom set) on failure. */
uint8_t *st_buf_reserve(st_buf *b, size_t n);
void st_buf_append(st_buf *b, const void *p, size_t n);
void st_buf_add_str(st_buf *b, const char *s);
void st_buf_printf(st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_buf_u8(st_buf *b, uint8_t v);
void st_buf_be16(st_buf *b, uint16_t v);
void st_buf_be32(st_buf *b, uint32_t v);
void st_buf_be64(st_buf *b, uint64_t v);
/* Drop n bytes from the head. */
void st_buf_consume(st_buf *b, size_t n);
void st_buf_reset(st_buf *b);
void st_buf_free(st_buf *b);

static inline uint16_t st_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t st_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
