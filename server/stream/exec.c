/* Exec and attach sessions: the client's streams (SPDY) or channels
 * (WebSocket) wired to the process's fds, terminal resizes, and the exit
 * status on the error stream, as the kubelet's remotecommand server does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "server/stream/handlers.h"
#include "server/stream/internal.h"

#define EXIT_DRAIN_MS 2000      /* after the process exited, wait this long for its output to end */
#define TTY_SIZE_WAIT_MS 250    /* a tty session waits this long for the client's first size before starting */

enum { T_UNKNOWN, T_ERROR, T_STDIN, T_STDOUT, T_STDERR, T_RESIZE };

typedef struct exec_app {
    st_server *srv;
    const st_request *req;
    int version;            /* 1..5 */
    st_proc proc;
    bool started, start_failed, exited, finished;
    int64_t exited_at;      /* when exit_fd fired */
    int64_t size_wait_until; /* tty: start once the first size came, or then */
    st_chan *ch[T_RESIZE + 1];
    size_t received, expected;
    int64_t create_deadline;
    bool have_size;
    unsigned short width, height;
} exec_app;

static void exec_resize_cb(void *arg, unsigned short w, unsigned short h)
{
    exec_app *a = arg;
    if (!a->req->tty)
        return;
    if (a->started && a->srv->be.resize)
        a->srv->be.resize(a->srv->be.ctx, &a->proc, w, h);
    else {
        a->have_size = true;
        a->width = w;
        a->height = h;
    }
}

static void exec_on_rx(st_sess *s, st_chan *c)
{
    exec_app *a = s->owner;
    if (c->tag == T_RESIZE)
        st_parse_resize(&c->rx, exec_resize_cb, a);
}

static int stream_tag(const char *t)
{
    if (!t)
        return T_UNKNOWN;
    if (strcmp(t, "error") == 0)
        return T_ERROR;
    if (strcmp(t, "stdin") == 0)
        return T_STDIN;
    if (strcmp(t, "stdout") == 0)
        return T_STDOUT;
    if (strcmp(t, "stderr") == 0)
        return T_STDERR;
    if (strcmp(t, "resize") == 0)
        return T_RESIZE;
    return T_UNKNOWN;
}

static void setup_chan(exec_app *a, st_chan *c)
{
    switch (c->tag) {
    case T_RESIZE:
        c->collect = true;
        break;
    case T_STDIN:
        c->discard = !a->req->want_stdin;
        break;
    case T_STDOUT:
    case T_STDERR:
        c->discard = true;
        break;
    default:
        c->discard = true;
        break;
    }
}

static int exec_on_open(st_sess *s, spdy_stream *sp)
{
    exec_app *a = s->owner;
    int tag = stream_tag(spdy_headers_get(&sp->headers, "streamtype"));
    bool dup = tag != T_UNKNOWN && a->ch[tag];
    st_chan *c = st_chan_add(s, dup ? T_UNKNOWN : tag, 0, sp);
    if (!c)
        return -1;
    if (!dup && tag != T_UNKNOWN)
        a->ch[tag] = c;
    setup_chan(a, c);
    a->received++;
    return 0;
}

static void send_status(st_sess *s, exec_app *a, bool ok, const char *message, const char *reason,
                        const char *cause_reason, const char *cause_message, int code)
{
    st_chan *e = a->ch[T_ERROR];
    if (!e)
        return;
    if (a->version >= 4) {
        _cleanup_free_ char *j = st_status_json(ok, message, reason, cause_reason, cause_message, code);
        if (j)
            st_sess_send(s, e, j, strlen(j));
    } else if (!ok && message) {
        st_sess_send(s, e, message, strlen(message));
    }
    st_sess_fin(s, e);
}

static void internal_error(st_sess *s, exec_app *a, const char *what, const cr_err *e)
{
    _cleanup_free_ char *cause = NULL, *msg = NULL;
    if (asprintf(&cause, "%s: %s", what, e && e->msg ? e->msg : "unknown error") < 0)
        return;
    if (asprintf(&msg, "Internal error occurred: %s", cause) < 0)
        return;
    send_status(s, a, false, msg, "InternalError", NULL, cause, 500);
}

static char *join_cmd(char **cmd)
{
    st_buf b = { 0 };
    for (char **p = cmd; p && *p; p++) {
        if (p != cmd)
            st_buf_u8(&b, ' ');
        st_buf_add_str(&b, *p);
    }
    st_buf_u8(&b, 0);
    return b.oom ? (st_buf_free(&b), NULL) : (char *)b.data;
}

/* Wire the started process's fds to the channels. */
static void exec_attach_fds(st_sess *s, exec_app *a)
{
    st_proc *p = &a->proc;
    if (p->stdin_fd >= 0)
        st_set_nonblock(p->stdin_fd);
    if (p->stdout_fd >= 0)
        st_set_nonblock(p->stdout_fd);
    if (p->stderr_fd >= 0)
        st_set_nonblock(p->stderr_fd);
    bool shared_in = p->stdin_fd >= 0 && (p->stdin_fd == p->stdout_fd || p->stdin_fd == p->stderr_fd);
    struct stat st;
    bool sock_in = p->stdin_fd >= 0 && fstat(p->stdin_fd, &st) == 0 && S_ISSOCK(st.st_mode);
    st_chan *in = a->ch[T_STDIN];
    if (in && p->stdin_fd >= 0 && a->req->want_stdin) {
        /* The client's stdin EOF: close the process's stdin; half-close a
         * socket shared with the output (an attach socket); a terminal
         * cannot be half-closed. */
        in->dst_fd = p->stdin_fd;
        in->dst_slot = &p->stdin_fd;
        in->dst_eof = !shared_in ? ST_DST_CLOSE : sock_in ? ST_DST_SHUTDOWN : ST_DST_KEEP;
        in->discard = false;
    } else if (p->stdin_fd >= 0 && !shared_in) {
        /* Nobody will write: the process reads EOF. */
        close(p->stdin_fd);
        p->stdin_fd = -1;
    }
    int fds[2] = { p->stdout_fd, p->stderr_fd };
    int tags[2] = { T_STDOUT, T_STDERR };
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        st_chan *c = a->ch[tags[i]];
        if (!c && s->is_spdy) {
            /* The client did not open this stream: drain it anyway. */
            c = st_chan_add(s, tags[i], 0, NULL);
            if (!c)
                continue;
            c->sink = true;
            a->ch[tags[i]] = c;
        }
        if (!c)
            continue;
        c->src_fd = fds[i];
        if (!s->is_spdy) {
            c->fin_on_eof = false;
            c->sink = (tags[i] == T_STDOUT && !a->req->want_stdout) || (tags[i] == T_STDERR && !a->req->want_stderr);
        }
    }
    if (a->have_size && a->req->tty && a->srv->be.resize)
        a->srv->be.resize(a->srv->be.ctx, p, a->width, a->height);
}

static void exec_start(st_sess *s, exec_app *a)
{
    cr_err *e = NULL;
    a->proc = (st_proc){ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .exit_fd = -1 };
    if (a->have_size && a->req->tty) {
        a->proc.width = a->width;
        a->proc.height = a->height;
    }
    int r = a->srv->be.start(a->srv->be.ctx, a->req, &a->proc, &e);
    if (r < 0) {
        a->start_failed = true;
        cr_log_warn("stream: start failed", "kind", st_kind_name(a->req->kind), "container", a->req->container_id,
                    "error", e ? e->msg : "", NULL);
        internal_error(s, a, a->req->kind == ST_EXEC ? "error executing command in container"
                                                    : "error attaching to container", e);
        cr_err_free(e);
        a->finished = true;
        return;
    }
    a->started = true;
    exec_attach_fds(s, a);
}

static bool exec_output_done(exec_app *a)
{
    for (int t = T_STDOUT; t <= T_STDERR; t++) {
        st_chan *c = a->ch[t];
        if (c && c->src_fd >= 0 && !c->src_eof)
            return false;
    }
    if (a->proc.stdout_fd < 0 && a->proc.stderr_fd < 0) {
        /* No output to watch: the exit fd, or else the client's stdin, says when. */
        if (a->proc.exit_fd >= 0)
            return a->exited;
        st_chan *in = a->ch[T_STDIN];
        return !in || in->dst_done || in->remote_fin;
    }
    return true;
}

/* Whether output is still waiting in the process's pipes (we may not be
 * reading them while the client is slow). */
static bool output_pending(exec_app *a)
{
    for (int t = T_STDOUT; t <= T_STDERR; t++) {
        st_chan *c = a->ch[t];
        int n = 0;
        if (c && c->src_fd >= 0 && !c->src_eof && (ioctl(c->src_fd, FIONREAD, &n) < 0 || n > 0))
            return true;
    }
    return false;
}

static void exec_finish(st_sess *s, exec_app *a)
{
    int code = 0;
    cr_err *e = NULL;
    int r = a->srv->be.wait ? a->srv->be.wait(a->srv->be.ctx, &a->proc, &code, &e) : 0;
    if (r < 0) {
        internal_error(s, a, a->req->kind == ST_EXEC ? "error executing command in container"
                                                    : "error attaching to container", e);
    } else if (a->req->kind == ST_EXEC && code != 0) {
        _cleanup_free_ char *cmd = join_cmd(a->req->cmd);
        _cleanup_free_ char *msg = NULL;
        char num[16];
        snprintf(num, sizeof(num), "%d", code);
        if (asprintf(&msg, "command terminated with non-zero exit code: command '%s' exited with %d",
                     cmd ? cmd : "", code) < 0)
            msg = NULL;
        send_status(s, a, false, msg ? msg : "command terminated with non-zero exit code", "NonZeroExitCode",
                    "ExitCode", num, 0);
    } else {
        send_status(s, a, true, NULL, NULL, NULL, NULL, 0);
    }
    cr_err_free(e);
    a->finished = true;
}

static int exec_step(st_sess *s)
{
    exec_app *a = s->owner;
    if (a->finished)
        return 1;
    if (!a->started) {
        if (a->received >= a->expected) {
            /* kubectl and crictl send the terminal size right after the
             * streams: a process started before it arrives would see 0x0. */
            bool resizable = a->req->tty && a->ch[T_RESIZE] && a->srv->be.resize;
            if (resizable && !a->have_size) {
                int64_t now = st_now_ms();
                if (!a->size_wait_until)
                    a->size_wait_until = now + TTY_SIZE_WAIT_MS;
                if (now < a->size_wait_until)
                    return 0;
            }
            exec_start(s, a);
            return a->finished ? 1 : 0;
        }
        if (st_now_ms() >= a->create_deadline) {
            cr_log_warn("stream: timed out waiting for client to create streams", "container",
                        a->req->container_id, NULL);
            a->finished = true;
            return 1;
        }
        return 0;
    }
    /* Done when the output ended and the process exited; or, when some
     * other process still holds the output open (a background child), a
     * little after the exit once nothing is left to read, as the runtimes
     * do. */
    if ((exec_output_done(a) && (a->proc.exit_fd < 0 || a->exited)) ||
        (a->exited && st_now_ms() >= a->exited_at + EXIT_DRAIN_MS && !output_pending(a))) {
        exec_finish(s, a);
        return 1;
    }
    return 0;
}

static int64_t exec_deadline(st_sess *s)
{
    exec_app *a = s->owner;
    if (!a->started)
        return a->size_wait_until ? a->size_wait_until : a->create_deadline;
    if (!a->exited)
        return 0;
    /* Past the drain time with output still queued: look again soon. */
    int64_t t = a->exited_at + EXIT_DRAIN_MS, now = st_now_ms();
    return t > now ? t : now + 100;
}

static int exec_poll_extra(st_sess *s, struct pollfd *p, int max)
{
    exec_app *a = s->owner;
    if (!a->started || a->exited || a->proc.exit_fd < 0 || max < 1)
        return 0;
    p[0] = (struct pollfd){ .fd = a->proc.exit_fd, .events = POLLIN };
    return 1;
}

static void exec_on_extra(st_sess *s, struct pollfd *p, int n)
{
    exec_app *a = s->owner;
    if (n >= 1 && p[0].revents) {
        a->exited = true;
        a->exited_at = st_now_ms();
    }
}

static const st_sess_ops exec_ops = {
    .on_open = exec_on_open,
    .on_rx = exec_on_rx,
    .step = exec_step,
    .deadline = exec_deadline,
    .poll_extra = exec_poll_extra,
    .on_extra = exec_on_extra,
};

void st_end_session(st_server *srv, st_sess *s, int end, bool started, st_proc *proc)
{
    const char *why = end == ST_END_DONE ? "done" : end == ST_END_PEER ? "client closed" : end == ST_END_STOP
                                                                                           ? "server stopping"
                                                  : end == ST_END_IDLE ? "idle timeout" : "error";
    cr_log_debug("stream: session ended", "why", why, "error", s->err ? s->err->msg : NULL, NULL);
    if (started && srv->be.release)
        srv->be.release(srv->be.ctx, proc);
    bool graceful = end == ST_END_DONE;
    int code = end == ST_END_STOP || end == ST_END_IDLE ? WS_CLOSE_GOING_AWAY
             : end == ST_END_ERROR                       ? WS_CLOSE_PROTOCOL_ERROR
                                                         : WS_CLOSE_NORMAL;
    st_sess_close(s, graceful, code, end == ST_END_STOP ? 200 : CLOSE_DRAIN_MS);
}

void st_serve_exec(st_server *srv, int fd, const st_request *req, bool ws, const char *proto, const ws_proto *wsp,
                   const uint8_t *extra, size_t extra_len)
{
    exec_app a = { .srv = srv, .req = req, .version = st_protocol_version(proto) };
    a.proc = (st_proc){ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .exit_fd = -1 };
    st_sess s;
    cr_err *e = NULL;
    if (st_sess_init(&s, fd, !ws, true, wsp, extra, extra_len, &exec_ops, &a, &e) < 0) {
        cr_log_warn("stream: session setup failed", "error", e ? e->msg : "", NULL);
        cr_err_free(e);
        close(fd);
        return;
    }
    s.stop_fd = srv->stop_fd;
    s.idle_ms = (int64_t)srv->opt.idle_timeout_sec * 1000;
    a.expected = 1 + (req->want_stdin ? 1 : 0) + (req->want_stdout ? 1 : 0) +
                 (req->want_stderr && !req->tty ? 1 : 0) + (req->tty && a.version >= 3 ? 1 : 0);
    a.create_deadline = st_now_ms() + (int64_t)srv->opt.stream_creation_timeout_sec * 1000;
    if (ws) {
        static const int tags[5] = { T_STDIN, T_STDOUT, T_STDERR, T_ERROR, T_RESIZE };
        for (int i = 0; i < 5; i++) {
            st_chan *c = st_chan_add(&s, tags[i], (uint32_t)i, NULL);
            if (!c)
                goto out;
            a.ch[tags[i]] = c;
            setup_chan(&a, c);
            if (tags[i] == T_ERROR)
                c->fin_on_eof = false;
        }
    } else {
        spdy_conn_send_settings(&s.spdy, SPDY_INITIAL_WINDOW);
    }
    if (ws) {
        /* The kubelet's hello: an empty message on the lowest writable channel. */
        st_chan *hello = req->want_stdout ? a.ch[T_STDOUT] : req->want_stderr ? a.ch[T_STDERR] : a.ch[T_ERROR];
        st_sess_send(&s, hello, "", 0);
        a.expected = 0; /* the channels exist already: start at the first step */
    }
    int end = st_sess_run(&s);
    if (end == ST_END_DONE && a.started && !a.finished)
        end = ST_END_ERROR;
    st_end_session(srv, &s, end, a.started, &a.proc);
out:
    st_sess_free(&s);
}

