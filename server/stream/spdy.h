/* SPDY/3.1 framing and connection state, as spoken by Kubernetes'
 * httpstream/spdy (github.com/moby/spdystream on the other end).
 *
 * Two layers, neither doing I/O:
 *  - the codec: one frame at a time, parse (spdy_parse) and encode
 *    (spdy_put_*), with the name/value header blocks compressed by one zlib
 *    deflate context (sending) and one inflate context (receiving) per
 *    connection, both primed with the SPDY/3 dictionary;
 *  - the connection (spdy_conn): stream table, stream-id rules for the client
 *    (odd ids) and server (even ids) roles, per-stream and per-connection
 *    flow-control windows, and the control frames that need no decision
 *    (PING echo, SETTINGS, WINDOW_UPDATE), turning every other frame into an
 *    event for the caller.
 *
 * Flow control: our receive windows are 64 KiB; we send WINDOW_UPDATE as the
 * caller reports data consumed.  Our send windows follow the peer's SETTINGS
 * and WINDOW_UPDATEs, and are enforced once the peer has shown that it does
 * flow control (it sent SETTINGS or WINDOW_UPDATE): spdystream, the
 * implementation every Kubernetes component uses, never sends either and never
 * grants window, so holding it to 64 KiB would stall every stream. */
#ifndef CRISP_STREAM_SPDY_H
#define CRISP_STREAM_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "lib/err.h"
#include "server/stream/buf.h"

#define SPDY_VERSION 3

enum spdy_type {
    SPDY_DATA = 0, /* not a control type: data frames have no type field */
    SPDY_SYN_STREAM = 1,
    SPDY_SYN_REPLY = 2,
    SPDY_RST_STREAM = 3,
    SPDY_SETTINGS = 4,
    SPDY_PING = 6,
    SPDY_GOAWAY = 7,
    SPDY_HEADERS = 8,
    SPDY_WINDOW_UPDATE = 9,
};

#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02
#define SPDY_SETTINGS_CLEAR 0x01

enum spdy_rst_status {
    SPDY_PROTOCOL_ERROR = 1,
    SPDY_INVALID_STREAM = 2,
    SPDY_REFUSED_STREAM = 3,
    SPDY_UNSUPPORTED_VERSION = 4,
    SPDY_CANCEL = 5,
    SPDY_INTERNAL_ERROR = 6,
    SPDY_FLOW_CONTROL_ERROR = 7,
    SPDY_STREAM_IN_USE = 8,
    SPDY_STREAM_ALREADY_CLOSED = 9,
    SPDY_FRAME_TOO_LARGE = 11,
};

enum spdy_goaway_status { SPDY_GOAWAY_OK = 0, SPDY_GOAWAY_PROTOCOL_ERROR = 1, SPDY_GOAWAY_INTERNAL_ERROR = 2 };

#define SPDY_SETTINGS_MAX_CONCURRENT_STREAMS 4
#define SPDY_SETTINGS_INITIAL_WINDOW_SIZE 7

#define SPDY_INITIAL_WINDOW 65536
#define SPDY_MAX_WINDOW 0x7fffffff
#define SPDY_MAX_FRAME 0xffffff         /* 24-bit length */
#define SPDY_MAX_HEADER_BLOCK (256 * 1024) /* decompressed name/value block */

/* The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1). */
extern const unsigned char spdy_dictionary[];
extern const size_t spdy_dictionary_len;

/* ---- name/value header blocks ---- */

typedef struct spdy_header {
    char *name;   /* lowercase */
    char *value;  /* several values are joined by NUL bytes */
    size_t value_len;
} spdy_header;

typedef struct spdy_headers {
    spdy_header *v;
    size_t n;
} spdy_headers;

/* Add a header (name lowercased; a second value for the same name is
 * NUL-joined onto the first, as a header block must not repeat a name). */
int spdy_headers_add(spdy_headers *h, const char *name, const char *value);
/* The first value of a header, case-insensitively; NULL when absent. */
const char *spdy_headers_get(const spdy_headers *h, const char *name);
void spdy_headers_free(spdy_headers *h);

/* ---- codec ---- */

typedef struct spdy_codec {
    z_stream def, inf;
    bool def_ok, inf_ok;
    bool inf_dict_set;
} spdy_codec;

int spdy_codec_init(spdy_codec *c, cr_err **err);
void spdy_codec_free(spdy_codec *c);

typedef struct spdy_setting {
    uint8_t flags;
    uint32_t id;   /* 24 bits */
    uint32_t value;
} spdy_setting;

typedef struct spdy_frame {
    int type;                 /* enum spdy_type; SPDY_DATA for data frames */
    uint16_t version;         /* control frames */
    uint8_t flags;
    uint32_t length;          /* payload length */
    uint32_t stream_id;       /* DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE */
    uint32_t assoc_id;        /* SYN_STREAM */
    uint8_t priority, slot;   /* SYN_STREAM */
    uint32_t status;          /* RST_STREAM, GOAWAY */
    uint32_t last_good_id;    /* GOAWAY */
    uint32_t ping_id;         /* PING */
    uint32_t delta;           /* WINDOW_UPDATE */
    spdy_setting *settings;   /* SETTINGS */
    size_t n_settings;
    spdy_headers headers;     /* SYN_STREAM, SYN_REPLY, HEADERS */
    const uint8_t *data;      /* DATA: points into the parsed buffer */
    size_t data_len;
} spdy_frame;

/* Parse one frame from buf.  Returns 1 when a whole frame was there (*used
 * bytes of it, *f filled; release with spdy_frame_clear), 0 when more bytes
 * are needed, -1 on a malformed frame (*err says why; the connection must be
 * torn down, since the shared header decompressor is now out of step).
 * Unknown control frame types are returned with their type and skipped
 * payload, as the draft asks receivers to ignore them. */
int spdy_parse(spdy_codec *c, const uint8_t *buf, size_t len, spdy_frame *f, size_t *used, cr_err **err);
void spdy_frame_clear(spdy_frame *f);

/* Encoders append one frame to out (an allocation failure sets out->oom; a
 * compression failure returns -1). */
int spdy_put_syn_stream(spdy_codec *c, st_buf *out, uint32_t id, uint32_t assoc, uint8_t priority,
                        uint8_t flags, const spdy_headers *h);
int spdy_put_syn_reply(spdy_codec *c, st_buf *out, uint32_t id, uint8_t flags, const spdy_headers *h);
int spdy_put_headers(spdy_codec *c, st_buf *out, uint32_t id, uint8_t flags, const spdy_headers *h);
void spdy_put_rst_stream(st_buf *out, uint32_t id, uint32_t status);
void spdy_put_settings(st_buf *out, uint8_t flags, const spdy_setting *s, size_t n);
void spdy_put_ping(st_buf *out, uint32_t id);
void spdy_put_goaway(st_buf *out, uint32_t last_good_id, uint32_t status);
void spdy_put_window_update(st_buf *out, uint32_t id, uint32_t delta);
void spdy_put_data(st_buf *out, uint32_t id, uint8_t flags, const void *p, size_t n);

/* ---- connection ---- */

typedef struct spdy_stream {
    uint32_t id;
    bool ours;              /* we opened it (SYN_STREAM sent) */
    bool replied;           /* SYN_REPLY sent (theirs) or received (ours) */
    bool local_fin;         /* we sent FIN or RST */
    bool remote_fin;        /* peer sent FIN or RST */
    bool reset;             /* RST_STREAM sent or received */
    int64_t send_window;    /* what the peer lets us send */
    int64_t recv_window;    /* what we let the peer send */
    uint32_t recv_unacked;  /* consumed, not yet granted back */
    spdy_headers headers;   /* from the SYN_STREAM */
    void *user;
} spdy_stream;

typedef struct spdy_conn {
    bool server;
    spdy_codec codec;
    st_buf *out;                 /* frames to send are appended here */
    uint32_t next_id;            /* next id for a stream we open */
    uint32_t last_peer_id;       /* highest id the peer opened */
    uint32_t next_ping;
    int64_t send_window;         /* connection level (SPDY/3.1) */
    int64_t recv_window;
    uint32_t recv_unacked;
    int64_t peer_initial_window; /* for new streams, from the peer's SETTINGS */
    bool peer_flow_control;      /* the peer sent SETTINGS or WINDOW_UPDATE */
    uint32_t local_window;       /* the receive window we announced per stream */
    bool goaway_received, goaway_sent;
    spdy_stream **streams;
    size_t n_streams, cap_streams;
} spdy_conn;

int spdy_conn_init(spdy_conn *c, bool server, st_buf *out, cr_err **err);
void spdy_conn_free(spdy_conn *c);
/* Announce our settings: the receive window of every stream, 64 KiB
 * (SPDY_INITIAL_WINDOW) up to SPDY_MAX_WINDOW (a larger one also widens the
 * connection window, by one WINDOW_UPDATE).  Peers that read it know we do
 * flow control.  Our client asks for the largest: it then never has to send
 * WINDOW_UPDATEs while output streams in, which a server that closes
 * without reading them (the kubelet library in containerd) would answer
 * with a TCP reset that loses the end of the output. */
void spdy_conn_send_settings(spdy_conn *c, uint32_t window);

spdy_stream *spdy_conn_find(spdy_conn *c, uint32_t id);
/* Open a stream (SYN_STREAM); headers are copied. */
spdy_stream *spdy_conn_open(spdy_conn *c, const spdy_headers *h, bool fin, cr_err **err);
/* Accept a stream the peer opened (SYN_REPLY with no headers). */
int spdy_conn_reply(spdy_conn *c, spdy_stream *s);
/* How many bytes may be sent on s now (flow control; 0 once FIN was sent). */
size_t spdy_conn_allowance(spdy_conn *c, spdy_stream *s);
/* Send data (at most the allowance; callers ask first) and/or FIN. */
void spdy_conn_send(spdy_conn *c, spdy_stream *s, const void *p, size_t n, bool fin);
/* Reset a stream (RST_STREAM); it counts as finished both ways. */
void spdy_conn_reset(spdy_conn *c, spdy_stream *s, uint32_t status);
/* n received bytes of s were delivered: grant the window back (s may be NULL
 * for bytes of a stream that is gone). */
void spdy_conn_consumed(spdy_conn *c, spdy_stream *s, size_t n);
/* Forget a stream that is finished both ways. */
void spdy_conn_remove(spdy_conn *c, spdy_stream *s);
void spdy_conn_goaway(spdy_conn *c, uint32_t status);
void spdy_conn_ping(spdy_conn *c);

typedef enum spdy_event_type {
    SPDY_EV_NONE,        /* handled inside (PING, SETTINGS, WINDOW_UPDATE, ignored frames) */
    SPDY_EV_OPEN,        /* the peer opened stream ev.stream; reply or reset it */
    SPDY_EV_REPLY,       /* the peer accepted our stream ev.stream */
    SPDY_EV_DATA,        /* ev.data/ev.len for ev.stream (len may be 0); ev.fin */
    SPDY_EV_RESET,       /* the peer reset ev.stream (ev.status) */
    SPDY_EV_GOAWAY,      /* the peer is going away */
} spdy_event_type;

typedef struct spdy_event {
    spdy_event_type type;
    spdy_stream *stream;
    const uint8_t *data;
    size_t len;
    bool fin;            /* DATA, OPEN, REPLY: the peer finished the stream */
    uint32_t status;
} spdy_event;

/* Apply one parsed frame.  Returns 0 with *ev filled, or -1 on a connection
 * error (*err set; a GOAWAY has been queued).  Stream-level errors (data for
 * an unknown stream, a bad stream id) are answered with RST_STREAM and
 * reported as SPDY_EV_NONE. */
int spdy_conn_handle(spdy_conn *c, spdy_frame *f, spdy_event *ev, cr_err **err);

#endif
