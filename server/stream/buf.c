#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *st_buf_reserve(st_buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->off + b->len + n <= b->cap)
        return b->data + b->off + b->len;
    /* Compact first when that makes enough room and is cheap enough. */
    if (b->off > 0 && b->len + n <= b->cap) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return b->data + b->len;
    }
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return NULL;
    }
    size_t want = b->len + n, cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *d = malloc(cap);
    if (!d) {
        b->oom = true;
        return NULL;
    }
    if (b->len)
        memcpy(d, b->data + b->off, b->len);
    free(b->data);
    b->data = d;
    b->off = 0;
    b->cap = cap;
    return b->data + b->len;
}

void st_buf_append(st_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    uint8_t *t = st_buf_reserve(b, n);
    if (!t)
        return;
    memcpy(t, p, n);
    b->len += n;
}

void st_buf_add_str(st_buf *b, const char *s) { st_buf_append(b, s, strlen(s)); }

void st_buf_printf(st_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    uint8_t *t = st_buf_reserve(b, (size_t)n + 1);
    if (!t)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)t, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void st_buf_u8(st_buf *b, uint8_t v) { st_buf_append(b, &v, 1); }

void st_buf_be16(st_buf *b, uint16_t v)
{
    uint8_t p[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    st_buf_append(b, p, 2);
}

void st_buf_be32(st_buf *b, uint32_t v)
{
    uint8_t p[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    st_buf_append(b, p, 4);
}

void st_buf_be64(st_buf *b, uint64_t v)
{
    st_buf_be32(b, (uint32_t)(v >> 32));
    st_buf_be32(b, (uint32_t)v);
}

void st_buf_consume(st_buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = 0;
        b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

void st_buf_reset(st_buf *b)
{
    b->off = 0;
    b->len = 0;
}

void st_buf_free(st_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
