/* Port-forward sessions: over SPDY, a data and an error stream per
 * request id, each pair dialed to its port and copied both ways; over
 * WebSocket, two channels per port given at connect time (the kubelet's
 * portforward package). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "server/stream/handlers.h"
#include "server/stream/http.h"

#define PF_LINGER_MS 1000       /* after one direction ends, wait this long for the other */

enum { PF_DATA = 1, PF_ERROR };

typedef struct pf_pair {
    char *request_id;
    int32_t port;
    st_chan *data, *error;
    int64_t deadline;     /* both streams must be there by then */
    int64_t linger_until; /* one direction ended: the other gets until then */
    bool active;          /* dialed: data flows */
    bool closing;         /* finished: remove at the next step */
    struct pf_pair *next;
} pf_pair;

typedef struct pf_app {
    st_server *srv;
    const st_request *req;
    pf_pair *pairs;       /* SPDY */
    const int32_t *ports; /* WebSocket: the ports, channel 2i (data) and 2i+1 (error) */
    size_t n_ports;
} pf_app;

static bool port_allowed(const st_request *req, int32_t port)
{
    if (req->n_ports == 0)
        return true;
    for (size_t i = 0; i < req->n_ports; i++)
        if (req->ports[i] == port)
            return true;
    return false;
}

/* Connect to port; on failure say why on the error channel.  Returns the fd
 * or -1. */
static int pf_dial(st_sess *s, pf_app *a, int32_t port, st_chan *error)
{
    cr_err *e = NULL;
    int fd = -1;
    if (!port_allowed(a->req, port))
        cr_err_set(&e, CR_PERMISSION_DENIED, "port %d is not among the ports of this port-forward request", port);
    else if (!a->srv->be.dial)
        cr_err_set(&e, CR_UNIMPLEMENTED, "port forwarding is not supported");
    else
        fd = a->srv->be.dial(a->srv->be.ctx, a->req, port, &e);
    if (fd >= 0) {
        st_set_nonblock(fd);
        cr_err_free(e);
        return fd;
    }
    _cleanup_free_ char *msg = NULL;
    if (asprintf(&msg, "error forwarding port %d to pod %s, uid : %s", port, a->req->sandbox_id,
                 e && e->msg ? e->msg : "dial failed") < 0)
        msg = NULL;
    cr_log_info("stream: port-forward dial failed", "sandbox", a->req->sandbox_id, "error", e ? e->msg : "", NULL);
    if (msg && error)
        st_sess_send(s, error, msg, strlen(msg));
    cr_err_free(e);
    return -1;
}

static pf_pair *pf_pair_get(st_server *srv, pf_app *a, const char *rid, int32_t port)
{
    for (pf_pair *p = a->pairs; p; p = p->next)
        if (strcmp(p->request_id, rid) == 0)
            return p;
    pf_pair *p = calloc(1, sizeof(*p));
    if (!p || !(p->request_id = strdup(rid))) {
        free(p);
        return NULL;
    }
    p->port = port;
    p->deadline = st_now_ms() + (int64_t)srv->opt.stream_creation_timeout_sec * 1000;
    p->next = a->pairs;
    a->pairs = p;
    return p;
}

static int pf_on_open(st_sess *s, spdy_stream *sp)
{
    pf_app *a = s->owner;
    const char *ps = spdy_headers_get(&sp->headers, "port");
    const char *type = spdy_headers_get(&sp->headers, "streamtype");
    const char *rid = spdy_headers_get(&sp->headers, "requestid");
    char *end = NULL;
    long port = ps && *ps ? strtol(ps, &end, 10) : 0;
    if (!ps || !*ps || *end || port < 1 || port > 65535) {
        cr_log_info("stream: port-forward stream without a valid port header", "port", ps, NULL);
        return -1;
    }
    int tag = type && strcmp(type, "data") == 0 ? PF_DATA : type && strcmp(type, "error") == 0 ? PF_ERROR : -1;
    if (tag < 0) {
        cr_log_info("stream: port-forward stream of invalid type", "streamType", type, NULL);
        return -1;
    }
    /* Clients too old to send a request id: pair by stream id, as the kubelet
     * does (error stream id N, data stream id N+2). */
    char ridbuf[16];
    if (!rid || !*rid) {
        snprintf(ridbuf, sizeof(ridbuf), "%u", tag == PF_ERROR ? sp->id : sp->id - 2);
        rid = ridbuf;
    }
    pf_pair *p = pf_pair_get(a->srv, a, rid, (int32_t)port);
    if (!p || p->closing || (tag == PF_DATA ? p->data : p->error) != NULL)
        return -1;
    st_chan *c = st_chan_add(s, tag, 0, sp);
    if (!c)
        return -1;
    c->user = p;
    c->discard = tag == PF_ERROR; /* the client sends nothing there; data waits for the dial */
    if (tag == PF_DATA) {
        p->data = c;
        p->port = (int32_t)port;
    } else {
        p->error = c;
        c->fin_on_eof = false;
    }
    if (p->data && p->error) {
        int fd = pf_dial(s, a, p->port, p->error);
        if (fd < 0) {
            p->closing = true;
        } else {
            p->data->src_fd = p->data->dst_fd = fd;
            p->data->own_fds = true;
            p->data->dst_eof = ST_DST_SHUTDOWN;
            p->data->discard = false;
            p->active = true;
        }
    }
    return 0;
}

static void pf_pair_drop(st_sess *s, pf_app *a, pf_pair *p)
{
    if (p->data) {
        st_sess_fin(s, p->data);
        st_chan_remove(s, p->data);
    }
    if (p->error) {
        st_sess_fin(s, p->error);
        st_chan_remove(s, p->error);
    }
    for (pf_pair **pp = &a->pairs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p->request_id);
    free(p);
}

static int pf_step(st_sess *s)
{
    pf_app *a = s->owner;
    int64_t now = st_now_ms();
    for (pf_pair *p = a->pairs, *next; p; p = next) {
        next = p->next;
        if (!p->active && !p->closing && now >= p->deadline) {
            static const char msg[] = "timed out waiting for streams";
            if (p->error)
                st_sess_send(s, p->error, msg, sizeof(msg) - 1);
            p->closing = true;
        }
        if (p->active) {
            /* Like the runtimes' PortForward: once one direction ends, the
             * other gets a second to finish, then both streams close (the
             * client waits for the error stream to close). */
            st_chan *d = p->data;
            bool reset = d->sp && d->sp->reset;
            if ((d->src_eof || d->dst_done) && !p->linger_until)
                p->linger_until = now + PF_LINGER_MS;
            if (reset || (d->src_eof && d->dst_done) || (p->linger_until && now >= p->linger_until))
                p->closing = true;
        }
        if (p->closing)
            pf_pair_drop(s, a, p);
    }
    return 0;
}

static int64_t pf_deadline(st_sess *s)
{
    pf_app *a = s->owner;
    int64_t d = 0;
    for (pf_pair *p = a->pairs; p; p = p->next) {
        int64_t t = p->closing ? 0 : !p->active ? p->deadline : p->linger_until;
        if (t && (d == 0 || t < d))
            d = t;
    }
    return d;
}

/* WebSocket: the session is complete once every port's connection ended. */
static int pf_ws_step(st_sess *s)
{
    pf_app *a = s->owner;
    for (size_t i = 0; i < a->n_ports; i++) {
        st_chan *d = st_chan_find(s, (uint32_t)(2 * i));
        if (d && d->src_fd >= 0 && !d->src_eof)
            return 0;
    }
    return 1;
}

static const st_sess_ops pf_ops = { .on_open = pf_on_open, .step = pf_step, .deadline = pf_deadline };
static const st_sess_ops pf_ws_ops = { .step = pf_ws_step };

int st_ws_ports(const st_request *req, const char *query, int32_t **out, size_t *n, char **why)
{
    *out = NULL;
    *n = 0;
    _cleanup_strv_ char **vals = http_query_values(query, "port");
    if (!vals)
        return -1;
    if (!vals[0]) {
        if (req->n_ports == 0) {
            *why = strdup("query parameter \"port\" is required");
            return -1;
        }
        *out = calloc(req->n_ports, sizeof(int32_t));
        if (!*out)
            return -1;
        memcpy(*out, req->ports, req->n_ports * sizeof(int32_t));
        *n = req->n_ports;
        return 0;
    }
    int32_t *ports = NULL;
    size_t k = 0;
    for (char **v = vals; *v; v++) {
        if (!**v) {
            free(ports);
            *why = strdup("query parameter \"port\" cannot be empty");
            return -1;
        }
        char *dup = strdup(*v), *save = NULL;
        for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
            char *end = NULL;
            errno = 0;
            long p = strtol(t, &end, 10);
            if (*end || errno || p < 1 || p > 65535) {
                if (asprintf(why, "unable to parse \"%s\" as a port", *v) < 0)
                    *why = NULL;
                free(dup);
                free(ports);
                return -1;
            }
            if (!port_allowed(req, (int32_t)p)) {
                if (asprintf(why, "port %ld is not among the ports of this port-forward request", p) < 0)
                    *why = NULL;
                free(dup);
                free(ports);
                return -1;
            }
            int32_t *np = realloc(ports, (k + 1) * sizeof(*np));
            if (!np) {
                free(dup);
                free(ports);
                return -1;
            }
            ports = np;
            ports[k++] = (int32_t)p;
        }
        free(dup);
    }
    *out = ports;
    *n = k;
    return 0;
}

void st_serve_portforward(st_server *srv, int fd, const st_request *req, bool ws, const ws_proto *wsp,
                          const int32_t *ports, size_t n_ports, const uint8_t *extra, size_t extra_len)
{
    pf_app a = { .srv = srv, .req = req, .ports = ports, .n_ports = n_ports };
    st_sess s;
    cr_err *e = NULL;
    if (st_sess_init(&s, fd, !ws, true, wsp, extra, extra_len, ws ? &pf_ws_ops : &pf_ops, &a, &e) < 0) {
        cr_log_warn("stream: session setup failed", "error", e ? e->msg : "", NULL);
        cr_err_free(e);
        close(fd);
        return;
    }
    s.stop_fd = srv->stop_fd;
    s.idle_ms = (int64_t)srv->opt.idle_timeout_sec * 1000;
    if (!ws) {
        spdy_conn_send_settings(&s.spdy, SPDY_INITIAL_WINDOW);
    } else {
        for (size_t i = 0; i < n_ports; i++) {
            st_chan *d = st_chan_add(&s, PF_DATA, (uint32_t)(2 * i), NULL);
            st_chan *er = st_chan_add(&s, PF_ERROR, (uint32_t)(2 * i + 1), NULL);
            if (!d || !er)
                goto out;
            d->fin_on_eof = false;
            d->discard = true;
            er->discard = true;
            er->fin_on_eof = false;
            uint8_t pb[2] = { (uint8_t)(ports[i] & 0xff), (uint8_t)(ports[i] >> 8) };
            st_sess_send(&s, d, pb, 2);
            st_sess_send(&s, er, pb, 2);
        }
        for (size_t i = 0; i < n_ports; i++) {
            st_chan *d = st_chan_find(&s, (uint32_t)(2 * i));
            st_chan *er = st_chan_find(&s, (uint32_t)(2 * i + 1));
            int pfd = pf_dial(&s, &a, ports[i], er);
            if (pfd >= 0) {
                d->src_fd = d->dst_fd = pfd;
                d->own_fds = true;
                d->dst_eof = ST_DST_SHUTDOWN;
                d->discard = false;
            }
        }
    }
    int end = st_sess_run(&s);
    st_end_session(srv, &s, end, false, NULL);
out:
    while (a.pairs) {
        pf_pair *p = a.pairs;
        a.pairs = p->next;
        free(p->request_id);
        free(p);
    }
    st_sess_free(&s);
}

