/* The streaming server: listener, connection threads, tokens, and the
 * HTTP/1.1 upgrade handshakes (SPDY/3.1 and WebSocket) that hand a
 * connection to its handler (exec.c, portforward.c). */
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "server/stream/handlers.h"
#include "server/stream/http.h"

#define HEAD_TIMEOUT_MS 15000   /* the whole request head must arrive within this */
#define MAX_BODY (64 * 1024)    /* a POST body is read and dropped, up to this */

/* Protocols, in the order the kubelet lists them (the client's order wins). */
static const char *const rc_spdy_protocols[] = {
    "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io", NULL,
};
static const char *const pf_spdy_protocols[] = { "portforward.k8s.io", NULL };

static const ws_proto rc_ws_protocols[] = {
    { "v5.channel.k8s.io", false, 5 },
    { "v4.channel.k8s.io", false, 4 },
    { "v4.base64.channel.k8s.io", true, 4 },
    { "channel.k8s.io", false, 1 },
    { "base64.channel.k8s.io", true, 1 },
    { "", false, 1 },
    { NULL, false, 0 },
};
static const ws_proto pf_ws_protocols[] = {
    { "v4.channel.k8s.io", false, 4 },
    { "v4.base64.channel.k8s.io", true, 4 },
    { "portforward.k8s.io", false, 4 },
    { "", false, 4 },
    { NULL, false, 0 },
};

typedef struct st_token {
    char id[16];
    st_request *req;
    int64_t expires;
    struct st_token *next;
} token;

typedef struct st_conn {
    st_server *srv;
    int fd;
    pthread_t th;
    bool done;
    struct st_conn *next;
} conn;

/* ------------------------------------------------------------------ */
/* requests and tokens                                                 */

void st_request_free(st_request *req)
{
    if (!req)
        return;
    free(req->container_id);
    free(req->sandbox_id);
    cr_strvfree(req->cmd);
    free(req->ports);
    free(req);
}

static void request_release(st_server *s, st_request *req)
{
    if (!req)
        return;
    if (s->be.free_request)
        s->be.free_request(s->be.ctx, req);
    else
        st_request_free(req);
}

const char *st_kind_name(st_kind k)
{
    switch (k) {
    case ST_EXEC: return "exec";
    case ST_ATTACH: return "attach";
    case ST_PORTFORWARD: return "portforward";
    }
    return "?";
}

static int validate_request(const st_request *r, cr_err **err)
{
    switch (r->kind) {
    case ST_EXEC:
    case ST_ATTACH:
        if (!r->container_id || !*r->container_id)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s: missing required container_id", st_kind_name(r->kind));
        if (r->kind == ST_EXEC && (!r->cmd || !r->cmd[0]))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: cmd is empty", r->container_id);
        if (r->tty && r->want_stderr)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s %s: tty and stderr cannot both be true",
                              st_kind_name(r->kind), r->container_id);
        if (!r->want_stdin && !r->want_stdout && !r->want_stderr)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s %s: one of stdin, stdout, or stderr must be set",
                              st_kind_name(r->kind), r->container_id);
        return 0;
    case ST_PORTFORWARD:
        if (!r->sandbox_id || !*r->sandbox_id)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "portforward: missing required pod_sandbox_id");
        for (size_t i = 0; i < r->n_ports; i++)
            if (r->ports[i] < 1 || r->ports[i] > 65535)
                return cr_err_set(err, CR_INVALID_ARGUMENT, "portforward %s: port %d out of range",
                                  r->sandbox_id, r->ports[i]);
        return 0;
    }
    return cr_err_set(err, CR_INVALID_ARGUMENT, "streaming request of unknown kind %d", (int)r->kind);
}

/* 8 characters of base64url from 6 random bytes, as the kubelet's cache. */
static int new_token(char out[16])
{
    unsigned char raw[6], b64[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return -1;
    EVP_EncodeBlock(b64, raw, sizeof(raw));
    for (int i = 0; i < 8; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[8] = '\0';
    return 0;
}

/* Drop expired tokens; called with mu held.  The requests are returned in
 * *gone to be freed outside the lock. */
static void expire_tokens(st_server *s, int64_t now, token **gone)
{
    for (token **pp = &s->tokens; *pp;) {
        token *t = *pp;
        if (t->expires <= now) {
            *pp = t->next;
            s->n_tokens--;
            t->next = *gone;
            *gone = t;
        } else {
            pp = &t->next;
        }
    }
}

static void free_token_list(st_server *s, token *t)
{
    while (t) {
        token *n = t->next;
        request_release(s, t->req);
        free(t);
        t = n;
    }
}

static char *make_url(st_server *s, st_kind kind, const char *tok)
{
    char *url = NULL;
    if (asprintf(&url, "http://%s/%s/%s", s->hostport, st_kind_name(kind), tok) < 0)
        return NULL;
    return url;
}

int st_server_issue(st_server *s, st_request *req, char **url_out, cr_err **err)
{
    *url_out = NULL;
    if (!req)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "streaming request is missing");
    if (validate_request(req, err) < 0) {
        request_release(s, req);
        return -1;
    }
    token *t = calloc(1, sizeof(*t));
    if (!t || new_token(t->id) < 0) {
        free(t);
        request_release(s, req);
        return cr_err_set(err, CR_INTERNAL, "streaming: cannot make a token");
    }
    t->req = req;
    t->expires = st_now_ms() + (int64_t)s->opt.token_ttl_sec * 1000;
    _cleanup_free_ char *url = make_url(s, req->kind, t->id);
    if (!url) {
        free(t);
        request_release(s, req);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "streaming: out of memory");
    }
    token *gone = NULL;
    pthread_mutex_lock(&s->mu);
    expire_tokens(s, st_now_ms(), &gone);
    bool full = s->n_tokens >= (size_t)s->opt.max_tokens;
    bool dup = false;
    for (token *o = s->tokens; o; o = o->next)
        if (strcmp(o->id, t->id) == 0)
            dup = true;
    if (!full && !dup) {
        t->next = s->tokens;
        s->tokens = t;
        s->n_tokens++;
    }
    pthread_mutex_unlock(&s->mu);
    free_token_list(s, gone);
    if (full || dup) {
        free(t);
        request_release(s, req);
        if (full)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED,
                              "streaming: maximum number of in-flight requests (%d) exceeded", s->opt.max_tokens);
        return cr_err_set(err, CR_INTERNAL, "streaming: token collision, retry");
    }
    *url_out = cr_steal(&url);
    return 0;
}

/* Take the request a token stands for (the token is gone afterwards). */
static st_request *consume_token(st_server *s, const char *id)
{
    token *gone = NULL, *hit = NULL;
    pthread_mutex_lock(&s->mu);
    expire_tokens(s, st_now_ms(), &gone);
    for (token **pp = &s->tokens; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            hit = *pp;
            *pp = hit->next;
            s->n_tokens--;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    free_token_list(s, gone);
    if (!hit)
        return NULL;
    st_request *r = hit->req;
    free(hit);
    return r;
}

/* ------------------------------------------------------------------ */
/* HTTP helpers                                                        */

static int send_all(int fd, const void *p, size_t n, int timeout_ms)
{
    const uint8_t *b = p;
    int64_t deadline = st_now_ms() + timeout_ms;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - st_now_ms();
            if (left <= 0)
                return -1;
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            poll(&pf, 1, (int)left);
            continue;
        }
        return -1;
    }
    return 0;
}

static void respond(int fd, int status, const char *const *headers, const char *body)
{
    st_buf b = { 0 };
    http_put_response(&b, status, headers, body);
    if (!b.oom)
        send_all(fd, st_buf_head(&b), b.len, 5000);
    st_buf_free(&b);
}

/* Answer an error and close gracefully (drain what the client still sends,
 * so our answer is not lost to a reset). */
static void respond_close(int fd, int status, const char *const *headers, const char *body)
{
    respond(fd, status, headers, body);
    shutdown(fd, SHUT_WR);
    int64_t deadline = st_now_ms() + 1000;
    char junk[4096];
    for (;;) {
        int64_t left = deadline - st_now_ms();
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, junk, sizeof(junk), 0);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            break;
    }
}

static char *join_list(char *const *v, const char *sep)
{
    st_buf b = { 0 };
    st_buf_add_str(&b, "[");
    for (char *const *p = v; p && *p; p++) {
        if (p != v)
            st_buf_add_str(&b, sep);
        st_buf_add_str(&b, *p);
    }
    st_buf_add_str(&b, "]");
    st_buf_u8(&b, 0);
    if (b.oom) {
        st_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* 403 with the list of what we support, as httpstream.Handshake. */
static void respond_no_protocol(int fd, char *const *offered, const char *const *supported)
{
    const char *hdrs[2 * 8 + 1] = { 0 };
    size_t k = 0;
    for (const char *const *p = supported; *p && k < 16; p++) {
        hdrs[k++] = "X-Accepted-Stream-Protocol-Versions";
        hdrs[k++] = **p ? *p : "\"\"";
    }
    _cleanup_free_ char *c = join_list(offered, " ");
    _cleanup_free_ char *sv = join_list((char *const *)supported, " ");
    _cleanup_free_ char *body = NULL;
    if (asprintf(&body, "unable to upgrade: unable to negotiate protocol: client supports %s, server accepts %s\n",
                 c ? c : "[]", sv ? sv : "[]") < 0)
        body = NULL;
    respond_close(fd, 403, hdrs, body ? body : "unable to upgrade: unable to negotiate protocol\n");
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

static int read_head(st_server *srv, int fd, st_buf *b, http_msg *m, cr_err **err)
{
    int64_t deadline = st_now_ms() + HEAD_TIMEOUT_MS;
    for (;;) {
        if (b->len > 0) {
            int r = http_parse_request((const char *)st_buf_head(b), b->len, m, err);
            if (r != 0)
                return r;
            http_msg_free(m);
        }
        int64_t left = deadline - st_now_ms();
        if (left <= 0) {
            m->error_status = 408;
            return cr_err_set(err, CR_DEADLINE_EXCEEDED, "request head not received in time");
        }
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = srv->stop_fd, .events = POLLIN } };
        int pr = poll(p, 2, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0 || (p[1].revents & POLLIN))
            return cr_err_set(err, CR_CANCELLED, "server stopping");
        if (!p[0].revents)
            continue;
        uint8_t *t = st_buf_reserve(b, 4096);
        if (!t)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        ssize_t n = recv(fd, t, 4096, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return cr_err_set(err, CR_UNAVAILABLE, "client closed the connection");
        if (n > 0)
            b->len += (size_t)n;
    }
}

/* Read and drop a request body of len bytes (some clients POST with
 * Content-Length: 0, none with a body; be tolerant of small ones). */
static int skip_body(int fd, st_buf *b, size_t len)
{
    int64_t deadline = st_now_ms() + HEAD_TIMEOUT_MS;
    while (b->len < len) {
        int64_t left = deadline - st_now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        uint8_t *t = st_buf_reserve(b, 4096);
        if (!t)
            return -1;
        ssize_t n = recv(fd, t, 4096, 0);
        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
            return -1;
        if (n > 0)
            b->len += (size_t)n;
    }
    st_buf_consume(b, len);
    return 0;
}

static bool is_websocket(const http_msg *m)
{
    const char *up = http_header_get(m, "Upgrade");
    return up && strcasecmp(up, "websocket") == 0 && http_header_has_token(m, "Connection", "upgrade");
}

static void handle_conn(st_server *srv, int fd)
{
    st_buf b = { 0 };
    http_msg m = { 0 };
    cr_err *e = NULL;
    st_request *req = NULL;
    char **offered = NULL;
    int32_t *ports = NULL;
    size_t n_ports = 0;
    int r = read_head(srv, fd, &b, &m, &e);
    if (r < 0) {
        if (m.error_status)
            respond_close(fd, m.error_status, NULL, e ? e->msg : "bad request");
        goto done;
    }
    if (strcmp(m.method, "GET") != 0 && strcmp(m.method, "POST") != 0) {
        static const char *const allow[] = { "Allow", "GET, POST", NULL };
        respond_close(fd, 405, allow, "405 method not allowed\n");
        goto done;
    }
    st_kind kind;
    const char *tok = NULL;
    if (strncmp(m.path, "/exec/", 6) == 0) {
        kind = ST_EXEC;
        tok = m.path + 6;
    } else if (strncmp(m.path, "/attach/", 8) == 0) {
        kind = ST_ATTACH;
        tok = m.path + 8;
    } else if (strncmp(m.path, "/portforward/", 13) == 0) {
        kind = ST_PORTFORWARD;
        tok = m.path + 13;
    }
    if (!tok || !*tok || strchr(tok, '/')) {
        respond_close(fd, 404, NULL, "404 page not found\n");
        goto done;
    }
    if (http_header_get(&m, "Transfer-Encoding")) {
        respond_close(fd, 501, NULL, "Transfer-Encoding is not supported\n");
        goto done;
    }
    if (m.minor < 1 || !http_header_get(&m, "Host")) {
        respond_close(fd, 400, NULL, "HTTP/1.1 with a Host header is required\n");
        goto done;
    }
    st_buf_consume(&b, m.head_len);
    const char *cl = http_header_get(&m, "Content-Length");
    if (cl) {
        char *end = NULL;
        unsigned long v = strtoul(cl, &end, 10);
        if (!*cl || *end || v > MAX_BODY) {
            respond_close(fd, v > MAX_BODY && !*end ? 413 : 400, NULL, "bad Content-Length\n");
            goto done;
        }
        if (v > 0 && skip_body(fd, &b, v) < 0)
            goto done;
    }
    req = consume_token(srv, tok);
    if (!req || req->kind != kind) {
        respond_close(fd, 404, NULL, "404 page not found\n");
        goto done;
    }
    bool ws = is_websocket(&m);
    if (!ws) {
        const char *const *supported = kind == ST_PORTFORWARD ? pf_spdy_protocols : rc_spdy_protocols;
        offered = http_header_list(&m, "X-Stream-Protocol-Version");
        if (!offered || !offered[0]) {
            respond_close(fd, 400, NULL, "unable to upgrade: X-Stream-Protocol-Version is required\n");
            goto done;
        }
        const char *proto = http_negotiate(offered, supported);
        if (!proto) {
            respond_no_protocol(fd, offered, supported);
            goto done;
        }
        const char *conn_h = http_header_get(&m, "Connection"), *up = http_header_get(&m, "Upgrade");
        if (!conn_h || !strcasestr(conn_h, "upgrade") || !up || !strcasestr(up, "spdy/3.1")) {
            respond_close(fd, 400, NULL, "unable to upgrade: missing upgrade headers in request\n");
            goto done;
        }
        const char *const hdrs[] = { "Connection", "Upgrade", "Upgrade", "SPDY/3.1", "X-Stream-Protocol-Version",
                                     proto, NULL };
        respond(fd, 101, hdrs, NULL);
        cr_log_debug("stream: upgraded", "kind", st_kind_name(kind), "protocol", proto, "transport", "spdy", NULL);
        int cfd = fd;
        fd = -1;
        if (kind == ST_PORTFORWARD)
            st_serve_portforward(srv, cfd, req, false, NULL, NULL, 0, st_buf_head(&b), b.len);
        else
            st_serve_exec(srv, cfd, req, false, proto, NULL, st_buf_head(&b), b.len);
        goto done;
    }
    /* WebSocket (RFC 6455 section 4.2). */
    if (strcmp(m.method, "GET") != 0) {
        respond_close(fd, 405, NULL, "websocket upgrades need GET\n");
        goto done;
    }
    const char *ver = http_header_get(&m, "Sec-WebSocket-Version");
    if (!ver || strcmp(ver, "13") != 0) {
        static const char *const h13[] = { "Sec-WebSocket-Version", "13", NULL };
        respond_close(fd, 426, h13, "unsupported websocket version\n");
        goto done;
    }
    const char *key = http_header_get(&m, "Sec-WebSocket-Key");
    char accept[29];
    if (!key || !ws_key_valid(key) || ws_accept_key(key, accept) < 0) {
        respond_close(fd, 400, NULL, "missing or bad Sec-WebSocket-Key\n");
        goto done;
    }
    const ws_proto *table = kind == ST_PORTFORWARD ? pf_ws_protocols : rc_ws_protocols;
    offered = http_header_list(&m, "Sec-WebSocket-Protocol");
    if (!offered)
        goto done;
    const ws_proto *wsp = NULL;
    if (!offered[0])
        wsp = ws_proto_find(table, "");
    for (char **o = offered; *o && !wsp; o++)
        if (**o)
            wsp = ws_proto_find(table, *o);
    if (!wsp) {
        const char *names[8] = { 0 };
        size_t k = 0;
        for (const ws_proto *p = table; p->name && k < 7; p++)
            if (*p->name)
                names[k++] = p->name;
        respond_no_protocol(fd, offered, names);
        goto done;
    }
    if (kind == ST_PORTFORWARD) {
        char *why = NULL;
        if (st_ws_ports(req, m.query, &ports, &n_ports, &why) < 0) {
            _cleanup_free_ char *body = NULL;
            if (asprintf(&body, "%s\n", why ? why : "bad port list") < 0)
                body = NULL;
            free(why);
            respond_close(fd, 400, NULL, body ? body : "bad port list\n");
            goto done;
        }
    }
    const char *hdrs[] = { "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", accept,
                           *wsp->name ? "Sec-WebSocket-Protocol" : NULL, wsp->name, NULL };
    respond(fd, 101, hdrs, NULL);
    cr_log_debug("stream: upgraded", "kind", st_kind_name(kind), "protocol", wsp->name, "transport", "websocket", NULL);
    int cfd = fd;
    fd = -1;
    if (kind == ST_PORTFORWARD)
        st_serve_portforward(srv, cfd, req, true, wsp, ports, n_ports, st_buf_head(&b), b.len);
    else
        st_serve_exec(srv, cfd, req, true, wsp->name, wsp, st_buf_head(&b), b.len);
done:
    cr_err_free(e);
    cr_strvfree(offered);
    free(ports);
    http_msg_free(&m);
    st_buf_free(&b);
    request_release(srv, req);
    if (fd >= 0)
        close(fd);
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    handle_conn(c->srv, c->fd);
    pthread_mutex_lock(&c->srv->mu);
    c->done = true;
    c->srv->n_active--;
    pthread_mutex_unlock(&c->srv->mu);
    return NULL;
}

/* Join the connection threads that finished; with all, wait for every one. */
static void reap(st_server *s, bool all)
{
    for (;;) {
        conn *victim = NULL;
        pthread_mutex_lock(&s->mu);
        for (conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
            if (all || (*pp)->done) {
                victim = *pp;
                *pp = victim->next;
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!victim)
            return;
        pthread_join(victim->th, NULL);
        free(victim);
    }
}

static void *accept_main(void *arg)
{
    st_server *s = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN }, { .fd = s->stop_fd, .events = POLLIN } };
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (p[1].revents & POLLIN))
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        reap(s, false);
        pthread_mutex_lock(&s->mu);
        bool full = s->n_active >= s->opt.max_sessions;
        pthread_mutex_unlock(&s->mu);
        if (full) {
            cr_log_warn("stream: too many sessions, refusing a connection", NULL);
            respond(fd, 503, NULL, "too many streaming sessions\n");
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        pthread_mutex_lock(&s->mu);
        s->n_active++;
        if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
            s->n_active--;
            pthread_mutex_unlock(&s->mu);
            cr_log_warn("stream: cannot start a connection thread", NULL);
            close(fd);
            free(c);
            continue;
        }
        c->next = s->conns;
        s->conns = c;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* server                                                              */

int st_server_start(st_server **out, const st_options *o, const st_backend *b, cr_err **err)
{
    *out = NULL;
    if (!b || !b->start)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "streaming server: a backend with start() is required");
    st_server *s = calloc(1, sizeof(*s));
    if (!s)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "streaming server: out of memory");
    s->listen_fd = s->stop_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    if (o)
        s->opt = *o;
    s->be = *b;
    if (s->opt.token_ttl_sec <= 0)
        s->opt.token_ttl_sec = 60;
    if (s->opt.idle_timeout_sec <= 0)
        s->opt.idle_timeout_sec = 4 * 3600;
    if (s->opt.stream_creation_timeout_sec <= 0)
        s->opt.stream_creation_timeout_sec = 30;
    if (s->opt.max_sessions <= 0)
        s->opt.max_sessions = 1024;
    if (s->opt.max_tokens <= 0)
        s->opt.max_tokens = 1000;
    const char *addr = s->opt.address && *s->opt.address ? s->opt.address : "127.0.0.1";
    size_t al = strlen(addr);
    if (addr[0] == '[' && al > 2 && addr[al - 1] == ']')
        s->host = strndup(addr + 1, al - 2);
    else
        s->host = strdup(addr);
    s->opt.address = NULL;
    if (!s->host) {
        st_server_stop(s);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "streaming server: out of memory");
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", s->opt.port);
    int gr = getaddrinfo(s->host, portstr, &hints, &ai);
    if (gr != 0) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "streaming server: address %s: %s", addr, gai_strerror(gr));
        st_server_stop(s);
        return -1;
    }
    s->listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s->listen_fd >= 0)
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (s->listen_fd < 0 || bind(s->listen_fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s->listen_fd, 128) < 0) {
        cr_err_errno(err, CR_UNAVAILABLE, errno, "streaming server: listen on %s port %d", addr, s->opt.port);
        freeaddrinfo(ai);
        st_server_stop(s);
        return -1;
    }
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) < 0) {
        cr_err_errno(err, CR_INTERNAL, errno, "streaming server: getsockname");
        st_server_stop(s);
        return -1;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    bool colon = strchr(s->host, ':') != NULL;
    if (asprintf(&s->hostport, colon || v6 ? "[%s]:%d" : "%s:%d", s->host, s->port) < 0) {
        s->hostport = NULL;
        st_server_stop(s);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "streaming server: out of memory");
    }
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stop_fd < 0) {
        cr_err_errno(err, CR_INTERNAL, errno, "streaming server: eventfd");
        st_server_stop(s);
        return -1;
    }
    /* Connection threads inherit a blocked SIGPIPE: a write to a process
     * whose stdin is gone must fail with EPIPE, not kill the daemon. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int pr = pthread_create(&s->accept_th, NULL, accept_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pr != 0) {
        cr_err_set(err, CR_INTERNAL, "streaming server: cannot start the accept thread");
        st_server_stop(s);
        return -1;
    }
    s->accept_started = true;
    cr_log_info("streaming server listening", "address", s->hostport, NULL);
    *out = s;
    return 0;
}

int st_server_port(st_server *s) { return s->port; }

const char *st_server_address(st_server *s) { return s->hostport; }

int st_server_sessions(st_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n_active;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void st_server_stop(st_server *s)
{
    if (!s)
        return;
    if (s->stop_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_fd, &one, sizeof(one));
        (void)w;
    }
    if (s->accept_started)
        pthread_join(s->accept_th, NULL);
    reap(s, true);
    pthread_mutex_lock(&s->mu);
    token *t = s->tokens;
    s->tokens = NULL;
    s->n_tokens = 0;
    pthread_mutex_unlock(&s->mu);
    free_token_list(s, t);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    pthread_mutex_destroy(&s->mu);
    free(s->host);
    free(s->hostport);
    free(s);
}
