#include "spdy.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The SPDY/3 dictionary: 65 length-prefixed (32-bit big-endian) header names
 * and values, then a run of common status lines, dates and content types.
 * 1423 bytes; its Adler-32 (the zlib DICTID) is 0xe3c6a7c2. */
const unsigned char spdy_dictionary[] =
    "\x00\x00\x00\x07" "options"
    "\x00\x00\x00\x04" "head"
    "\x00\x00\x00\x04" "post"
    "\x00\x00\x00\x03" "put"
    "\x00\x00\x00\x06" "delete"
    "\x00\x00\x00\x05" "trace"
    "\x00\x00\x00\x06" "accept"
    "\x00\x00\x00\x0e" "accept-charset"
    "\x00\x00\x00\x0f" "accept-encoding"
    "\x00\x00\x00\x0f" "accept-language"
    "\x00\x00\x00\x0d" "accept-ranges"
    "\x00\x00\x00\x03" "age"
    "\x00\x00\x00\x05" "allow"
    "\x00\x00\x00\x0d" "authorization"
    "\x00\x00\x00\x0d" "cache-control"
    "\x00\x00\x00\x0a" "connection"
    "\x00\x00\x00\x0c" "content-base"
    "\x00\x00\x00\x10" "content-encoding"
    "\x00\x00\x00\x10" "content-language"
    "\x00\x00\x00\x0e" "content-length"
    "\x00\x00\x00\x10" "content-location"
    "\x00\x00\x00\x0b" "content-md5"
    "\x00\x00\x00\x0d" "content-range"
    "\x00\x00\x00\x0c" "content-type"
    "\x00\x00\x00\x04" "date"
    "\x00\x00\x00\x04" "etag"
    "\x00\x00\x00\x06" "expect"
    "\x00\x00\x00\x07" "expires"
    "\x00\x00\x00\x04" "from"
    "\x00\x00\x00\x04" "host"
    "\x00\x00\x00\x08" "if-match"
    "\x00\x00\x00\x11" "if-modified-since"
    "\x00\x00\x00\x0d" "if-none-match"
    "\x00\x00\x00\x08" "if-range"
    "\x00\x00\x00\x13" "if-unmodified-since"
    "\x00\x00\x00\x0d" "last-modified"
    "\x00\x00\x00\x08" "location"
    "\x00\x00\x00\x0c" "max-forwards"
    "\x00\x00\x00\x06" "pragma"
    "\x00\x00\x00\x12" "proxy-authenticate"
    "\x00\x00\x00\x13" "proxy-authorization"
    "\x00\x00\x00\x05" "range"
    "\x00\x00\x00\x07" "referer"
    "\x00\x00\x00\x0b" "retry-after"
    "\x00\x00\x00\x06" "server"
    "\x00\x00\x00\x02" "te"
    "\x00\x00\x00\x07" "trailer"
    "\x00\x00\x00\x11" "transfer-encoding"
    "\x00\x00\x00\x07" "upgrade"
    "\x00\x00\x00\x0a" "user-agent"
    "\x00\x00\x00\x04" "vary"
    "\x00\x00\x00\x03" "via"
    "\x00\x00\x00\x07" "warning"
    "\x00\x00\x00\x10" "www-authenticate"
    "\x00\x00\x00\x06" "method"
    "\x00\x00\x00\x03" "get"
    "\x00\x00\x00\x06" "status"
    "\x00\x00\x00\x06" "200 OK"
    "\x00\x00\x00\x07" "version"
    "\x00\x00\x00\x08" "HTTP/1.1"
    "\x00\x00\x00\x03" "url"
    "\x00\x00\x00\x06" "public"
    "\x00\x00\x00\x0a" "set-cookie"
    "\x00\x00\x00\x0a" "keep-alive"
    "\x00\x00\x00\x06" "origin"
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information"
    "204 No Content"
    "301 Moved Permanently"
    "400 Bad Request"
    "401 Unauthorized"
    "403 Forbidden"
    "404 Not Found"
    "500 Internal Server Error"
    "501 Not Implemented"
    "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
    "text/plain,text/javascript,public"
    "private"
    "max-age="
    "gzip,deflate,sdch"
    "charset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0.";

_Static_assert(sizeof(spdy_dictionary) - 1 == 1423, "the SPDY/3 dictionary is 1423 bytes");
const size_t spdy_dictionary_len = sizeof(spdy_dictionary) - 1;

/* ------------------------------------------------------------------ */
/* header blocks                                                       */

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

int spdy_headers_add(spdy_headers *h, const char *name, const char *value)
{
    size_t vlen = strlen(value);
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) != 0)
            continue;
        char *nv = realloc(h->v[i].value, h->v[i].value_len + 1 + vlen + 1);
        if (!nv)
            return -1;
        nv[h->v[i].value_len] = '\0';
        memcpy(nv + h->v[i].value_len + 1, value, vlen + 1);
        h->v[i].value = nv;
        h->v[i].value_len += 1 + vlen;
        return 0;
    }
    spdy_header *nv = realloc(h->v, (h->n + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    h->v = nv;
    spdy_header *e = &h->v[h->n];
    e->name = lower_dup(name);
    e->value = strdup(value);
    e->value_len = vlen;
    if (!e->name || !e->value) {
        free(e->name);
        free(e->value);
        return -1;
    }
    h->n++;
    return 0;
}

const char *spdy_headers_get(const spdy_headers *h, const char *name)
{
    for (size_t i = 0; h && i < h->n; i++)
        if (strcasecmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    return NULL;
}

void spdy_headers_free(spdy_headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

/* The uncompressed name/value block: count, then (length, name, length,
 * value) pairs, every number 32-bit big-endian. */
static void nv_encode(st_buf *b, const spdy_headers *h)
{
    st_buf_be32(b, h ? (uint32_t)h->n : 0);
    for (size_t i = 0; h && i < h->n; i++) {
        size_t nl = strlen(h->v[i].name);
        st_buf_be32(b, (uint32_t)nl);
        st_buf_append(b, h->v[i].name, nl);
        st_buf_be32(b, (uint32_t)h->v[i].value_len);
        st_buf_append(b, h->v[i].value, h->v[i].value_len);
    }
}

static int nv_decode(const uint8_t *p, size_t n, spdy_headers *h, cr_err **err)
{
    if (n < 4)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: truncated count");
    uint32_t count = st_get_be32(p);
    size_t off = 4;
    if (count > n / 8 + 1)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: %u pairs cannot fit in %zu bytes",
                          count, n);
    for (uint32_t i = 0; i < count; i++) {
        if (n - off < 4)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: truncated name length");
        uint32_t nl = st_get_be32(p + off);
        off += 4;
        if (nl == 0 || nl > n - off)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: bad name length %u", nl);
        const uint8_t *name = p + off;
        off += nl;
        if (n - off < 4)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: truncated value length");
        uint32_t vl = st_get_be32(p + off);
        off += 4;
        if (vl > n - off)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: bad value length %u", vl);
        const uint8_t *val = p + off;
        off += vl;
        if (memchr(name, '\0', nl))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: NUL in a header name");
        char *nm = strndup((const char *)name, nl);
        char *v = malloc((size_t)vl + 1);
        if (!nm || !v) {
            free(nm);
            free(v);
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY header block: out of memory");
        }
        memcpy(v, val, vl);
        v[vl] = '\0';
        for (char *q = nm; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        /* Each NUL-separated value is one value of this header. */
        int r = 0;
        size_t pos = 0;
        do {
            r = spdy_headers_add(h, nm, v + pos);
            pos += strlen(v + pos) + 1;
        } while (r == 0 && pos <= vl);
        free(nm);
        free(v);
        if (r < 0)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY header block: out of memory");
    }
    if (off != n)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: %zu stray bytes", n - off);
    return 0;
}

/* ------------------------------------------------------------------ */
/* codec                                                               */

int spdy_codec_init(spdy_codec *c, cr_err **err)
{
    memset(c, 0, sizeof(*c));
    if (deflateInit2(&c->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return cr_err_set(err, CR_INTERNAL, "SPDY: zlib deflateInit failed");
    c->def_ok = true;
    if (deflateSetDictionary(&c->def, spdy_dictionary, (uInt)spdy_dictionary_len) != Z_OK) {
        spdy_codec_free(c);
        return cr_err_set(err, CR_INTERNAL, "SPDY: zlib deflateSetDictionary failed");
    }
    if (inflateInit(&c->inf) != Z_OK) {
        spdy_codec_free(c);
        return cr_err_set(err, CR_INTERNAL, "SPDY: zlib inflateInit failed");
    }
    c->inf_ok = true;
    return 0;
}

void spdy_codec_free(spdy_codec *c)
{
    if (c->def_ok)
        deflateEnd(&c->def);
    if (c->inf_ok)
        inflateEnd(&c->inf);
    c->def_ok = c->inf_ok = false;
}

/* Compress a name/value block onto out (one sync-flushed chunk of the
 * connection's single deflate stream). */
static int nv_compress(spdy_codec *c, st_buf *out, const spdy_headers *h)
{
    st_buf raw = { 0 };
    nv_encode(&raw, h);
    if (raw.oom) {
        st_buf_free(&raw);
        out->oom = true;
        return -1;
    }
    c->def.next_in = st_buf_head(&raw);
    c->def.avail_in = (uInt)raw.len;
    int rc = 0;
    do {
        uint8_t *t = st_buf_reserve(out, 512);
        if (!t) {
            rc = -1;
            break;
        }
        size_t room = out->cap - out->off - out->len;
        c->def.next_out = t;
        c->def.avail_out = (uInt)room;
        int r = deflate(&c->def, Z_SYNC_FLUSH);
        if (r != Z_OK && r != Z_BUF_ERROR) {
            rc = -1;
            break;
        }
        out->len += room - c->def.avail_out;
    } while (c->def.avail_out == 0);
    st_buf_free(&raw);
    return rc;
}

static int nv_decompress(spdy_codec *c, const uint8_t *p, size_t n, spdy_headers *h, cr_err **err)
{
    st_buf raw = { 0 };
    c->inf.next_in = (Bytef *)p;
    c->inf.avail_in = (uInt)n;
    int rc = 0;
    for (;;) {
        uint8_t *t = st_buf_reserve(&raw, 1024);
        if (!t) {
            rc = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY header block: out of memory");
            break;
        }
        size_t room = raw.cap - raw.off - raw.len;
        c->inf.next_out = t;
        c->inf.avail_out = (uInt)room;
        int r = inflate(&c->inf, Z_SYNC_FLUSH);
        if (r == Z_NEED_DICT) {
            if (c->inf_dict_set ||
                inflateSetDictionary(&c->inf, spdy_dictionary, (uInt)spdy_dictionary_len) != Z_OK) {
                rc = cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: compressed with another dictionary");
                break;
            }
            c->inf_dict_set = true;
            continue;
        }
        raw.len += room - c->inf.avail_out;
        if (r == Z_BUF_ERROR && c->inf.avail_in == 0)
            break; /* all input used and nothing more to flush */
        if (r != Z_OK) {
            rc = cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY header block: zlib: %s",
                            c->inf.msg ? c->inf.msg : "stream error");
            break;
        }
        if (raw.len > SPDY_MAX_HEADER_BLOCK) {
            rc = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY header block larger than %d bytes",
                            SPDY_MAX_HEADER_BLOCK);
            break;
        }
        if (c->inf.avail_in == 0 && c->inf.avail_out != 0)
            break;
    }
    if (rc == 0)
        rc = nv_decode(st_buf_head(&raw), raw.len, h, err);
    st_buf_free(&raw);
    return rc;
}

void spdy_frame_clear(spdy_frame *f)
{
    spdy_headers_free(&f->headers);
    free(f->settings);
    memset(f, 0, sizeof(*f));
}

static uint32_t get24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }

int spdy_parse(spdy_codec *c, const uint8_t *buf, size_t len, spdy_frame *f, size_t *used, cr_err **err)
{
    memset(f, 0, sizeof(*f));
    if (len < 8)
        return 0;
    uint32_t w0 = st_get_be32(buf);
    f->flags = buf[4];
    f->length = get24(buf + 5);
    if (len - 8 < f->length)
        return 0;
    *used = 8 + (size_t)f->length;
    const uint8_t *p = buf + 8;
    uint32_t n = f->length;
    if (!(w0 & 0x80000000u)) {
        f->type = SPDY_DATA;
        f->stream_id = w0 & 0x7fffffffu;
        f->data = p;
        f->data_len = n;
        if (f->stream_id == 0)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: data frame for stream 0");
        return 1;
    }
    f->version = (uint16_t)((w0 >> 16) & 0x7fff);
    f->type = (int)(w0 & 0xffff);
    if (f->version != SPDY_VERSION)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: unsupported version %u", f->version);
    switch (f->type) {
    case SPDY_SYN_STREAM:
        if (n < 10)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: short SYN_STREAM");
        f->stream_id = st_get_be32(p) & 0x7fffffffu;
        f->assoc_id = st_get_be32(p + 4) & 0x7fffffffu;
        f->priority = (uint8_t)(p[8] >> 5);
        f->slot = p[9];
        if (nv_decompress(c, p + 10, n - 10, &f->headers, err) < 0)
            return cr_err_prefix(err, "SPDY: SYN_STREAM %u", f->stream_id);
        if (f->stream_id == 0)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: SYN_STREAM for stream 0");
        return 1;
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        if (n < 4)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: short %s",
                              f->type == SPDY_HEADERS ? "HEADERS" : "SYN_REPLY");
        f->stream_id = st_get_be32(p) & 0x7fffffffu;
        if (nv_decompress(c, p + 4, n - 4, &f->headers, err) < 0)
            return cr_err_prefix(err, "SPDY: %s %u", f->type == SPDY_HEADERS ? "HEADERS" : "SYN_REPLY",
                                 f->stream_id);
        if (f->stream_id == 0)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: reply for stream 0");
        return 1;
    case SPDY_RST_STREAM:
        if (n != 8)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: RST_STREAM of %u bytes", n);
        f->stream_id = st_get_be32(p) & 0x7fffffffu;
        f->status = st_get_be32(p + 4);
        return 1;
    case SPDY_SETTINGS: {
        if (n < 4)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: short SETTINGS");
        uint32_t k = st_get_be32(p);
        if ((uint64_t)k * 8 + 4 != n)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: SETTINGS with %u entries in %u bytes", k, n);
        f->settings = calloc(k ? k : 1, sizeof(*f->settings));
        if (!f->settings)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY: out of memory");
        f->n_settings = k;
        for (uint32_t i = 0; i < k; i++) {
            const uint8_t *e = p + 4 + 8 * (size_t)i;
            f->settings[i].flags = e[0];
            f->settings[i].id = get24(e + 1);
            f->settings[i].value = st_get_be32(e + 4);
        }
        return 1;
    }
    case SPDY_PING:
        if (n != 4)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: PING of %u bytes", n);
        f->ping_id = st_get_be32(p);
        return 1;
    case SPDY_GOAWAY:
        if (n != 8)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: GOAWAY of %u bytes", n);
        f->last_good_id = st_get_be32(p) & 0x7fffffffu;
        f->status = st_get_be32(p + 4);
        return 1;
    case SPDY_WINDOW_UPDATE:
        if (n != 8)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "SPDY: WINDOW_UPDATE of %u bytes", n);
        f->stream_id = st_get_be32(p) & 0x7fffffffu;
        f->delta = st_get_be32(p + 4) & 0x7fffffffu;
        return 1;
    default:
        return 1; /* unknown control frame: skipped */
    }
}

static void put_control_head(st_buf *out, int type, uint8_t flags, uint32_t length)
{
    st_buf_be16(out, 0x8000 | SPDY_VERSION);
    st_buf_be16(out, (uint16_t)type);
    st_buf_be32(out, (uint32_t)flags << 24 | (length & 0xffffff));
}

/* Header-carrying frames: the fixed part is `fixed` (n bytes), the header
 * block follows, compressed. */
static int put_with_headers(spdy_codec *c, st_buf *out, int type, uint8_t flags, const uint8_t *fixed,
                            size_t n, const spdy_headers *h)
{
    st_buf block = { 0 };
    if (nv_compress(c, &block, h) < 0 || block.oom) {
        st_buf_free(&block);
        return -1;
    }
    if (n + block.len > SPDY_MAX_FRAME) {
        st_buf_free(&block);
        return -1;
    }
    put_control_head(out, type, flags, (uint32_t)(n + block.len));
    st_buf_append(out, fixed, n);
    st_buf_append(out, st_buf_head(&block), block.len);
    st_buf_free(&block);
    return out->oom ? -1 : 0;
}

static void be32_at(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int spdy_put_syn_stream(spdy_codec *c, st_buf *out, uint32_t id, uint32_t assoc, uint8_t priority,
                        uint8_t flags, const spdy_headers *h)
{
    uint8_t fixed[10];
    be32_at(fixed, id & 0x7fffffffu);
    be32_at(fixed + 4, assoc & 0x7fffffffu);
    fixed[8] = (uint8_t)((priority & 7) << 5);
    fixed[9] = 0;
    return put_with_headers(c, out, SPDY_SYN_STREAM, flags, fixed, sizeof(fixed), h);
}

int spdy_put_syn_reply(spdy_codec *c, st_buf *out, uint32_t id, uint8_t flags, const spdy_headers *h)
{
    uint8_t fixed[4];
    be32_at(fixed, id & 0x7fffffffu);
    return put_with_headers(c, out, SPDY_SYN_REPLY, flags, fixed, sizeof(fixed), h);
}

int spdy_put_headers(spdy_codec *c, st_buf *out, uint32_t id, uint8_t flags, const spdy_headers *h)
{
    uint8_t fixed[4];
    be32_at(fixed, id & 0x7fffffffu);
    return put_with_headers(c, out, SPDY_HEADERS, flags, fixed, sizeof(fixed), h);
}

void spdy_put_rst_stream(st_buf *out, uint32_t id, uint32_t status)
{
    put_control_head(out, SPDY_RST_STREAM, 0, 8);
    st_buf_be32(out, id & 0x7fffffffu);
    st_buf_be32(out, status);
}

void spdy_put_settings(st_buf *out, uint8_t flags, const spdy_setting *s, size_t n)
{
    put_control_head(out, SPDY_SETTINGS, flags, (uint32_t)(4 + 8 * n));
    st_buf_be32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        st_buf_be32(out, (uint32_t)s[i].flags << 24 | (s[i].id & 0xffffff));
        st_buf_be32(out, s[i].value);
    }
}

void spdy_put_ping(st_buf *out, uint32_t id)
{
    put_control_head(out, SPDY_PING, 0, 4);
    st_buf_be32(out, id);
}

void spdy_put_goaway(st_buf *out, uint32_t last_good_id, uint32_t status)
{
    put_control_head(out, SPDY_GOAWAY, 0, 8);
    st_buf_be32(out, last_good_id & 0x7fffffffu);
    st_buf_be32(out, status);
}

void spdy_put_window_update(st_buf *out, uint32_t id, uint32_t delta)
{
    put_control_head(out, SPDY_WINDOW_UPDATE, 0, 8);
    st_buf_be32(out, id & 0x7fffffffu);
    st_buf_be32(out, delta & 0x7fffffffu);
}

void spdy_put_data(st_buf *out, uint32_t id, uint8_t flags, const void *p, size_t n)
{
    const uint8_t *d = p;
    do {
        size_t k = n > SPDY_MAX_FRAME ? SPDY_MAX_FRAME : n;
        st_buf_be32(out, id & 0x7fffffffu);
        st_buf_be32(out, (uint32_t)(k == n ? flags : 0) << 24 | (uint32_t)k);
        st_buf_append(out, d, k);
        if (k == 0)
            break;
        d += k;
        n -= k;
    } while (n > 0);
}

/* ------------------------------------------------------------------ */
/* connection                                                          */

int spdy_conn_init(spdy_conn *c, bool server, st_buf *out, cr_err **err)
{
    memset(c, 0, sizeof(*c));
    if (spdy_codec_init(&c->codec, err) < 0)
        return -1;
    c->server = server;
    c->out = out;
    c->next_id = server ? 2 : 1;
    c->next_ping = server ? 2 : 1;
    c->send_window = SPDY_INITIAL_WINDOW;
    c->recv_window = SPDY_INITIAL_WINDOW;
    c->peer_initial_window = SPDY_INITIAL_WINDOW;
    c->local_window = SPDY_INITIAL_WINDOW;
    return 0;
}

static void stream_free(spdy_stream *s)
{
    if (!s)
        return;
    spdy_headers_free(&s->headers);
    free(s);
}

void spdy_conn_free(spdy_conn *c)
{
    for (size_t i = 0; i < c->n_streams; i++)
        stream_free(c->streams[i]);
    free(c->streams);
    spdy_codec_free(&c->codec);
    memset(c, 0, sizeof(*c));
}

void spdy_conn_send_settings(spdy_conn *c, uint32_t window)
{
    if (window < SPDY_INITIAL_WINDOW || window > SPDY_MAX_WINDOW)
        window = SPDY_INITIAL_WINDOW;
    c->local_window = window;
    spdy_setting s = { 0, SPDY_SETTINGS_INITIAL_WINDOW_SIZE, window };
    spdy_put_settings(c->out, 0, &s, 1);
    if (window > SPDY_INITIAL_WINDOW) {
        /* The connection window only grows by WINDOW_UPDATE. */
        spdy_put_window_update(c->out, 0, window - SPDY_INITIAL_WINDOW);
        c->recv_window += window - SPDY_INITIAL_WINDOW;
    }
}

spdy_stream *spdy_conn_find(spdy_conn *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_streams; i++)
        if (c->streams[i]->id == id)
            return c->streams[i];
    return NULL;
}

static spdy_stream *stream_add(spdy_conn *c, uint32_t id)
{
    if (c->n_streams == c->cap_streams) {
        size_t cap = c->cap_streams ? c->cap_streams * 2 : 8;
        spdy_stream **n = realloc(c->streams, cap * sizeof(*n));
        if (!n)
            return NULL;
        c->streams = n;
        c->cap_streams = cap;
    }
    spdy_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->id = id;
    s->send_window = c->peer_initial_window;
    s->recv_window = c->local_window;
    c->streams[c->n_streams++] = s;
    return s;
}

void spdy_conn_remove(spdy_conn *c, spdy_stream *s)
{
    for (size_t i = 0; i < c->n_streams; i++) {
        if (c->streams[i] == s) {
            c->streams[i] = c->streams[--c->n_streams];
            stream_free(s);
            return;
        }
    }
}

spdy_stream *spdy_conn_open(spdy_conn *c, const spdy_headers *h, bool fin, cr_err **err)
{
    if (c->next_id > 0x7fffffffu)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY: stream ids exhausted"), NULL;
    spdy_stream *s = stream_add(c, c->next_id);
    if (!s)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY: out of memory"), NULL;
    c->next_id += 2;
    s->ours = true;
    for (size_t i = 0; h && i < h->n; i++) {
        /* Copy value by value (they may be NUL-joined). */
        size_t pos = 0;
        do {
            if (spdy_headers_add(&s->headers, h->v[i].name, h->v[i].value + pos) < 0) {
                spdy_conn_remove(c, s);
                return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "SPDY: out of memory"), NULL;
            }
            pos += strlen(h->v[i].value + pos) + 1;
        } while (pos <= h->v[i].value_len);
    }
    if (spdy_put_syn_stream(&c->codec, c->out, s->id, 0, 0, fin ? SPDY_FLAG_FIN : 0, &s->headers) < 0) {
        spdy_conn_remove(c, s);
        return cr_err_set(err, CR_INTERNAL, "SPDY: cannot encode SYN_STREAM"), NULL;
    }
    s->local_fin = fin;
    return s;
}

int spdy_conn_reply(spdy_conn *c, spdy_stream *s)
{
    if (s->replied || s->ours)
        return 0;
    spdy_headers none = { 0 };
    if (spdy_put_syn_reply(&c->codec, c->out, s->id, 0, &none) < 0)
        return -1;
    s->replied = true;
    return 0;
}

size_t spdy_conn_allowance(spdy_conn *c, spdy_stream *s)
{
    if (s->local_fin)
        return 0;
    if (!c->peer_flow_control)
        return SPDY_MAX_WINDOW;
    int64_t w = s->send_window < c->send_window ? s->send_window : c->send_window;
    return w > 0 ? (size_t)w : 0;
}

void spdy_conn_send(spdy_conn *c, spdy_stream *s, const void *p, size_t n, bool fin)
{
    if (s->local_fin)
        return;
    if (n > 0 || fin)
        spdy_put_data(c->out, s->id, fin ? SPDY_FLAG_FIN : 0, p, n);
    s->send_window -= (int64_t)n;
    c->send_window -= (int64_t)n;
    if (fin)
        s->local_fin = true;
}

void spdy_conn_reset(spdy_conn *c, spdy_stream *s, uint32_t status)
{
    if (!s->reset && !(s->local_fin && s->remote_fin))
        spdy_put_rst_stream(c->out, s->id, status);
    s->reset = true;
    s->local_fin = true;
    s->remote_fin = true;
}

void spdy_conn_consumed(spdy_conn *c, spdy_stream *s, size_t n)
{
    if (n == 0)
        return;
    /* Grant back in halves of the initial window: few frames, and a sender
     * that honours the window never runs dry. */
    c->recv_unacked += (uint32_t)n;
    if (c->recv_unacked >= c->local_window / 2) {
        spdy_put_window_update(c->out, 0, c->recv_unacked);
        c->recv_window += c->recv_unacked;
        c->recv_unacked = 0;
    }
    if (!s || s->remote_fin)
        return;
    s->recv_unacked += (uint32_t)n;
    if (s->recv_unacked >= c->local_window / 2) {
        spdy_put_window_update(c->out, s->id, s->recv_unacked);
        s->recv_window += s->recv_unacked;
        s->recv_unacked = 0;
    }
}

void spdy_conn_goaway(spdy_conn *c, uint32_t status)
{
    if (c->goaway_sent)
        return;
    spdy_put_goaway(c->out, c->last_peer_id, status);
    c->goaway_sent = true;
}

void spdy_conn_ping(spdy_conn *c)
{
    spdy_put_ping(c->out, c->next_ping);
    c->next_ping += 2;
    if (c->next_ping > 0x7fffffffu)
        c->next_ping = c->server ? 2 : 1;
}

static int conn_error(spdy_conn *c, cr_err **err, const char *fmt, uint32_t a)
{
    spdy_conn_goaway(c, SPDY_GOAWAY_PROTOCOL_ERROR);
    return cr_err_set(err, CR_INVALID_ARGUMENT, fmt, a);
}

int spdy_conn_handle(spdy_conn *c, spdy_frame *f, spdy_event *ev, cr_err **err)
{
    memset(ev, 0, sizeof(*ev));
    spdy_stream *s = NULL;
    switch (f->type) {
    case SPDY_DATA:
        c->recv_window -= (int64_t)f->data_len;
        s = spdy_conn_find(c, f->stream_id);
        if (!s || s->remote_fin) {
            /* A stream that is gone: keep the connection window healthy. */
            spdy_conn_consumed(c, NULL, f->data_len);
            return 0;
        }
        s->recv_window -= (int64_t)f->data_len;
        ev->type = SPDY_EV_DATA;
        ev->stream = s;
        ev->data = f->data;
        ev->len = f->data_len;
        ev->fin = f->flags & SPDY_FLAG_FIN;
        if (ev->fin)
            s->remote_fin = true;
        return 0;
    case SPDY_SYN_STREAM: {
        bool peer_parity = c->server ? (f->stream_id & 1) : !(f->stream_id & 1);
        if (!peer_parity || f->stream_id <= c->last_peer_id) {
            spdy_put_rst_stream(c->out, f->stream_id, SPDY_PROTOCOL_ERROR);
            return 0;
        }
        c->last_peer_id = f->stream_id;
        if (c->goaway_sent) {
            spdy_put_rst_stream(c->out, f->stream_id, SPDY_REFUSED_STREAM);
            return 0;
        }
        s = stream_add(c, f->stream_id);
        if (!s)
            return conn_error(c, err, "SPDY: out of memory for stream %u", f->stream_id);
        s->headers = f->headers;
        memset(&f->headers, 0, sizeof(f->headers));
        s->remote_fin = f->flags & SPDY_FLAG_FIN;
        s->local_fin = f->flags & SPDY_FLAG_UNIDIRECTIONAL;
        ev->type = SPDY_EV_OPEN;
        ev->stream = s;
        ev->fin = s->remote_fin;
        return 0;
    }
    case SPDY_SYN_REPLY:
        s = spdy_conn_find(c, f->stream_id);
        if (!s || !s->ours || s->replied)
            return 0;
        s->replied = true;
        ev->type = SPDY_EV_REPLY;
        ev->stream = s;
        ev->fin = f->flags & SPDY_FLAG_FIN;
        if (ev->fin)
            s->remote_fin = true;
        return 0;
    case SPDY_HEADERS:
        s = spdy_conn_find(c, f->stream_id);
        if (!s || s->remote_fin || !(f->flags & SPDY_FLAG_FIN))
            return 0;
        s->remote_fin = true;
        ev->type = SPDY_EV_DATA;
        ev->stream = s;
        ev->fin = true;
        return 0;
    case SPDY_RST_STREAM:
        s = spdy_conn_find(c, f->stream_id);
        if (!s)
            return 0;
        s->reset = s->local_fin = s->remote_fin = true;
        ev->type = SPDY_EV_RESET;
        ev->stream = s;
        ev->status = f->status;
        return 0;
    case SPDY_SETTINGS:
        c->peer_flow_control = true;
        for (size_t i = 0; i < f->n_settings; i++) {
            if (f->settings[i].id != SPDY_SETTINGS_INITIAL_WINDOW_SIZE)
                continue;
            int64_t nw = f->settings[i].value;
            if (nw > SPDY_MAX_WINDOW)
                return conn_error(c, err, "SPDY: initial window %u too large", f->settings[i].value);
            int64_t delta = nw - c->peer_initial_window;
            for (size_t j = 0; j < c->n_streams; j++)
                c->streams[j]->send_window += delta;
            c->peer_initial_window = nw;
        }
        return 0;
    case SPDY_PING:
        /* Echo the peer's pings (their parity); ours coming back need nothing. */
        if ((f->ping_id & 1) != (c->server ? 0u : 1u))
            spdy_put_ping(c->out, f->ping_id);
        return 0;
    case SPDY_GOAWAY:
        c->goaway_received = true;
        ev->type = SPDY_EV_GOAWAY;
        ev->status = f->status;
        return 0;
    case SPDY_WINDOW_UPDATE:
        c->peer_flow_control = true;
        if (f->delta == 0)
            return 0;
        if (f->stream_id == 0) {
            c->send_window += f->delta;
            if (c->send_window > SPDY_MAX_WINDOW)
                c->send_window = SPDY_MAX_WINDOW;
            return 0;
        }
        s = spdy_conn_find(c, f->stream_id);
        if (s) {
            s->send_window += f->delta;
            if (s->send_window > SPDY_MAX_WINDOW)
                spdy_conn_reset(c, s, SPDY_FLOW_CONTROL_ERROR);
        }
        return 0;
    default:
        return 0;
    }
}
