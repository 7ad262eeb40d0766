#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "server/stream/http.h"
#include "server/stream/internal.h"
#include "server/stream/session.h"

#define CLOSE_DRAIN_MS 1000

static const char *const spdy_offer[] = {
    "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io", NULL,
};
static const char *const ws_offer[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io", NULL };
static const char *const pf_spdy_offer[] = { "portforward.k8s.io", NULL };
static const char *const pf_ws_offer[] = { "v4.channel.k8s.io", NULL };

static const ws_proto client_ws_protos[] = {
    { "v5.channel.k8s.io", false, 5 },
    { "v4.channel.k8s.io", false, 4 },
    { "v4.base64.channel.k8s.io", true, 4 },
    { "channel.k8s.io", false, 1 },
    { "base64.channel.k8s.io", true, 1 },
    { "portforward.k8s.io", false, 4 },
    { "", false, 1 },
    { NULL, false, 0 },
};

enum { C_ERROR, C_STDIN, C_STDOUT, C_STDERR, C_RESIZE, C_N };
static const char *const stream_types[C_N] = { "error", "stdin", "stdout", "stderr", "resize" };

void st_exec_opts_init(st_exec_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->transport = ST_TRANSPORT_SPDY;
    o->stdin_fd = o->stdout_fd = o->stderr_fd = o->resize_fd = -1;
}

/* ------------------------------------------------------------------ */
/* URL, connection, handshake                                          */

typedef struct url_parts {
    char *host;  /* without brackets */
    char *port;
    char *path;  /* path and query */
    char *hostport;
} url_parts;

static void url_free(url_parts *u)
{
    free(u->host);
    free(u->port);
    free(u->path);
    free(u->hostport);
}

static int parse_url(const char *url, url_parts *u, cr_err **err)
{
    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "https://", 8) == 0)
        return cr_err_set(err, CR_UNIMPLEMENTED, "stream %s: https is not supported", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "stream %s: not an http:// URL", url);
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    u->hostport = strndup(h, hl);
    u->path = strdup(slash ? slash : "/");
    if (!u->hostport || !u->path)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    const char *hp = u->hostport, *portp = NULL;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (!rb)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "stream %s: bad IPv6 host", url);
        u->host = strndup(hp + 1, (size_t)(rb - hp - 1));
        if (rb[1] == ':')
            portp = rb + 2;
        else if (rb[1])
            return cr_err_set(err, CR_INVALID_ARGUMENT, "stream %s: bad host", url);
    } else {
        const char *c = strrchr(hp, ':');
        u->host = c ? strndup(hp, (size_t)(c - hp)) : strdup(hp);
        portp = c ? c + 1 : NULL;
    }
    u->port = strdup(portp && *portp ? portp : "80");
    if (!u->host || !u->port)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    if (!*u->host)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "stream %s: no host", url);
    return 0;
}

/* poll one fd until deadline (monotonic ms) or at most cap_ms (0: no cap);
 * a signal handled meanwhile (SIGWINCH in an interactive client) is not a
 * timeout.  poll's result: 0 when the time ran out. */
static int poll_until(struct pollfd *p, int64_t deadline, int cap_ms)
{
    for (;;) {
        int64_t left = deadline - st_now_ms();
        if (left <= 0)
            return 0;
        if (cap_ms > 0 && left > cap_ms)
            left = cap_ms;
        int r = poll(p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static int dial(const url_parts *u, int timeout_ms, cr_err **err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int gr = getaddrinfo(u->host, u->port, &hints, &ai);
    if (gr != 0)
        return cr_err_set(err, CR_UNAVAILABLE, "stream: resolve %s: %s", u->host, gai_strerror(gr));
    int fd = -1, last = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll_until(&p, st_now_ms() + timeout_ms, 0) <= 0) {
            last = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            last = soerr ? soerr : errno;
        } else {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return cr_err_errno(err, CR_UNAVAILABLE, last, "stream: connect to %s", u->hostport);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int write_all(int fd, const void *p, size_t n, int64_t deadline)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            if (poll_until(&pf, deadline, 0) <= 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

static int http_code_to_cr(int status)
{
    switch (status) {
    case 400: return CR_INVALID_ARGUMENT;
    case 401: return CR_UNAUTHENTICATED;
    case 403: return CR_PERMISSION_DENIED;
    case 404: return CR_NOT_FOUND;
    case 408: return CR_DEADLINE_EXCEEDED;
    case 429:
    case 503: return CR_UNAVAILABLE;
    case 501: return CR_UNIMPLEMENTED;
    default: return CR_UNKNOWN;
    }
}

typedef struct handshake {
    int fd;
    st_buf rest;          /* bytes after the response head */
    char proto[64];
    const ws_proto *wsp;
} handshake;

/* Connect, send the upgrade request and read the 101 answer. */
static int upgrade(const char *url, bool ws, const char *const *offer, const char *extra_query, int timeout_sec,
                   handshake *h, cr_err **err)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    url_parts u;
    int64_t deadline = st_now_ms() + (int64_t)(timeout_sec > 0 ? timeout_sec : 30) * 1000;
    if (parse_url(url, &u, err) < 0) {
        url_free(&u);
        return -1;
    }
    int fd = dial(&u, (int)(deadline - st_now_ms()), err);
    if (fd < 0) {
        url_free(&u);
        return -1;
    }
    st_buf req = { 0 };
    char key[25] = "", want_accept[29] = "";
    st_buf_printf(&req, "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: crisp-stream\r\n", ws ? "GET" : "POST",
                  u.path, extra_query ? (strchr(u.path, '?') ? "&" : "?") : "", extra_query ? extra_query : "",
                  u.hostport);
    if (ws) {
        ws_make_key(key);
        ws_accept_key(key, want_accept);
        st_buf_printf(&req, "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                            "Sec-WebSocket-Key: %s\r\n", key);
        if (offer && offer[0]) {
            st_buf_add_str(&req, "Sec-WebSocket-Protocol: ");
            for (const char *const *p = offer; *p; p++)
                st_buf_printf(&req, "%s%s", p == offer ? "" : ", ", *p);
            st_buf_add_str(&req, "\r\n");
        }
    } else {
        st_buf_add_str(&req, "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
        for (const char *const *p = offer; p && *p; p++)
            st_buf_printf(&req, "X-Stream-Protocol-Version: %s\r\n", *p);
    }
    st_buf_add_str(&req, "\r\n");
    url_free(&u);
    int rc = -1;
    if (req.oom || write_all(fd, st_buf_head(&req), req.len, deadline) < 0) {
        cr_err_errno(err, CR_UNAVAILABLE, errno ? errno : EIO, "stream %s: sending the upgrade request", url);
        goto out;
    }
    st_buf in = { 0 };
    http_msg m = { 0 };
    for (;;) {
        if (in.len > 0) {
            int r = http_parse_response((const char *)st_buf_head(&in), in.len, &m, err);
            if (r < 0) {
                cr_err_prefix(err, "stream %s", url);
                st_buf_free(&in);
                http_msg_free(&m);
                goto out;
            }
            if (r > 0)
                break;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll_until(&p, deadline, 0) <= 0) {
            cr_err_set(err, CR_DEADLINE_EXCEEDED, "stream %s: no answer to the upgrade request", url);
            st_buf_free(&in);
            goto out;
        }
        uint8_t *t = st_buf_reserve(&in, 4096);
        ssize_t n = t ? recv(fd, t, 4096, 0) : -1;
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
            cr_err_set(err, CR_UNAVAILABLE, "stream %s: connection closed during the upgrade", url);
            st_buf_free(&in);
            goto out;
        }
        if (n > 0)
            in.len += (size_t)n;
    }
    st_buf_consume(&in, m.head_len);
    if (m.status != 101) {
        /* The body says why (what a Go server wrote with http.Error). */
        const char *cl = http_header_get(&m, "Content-Length");
        size_t want = cl ? strtoul(cl, NULL, 10) : 4096;
        if (want > 4096)
            want = 4096;
        while (in.len < want) {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            if (poll_until(&p, deadline, 2000) <= 0)
                break;
            uint8_t *t = st_buf_reserve(&in, 4096);
            ssize_t n = t ? recv(fd, t, 4096, 0) : -1;
            if (n <= 0)
                break;
            in.len += (size_t)n;
        }
        size_t bl = in.len < want ? in.len : want;
        while (bl > 0 && (st_buf_head(&in)[bl - 1] == '\n' || st_buf_head(&in)[bl - 1] == '\r'))
            bl--;
        cr_err_set(err, http_code_to_cr(m.status), "stream %s: upgrade refused: HTTP %d %s%s%.*s", url, m.status,
                   m.reason, bl ? ": " : "", (int)bl, (const char *)st_buf_head(&in));
        st_buf_free(&in);
        http_msg_free(&m);
        goto out;
    }
    if (ws) {
        const char *acc = http_header_get(&m, "Sec-WebSocket-Accept");
        const char *proto = http_header_get(&m, "Sec-WebSocket-Protocol");
        if (!http_header_has_token(&m, "Upgrade", "websocket") || !acc || strcmp(acc, want_accept) != 0) {
            cr_err_set(err, CR_UNAVAILABLE, "stream %s: bad websocket handshake answer", url);
            st_buf_free(&in);
            http_msg_free(&m);
            goto out;
        }
        bool offered = !proto || !*proto;
        for (const char *const *p = offer; p && *p && !offered; p++)
            offered = strcmp(*p, proto) == 0;
        h->wsp = offered ? ws_proto_find(client_ws_protos, proto ? proto : "") : NULL;
        if (!h->wsp) {
            cr_err_set(err, CR_UNAVAILABLE, "stream %s: server chose sub-protocol \"%s\" we did not offer", url,
                       proto ? proto : "");
            st_buf_free(&in);
            http_msg_free(&m);
            goto out;
        }
        snprintf(h->proto, sizeof(h->proto), "%s", proto ? proto : "");
    } else {
        const char *up = http_header_get(&m, "Upgrade");
        const char *proto = http_header_get(&m, "X-Stream-Protocol-Version");
        if (!up || !strcasestr(up, "spdy/3.1") || !http_header_has_token(&m, "Connection", "upgrade")) {
            cr_err_set(err, CR_UNAVAILABLE, "stream %s: the server did not switch to SPDY/3.1", url);
            st_buf_free(&in);
            http_msg_free(&m);
            goto out;
        }
        snprintf(h->proto, sizeof(h->proto), "%s", proto ? proto : "");
    }
    h->rest = in;
    http_msg_free(&m);
    h->fd = fd;
    fd = -1;
    rc = 0;
out:
    st_buf_free(&req);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* exec / attach                                                       */

typedef struct exec_client {
    st_exec_opts *o;
    int version;
    st_chan *ch[C_N];
    size_t opened, replied;
    bool wired, refused;
    int64_t reply_deadline;
} exec_client;

static void ec_send_size(st_sess *s, exec_client *c, uint16_t w, uint16_t h)
{
    st_chan *r = c->ch[C_RESIZE];
    if (!r)
        return;
    st_buf b = { 0 };
    st_put_resize(&b, w, h);
    if (!b.oom)
        st_sess_send(s, r, st_buf_head(&b), b.len);
    st_buf_free(&b);
}

/* What arrives on each channel: output is held until the fds are wired,
 * the error stream is collected, stdin and resize carry nothing to us. */
static void ec_chan_setup(st_chan *ch)
{
    ch->collect = ch->tag == C_ERROR;
    ch->discard = ch->tag == C_STDIN || ch->tag == C_RESIZE;
}

/* All streams are there: start pumping. */
static void ec_wire(st_sess *s, exec_client *c)
{
    st_exec_opts *o = c->o;
    c->wired = true;
    if (c->ch[C_STDIN])
        c->ch[C_STDIN]->src_fd = o->stdin_fd;
    if (c->ch[C_STDOUT])
        c->ch[C_STDOUT]->dst_fd = o->stdout_fd;
    if (c->ch[C_STDERR])
        c->ch[C_STDERR]->dst_fd = o->stderr_fd;
    if (o->tty && o->width && o->height)
        ec_send_size(s, c, o->width, o->height);
}

static void ec_on_reply(st_sess *s, st_chan *ch)
{
    exec_client *c = s->owner;
    (void)ch;
    c->replied++;
}

static int ec_step(st_sess *s)
{
    exec_client *c = s->owner;
    if (!c->wired) {
        if (s->is_spdy && c->replied < c->opened) {
            for (int i = 0; i < C_N; i++)
                if (c->ch[i] && c->ch[i]->sp && c->ch[i]->sp->reset && !c->ch[i]->sp->replied)
                    c->refused = true;
            if (c->refused) {
                cr_err_set(&s->err, CR_UNAVAILABLE, "the server refused a stream");
                return -1;
            }
            if (st_now_ms() >= c->reply_deadline) {
                cr_err_set(&s->err, CR_DEADLINE_EXCEEDED, "the server did not accept the streams in time");
                return -1;
            }
            return 0;
        }
        ec_wire(s, c);
    }
    /* Complete when the server finished stdout, stderr and the error stream
     * and their data reached our fds. */
    for (int i = 0; i < C_N; i++) {
        st_chan *ch = c->ch[i];
        if (!ch || i == C_STDIN || i == C_RESIZE)
            continue;
        if (!ch->remote_fin)
            return 0;
        if (ch->dst_fd >= 0 && !ch->dst_done)
            return 0;
    }
    return 1;
}

static int64_t ec_deadline(st_sess *s)
{
    exec_client *c = s->owner;
    return c->wired ? 0 : c->reply_deadline;
}

static int ec_poll_extra(st_sess *s, struct pollfd *p, int max)
{
    exec_client *c = s->owner;
    if (!c->wired || c->o->resize_fd < 0 || !c->ch[C_RESIZE] || max < 1)
        return 0;
    p[0] = (struct pollfd){ .fd = c->o->resize_fd, .events = POLLIN };
    return 1;
}

static void ec_on_extra(st_sess *s, struct pollfd *p, int n)
{
    exec_client *c = s->owner;
    if (n < 1 || !p[0].revents)
        return;
    st_winsize ws[16];
    ssize_t r = read(c->o->resize_fd, ws, sizeof(ws));
    if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            c->o->resize_fd = -1; /* the size source is gone: stop watching it */
        return;
    }
    for (size_t i = 0; i < (size_t)r / sizeof(st_winsize); i++)
        ec_send_size(s, c, ws[i].width, ws[i].height);
}

static const st_sess_ops ec_ops = {
    .on_reply = ec_on_reply,
    .step = ec_step,
    .deadline = ec_deadline,
    .poll_extra = ec_poll_extra,
    .on_extra = ec_on_extra,
};

/* Writes to a pipe whose reader left must fail with EPIPE, not kill the
 * caller: block SIGPIPE for the call and swallow one we caused. */
typedef struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

static void sigpipe_restore(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int st_client_exec(const char *url, st_exec_opts *o, int *exit_code, cr_err **err)
{
    *exit_code = 0;
    bool ws = o->transport == ST_TRANSPORT_WEBSOCKET;
    handshake h;
    if (upgrade(url, ws, o->protocols ? o->protocols : ws ? ws_offer : spdy_offer, NULL, o->timeout_sec, &h, err) < 0)
        return -1;
    snprintf(o->negotiated, sizeof(o->negotiated), "%s", h.proto);
    exec_client c = { .o = o, .version = st_protocol_version(h.proto) };
    st_sess s;
    if (st_sess_init(&s, h.fd, !ws, false, h.wsp, st_buf_head(&h.rest), h.rest.len, &ec_ops, &c, err) < 0) {
        st_buf_free(&h.rest);
        close(h.fd);
        return -1;
    }
    st_buf_free(&h.rest);
    sigpipe_guard g;
    sigpipe_block(&g);
    int rc = -1;
    bool want[C_N] = { true, o->stdin_fd >= 0, o->stdout_fd >= 0, o->stderr_fd >= 0 && !o->tty,
                       o->tty && c.version >= 3 };
    if (!ws) {
        spdy_conn_send_settings(&s.spdy, SPDY_MAX_WINDOW);
        for (int i = 0; i < C_N; i++) {
            if (!want[i])
                continue;
            spdy_headers hd = { 0 };
            spdy_stream *sp = NULL;
            if (spdy_headers_add(&hd, "streamType", stream_types[i]) == 0)
                sp = spdy_conn_open(&s.spdy, &hd, false, err);
            spdy_headers_free(&hd);
            if (!sp || !(c.ch[i] = st_chan_add(&s, i, 0, sp))) {
                cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream: cannot open the %s stream", stream_types[i]);
                goto out;
            }
            ec_chan_setup(c.ch[i]);
            c.opened++;
        }
        c.reply_deadline = st_now_ms() + 30000;
    } else {
        for (int i = 0; i < C_N; i++) {
            /* channel numbers: stdin 0, stdout 1, stderr 2, error 3, resize 4 */
            static const uint32_t chan_no[C_N] = { 3, 0, 1, 2, 4 };
            if (!want[i] && i != C_RESIZE)
                continue;
            if (i == C_RESIZE && !o->tty)
                continue;
            if (!(c.ch[i] = st_chan_add(&s, i, chan_no[i], NULL))) {
                cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream: out of memory");
                goto out;
            }
            ec_chan_setup(c.ch[i]);
        }
    }
    int end = st_sess_run(&s);
    if (end == ST_END_ERROR || (end == ST_END_PEER && !c.wired)) {
        if (s.err) {
            cr_err_set(err, s.err->code, "stream %s: %s", url, s.err->msg);
        } else {
            cr_err_set(err, CR_UNAVAILABLE, "stream %s: the connection closed early", url);
        }
        st_sess_close(&s, false, WS_CLOSE_PROTOCOL_ERROR, 0);
        goto out;
    }
    if (end == ST_END_IDLE || end == ST_END_STOP) {
        cr_err_set(err, CR_DEADLINE_EXCEEDED, "stream %s: session timed out", url);
        st_sess_close(&s, false, WS_CLOSE_GOING_AWAY, 0);
        goto out;
    }
    st_chan *e = c.ch[C_ERROR];
    if (c.version >= 4 && (!e || e->rx.len == 0)) {
        /* v4 servers always end with a Status: none means the session was
         * cut (server stopping, idle timeout, connection lost). */
        cr_err_set(err, CR_UNAVAILABLE, "stream %s: the session ended without an exit status", url);
        st_sess_close(&s, false, WS_CLOSE_NORMAL, 0);
        goto out;
    }
    rc = st_status_decode(c.version, e ? st_buf_head(&e->rx) : NULL, e ? e->rx.len : 0, exit_code, err);
    if (rc < 0)
        cr_err_prefix(err, "stream %s", url);
    st_sess_close(&s, true, WS_CLOSE_NORMAL, CLOSE_DRAIN_MS);
out:
    st_sess_free(&s);
    sigpipe_restore(&g);
    return rc;
}

/* ------------------------------------------------------------------ */
/* port forwarding                                                     */

typedef struct pf_client {
    st_chan *data, *error;
    bool error_fin_sent;
    int64_t reply_deadline;
} pf_client;

static void pfc_on_reply(st_sess *s, st_chan *ch)
{
    pf_client *c = s->owner;
    /* As client-go: the error stream carries nothing from us. */
    if (ch == c->error && !c->error_fin_sent) {
        st_sess_fin(s, ch);
        c->error_fin_sent = true;
    }
}

static int pfc_step(st_sess *s)
{
    pf_client *c = s->owner;
    if (s->is_spdy && !(c->data->sp && c->data->sp->replied)) {
        if (c->data->sp && c->data->sp->reset) {
            cr_err_set(&s->err, CR_UNAVAILABLE, "the server refused the port-forward stream");
            return -1;
        }
        if (st_now_ms() >= c->reply_deadline) {
            cr_err_set(&s->err, CR_DEADLINE_EXCEEDED, "the server did not accept the streams in time");
            return -1;
        }
        return 0;
    }
    /* The remote side ended (its data is in our fd) and the error stream
     * was closed: done. */
    if (c->data->remote_fin && c->data->dst_done && (!s->is_spdy || c->error->remote_fin))
        return 1;
    return 0;
}

static int64_t pfc_deadline(st_sess *s)
{
    pf_client *c = s->owner;
    return s->is_spdy && !(c->data->sp && c->data->sp->replied) ? c->reply_deadline : 0;
}

static const st_sess_ops pfc_ops = { .on_reply = pfc_on_reply, .step = pfc_step, .deadline = pfc_deadline };

int st_client_portforward(const char *url, int32_t port, int fd, st_transport transport, cr_err **err)
{
    if (port < 1 || port > 65535)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "port-forward: port %d out of range", port);
    bool ws = transport == ST_TRANSPORT_WEBSOCKET;
    char q[32];
    snprintf(q, sizeof(q), "port=%d", port);
    handshake h;
    if (upgrade(url, ws, ws ? pf_ws_offer : pf_spdy_offer, ws ? q : NULL, 0, &h, err) < 0)
        return -1;
    pf_client c = { 0 };
    st_sess s;
    if (st_sess_init(&s, h.fd, !ws, false, h.wsp, st_buf_head(&h.rest), h.rest.len, &pfc_ops, &c, err) < 0) {
        st_buf_free(&h.rest);
        close(h.fd);
        return -1;
    }
    st_buf_free(&h.rest);
    sigpipe_guard g;
    sigpipe_block(&g);
    int rc = -1;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (!ws) {
        spdy_conn_send_settings(&s.spdy, SPDY_MAX_WINDOW);
        for (int i = 0; i < 2; i++) {
            spdy_headers hd = { 0 };
            spdy_stream *sp = NULL;
            if (spdy_headers_add(&hd, "streamType", i == 0 ? "error" : "data") == 0 &&
                spdy_headers_add(&hd, "port", ps) == 0 && spdy_headers_add(&hd, "requestID", "0") == 0)
                sp = spdy_conn_open(&s.spdy, &hd, false, err);
            spdy_headers_free(&hd);
            st_chan *ch = sp ? st_chan_add(&s, i, 0, sp) : NULL;
            if (!ch) {
                cr_err_set(err, CR_RESOURCE_EXHAUSTED, "port-forward: cannot open a stream");
                goto out;
            }
            if (i == 0)
                c.error = ch;
            else
                c.data = ch;
        }
        c.reply_deadline = st_now_ms() + 30000;
    } else {
        c.data = st_chan_add(&s, 1, 0, NULL);
        c.error = st_chan_add(&s, 0, 1, NULL);
        if (!c.data || !c.error) {
            cr_err_set(err, CR_RESOURCE_EXHAUSTED, "port-forward: out of memory");
            goto out;
        }
        /* Each channel's first message starts with the port number. */
        c.data->skip_rx = 2;
        c.error->skip_rx = 2;
    }
    c.error->collect = true;
    c.data->src_fd = fd;
    c.data->dst_fd = fd;
    c.data->dst_eof = ST_DST_SHUTDOWN;
    int end = st_sess_run(&s);
    if (end == ST_END_ERROR) {
        cr_err_set(err, s.err ? s.err->code : CR_UNAVAILABLE, "port-forward %s: %s", url,
                   s.err ? s.err->msg : "connection failed");
        st_sess_close(&s, false, WS_CLOSE_PROTOCOL_ERROR, 0);
        goto out;
    }
    if (c.error->rx.len > 0) {
        cr_err_set(err, CR_UNAVAILABLE, "port-forward %s: %.*s", url, (int)c.error->rx.len,
                   (const char *)st_buf_head(&c.error->rx));
        st_sess_close(&s, false, WS_CLOSE_NORMAL, 0);
        goto out;
    }
    if (end != ST_END_DONE && end != ST_END_PEER) {
        cr_err_set(err, CR_DEADLINE_EXCEEDED, "port-forward %s: session timed out", url);
        st_sess_close(&s, false, WS_CLOSE_GOING_AWAY, 0);
        goto out;
    }
    rc = 0;
    st_sess_close(&s, true, WS_CLOSE_NORMAL, CLOSE_DRAIN_MS);
out:
    /* fd is the caller's: never close it with the channel. */
    if (c.data) {
        c.data->src_fd = -1;
        c.data->dst_fd = -1;
    }
    st_sess_free(&s);
    sigpipe_restore(&g);
    return rc;
}
