/* The poll loop that carries one upgraded connection, shared by the
 * streaming server (exec, attach, port-forward) and the client.  Private to
 * server/stream/.
 *
 * A session multiplexes channels over one socket, speaking SPDY/3.1 or a
 * WebSocket channel protocol.  A channel (st_chan) is a SPDY stream or a
 * WebSocket channel number; it can pump a local fd to the peer (src_fd: read
 * until EOF, then FIN), the peer's data into a local fd (dst_fd: written as
 * the fd accepts it, flow-control window granted back as it drains; at the
 * peer's FIN the fd is closed or shut down), or collect the peer's data in
 * memory (the error and resize streams).  The owner (server handler or
 * client) sees what the pumps cannot decide through st_sess_ops: streams the
 * peer opens, collected data, its own fds, and a step() after every round
 * that says when the session is complete.
 *
 * Everything runs on the calling thread; fds the session reads or writes are
 * switched to non-blocking mode unless the owner says they must not be
 * (client-side fds such as a terminal belong to someone else). */
#ifndef CRISP_STREAM_SESSION_H
#define CRISP_STREAM_SESSION_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "server/stream/buf.h"
#include "server/stream/spdy.h"
#include "server/stream/ws.h"

#define ST_CHUNK (32 * 1024)          /* one read from a local fd */
#define ST_OUT_HIGH (256 * 1024)      /* stop reading local fds above this much unsent output */
#define ST_RX_HIGH (1024 * 1024)      /* stop reading the socket above this much undelivered input */
#define ST_COLLECT_MAX (64 * 1024)    /* error / resize stream bytes kept */

typedef struct st_sess st_sess;

enum st_dst_eof {
    ST_DST_CLOSE,    /* close dst_fd (a process's stdin) */
    ST_DST_SHUTDOWN, /* shutdown(SHUT_WR) (a forwarded TCP connection) */
    ST_DST_KEEP,     /* leave it open */
};

typedef struct st_chan {
    int tag;               /* the owner's meaning of this channel */
    uint32_t id;           /* WebSocket channel number (SPDY: sp->id) */
    spdy_stream *sp;       /* SPDY stream, NULL for WebSocket or a local sink */
    int src_fd;            /* read and sent to the peer; -1 for none */
    int dst_fd;            /* the peer's data is written here; -1 for none */
    int *dst_slot;         /* set to -1 when the session closes dst_fd */
    bool own_fds;          /* the session closes src_fd/dst_fd when the channel goes */
    int dst_eof;           /* enum st_dst_eof: what the peer's FIN does to dst_fd */
    bool fin_on_eof;       /* send FIN when src_fd ends */
    bool sink;             /* read src_fd and drop it (nothing to send it on) */
    bool collect;          /* keep the peer's data in rx (up to ST_COLLECT_MAX) */
    bool discard;          /* drop the peer's data */
    size_t skip_rx;        /* drop this many leading bytes of the peer's data */
    bool src_eof;          /* src_fd ended */
    bool remote_fin;       /* the peer finished (FIN, RST, close signal, connection gone) */
    bool dst_done;         /* dst_fd got its EOF treatment (or broke) */
    bool blocking_ok;      /* src/dst fds are someone else's: never change their flags */
    st_buf rx;             /* peer data not yet written to dst_fd, or collected */
    void *user;
} st_chan;

enum st_end {
    ST_END_NONE,
    ST_END_DONE,   /* step() said the session is complete */
    ST_END_PEER,   /* the peer closed the connection */
    ST_END_STOP,   /* the stop fd fired */
    ST_END_IDLE,   /* no traffic for idle_ms */
    ST_END_ERROR,  /* protocol or local error (s->err) */
};

typedef struct st_sess_ops {
    /* SPDY: the peer opened sp (headers in sp->headers).  Add a channel for
     * it (st_chan_add) and return 0 to accept it, -1 to refuse it (reset). */
    int (*on_open)(st_sess *s, spdy_stream *sp);
    /* SPDY: the peer accepted our stream. */
    void (*on_reply)(st_sess *s, st_chan *c);
    /* A collecting channel got data (c->rx) or the peer finished it. */
    void (*on_rx)(st_sess *s, st_chan *c);
    /* More fds to watch: fill up to max entries, return how many. */
    int (*poll_extra)(st_sess *s, struct pollfd *p, int max);
    void (*on_extra)(st_sess *s, struct pollfd *p, int n);
    /* After every round: 1 when complete, 0 to go on, -1 on failure (s->err). */
    int (*step)(st_sess *s);
    /* The owner's next deadline (monotonic ms), 0 for none. */
    int64_t (*deadline)(st_sess *s);
} st_sess_ops;

struct st_sess {
    int fd;                   /* the upgraded connection */
    bool is_spdy;             /* else WebSocket */
    bool server;
    spdy_conn spdy;
    ws_conn ws;
    const ws_proto *proto;    /* WebSocket channel protocol */
    st_buf in, out, scratch;
    uint8_t *rbuf;            /* ST_CHUNK bytes for reads from local fds */
    st_chan **chans;
    size_t n_chans, cap_chans;
    int stop_fd;              /* readable: stop now (-1 for none) */
    int64_t idle_ms;          /* 0: no idle timeout */
    int64_t last_io;
    bool peer_eof;            /* nothing more will come from the peer */
    bool eof_pending;         /* the socket ended: after the buffered frames, the peer is gone */
    bool sock_dead;           /* the socket failed: nothing more can be sent */
    int end;                  /* enum st_end, once run() returned */
    cr_err *err;
    const st_sess_ops *ops;
    void *owner;
};

int64_t st_now_ms(void);

/* Set up a session on an upgraded socket; initial holds bytes read past the
 * HTTP head (already the peer's first frames).  WebSocket sessions pass the
 * negotiated channel protocol. */
int st_sess_init(st_sess *s, int fd, bool is_spdy, bool server, const ws_proto *proto, const void *initial,
                 size_t initial_len, const st_sess_ops *ops, void *owner, cr_err **err);
/* Free everything (channels, their owned fds, the socket). */
void st_sess_free(st_sess *s);

st_chan *st_chan_add(st_sess *s, int tag, uint32_t id, spdy_stream *sp);
st_chan *st_chan_find(st_sess *s, uint32_t id);
/* Drop a channel (its owned fds closed, its SPDY stream forgotten). */
void st_chan_remove(st_sess *s, st_chan *c);
/* Make fd non-blocking (ignoring failure: then it just blocks a little). */
void st_set_nonblock(int fd);

/* Send on a channel, or finish it (FIN; WebSocket v5 close signal when we
 * are the client).  Data goes out regardless of flow control: for small
 * control messages (status, resize, port-forward errors). */
void st_sess_send(st_sess *s, st_chan *c, const void *p, size_t n);
void st_sess_fin(st_sess *s, st_chan *c);
/* Run the loop until step() completes, the peer leaves, the stop fd fires,
 * the idle timeout passes, or an error.  Returns the enum st_end. */
int st_sess_run(st_sess *s);
/* End the connection: graceful (FIN every open channel, GOAWAY / close
 * frame code), or abrupt (RST every open stream, GOAWAY / close code);
 * flush what is queued for up to drain_ms, then close the socket. */
void st_sess_close(st_sess *s, bool graceful, int ws_code, int drain_ms);

#endif
