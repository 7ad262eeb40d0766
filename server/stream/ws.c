#include "ws.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ------------------------------------------------------------------ */
/* handshake keys                                                      */

int ws_accept_key(const char *key, char out[29])
{
    size_t kl = strlen(key), gl = strlen(WS_GUID);
    char *cat = malloc(kl + gl);
    if (!cat)
        return -1;
    memcpy(cat, key, kl);
    memcpy(cat + kl, WS_GUID, gl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(cat, kl + gl, md, &mdlen, EVP_sha1(), NULL);
    free(cat);
    if (!ok || mdlen != 20)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars + NUL */
    return 0;
}

static void random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r <= 0) {
            /* getrandom cannot fail once the pool is ready; be safe anyway. */
            for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)random();
            return;
        }
        b += r;
        n -= (size_t)r;
    }
}

int ws_make_key(char out[25])
{
    unsigned char raw[16];
    random_bytes(raw, sizeof(raw));
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw)); /* 24 chars + NUL */
    return 0;
}

static int b64_decode(const char *s, size_t n, st_buf *out)
{
    if (n % 4 != 0)
        return -1;
    size_t pad = 0;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return -1;
    }
    uint8_t *t = st_buf_reserve(out, n / 4 * 3 + 1);
    if (!t)
        return -1;
    if (n == 0)
        return 0;
    int r = EVP_DecodeBlock(t, (const unsigned char *)s, (int)n);
    if (r < 0 || (size_t)r < pad)
        return -1;
    out->len += (size_t)r - pad;
    return 0;
}

bool ws_key_valid(const char *s)
{
    st_buf b = { 0 };
    bool ok = strlen(s) == 24 && b64_decode(s, 24, &b) == 0 && b.len == 16;
    st_buf_free(&b);
    return ok;
}

bool ws_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* frames                                                              */

static int bad(int *close_code, int code, cr_err **err, const char *what)
{
    *close_code = code;
    return cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: %s", what);
}

int ws_parse_frame(uint8_t *buf, size_t len, size_t max_payload, ws_frame *f, size_t *used, int *close_code,
                   cr_err **err)
{
    memset(f, 0, sizeof(*f));
    if (len < 2)
        return 0;
    f->fin = buf[0] & 0x80;
    f->rsv = (buf[0] >> 4) & 7;
    f->opcode = buf[0] & 0x0f;
    f->masked = buf[1] & 0x80;
    uint64_t plen = buf[1] & 0x7f;
    size_t pos = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = st_get_be16(buf + 2);
        pos = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = (uint64_t)st_get_be32(buf + 2) << 32 | st_get_be32(buf + 6);
        pos = 10;
        if (plen >> 63)
            return bad(close_code, WS_CLOSE_PROTOCOL_ERROR, err, "64-bit length with the top bit set");
    }
    if (f->rsv)
        return bad(close_code, WS_CLOSE_PROTOCOL_ERROR, err, "reserved bits set without an extension");
    switch (f->opcode) {
    case WS_OP_CONT:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!f->fin)
            return bad(close_code, WS_CLOSE_PROTOCOL_ERROR, err, "fragmented control frame");
        if (plen > 125)
            return bad(close_code, WS_CLOSE_PROTOCOL_ERROR, err, "control frame payload over 125 bytes");
        break;
    default:
        return bad(close_code, WS_CLOSE_PROTOCOL_ERROR, err, "unknown opcode");
    }
    if (plen > max_payload)
        return bad(close_code, WS_CLOSE_TOO_BIG, err, "frame too large");
    if (f->masked) {
        if (len - pos < 4)
            return 0;
        memcpy(f->mask, buf + pos, 4);
        pos += 4;
    }
    if (len - pos < plen)
        return 0;
    f->payload = buf + pos;
    f->len = (size_t)plen;
    if (f->masked)
        for (size_t i = 0; i < f->len; i++)
            f->payload[i] ^= f->mask[i & 3];
    *used = pos + f->len;
    return 1;
}

void ws_put_frame(st_buf *out, int opcode, bool fin, const void *p, size_t n, const uint8_t *mask)
{
    st_buf_u8(out, (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f)));
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        st_buf_u8(out, (uint8_t)(m | n));
    } else if (n <= 0xffff) {
        st_buf_u8(out, m | 126);
        st_buf_be16(out, (uint16_t)n);
    } else {
        st_buf_u8(out, m | 127);
        st_buf_be64(out, n);
    }
    if (!mask) {
        st_buf_append(out, p, n);
        return;
    }
    st_buf_append(out, mask, 4);
    uint8_t *t = st_buf_reserve(out, n);
    if (!t)
        return;
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        t[i] = s[i] ^ mask[i & 3];
    out->len += n;
}

/* ------------------------------------------------------------------ */
/* connection                                                          */

void ws_conn_init(ws_conn *c, bool server, st_buf *out)
{
    memset(c, 0, sizeof(*c));
    c->server = server;
    c->out = out;
    c->max_message = WS_MAX_MESSAGE;
}

void ws_conn_free(ws_conn *c) { st_buf_free(&c->msg); }

void ws_conn_send(ws_conn *c, int opcode, const void *p, size_t n)
{
    if (c->close_sent)
        return;
    if (c->server) {
        ws_put_frame(c->out, opcode, true, p, n, NULL);
    } else {
        uint8_t mask[4];
        random_bytes(mask, sizeof(mask));
        ws_put_frame(c->out, opcode, true, p, n, mask);
    }
}

void ws_conn_close(ws_conn *c, int code, const char *reason)
{
    if (c->close_sent)
        return;
    uint8_t body[125];
    size_t n = 0;
    if (code > 0 && code != WS_CLOSE_NO_STATUS) {
        body[0] = (uint8_t)(code >> 8);
        body[1] = (uint8_t)code;
        n = 2;
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > sizeof(body) - 2)
            rl = sizeof(body) - 2;
        if (rl)
            memcpy(body + 2, reason, rl);
        n += rl;
    }
    ws_conn_send(c, WS_OP_CLOSE, body, n);
    c->close_sent = true;
}

static bool close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

static int feed_fail(ws_conn *c, int code, cr_err **err)
{
    ws_conn_close(c, code, NULL);
    return -1;
}

int ws_conn_feed(ws_conn *c, uint8_t *buf, size_t len, size_t *used, ws_event *ev, cr_err **err)
{
    memset(ev, 0, sizeof(*ev));
    if (c->msg_done) {
        st_buf_reset(&c->msg);
        c->msg_opcode = 0;
        c->msg_done = false;
    }
    ws_frame f;
    int code = 0;
    int r = ws_parse_frame(buf, len, c->max_message, &f, used, &code, err);
    if (r < 0)
        return feed_fail(c, code, err);
    if (r == 0)
        return 0;
    if (c->close_received)
        return 1; /* nothing may follow a close frame: ignore it */
    if (c->server && !f.masked) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: unmasked frame from the client");
        return feed_fail(c, WS_CLOSE_PROTOCOL_ERROR, err);
    }
    if (!c->server && f.masked) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: masked frame from the server");
        return feed_fail(c, WS_CLOSE_PROTOCOL_ERROR, err);
    }
    switch (f.opcode) {
    case WS_OP_PING:
        ws_conn_send(c, WS_OP_PONG, f.payload, f.len);
        return 1;
    case WS_OP_PONG:
        return 1;
    case WS_OP_CLOSE: {
        int cc = WS_CLOSE_NO_STATUS;
        if (f.len == 1) {
            cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: close frame with a 1-byte body");
            return feed_fail(c, WS_CLOSE_PROTOCOL_ERROR, err);
        }
        if (f.len >= 2) {
            cc = st_get_be16(f.payload);
            if (!close_code_valid(cc)) {
                cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: invalid close code %d", cc);
                return feed_fail(c, WS_CLOSE_PROTOCOL_ERROR, err);
            }
            if (!ws_utf8_valid(f.payload + 2, f.len - 2)) {
                cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: close reason is not UTF-8");
                return feed_fail(c, WS_CLOSE_INVALID_DATA, err);
            }
        }
        c->close_received = true;
        c->close_code = cc;
        ws_conn_close(c, cc == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : cc, NULL);
        ev->type = WS_EV_CLOSE;
        ev->close_code = cc;
        return 1;
    }
    case WS_OP_CONT:
        if (!c->msg_opcode) {
            cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: continuation without a message");
            return feed_fail(c, WS_CLOSE_PROTOCOL_ERROR, err);
        }
        break;
    default: /* TEXT, BINARY */
        if (c->msg_opcode) {
            cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: new message inside a fragmented one");
            return feed_fail(c, WS_CLOSE_PROTOCOL_ERROR, err);
        }
        if (f.fin) {
            /* The common case, one frame: no copy. */
            if (f.opcode == WS_OP_TEXT && !ws_utf8_valid(f.payload, f.len)) {
                cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: text message is not UTF-8");
                return feed_fail(c, WS_CLOSE_INVALID_DATA, err);
            }
            ev->type = WS_EV_MESSAGE;
            ev->opcode = f.opcode;
            ev->data = f.payload;
            ev->len = f.len;
            return 1;
        }
        c->msg_opcode = f.opcode;
        break;
    }
    if (c->msg.len + f.len > c->max_message) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: message larger than %zu bytes", c->max_message);
        return feed_fail(c, WS_CLOSE_TOO_BIG, err);
    }
    st_buf_append(&c->msg, f.payload, f.len);
    if (c->msg.oom) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "websocket: out of memory");
        return feed_fail(c, WS_CLOSE_INTERNAL, err);
    }
    if (!f.fin)
        return 1;
    if (c->msg_opcode == WS_OP_TEXT && !ws_utf8_valid(st_buf_head(&c->msg), c->msg.len)) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "websocket: text message is not UTF-8");
        return feed_fail(c, WS_CLOSE_INVALID_DATA, err);
    }
    ev->type = WS_EV_MESSAGE;
    ev->opcode = c->msg_opcode;
    ev->data = st_buf_head(&c->msg);
    ev->len = c->msg.len;
    c->msg_done = true;
    return 1;
}

/* ------------------------------------------------------------------ */
/* channel protocols                                                   */

const ws_proto *ws_proto_find(const ws_proto *table, const char *name)
{
    for (const ws_proto *p = table; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

void ws_send_channel(ws_conn *c, const ws_proto *p, uint8_t ch, const void *data, size_t n)
{
    st_buf m = { 0 };
    if (p->base64) {
        st_buf_u8(&m, (uint8_t)('0' + ch));
        uint8_t *t = st_buf_reserve(&m, 4 * ((n + 2) / 3) + 1);
        if (t) {
            if (n)
                m.len += (size_t)EVP_EncodeBlock(t, data, (int)n);
        }
        if (!m.oom)
            ws_conn_send(c, WS_OP_TEXT, st_buf_head(&m), m.len);
    } else {
        st_buf_u8(&m, ch);
        st_buf_append(&m, data, n);
        if (!m.oom)
            ws_conn_send(c, WS_OP_BINARY, st_buf_head(&m), m.len);
    }
    if (m.oom)
        c->out->oom = true;
    st_buf_free(&m);
}

int ws_decode_channel(const ws_proto *p, int opcode, const uint8_t *msg, size_t n, uint8_t *ch,
                      st_buf *scratch, const uint8_t **data, size_t *len)
{
    if (n == 0)
        return -1;
    if (!p->base64) {
        *ch = msg[0];
        *data = msg + 1;
        *len = n - 1;
        return 0;
    }
    (void)opcode;
    if (msg[0] < '0' || msg[0] > '9')
        return -1;
    *ch = (uint8_t)(msg[0] - '0');
    st_buf_reset(scratch);
    if (b64_decode((const char *)msg + 1, n - 1, scratch) < 0)
        return -1;
    *data = st_buf_head(scratch);
    *len = scratch->len;
    return 0;
}
