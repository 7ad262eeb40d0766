/* Unit tests for server/stream/spdy.c: the SPDY/3 dictionary, frame
 * encode/decode against byte vectors built from the draft and from other
 * implementations, header compression across frames with the shared zlib
 * contexts, and the connection layer (stream ids, replies, PING, flow
 * control windows). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/err.h"
#include "server/stream/spdy.h"

/* ---- helpers ---- */

static void codec_pair(spdy_codec *a, spdy_codec *b)
{
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_codec_init(a, &e), 0);
    ck_assert_int_eq(spdy_codec_init(b, &e), 0);
    ck_assert_ptr_null(e);
}

/* Parse exactly one whole frame from buf. */
static void parse_one(spdy_codec *c, const uint8_t *buf, size_t len, spdy_frame *f)
{
    cr_err *e = NULL;
    size_t used = 0;
    int r = spdy_parse(c, buf, len, f, &used, &e);
    if (r != 1)
        ck_abort_msg("parse: %d (%s)", r, e ? e->msg : "need more");
    ck_assert_uint_eq(used, len);
    cr_err_free(e);
}

static void headers_add(spdy_headers *h, const char *n, const char *v)
{
    ck_assert_int_eq(spdy_headers_add(h, n, v), 0);
}

/* ---- dictionary ---- */

START_TEST(dictionary_is_the_spdy3_one)
{
    ck_assert_uint_eq(spdy_dictionary_len, 1423);
    ck_assert(memcmp(spdy_dictionary, "\0\0\0\7options\0\0\0\4head", 19) == 0);
    ck_assert(memcmp(spdy_dictionary + 1423 - 6, "enq=0.", 6) == 0);
    /* Its Adler-32 is the DICTID every SPDY/3 compressed header block names
     * (78 bb e3 c6 a7 c2 ...). */
    ck_assert_uint_eq(adler32(1, spdy_dictionary, (uInt)spdy_dictionary_len), 0xe3c6a7c2u);
}
END_TEST

/* ---- decoding frames from another implementation ---- */

/* A SPDY/3 SYN_REPLY (stream 123, FIN, host: test, user-agent: ...) as a C#
 * SPDY implementation's tests write it; only our dictionary can inflate it. */
static const uint8_t syn_reply_vector[] = {
    0x80, 0x03, 0x00, 0x02, 0x01, 0x00, 0x00, 0x6A, 0x00, 0x00, 0x00, 0x7B, 0x78, 0xBB, 0xE3, 0xC6, 0xA7, 0xC2,
    0x02, 0xE5, 0x0E, 0xA4, 0xF2, 0x80, 0xA5, 0x24, 0x15, 0x4C, 0xA3, 0x66, 0x80, 0x30, 0xDF, 0xFC, 0xAA, 0xCC,
    0x9C, 0x9C, 0x44, 0x7D, 0x53, 0x3D, 0x03, 0x05, 0x0D, 0xDF, 0xC4, 0xE4, 0xCC, 0xBC, 0x92, 0xFC, 0xE2, 0x0C,
    0x6B, 0x70, 0x04, 0xE5, 0x00, 0xC3, 0x35, 0x59, 0xC1, 0x3F, 0x58, 0x21, 0x42, 0xC1, 0xD0, 0x40, 0xCF, 0xD2,
    0x5A, 0xA1, 0xA8, 0xCC, 0x4A, 0xC1, 0xD4, 0x40, 0xCF, 0x40, 0x53, 0xC1, 0x3D, 0x35, 0x39, 0x3B, 0x5F, 0x41,
    0x5F, 0x01, 0x98, 0x38, 0xC1, 0x89, 0x54, 0xC1, 0x0D, 0x58, 0x0C, 0xA5, 0xE5, 0x57, 0x00, 0x85, 0x40, 0x0A,
    0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF,
};

START_TEST(decode_foreign_syn_reply)
{
    spdy_codec c;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_codec_init(&c, &e), 0);
    spdy_frame f;
    parse_one(&c, syn_reply_vector, sizeof(syn_reply_vector), &f);
    ck_assert_int_eq(f.type, SPDY_SYN_REPLY);
    ck_assert_uint_eq(f.version, 3);
    ck_assert_uint_eq(f.flags, SPDY_FLAG_FIN);
    ck_assert_uint_eq(f.stream_id, 123);
    ck_assert_uint_eq(f.headers.n, 2);
    ck_assert_str_eq(spdy_headers_get(&f.headers, "host"), "test");
    ck_assert_str_eq(spdy_headers_get(&f.headers, "User-Agent"),
                     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv: 50.0) Gecko / 20100101 Firefox / 50.0");
    spdy_frame_clear(&f);
    spdy_codec_free(&c);
}
END_TEST

/* A SPDY/3.1 SYN_STREAM whose name/value block claims a name longer than the
 * frame (from proxygen's codec tests): a protocol error, not a crash. */
START_TEST(reject_bad_nv_block)
{
    static const uint8_t v[] = {
        0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x78, 0xbb, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0xc6, 0xff, 0x40, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    };
    spdy_codec c;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_codec_init(&c, &e), 0);
    spdy_frame f;
    size_t used = 0;
    ck_assert_int_eq(spdy_parse(&c, v, sizeof(v), &f, &used, &e), -1);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e->msg, "SYN_STREAM 1"));
    cr_err_free(e);
    spdy_frame_clear(&f);
    spdy_codec_free(&c);
}
END_TEST

/* ---- encoding ---- */

/* SYN_STREAM layout (draft 3, 2.6.1): C|version|type, flags|length,
 * stream id, associated id, priority<<5, slot, then the compressed block
 * opening with the zlib header for the default level with a preset
 * dictionary (78 bb) and the dictionary's id. */
START_TEST(syn_stream_layout)
{
    spdy_codec tx, rx;
    codec_pair(&tx, &rx);
    spdy_headers h = { 0 };
    headers_add(&h, "streamType", "error");
    st_buf out = { 0 };
    ck_assert_int_eq(spdy_put_syn_stream(&tx, &out, 5, 0, 3, SPDY_FLAG_FIN, &h), 0);
    const uint8_t *p = st_buf_head(&out);
    static const uint8_t fixed[] = { 0x80, 0x03, 0x00, 0x01, 0x01 };
    ck_assert(memcmp(p, fixed, sizeof(fixed)) == 0);
    uint32_t len = (uint32_t)p[5] << 16 | p[6] << 8 | p[7];
    ck_assert_uint_eq(len + 8, out.len);
    static const uint8_t ids[] = { 0, 0, 0, 5, 0, 0, 0, 0, 3 << 5, 0, 0x78, 0xbb, 0xe3, 0xc6, 0xa7, 0xc2 };
    ck_assert(memcmp(p + 8, ids, sizeof(ids)) == 0);
    /* A sync-flushed block ends with an empty stored block. */
    ck_assert(memcmp(p + out.len - 4, "\x00\x00\xff\xff", 4) == 0);

    spdy_frame f;
    parse_one(&rx, p, out.len, &f);
    ck_assert_int_eq(f.type, SPDY_SYN_STREAM);
    ck_assert_uint_eq(f.stream_id, 5);
    ck_assert_uint_eq(f.assoc_id, 0);
    ck_assert_uint_eq(f.priority, 3);
    ck_assert_uint_eq(f.flags, SPDY_FLAG_FIN);
    ck_assert_uint_eq(f.headers.n, 1);
    ck_assert_str_eq(f.headers.v[0].name, "streamtype"); /* names travel lowercase */
    ck_assert_str_eq(f.headers.v[0].value, "error");
    spdy_frame_clear(&f);
    spdy_headers_free(&h);
    st_buf_free(&out);
    spdy_codec_free(&tx);
    spdy_codec_free(&rx);
}
END_TEST

/* One deflate and one inflate context per direction per connection: later
 * blocks refer back to earlier ones, so they must be decoded in order by the
 * same context, and repeated headers shrink. */
START_TEST(header_compression_round_trip)
{
    spdy_codec tx, rx;
    codec_pair(&tx, &rx);
    st_buf out = { 0 };
    size_t sizes[4];
    for (int i = 0; i < 4; i++) {
        spdy_headers h = { 0 };
        headers_add(&h, "streamtype", i == 3 ? "data" : "stdout");
        headers_add(&h, "port", "8080");
        headers_add(&h, "requestid", "17");
        if (i == 2) {
            headers_add(&h, "x-multi", "one");
            headers_add(&h, "X-Multi", "two"); /* same name: NUL-joined values */
        }
        size_t before = out.len;
        if (i % 2 == 0)
            ck_assert_int_eq(spdy_put_syn_stream(&tx, &out, (uint32_t)(2 * i + 1), 0, 0, 0, &h), 0);
        else
            ck_assert_int_eq(spdy_put_headers(&tx, &out, (uint32_t)(2 * i + 1), 0, &h), 0);
        sizes[i] = out.len - before;
        spdy_headers_free(&h);
    }
    ck_assert_uint_lt(sizes[1], sizes[0]);
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        spdy_frame f;
        size_t used = 0;
        cr_err *e = NULL;
        ck_assert_int_eq(spdy_parse(&rx, st_buf_head(&out) + off, out.len - off, &f, &used, &e), 1);
        ck_assert_uint_eq(used, sizes[i]);
        off += used;
        ck_assert_int_eq(f.type, i % 2 == 0 ? SPDY_SYN_STREAM : SPDY_HEADERS);
        ck_assert_uint_eq(f.stream_id, (uint32_t)(2 * i + 1));
        ck_assert_str_eq(spdy_headers_get(&f.headers, "streamtype"), i == 3 ? "data" : "stdout");
        ck_assert_str_eq(spdy_headers_get(&f.headers, "port"), "8080");
        ck_assert_str_eq(spdy_headers_get(&f.headers, "RequestID"), "17");
        if (i == 2) {
            const char *v = spdy_headers_get(&f.headers, "x-multi");
            ck_assert_str_eq(v, "one");
            ck_assert_str_eq(v + 4, "two");
        }
        spdy_frame_clear(&f);
    }
    ck_assert_uint_eq(off, out.len);
    /* A fresh inflater cannot pick up mid-stream. */
    spdy_codec fresh;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_codec_init(&fresh, &e), 0);
    spdy_frame f;
    size_t used;
    ck_assert_int_eq(spdy_parse(&fresh, st_buf_head(&out) + sizes[0], sizes[1], &f, &used, &e), -1);
    cr_err_free(e);
    spdy_frame_clear(&f);
    spdy_codec_free(&fresh);
    st_buf_free(&out);
    spdy_codec_free(&tx);
    spdy_codec_free(&rx);
}
END_TEST

/* The fixed-layout frames, byte for byte (draft 3, 2.6). */
START_TEST(fixed_frames_bytes)
{
    st_buf b = { 0 };
    spdy_put_rst_stream(&b, 3, SPDY_CANCEL);
    static const uint8_t rst[] = { 0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5 };
    ck_assert_uint_eq(b.len, sizeof(rst));
    ck_assert(memcmp(st_buf_head(&b), rst, sizeof(rst)) == 0);
    st_buf_reset(&b);

    spdy_setting s = { 1, SPDY_SETTINGS_INITIAL_WINDOW_SIZE, 65536 };
    spdy_put_settings(&b, 0, &s, 1);
    static const uint8_t set[] = { 0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0, 0, 1, 1, 0, 0, 7, 0, 1, 0, 0 };
    ck_assert_uint_eq(b.len, sizeof(set));
    ck_assert(memcmp(st_buf_head(&b), set, sizeof(set)) == 0);
    st_buf_reset(&b);

    spdy_put_ping(&b, 0x01020304);
    static const uint8_t ping[] = { 0x80, 3, 0, 6, 0, 0, 0, 4, 1, 2, 3, 4 };
    ck_assert(b.len == sizeof(ping) && memcmp(st_buf_head(&b), ping, sizeof(ping)) == 0);
    st_buf_reset(&b);

    spdy_put_goaway(&b, 7, SPDY_GOAWAY_PROTOCOL_ERROR);
    static const uint8_t ga[] = { 0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 7, 0, 0, 0, 1 };
    ck_assert(b.len == sizeof(ga) && memcmp(st_buf_head(&b), ga, sizeof(ga)) == 0);
    st_buf_reset(&b);

    spdy_put_window_update(&b, 0, 32768);
    static const uint8_t wu[] = { 0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x80, 0 };
    ck_assert(b.len == sizeof(wu) && memcmp(st_buf_head(&b), wu, sizeof(wu)) == 0);
    st_buf_reset(&b);

    spdy_put_data(&b, 0x12345, SPDY_FLAG_FIN, "hi", 2);
    static const uint8_t data[] = { 0, 1, 0x23, 0x45, 1, 0, 0, 2, 'h', 'i' };
    ck_assert(b.len == sizeof(data) && memcmp(st_buf_head(&b), data, sizeof(data)) == 0);
    st_buf_free(&b);
}
END_TEST

START_TEST(fixed_frames_parse)
{
    spdy_codec c;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_codec_init(&c, &e), 0);
    st_buf b = { 0 };
    spdy_setting s[2] = { { 0, SPDY_SETTINGS_MAX_CONCURRENT_STREAMS, 100 }, { 1, SPDY_SETTINGS_INITIAL_WINDOW_SIZE, 1000 } };
    spdy_put_settings(&b, SPDY_SETTINGS_CLEAR, s, 2);
    spdy_frame f;
    parse_one(&c, st_buf_head(&b), b.len, &f);
    ck_assert_int_eq(f.type, SPDY_SETTINGS);
    ck_assert_uint_eq(f.flags, SPDY_SETTINGS_CLEAR);
    ck_assert_uint_eq(f.n_settings, 2);
    ck_assert_uint_eq(f.settings[1].flags, 1);
    ck_assert_uint_eq(f.settings[1].id, SPDY_SETTINGS_INITIAL_WINDOW_SIZE);
    ck_assert_uint_eq(f.settings[1].value, 1000);
    spdy_frame_clear(&f);
    st_buf_reset(&b);

    spdy_put_data(&b, 9, SPDY_FLAG_FIN, "payload", 7);
    parse_one(&c, st_buf_head(&b), b.len, &f);
    ck_assert_int_eq(f.type, SPDY_DATA);
    ck_assert_uint_eq(f.stream_id, 9);
    ck_assert_uint_eq(f.flags, SPDY_FLAG_FIN);
    ck_assert_uint_eq(f.data_len, 7);
    ck_assert(memcmp(f.data, "payload", 7) == 0);
    spdy_frame_clear(&f);
    st_buf_reset(&b);

    /* Every strict prefix asks for more bytes. */
    spdy_put_goaway(&b, 3, 0);
    for (size_t n = 0; n < b.len; n++) {
        size_t used;
        ck_assert_int_eq(spdy_parse(&c, st_buf_head(&b), n, &f, &used, &e), 0);
    }
    parse_one(&c, st_buf_head(&b), b.len, &f);
    ck_assert_int_eq(f.type, SPDY_GOAWAY);
    ck_assert_uint_eq(f.last_good_id, 3);
    spdy_frame_clear(&f);

    /* An unknown control type (10, CREDENTIAL) is skipped whole. */
    static const uint8_t cred[] = { 0x80, 3, 0, 10, 0, 0, 0, 3, 'a', 'b', 'c' };
    parse_one(&c, cred, sizeof(cred), &f);
    ck_assert_int_eq(f.type, 10);
    spdy_frame_clear(&f);

    /* Malformed: a PING of 5 bytes, SPDY/2, data for stream 0. */
    static const uint8_t badping[] = { 0x80, 3, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1, 0 };
    static const uint8_t v2[] = { 0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1 };
    static const uint8_t data0[] = { 0, 0, 0, 0, 0, 0, 0, 1, 'x' };
    const uint8_t *bad[] = { badping, v2, data0 };
    size_t badn[] = { sizeof(badping), sizeof(v2), sizeof(data0) };
    for (int i = 0; i < 3; i++) {
        size_t used;
        ck_assert_int_eq(spdy_parse(&c, bad[i], badn[i], &f, &used, &e), -1);
        ck_assert_ptr_nonnull(e);
        cr_err_freep(&e);
        spdy_frame_clear(&f);
    }
    st_buf_free(&b);
    spdy_codec_free(&c);
}
END_TEST

/* ---- connection ---- */

typedef struct pair {
    st_buf c2s, s2c;
    spdy_conn cli, srv;
} pair;

static void pair_init(pair *p)
{
    memset(p, 0, sizeof(*p));
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_conn_init(&p->cli, false, &p->c2s, &e), 0);
    ck_assert_int_eq(spdy_conn_init(&p->srv, true, &p->s2c, &e), 0);
}

static void pair_free(pair *p)
{
    spdy_conn_free(&p->cli);
    spdy_conn_free(&p->srv);
    st_buf_free(&p->c2s);
    st_buf_free(&p->s2c);
}

/* Deliver every queued frame from `from` to conn, collecting events. */
static int pump(spdy_conn *to, st_buf *from, spdy_event *evs, int max)
{
    int n = 0;
    while (from->len > 0) {
        spdy_frame f;
        size_t used = 0;
        cr_err *e = NULL;
        int r = spdy_parse(&to->codec, st_buf_head(from), from->len, &f, &used, &e);
        if (r != 1)
            ck_abort_msg("pump parse %d: %s", r, e ? e->msg : "short");
        spdy_event ev;
        ck_assert_int_eq(spdy_conn_handle(to, &f, &ev, &e), 0);
        if (ev.type != SPDY_EV_NONE && n < max)
            evs[n++] = ev;
        spdy_frame_clear(&f);
        st_buf_consume(from, used);
    }
    return n;
}

START_TEST(conn_open_reply_data)
{
    pair p;
    pair_init(&p);
    cr_err *e = NULL;
    spdy_headers h = { 0 };
    headers_add(&h, "streamType", "stdout");
    spdy_stream *a = spdy_conn_open(&p.cli, &h, false, &e);
    spdy_stream *b = spdy_conn_open(&p.cli, &h, false, &e);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->id, 1); /* client ids are odd */
    ck_assert_uint_eq(b->id, 3);
    spdy_event ev[8];
    ck_assert_int_eq(pump(&p.srv, &p.c2s, ev, 8), 2);
    ck_assert_int_eq(ev[0].type, SPDY_EV_OPEN);
    ck_assert_str_eq(spdy_headers_get(&ev[0].stream->headers, "streamtype"), "stdout");
    spdy_stream *sa = ev[0].stream, *sb = ev[1].stream;
    ck_assert_int_eq(spdy_conn_reply(&p.srv, sa), 0);
    ck_assert_int_eq(spdy_conn_reply(&p.srv, sb), 0);
    ck_assert_int_eq(pump(&p.cli, &p.s2c, ev, 8), 2);
    ck_assert_int_eq(ev[0].type, SPDY_EV_REPLY);
    ck_assert_ptr_eq(ev[0].stream, a);
    ck_assert(a->replied && b->replied);

    spdy_conn_send(&p.srv, sa, "out", 3, true);
    spdy_conn_reset(&p.srv, sb, SPDY_CANCEL);
    ck_assert_int_eq(pump(&p.cli, &p.s2c, ev, 8), 2);
    ck_assert_int_eq(ev[0].type, SPDY_EV_DATA);
    ck_assert_uint_eq(ev[0].len, 3);
    ck_assert(ev[0].fin);
    ck_assert(a->remote_fin);
    ck_assert_int_eq(ev[1].type, SPDY_EV_RESET);
    ck_assert_uint_eq(ev[1].status, SPDY_CANCEL);
    ck_assert(b->reset && b->local_fin && b->remote_fin);

    /* A server-side id (even) from the client is refused with RST. */
    spdy_put_syn_stream(&p.cli.codec, &p.c2s, 6, 0, 0, 0, &h);
    ck_assert_int_eq(pump(&p.srv, &p.c2s, ev, 8), 0);
    ck_assert_uint_gt(p.s2c.len, 0);
    ck_assert_int_eq(pump(&p.cli, &p.s2c, ev, 8), 0);
    spdy_headers_free(&h);
    pair_free(&p);
}
END_TEST

START_TEST(conn_ping_echo)
{
    pair p;
    pair_init(&p);
    spdy_event ev[4];
    spdy_conn_ping(&p.cli); /* id 1, odd: the client's */
    ck_assert_int_eq(pump(&p.srv, &p.c2s, ev, 4), 0);
    static const uint8_t echo[] = { 0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1 };
    ck_assert_uint_eq(p.s2c.len, sizeof(echo));
    ck_assert(memcmp(st_buf_head(&p.s2c), echo, sizeof(echo)) == 0);
    /* Our own ping coming back is not echoed again. */
    ck_assert_int_eq(pump(&p.cli, &p.s2c, ev, 4), 0);
    ck_assert_uint_eq(p.c2s.len, 0);
    pair_free(&p);
}
END_TEST

START_TEST(conn_flow_control)
{
    pair p;
    pair_init(&p);
    cr_err *e = NULL;
    spdy_event ev[8];
    spdy_headers h = { 0 };
    headers_add(&h, "streamtype", "stdout");
    spdy_stream *cs = spdy_conn_open(&p.cli, &h, false, &e);
    pump(&p.srv, &p.c2s, ev, 8);
    spdy_stream *ss = ev[0].stream;
    spdy_conn_reply(&p.srv, ss);
    pump(&p.cli, &p.s2c, ev, 8);

    /* A peer that never announced flow control (spdystream) is not held to
     * the window. */
    ck_assert_uint_gt(spdy_conn_allowance(&p.srv, ss), 1u << 20);
    /* Once it does, 64 KiB per stream and per connection. */
    spdy_conn_send_settings(&p.cli, SPDY_INITIAL_WINDOW);
    pump(&p.srv, &p.c2s, ev, 8);
    ck_assert(p.srv.peer_flow_control);
    ck_assert_uint_eq(spdy_conn_allowance(&p.srv, ss), 65536);
    static uint8_t blob[40000];
    spdy_conn_send(&p.srv, ss, blob, sizeof(blob), false);
    ck_assert_uint_eq(spdy_conn_allowance(&p.srv, ss), 65536 - 40000);
    spdy_conn_send(&p.srv, ss, blob, 65536 - 40000, false);
    ck_assert_uint_eq(spdy_conn_allowance(&p.srv, ss), 0);
    ck_assert_int_eq(pump(&p.cli, &p.s2c, ev, 8), 2);
    ck_assert_uint_eq(ev[0].len + ev[1].len, 65536);

    /* Consuming less than half the window grants nothing yet... */
    spdy_conn_consumed(&p.cli, cs, 20000);
    ck_assert_uint_eq(p.c2s.len, 0);
    /* ...past it, a stream and a connection WINDOW_UPDATE. */
    spdy_conn_consumed(&p.cli, cs, 20000);
    ck_assert_uint_eq(p.c2s.len, 32);
    pump(&p.srv, &p.c2s, ev, 8);
    ck_assert_uint_eq(spdy_conn_allowance(&p.srv, ss), 40000);
    ck_assert_int_eq(p.srv.send_window, 40000);

    /* A SETTINGS change of the initial window moves open streams' windows. */
    spdy_setting s = { 0, SPDY_SETTINGS_INITIAL_WINDOW_SIZE, 65536 + 1000 };
    spdy_put_settings(&p.c2s, 0, &s, 1);
    pump(&p.srv, &p.c2s, ev, 8);
    ck_assert_int_eq(ss->send_window, 41000);
    ck_assert_uint_eq(spdy_conn_allowance(&p.srv, ss), 40000); /* the connection window limits */

    /* After FIN nothing more may be sent. */
    spdy_conn_send(&p.srv, ss, NULL, 0, true);
    ck_assert_uint_eq(spdy_conn_allowance(&p.srv, ss), 0);
    spdy_headers_free(&h);
    pair_free(&p);
}
END_TEST

/* Our client announces the largest window once and then never sends a
 * WINDOW_UPDATE while output streams in. */
START_TEST(conn_wide_open_window)
{
    pair p;
    pair_init(&p);
    cr_err *e = NULL;
    spdy_event ev[8];
    spdy_conn_send_settings(&p.cli, SPDY_MAX_WINDOW);
    pump(&p.srv, &p.c2s, ev, 8);
    ck_assert(p.srv.peer_flow_control);
    ck_assert_int_eq(p.srv.send_window, SPDY_MAX_WINDOW);
    spdy_headers h = { 0 };
    headers_add(&h, "streamtype", "stdout");
    spdy_stream *cs = spdy_conn_open(&p.cli, &h, false, &e);
    pump(&p.srv, &p.c2s, ev, 8);
    spdy_stream *ss = ev[0].stream;
    ck_assert_int_eq(ss->send_window, SPDY_MAX_WINDOW);
    spdy_conn_consumed(&p.cli, cs, 16u << 20);
    ck_assert_uint_eq(p.c2s.len, 0); /* 16 MiB later, still nothing to send */
    /* Out-of-range requests fall back to the default. */
    spdy_conn_send_settings(&p.srv, 10);
    ck_assert_uint_eq(p.srv.local_window, SPDY_INITIAL_WINDOW);
    spdy_headers_free(&h);
    pair_free(&p);
}
END_TEST

START_TEST(conn_data_for_unknown_stream)
{
    pair p;
    pair_init(&p);
    spdy_event ev[4];
    spdy_put_data(&p.c2s, 41, 0, "zz", 2);
    ck_assert_int_eq(pump(&p.srv, &p.c2s, ev, 4), 0);
    ck_assert_uint_eq(p.s2c.len, 0);
    pair_free(&p);
}
END_TEST

static Suite *spdy_suite(void)
{
    Suite *s = suite_create("spdy");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, dictionary_is_the_spdy3_one);
    tcase_add_test(tc, decode_foreign_syn_reply);
    tcase_add_test(tc, reject_bad_nv_block);
    tcase_add_test(tc, syn_stream_layout);
    tcase_add_test(tc, header_compression_round_trip);
    tcase_add_test(tc, fixed_frames_bytes);
    tcase_add_test(tc, fixed_frames_parse);
    suite_add_tcase(s, tc);
    tc = tcase_create("conn");
    tcase_add_test(tc, conn_open_reply_data);
    tcase_add_test(tc, conn_ping_echo);
    tcase_add_test(tc, conn_flow_control);
    tcase_add_test(tc, conn_wide_open_window);
    tcase_add_test(tc, conn_data_for_unknown_stream);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spdy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
