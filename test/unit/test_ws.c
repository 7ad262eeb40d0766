/* Unit tests for server/stream/ws.c: RFC 6455 framing against the RFC's own
 * examples (sections 1.3 and 5.7), masking rules, fragmentation with
 * interleaved control frames, the closing handshake, protocol errors with
 * their close codes, and the Kubernetes channel encodings (binary, base64). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "server/stream/ws.h"

static const uint8_t mask_rfc[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Feed every frame in buf to c; returns the events seen. */
static int feed_all(ws_conn *c, uint8_t *buf, size_t len, ws_event *evs, int max, int *rc)
{
    int n = 0;
    size_t off = 0;
    *rc = 0;
    while (off < len) {
        size_t used = 0;
        cr_err *e = NULL;
        ws_event ev;
        int r = ws_conn_feed(c, buf + off, len - off, &used, &ev, &e);
        cr_err_free(e);
        if (r <= 0) {
            *rc = r;
            break;
        }
        off += used;
        if (ev.type != WS_EV_NONE && n < max) {
            /* Messages may point into c->msg: copy them out. */
            if (ev.data) {
                uint8_t *d = malloc(ev.len + 1);
                memcpy(d, ev.data, ev.len);
                d[ev.len] = 0;
                ev.data = d;
            }
            evs[n++] = ev;
        }
    }
    return n;
}

static void free_events(ws_event *evs, int n)
{
    for (int i = 0; i < n; i++)
        free((void *)evs[i].data);
}

START_TEST(accept_key_rfc_example)
{
    char out[29];
    ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char key[25];
    ws_make_key(key);
    ck_assert_uint_eq(strlen(key), 24);
    ck_assert(ws_key_valid(key));
    ck_assert(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));
    ck_assert(!ws_key_valid("short"));
}
END_TEST

START_TEST(rfc_single_frames)
{
    /* A single-frame unmasked text message "Hello". */
    uint8_t unmasked[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    /* A single-frame masked text message "Hello". */
    uint8_t masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    ws_frame f;
    size_t used;
    int cc = 0;
    cr_err *e = NULL;
    ck_assert_int_eq(ws_parse_frame(unmasked, sizeof(unmasked), 1000, &f, &used, &cc, &e), 1);
    ck_assert(f.fin && !f.masked && f.opcode == WS_OP_TEXT);
    ck_assert_uint_eq(used, sizeof(unmasked));
    ck_assert(f.len == 5 && memcmp(f.payload, "Hello", 5) == 0);
    ck_assert_int_eq(ws_parse_frame(masked, sizeof(masked), 1000, &f, &used, &cc, &e), 1);
    ck_assert(f.masked && memcmp(f.mask, mask_rfc, 4) == 0);
    ck_assert(f.len == 5 && memcmp(f.payload, "Hello", 5) == 0);

    /* Our encoder writes the same bytes. */
    st_buf b = { 0 };
    ws_put_frame(&b, WS_OP_TEXT, true, "Hello", 5, NULL);
    ck_assert(b.len == 7 && memcmp(st_buf_head(&b), "\x81\x05Hello", 7) == 0);
    st_buf_reset(&b);
    ws_put_frame(&b, WS_OP_TEXT, true, "Hello", 5, mask_rfc);
    static const uint8_t want_masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    ck_assert(b.len == sizeof(want_masked) && memcmp(st_buf_head(&b), want_masked, b.len) == 0);
    st_buf_reset(&b);
    /* Unmasked Ping with "Hello", masked Pong with "Hello". */
    ws_put_frame(&b, WS_OP_PING, true, "Hello", 5, NULL);
    ck_assert(memcmp(st_buf_head(&b), "\x89\x05Hello", 7) == 0);
    st_buf_reset(&b);
    ws_put_frame(&b, WS_OP_PONG, true, "Hello", 5, mask_rfc);
    static const uint8_t pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    ck_assert(memcmp(st_buf_head(&b), pong, sizeof(pong)) == 0);
    st_buf_free(&b);
}
END_TEST

START_TEST(rfc_lengths)
{
    /* 256 bytes binary in a single unmasked frame: 0x82 0x7E 0x0100;
     * 64 KiB: 0x82 0x7F 0x0000000000010000. */
    static uint8_t data[65536];
    st_buf b = { 0 };
    ws_put_frame(&b, WS_OP_BINARY, true, data, 256, NULL);
    ck_assert_uint_eq(b.len, 4 + 256);
    ck_assert(memcmp(st_buf_head(&b), "\x82\x7e\x01\x00", 4) == 0);
    st_buf_reset(&b);
    ws_put_frame(&b, WS_OP_BINARY, true, data, 65536, NULL);
    ck_assert_uint_eq(b.len, 10 + 65536);
    ck_assert(memcmp(st_buf_head(&b), "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10) == 0);
    ws_frame f;
    size_t used;
    int cc;
    cr_err *e = NULL;
    /* Short input asks for more, at every prefix of the header. */
    for (size_t n = 0; n < 10; n++)
        ck_assert_int_eq(ws_parse_frame(st_buf_head(&b), n, 1 << 20, &f, &used, &cc, &e), 0);
    ck_assert_int_eq(ws_parse_frame(st_buf_head(&b), b.len, 1 << 20, &f, &used, &cc, &e), 1);
    ck_assert_uint_eq(f.len, 65536);
    /* Too large for the limit: 1009. */
    ck_assert_int_eq(ws_parse_frame(st_buf_head(&b), b.len, 1000, &f, &used, &cc, &e), -1);
    ck_assert_int_eq(cc, WS_CLOSE_TOO_BIG);
    cr_err_freep(&e);
    st_buf_free(&b);
}
END_TEST

START_TEST(rfc_fragmented_with_ping)
{
    /* A fragmented unmasked text message: "Hel", a ping in between, "lo".
     * A client-role connection receives the server's unmasked frames. */
    uint8_t wire[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x89, 0x02, 'h', 'i', 0x80, 0x02, 0x6c, 0x6f };
    st_buf out = { 0 };
    ws_conn c;
    ws_conn_init(&c, false, &out);
    ws_event ev[4];
    int rc;
    int n = feed_all(&c, wire, sizeof(wire), ev, 4, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ev[0].type, WS_EV_MESSAGE);
    ck_assert_int_eq(ev[0].opcode, WS_OP_TEXT);
    ck_assert(ev[0].len == 5 && memcmp(ev[0].data, "Hello", 5) == 0);
    /* The ping was answered with a masked pong carrying its payload. */
    ck_assert_uint_eq(out.len, 2 + 4 + 2);
    uint8_t *p = st_buf_head(&out);
    ck_assert_uint_eq(p[0], 0x8a);
    ck_assert_uint_eq(p[1], 0x82);
    ck_assert_uint_eq(p[6] ^ p[2], 'h');
    ck_assert_uint_eq(p[7] ^ p[3], 'i');
    free_events(ev, n);
    ws_conn_free(&c);
    st_buf_free(&out);
}
END_TEST

static int expect_error(bool server, uint8_t *wire, size_t len)
{
    st_buf out = { 0 };
    ws_conn c;
    ws_conn_init(&c, server, &out);
    ws_event ev[4];
    int rc;
    int n = feed_all(&c, wire, len, ev, 4, &rc);
    free_events(ev, n);
    ck_assert_int_eq(rc, -1);
    /* A close frame with the code was queued. */
    uint8_t *p = st_buf_head(&out);
    ck_assert(out.len >= 4);
    ck_assert_uint_eq(p[0], 0x88);
    size_t off = server ? 2 : 6;
    int code = server ? (p[2] << 8 | p[3]) : ((p[off] ^ p[2]) << 8 | (p[off + 1] ^ p[3]));
    ws_conn_free(&c);
    st_buf_free(&out);
    return code;
}

START_TEST(protocol_errors)
{
    /* A server must get masked frames; a client unmasked ones. */
    uint8_t unmasked[] = { 0x82, 0x01, 0x00 };
    ck_assert_int_eq(expect_error(true, unmasked, sizeof(unmasked)), WS_CLOSE_PROTOCOL_ERROR);
    uint8_t masked[] = { 0x82, 0x81, 1, 2, 3, 4, 0x00 };
    ck_assert_int_eq(expect_error(false, masked, sizeof(masked)), WS_CLOSE_PROTOCOL_ERROR);
    /* Reserved bits, unknown opcodes, long or fragmented control frames,
     * stray continuations, a new message inside a fragmented one. */
    uint8_t rsv[] = { 0xc2, 0x80, 1, 2, 3, 4 };
    uint8_t op3[] = { 0x83, 0x80, 1, 2, 3, 4 };
    uint8_t longping[130] = { 0x89, 0x80 | 126, 0, 126, 1, 2, 3, 4 };
    uint8_t fragping[] = { 0x09, 0x80, 1, 2, 3, 4 };
    uint8_t cont[] = { 0x80, 0x80, 1, 2, 3, 4 };
    uint8_t nested[] = { 0x01, 0x80, 1, 2, 3, 4, 0x81, 0x80, 1, 2, 3, 4 };
    ck_assert_int_eq(expect_error(true, rsv, sizeof(rsv)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_int_eq(expect_error(true, op3, sizeof(op3)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_int_eq(expect_error(true, longping, sizeof(longping)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_int_eq(expect_error(true, fragping, sizeof(fragping)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_int_eq(expect_error(true, cont, sizeof(cont)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_int_eq(expect_error(true, nested, sizeof(nested)), WS_CLOSE_PROTOCOL_ERROR);
    /* Text that is not UTF-8: 1007 (a lone continuation byte, an overlong
     * encoding of '/'). */
    uint8_t bad1[] = { 0x81, 0x81, 0, 0, 0, 0, 0x80 };
    uint8_t bad2[] = { 0x81, 0x82, 0, 0, 0, 0, 0xc0, 0xaf };
    ck_assert_int_eq(expect_error(true, bad1, sizeof(bad1)), WS_CLOSE_INVALID_DATA);
    ck_assert_int_eq(expect_error(true, bad2, sizeof(bad2)), WS_CLOSE_INVALID_DATA);
    /* Close frames: 1-byte body, or a code that may not be sent. */
    uint8_t close1[] = { 0x88, 0x81, 0, 0, 0, 0, 0x03 };
    uint8_t close1005[] = { 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed };
    ck_assert_int_eq(expect_error(true, close1, sizeof(close1)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_int_eq(expect_error(true, close1005, sizeof(close1005)), WS_CLOSE_PROTOCOL_ERROR);
    ck_assert(ws_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    ck_assert(!ws_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3)); /* a surrogate */
}
END_TEST

START_TEST(closing_handshake)
{
    st_buf out = { 0 };
    ws_conn c;
    ws_conn_init(&c, true, &out);
    /* Masked close 1000 "bye" from the client. */
    uint8_t body[] = { 0x03, 0xe8, 'b', 'y', 'e' };
    st_buf in = { 0 };
    ws_put_frame(&in, WS_OP_CLOSE, true, body, sizeof(body), mask_rfc);
    ws_event ev[2];
    int rc;
    int n = feed_all(&c, st_buf_head(&in), in.len, ev, 2, &rc);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ev[0].type, WS_EV_CLOSE);
    ck_assert_int_eq(ev[0].close_code, 1000);
    ck_assert(c.close_received && c.close_sent);
    /* Our answer echoes the code, unmasked. */
    ck_assert(out.len == 4 && memcmp(st_buf_head(&out), "\x88\x02\x03\xe8", 4) == 0);
    /* Nothing is sent after the close. */
    ws_conn_send(&c, WS_OP_BINARY, "x", 1);
    ck_assert_uint_eq(out.len, 4);
    free_events(ev, n);
    ws_conn_free(&c);
    st_buf_free(&in);
    st_buf_free(&out);

    /* An empty close is answered with 1000. */
    ws_conn_init(&c, false, &out);
    uint8_t empty[] = { 0x88, 0x00 };
    n = feed_all(&c, empty, sizeof(empty), ev, 2, &rc);
    ck_assert_int_eq(ev[0].close_code, WS_CLOSE_NO_STATUS);
    uint8_t *p = st_buf_head(&out);
    ck_assert_uint_eq(p[0], 0x88);
    ck_assert_uint_eq(p[1], 0x82); /* masked: we are the client */
    ck_assert_int_eq((p[6] ^ p[2]) << 8 | (p[7] ^ p[3]), 1000);
    free_events(ev, n);
    ws_conn_free(&c);
    st_buf_free(&out);
}
END_TEST

START_TEST(channel_encodings)
{
    static const ws_proto table[] = {
        { "v4.channel.k8s.io", false, 4 }, { "v4.base64.channel.k8s.io", true, 4 }, { "", false, 1 }, { NULL, false, 0 },
    };
    const ws_proto *bin = ws_proto_find(table, "v4.channel.k8s.io");
    const ws_proto *b64 = ws_proto_find(table, "v4.base64.channel.k8s.io");
    ck_assert_ptr_nonnull(bin);
    ck_assert_ptr_nonnull(ws_proto_find(table, ""));
    ck_assert_ptr_null(ws_proto_find(table, "v5.channel.k8s.io"));
    st_buf out = { 0 };
    ws_conn c;
    ws_conn_init(&c, true, &out);
    ws_send_channel(&c, bin, 1, "foo\n", 4);
    ck_assert(out.len == 7 && memcmp(st_buf_head(&out), "\x82\x05\x01" "foo\n", 7) == 0);
    st_buf_reset(&out);
    /* base64.channel.k8s.io: '1' then base64("\n") = "Cg==", a text frame
     * (the example in wsstream's documentation). */
    ws_send_channel(&c, b64, 1, "\n", 1);
    ck_assert(out.len == 7 && memcmp(st_buf_head(&out), "\x81\x05" "1Cg==", 7) == 0);

    st_buf scratch = { 0 };
    uint8_t ch;
    const uint8_t *d;
    size_t n;
    /* "Zm9vCg==" is "foo\n" on channel '0'. */
    ck_assert_int_eq(ws_decode_channel(b64, WS_OP_TEXT, (const uint8_t *)"0Zm9vCg==", 9, &ch, &scratch, &d, &n), 0);
    ck_assert_uint_eq(ch, 0);
    ck_assert(n == 4 && memcmp(d, "foo\n", 4) == 0);
    ck_assert_int_eq(ws_decode_channel(b64, WS_OP_TEXT, (const uint8_t *)"0Zm9v", 5, &ch, &scratch, &d, &n), 0);
    ck_assert(n == 3 && memcmp(d, "foo", 3) == 0);
    ck_assert_int_eq(ws_decode_channel(b64, WS_OP_TEXT, (const uint8_t *)"0Zm9v!", 6, &ch, &scratch, &d, &n), -1);
    ck_assert_int_eq(ws_decode_channel(bin, WS_OP_BINARY, (const uint8_t *)"\x02xy", 3, &ch, &scratch, &d, &n), 0);
    ck_assert(ch == 2 && n == 2 && memcmp(d, "xy", 2) == 0);
    ck_assert_int_eq(ws_decode_channel(bin, WS_OP_BINARY, (const uint8_t *)"", 0, &ch, &scratch, &d, &n), -1);
    st_buf_free(&scratch);
    ws_conn_free(&c);
    st_buf_free(&out);
}
END_TEST

static Suite *ws_suite(void)
{
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, accept_key_rfc_example);
    tcase_add_test(tc, rfc_single_frames);
    tcase_add_test(tc, rfc_lengths);
    tcase_add_test(tc, rfc_fragmented_with_ping);
    tcase_add_test(tc, protocol_errors);
    tcase_add_test(tc, closing_handshake);
    tcase_add_test(tc, channel_encodings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ws_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
