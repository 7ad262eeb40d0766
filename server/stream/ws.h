/* WebSocket (RFC 6455) framing and the Kubernetes channel sub-protocols
 * (k8s.io/apimachinery wsstream):
 *
 *   channel.k8s.io            binary messages, first byte = channel number
 *   base64.channel.k8s.io     text messages, first char = '0' + channel, then base64
 *   v4.channel.k8s.io         as channel.k8s.io; the error channel carries metav1.Status JSON
 *   v4.base64.channel.k8s.io  as base64.channel.k8s.io, v4 status
 *   v5.channel.k8s.io         v4 plus the CLOSE signal: message {255, channel}
 *                             half-closes that channel (stdin EOF)
 *
 * Port forwarding uses the v4 protocols with two channels per port (data
 * 2i, error 2i+1), the first message of each carrying the port as 2 bytes,
 * little-endian.  No I/O here: frames are parsed from and appended to
 * buffers.  Private to server/stream/. */
#ifndef CRISP_STREAM_WS_H
#define CRISP_STREAM_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "server/stream/buf.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_MESSAGE (16 * 1024 * 1024)
#define WS_CLOSE_SIGNAL 255 /* v5: {255, channel} half-closes a channel */

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,   /* never sent: a close frame without a code */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)),
 * 28 characters and a NUL. */
int ws_accept_key(const char *key, char out[29]);
/* A fresh random Sec-WebSocket-Key (16 random bytes, base64), 24 chars + NUL. */
int ws_make_key(char out[25]);
/* Whether s is a valid Sec-WebSocket-Key (base64 of 16 bytes). */
bool ws_key_valid(const char *s);
bool ws_utf8_valid(const uint8_t *p, size_t n);

typedef struct ws_frame {
    bool fin;
    uint8_t rsv;      /* RSV1-3, must be 0 without extensions */
    int opcode;
    bool masked;
    uint8_t mask[4];
    uint8_t *payload; /* inside the parsed buffer, unmasked in place */
    size_t len;
} ws_frame;

/* Parse one frame from buf, unmasking its payload in place.  Returns 1 (a
 * whole frame, *used bytes), 0 (need more) or -1 (malformed: *close_code is
 * the close code to answer with, *err the reason). */
int ws_parse_frame(uint8_t *buf, size_t len, size_t max_payload, ws_frame *f, size_t *used, int *close_code,
                   cr_err **err);
/* Append one frame; mask NULL sends it unmasked (server), else masked with
 * those 4 bytes (client). */
void ws_put_frame(st_buf *out, int opcode, bool fin, const void *p, size_t n, const uint8_t *mask);

/* One end of a WebSocket connection: message reassembly, PING/PONG, the
 * closing handshake. */
typedef struct ws_conn {
    bool server;          /* peer frames must be masked; ours are not */
    st_buf *out;
    st_buf msg;           /* fragmented message being reassembled */
    int msg_opcode;       /* its opcode, 0 when none */
    bool msg_done;        /* msg was handed out: reset on the next feed */
    size_t max_message;
    bool close_sent, close_received;
    int close_code;       /* the code the peer sent */
} ws_conn;

void ws_conn_init(ws_conn *c, bool server, st_buf *out);
void ws_conn_free(ws_conn *c);

typedef enum ws_event_type { WS_EV_NONE, WS_EV_MESSAGE, WS_EV_CLOSE } ws_event_type;

typedef struct ws_event {
    ws_event_type type;
    int opcode;            /* MESSAGE: WS_OP_TEXT or WS_OP_BINARY */
    const uint8_t *data;   /* valid until the next ws_conn_feed */
    size_t len;
    int close_code;        /* CLOSE */
} ws_event;

/* Consume at most one frame from buf.  Returns 1 (*used bytes consumed, *ev
 * filled), 0 (need more bytes) or -1 on a protocol violation (a close frame
 * with the right code has been queued; drop the connection after sending
 * it). */
int ws_conn_feed(ws_conn *c, uint8_t *buf, size_t len, size_t *used, ws_event *ev, cr_err **err);
/* Send a whole message or control frame (masked when we are the client). */
void ws_conn_send(ws_conn *c, int opcode, const void *p, size_t n);
/* Start (or answer) the closing handshake; once only. */
void ws_conn_close(ws_conn *c, int code, const char *reason);

/* ---- Kubernetes channel protocols ---- */

typedef struct ws_proto {
    const char *name;  /* "" when the client asked for no sub-protocol */
    bool base64;       /* text messages, base64 payload */
    int version;       /* 1 (channel.k8s.io), 4, 5 */
} ws_proto;

/* The protocol named name in table (terminated by a NULL name), or NULL. */
const ws_proto *ws_proto_find(const ws_proto *table, const char *name);
/* Send data on a channel. */
void ws_send_channel(ws_conn *c, const ws_proto *p, uint8_t ch, const void *data, size_t n);
/* Split a received message into channel and payload (base64 decoded into
 * scratch).  Returns 0, or -1 when the message is malformed for p. */
int ws_decode_channel(const ws_proto *p, int opcode, const uint8_t *msg, size_t n, uint8_t *ch,
                      st_buf *scratch, const uint8_t **data, size_t *len);

#endif
