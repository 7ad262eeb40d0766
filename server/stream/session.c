#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define MAX_POLL 512

int64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void st_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A write to a pipe whose reader is gone raises SIGPIPE; the session
 * threads keep it blocked, and a pending one is swallowed here. */
static void eat_sigpipe(void)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&set, NULL, &zero);
    }
}

int st_sess_init(st_sess *s, int fd, bool is_spdy, bool server, const ws_proto *proto, const void *initial,
                 size_t initial_len, const st_sess_ops *ops, void *owner, cr_err **err)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->is_spdy = is_spdy;
    s->server = server;
    s->proto = proto;
    s->ops = ops;
    s->owner = owner;
    s->stop_fd = -1;
    s->last_io = st_now_ms();
    if (is_spdy) {
        if (spdy_conn_init(&s->spdy, server, &s->out, err) < 0)
            return -1;
    } else {
        ws_conn_init(&s->ws, server, &s->out);
    }
    st_buf_append(&s->in, initial, initial_len);
    st_set_nonblock(fd);
    return s->in.oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream session: out of memory") : 0;
}

static void chan_free(st_sess *s, st_chan *c)
{
    if (c->own_fds) {
        if (c->src_fd >= 0)
            close(c->src_fd);
        if (c->dst_fd >= 0 && c->dst_fd != c->src_fd)
            close(c->dst_fd);
    }
    if (c->sp && s->is_spdy) {
        c->sp->user = NULL;
        spdy_conn_remove(&s->spdy, c->sp);
    }
    st_buf_free(&c->rx);
    free(c);
}

void st_sess_free(st_sess *s)
{
    for (size_t i = 0; i < s->n_chans; i++)
        chan_free(s, s->chans[i]);
    free(s->chans);
    if (s->is_spdy)
        spdy_conn_free(&s->spdy);
    else
        ws_conn_free(&s->ws);
    st_buf_free(&s->in);
    st_buf_free(&s->out);
    st_buf_free(&s->scratch);
    free(s->rbuf);
    if (s->fd >= 0)
        close(s->fd);
    cr_err_free(s->err);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}

st_chan *st_chan_add(st_sess *s, int tag, uint32_t id, spdy_stream *sp)
{
    if (s->n_chans == s->cap_chans) {
        size_t cap = s->cap_chans ? s->cap_chans * 2 : 8;
        st_chan **n = realloc(s->chans, cap * sizeof(*n));
        if (!n)
            return NULL;
        s->chans = n;
        s->cap_chans = cap;
    }
    st_chan *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->tag = tag;
    c->id = sp ? sp->id : id;
    c->sp = sp;
    c->src_fd = c->dst_fd = -1;
    c->fin_on_eof = true;
    c->dst_eof = ST_DST_KEEP;
    if (sp)
        sp->user = c;
    s->chans[s->n_chans++] = c;
    return c;
}

st_chan *st_chan_find(st_sess *s, uint32_t id)
{
    for (size_t i = 0; i < s->n_chans; i++)
        if (s->chans[i]->id == id)
            return s->chans[i];
    return NULL;
}

void st_chan_remove(st_sess *s, st_chan *c)
{
    for (size_t i = 0; i < s->n_chans; i++) {
        if (s->chans[i] == c) {
            memmove(&s->chans[i], &s->chans[i + 1], (s->n_chans - i - 1) * sizeof(*s->chans));
            s->n_chans--;
            chan_free(s, c);
            return;
        }
    }
}

static void fail(st_sess *s, int code, const char *msg)
{
    if (!s->err)
        cr_err_set(&s->err, code, "%s", msg);
}

void st_sess_send(st_sess *s, st_chan *c, const void *p, size_t n)
{
    if (s->sock_dead)
        return;
    if (s->is_spdy) {
        if (c->sp && !c->sp->local_fin && n > 0)
            spdy_conn_send(&s->spdy, c->sp, p, n, false);
    } else if (!c->sink) {
        ws_send_channel(&s->ws, s->proto, (uint8_t)c->id, p, n);
    }
}

void st_sess_fin(st_sess *s, st_chan *c)
{
    if (s->sock_dead)
        return;
    if (s->is_spdy) {
        if (c->sp && !c->sp->local_fin)
            spdy_conn_send(&s->spdy, c->sp, NULL, 0, true);
    } else if (!s->server && s->proto && s->proto->version >= 5 && !c->sink) {
        uint8_t sig[2] = { WS_CLOSE_SIGNAL, (uint8_t)c->id };
        ws_conn_send(&s->ws, WS_OP_BINARY, sig, sizeof(sig));
    }
}

/* Peer bytes held for local fds: all of them (to stop reading the socket
 * when too much piles up), or only those that can still be delivered. */
static size_t rx_held(st_sess *s, bool deliverable_only)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_chans; i++) {
        st_chan *c = s->chans[i];
        if (c->collect || c->dst_done)
            continue;
        if (deliverable_only && c->dst_fd < 0)
            continue;
        n += c->rx.len;
    }
    return n;
}

static void deliver_done(st_sess *s, st_chan *c)
{
    if (c->dst_done || c->rx.len > 0 || !c->remote_fin || c->collect)
        return;
    /* A destination may still be wired later (the process starts after the
     * client's stdin already ended): its EOF must reach it then. */
    if (c->dst_fd < 0 && !c->discard)
        return;
    c->dst_done = true;
    if (c->dst_fd < 0)
        return;
    if (c->dst_eof == ST_DST_CLOSE) {
        /* A socket may have dups elsewhere (the other direction): only
         * shutdown() tells the far end. */
        shutdown(c->dst_fd, SHUT_WR);
        if (c->dst_fd != c->src_fd)
            close(c->dst_fd);
        if (c->dst_slot)
            *c->dst_slot = -1;
        c->dst_fd = -1;
    } else if (c->dst_eof == ST_DST_SHUTDOWN) {
        shutdown(c->dst_fd, SHUT_WR);
    }
}

static void remote_finished(st_sess *s, st_chan *c)
{
    if (c->remote_fin)
        return;
    c->remote_fin = true;
    if (c->collect && s->ops->on_rx)
        s->ops->on_rx(s, c);
    deliver_done(s, c);
}

/* The peer's bytes for channel c. */
static void chan_receive(st_sess *s, st_chan *c, const uint8_t *p, size_t n)
{
    size_t used_now = n; /* bytes not kept waiting for dst_fd: window goes back at once */
    if (c->skip_rx) {
        size_t k = c->skip_rx < n ? c->skip_rx : n;
        c->skip_rx -= k;
        p += k;
        n -= k;
    }
    if (n > 0 && c->collect) {
        size_t room = c->rx.len < ST_COLLECT_MAX ? ST_COLLECT_MAX - c->rx.len : 0;
        st_buf_append(&c->rx, p, n < room ? n : room);
        if (s->ops->on_rx)
            s->ops->on_rx(s, c);
    } else if (n > 0 && !c->discard && !c->dst_done) {
        st_buf_append(&c->rx, p, n);
        used_now -= n;
    }
    if (s->is_spdy && used_now)
        spdy_conn_consumed(&s->spdy, c->sp, used_now);
}

static void peer_gone(st_sess *s)
{
    s->peer_eof = true;
    for (size_t i = 0; i < s->n_chans; i++)
        remote_finished(s, s->chans[i]);
}

static int handle_spdy(st_sess *s)
{
    for (;;) {
        spdy_frame f;
        size_t used = 0;
        cr_err *e = NULL;
        int r = spdy_parse(&s->spdy.codec, st_buf_head(&s->in), s->in.len, &f, &used, &e);
        if (r == 0)
            return 0;
        if (r < 0) {
            spdy_frame_clear(&f);
            spdy_conn_goaway(&s->spdy, SPDY_GOAWAY_PROTOCOL_ERROR);
            if (!s->err)
                s->err = e;
            else
                cr_err_free(e);
            return -1;
        }
        spdy_event ev;
        r = spdy_conn_handle(&s->spdy, &f, &ev, &e);
        if (r < 0) {
            spdy_frame_clear(&f);
            if (!s->err)
                s->err = e;
            else
                cr_err_free(e);
            return -1;
        }
        st_chan *c = ev.stream ? ev.stream->user : NULL;
        switch (ev.type) {
        case SPDY_EV_OPEN:
            if (s->ops->on_open && s->ops->on_open(s, ev.stream) == 0) {
                if (spdy_conn_reply(&s->spdy, ev.stream) < 0)
                    fail(s, CR_INTERNAL, "SPDY: cannot encode SYN_REPLY");
                c = ev.stream->user;
                if (c && ev.fin)
                    remote_finished(s, c);
            } else {
                st_chan *oc = ev.stream->user;
                spdy_conn_reset(&s->spdy, ev.stream, SPDY_REFUSED_STREAM);
                if (oc)
                    st_chan_remove(s, oc);
                else
                    spdy_conn_remove(&s->spdy, ev.stream);
            }
            break;
        case SPDY_EV_REPLY:
            if (c && s->ops->on_reply)
                s->ops->on_reply(s, c);
            if (c && ev.fin)
                remote_finished(s, c);
            break;
        case SPDY_EV_DATA:
            if (c) {
                chan_receive(s, c, ev.data, ev.len);
                if (ev.fin)
                    remote_finished(s, c);
            } else {
                spdy_conn_consumed(&s->spdy, ev.stream, ev.len);
            }
            break;
        case SPDY_EV_RESET:
            if (c)
                remote_finished(s, c);
            break;
        default:
            break;
        }
        spdy_frame_clear(&f);
        st_buf_consume(&s->in, used);
        if (s->err)
            return -1;
    }
}

static int handle_ws_message(st_sess *s, const ws_event *ev)
{
    const uint8_t *m = ev->data;
    if (ev->len == 0)
        return 0;
    if (s->server && s->proto->version >= 5 && m[0] == WS_CLOSE_SIGNAL && !s->proto->base64) {
        if (ev->len != 2) {
            fail(s, CR_INVALID_ARGUMENT, "websocket: a close signal takes exactly one channel byte");
            return -1;
        }
        st_chan *c = st_chan_find(s, m[1]);
        if (c)
            remote_finished(s, c);
        return 0;
    }
    uint8_t ch;
    const uint8_t *data;
    size_t n;
    if (ws_decode_channel(s->proto, ev->opcode, m, ev->len, &ch, &s->scratch, &data, &n) < 0)
        return 0; /* the kubelet drops undecodable messages */
    st_chan *c = st_chan_find(s, ch);
    if (c)
        chan_receive(s, c, data, n);
    return 0;
}

static int handle_ws(st_sess *s)
{
    for (;;) {
        ws_event ev;
        size_t used = 0;
        cr_err *e = NULL;
        int r = ws_conn_feed(&s->ws, st_buf_head(&s->in), s->in.len, &used, &ev, &e);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (!s->err)
                s->err = e;
            else
                cr_err_free(e);
            return -1;
        }
        if (ev.type == WS_EV_MESSAGE && handle_ws_message(s, &ev) < 0) {
            st_buf_consume(&s->in, used);
            ws_conn_close(&s->ws, WS_CLOSE_PROTOCOL_ERROR, NULL);
            return -1;
        }
        st_buf_consume(&s->in, used);
        if (ev.type == WS_EV_CLOSE) {
            peer_gone(s);
            return 0;
        }
    }
}

static void sock_read(st_sess *s)
{
    for (int i = 0; i < 4; i++) {
        uint8_t *t = st_buf_reserve(&s->in, 64 * 1024);
        if (!t) {
            fail(s, CR_RESOURCE_EXHAUSTED, "stream session: out of memory");
            return;
        }
        ssize_t n = recv(s->fd, t, 64 * 1024, 0);
        if (n > 0) {
            s->in.len += (size_t)n;
            s->last_io = st_now_ms();
            if (n < 64 * 1024)
                return;
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0)
            s->sock_dead = true;
        /* Frames still buffered come first: the peer is gone after them. */
        s->eof_pending = true;
        return;
    }
}

/* 0, or -1 when the socket broke (the queued output is dropped). */
static int sock_write(st_sess *s)
{
    while (s->out.len > 0) {
        ssize_t n = send(s->fd, st_buf_head(&s->out), s->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            st_buf_consume(&s->out, (size_t)n);
            s->last_io = st_now_ms();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        s->sock_dead = true;
        st_buf_reset(&s->out);
        return -1;
    }
    return 0;
}

static bool wants_src(st_sess *s, st_chan *c)
{
    if (c->src_fd < 0 || c->src_eof || s->sock_dead)
        return false;
    if (c->sink || (c->sp && c->sp->reset))
        return true; /* read and drop, so the writer never blocks */
    if (s->out.len >= ST_OUT_HIGH)
        return false;
    if (s->is_spdy)
        return c->sp && spdy_conn_allowance(&s->spdy, c->sp) > 0;
    return !s->ws.close_sent;
}

static void src_read(st_sess *s, st_chan *c)
{
    if (!s->rbuf && !(s->rbuf = malloc(ST_CHUNK)))
        return; /* out of memory: try again next round */
    uint8_t *buf = s->rbuf;
    size_t want = ST_CHUNK;
    bool drop = c->sink || (c->sp && c->sp->reset);
    if (!drop && s->is_spdy) {
        size_t a = spdy_conn_allowance(&s->spdy, c->sp);
        if (a < want)
            want = a;
    }
    if (want == 0)
        return;
    ssize_t n = read(c->src_fd, buf, want);
    if (n > 0) {
        if (!drop)
            st_sess_send(s, c, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* EOF, or EIO from a pty master whose slave side is all closed. */
    c->src_eof = true;
    if (c->fin_on_eof && !drop)
        st_sess_fin(s, c);
}

static void dst_write(st_sess *s, st_chan *c)
{
    while (c->rx.len > 0) {
        ssize_t n = write(c->dst_fd, st_buf_head(&c->rx), c->rx.len);
        if (n > 0) {
            st_buf_consume(&c->rx, (size_t)n);
            if (s->is_spdy)
                spdy_conn_consumed(&s->spdy, c->sp, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* The reader is gone (EPIPE) or the fd broke: drop what is left. */
        if (n < 0 && errno == EPIPE)
            eat_sigpipe();
        if (s->is_spdy)
            spdy_conn_consumed(&s->spdy, c->sp, c->rx.len);
        st_buf_reset(&c->rx);
        c->dst_done = true;
        return;
    }
    deliver_done(s, c);
}

void st_sess_close(st_sess *s, bool graceful, int ws_code, int drain_ms)
{
    if (s->fd < 0)
        return;
    if (!s->sock_dead) {
        if (s->is_spdy) {
            for (size_t i = 0; i < s->n_chans; i++) {
                st_chan *c = s->chans[i];
                if (!c->sp)
                    continue;
                if (graceful)
                    st_sess_fin(s, c);
                else if (!c->sp->local_fin || !c->sp->remote_fin)
                    spdy_conn_reset(&s->spdy, c->sp, SPDY_CANCEL);
            }
            spdy_conn_goaway(&s->spdy, SPDY_GOAWAY_OK);
        } else {
            ws_conn_close(&s->ws, ws_code ? ws_code : WS_CLOSE_NORMAL, NULL);
        }
    }
    /* Flush, then half-close and read until the peer closes too: closing
     * with unread input would reset the connection and could destroy what
     * we just sent before the peer read it. */
    int64_t deadline = st_now_ms() + drain_ms;
    bool shut = false;
    uint8_t junk[4096];
    while (!s->sock_dead) {
        if (s->out.len == 0 && !shut) {
            shutdown(s->fd, SHUT_WR);
            shut = true;
        }
        int64_t left = deadline - st_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = { .fd = s->fd, .events = (short)(POLLIN | (s->out.len ? POLLOUT : 0)) };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if ((p.revents & POLLOUT) && sock_write(s) < 0)
            break;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(s->fd, junk, sizeof(junk), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
        }
    }
    close(s->fd);
    s->fd = -1;
}

int st_sess_run(st_sess *s)
{
    struct pollfd pfd[MAX_POLL];
    st_chan *pch[MAX_POLL];
    char pkind[MAX_POLL]; /* 's' source, 'd' destination */
    for (;;) {
        /* Parse what is buffered first: frames can arrive with the HTTP head. */
        if (s->in.len > 0 && !s->err) {
            if ((s->is_spdy ? handle_spdy(s) : handle_ws(s)) < 0 || s->err) {
                s->end = ST_END_ERROR;
                return s->end;
            }
        }
        if (s->eof_pending && !s->peer_eof)
            peer_gone(s);
        if (s->out.oom || s->in.oom) {
            fail(s, CR_RESOURCE_EXHAUSTED, "stream session: out of memory");
            s->end = ST_END_ERROR;
            return s->end;
        }
        int r = s->ops->step ? s->ops->step(s) : 0;
        if (r != 0) {
            s->end = r > 0 ? ST_END_DONE : ST_END_ERROR;
            return s->end;
        }
        if (s->peer_eof && rx_held(s, true) == 0) {
            s->end = ST_END_PEER;
            return s->end;
        }

        int n = 0;
        int sock_i = n;
        pfd[n].fd = s->fd;
        pfd[n].events = 0;
        if (!s->peer_eof && !s->eof_pending && rx_held(s, false) < ST_RX_HIGH)
            pfd[n].events |= POLLIN;
        if (s->out.len > 0 && !s->sock_dead)
            pfd[n].events |= POLLOUT;
        if (pfd[n].events == 0)
            pfd[n].fd = -1; /* else a hung-up socket would wake us for nothing */
        pch[n] = NULL;
        n++;
        int stop_i = -1;
        if (s->stop_fd >= 0) {
            stop_i = n;
            pfd[n] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
            pch[n++] = NULL;
        }
        int chan_from = n;
        for (size_t i = 0; i < s->n_chans && n < MAX_POLL - 64; i++) {
            st_chan *c = s->chans[i];
            if (wants_src(s, c)) {
                pfd[n] = (struct pollfd){ .fd = c->src_fd, .events = POLLIN };
                pch[n] = c;
                pkind[n++] = 's';
            }
            if (c->dst_fd >= 0 && !c->dst_done && c->rx.len > 0) {
                pfd[n] = (struct pollfd){ .fd = c->dst_fd, .events = POLLOUT };
                pch[n] = c;
                pkind[n++] = 'd';
            }
        }
        int chan_to = n;
        int extra_from = n;
        if (s->ops->poll_extra)
            n += s->ops->poll_extra(s, pfd + n, MAX_POLL - n);

        int64_t now = st_now_ms(), until = 0;
        if (s->idle_ms > 0)
            until = s->last_io + s->idle_ms;
        int64_t od = s->ops->deadline ? s->ops->deadline(s) : 0;
        if (od > 0 && (until == 0 || od < until))
            until = od;
        int timeout = -1;
        if (until > 0)
            timeout = until <= now ? 0 : (int)(until - now > 60000 ? 60000 : until - now);

        int pr = poll(pfd, (nfds_t)n, timeout);
        if (pr < 0 && errno != EINTR) {
            fail(s, CR_INTERNAL, "stream session: poll failed");
            s->end = ST_END_ERROR;
            return s->end;
        }
        if (pr < 0)
            continue;
        if (stop_i >= 0 && (pfd[stop_i].revents & POLLIN)) {
            s->end = ST_END_STOP;
            return s->end;
        }
        for (int i = chan_from; i < chan_to; i++) {
            if (!pfd[i].revents)
                continue;
            if (pkind[i] == 's')
                src_read(s, pch[i]);
            else if (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))
                dst_write(s, pch[i]);
        }
        if (s->ops->on_extra && n > extra_from)
            s->ops->on_extra(s, pfd + extra_from, n - extra_from);
        if (pfd[sock_i].revents & (POLLIN | POLLHUP | POLLERR))
            sock_read(s);
        if (((pfd[sock_i].revents & POLLOUT) || (s->out.len > 0 && !s->sock_dead)) && sock_write(s) < 0)
            s->eof_pending = true;
        /* Deliver into dsts that are free now without waiting a round. */
        for (size_t i = 0; i < s->n_chans; i++) {
            st_chan *c = s->chans[i];
            if (c->rx.len == 0)
                deliver_done(s, c);
        }
        if (s->idle_ms > 0 && st_now_ms() - s->last_io >= s->idle_ms) {
            s->end = ST_END_IDLE;
            return s->end;
        }
    }
}
