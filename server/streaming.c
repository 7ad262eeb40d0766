/* Exec, Attach and PortForward: the RPCs check the request and hand it to
 * the streaming server (server/stream/), which answers with a single-use URL;
 * the client then connects there and the server calls the backend below for
 * the process side of the session:
 *
 *   exec, no tty   `runtime exec` in the foreground, our child, stdio on pipes
 *                  (oci_exec_start); it exits with the process's status.
 *   exec, tty      a crisp-monitor in exec mode: a subreaper holding the pty
 *                  (runtime exec -d --console-socket), resized through its ctl
 *                  fifo, relayed from its attach socket.
 *   attach         the container's own monitor: its attach socket, relayed;
 *                  resizes through its ctl fifo.  Release only detaches.
 *   portforward    a TCP connection to localhost:port made inside the pod's
 *                  network namespace (net_ns_dial).
 *
 * A relay thread turns the monitor's SOCK_SEQPACKET packets (monitor.h) into
 * the plain pipes the session reads and writes. */
#include "internal.h"
#include "container.h"
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conmon/monitor.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/ids.h"
#include "lib/log.h"
#include "network/network.h"
#include "oci/oci.h"
#include "server/stream/stream.h"

#define DIAL_TIMEOUT_MS 10000
#define KILL_GRACE_MS 2000
#define SWEEP_WAIT_NS (5 * 1000000000LL)

/* ---- one session's process side ---- */

typedef enum { SESS_EXEC, SESS_EXEC_TTY, SESS_ATTACH } sess_kind;

typedef struct sess {
    srv_daemon *d;
    sess_kind kind;
    char id[65];             /* the container */
    oci_exec_proc *proc;     /* SESS_EXEC */

    /* SESS_EXEC_TTY, SESS_ATTACH: the monitor */
    char *state_dir;         /* exec: ours, removed at release */
    char *process_file;      /* exec: the process JSON beside it */
    int sock;                /* attach socket */
    int ctl;                 /* ctl fifo, for resizes (and kill) */
    bool close_stdin_on_eof; /* exec, or a stdin_once container */
    int in_r, out_w, err_w;  /* the relay's ends of the session's pipes */
    int stop;                /* eventfd: release wants the relay gone */
    pthread_t relay;
    bool relay_started;
    pthread_mutex_t mu;
    pthread_cond_t done_cond;
    bool relay_done, got_exit;
    int exit_code;
} sess;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_packet(int sock, int type, const char *data, size_t n)
{
    unsigned char t = (unsigned char)type;
    struct iovec iov[2] = { { &t, 1 }, { (void *)data, n } };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n ? 2 : 1 };
    ssize_t r;
    do
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

static void *relay_main(void *arg)
{
    sess *s = arg;
    char *buf = malloc(MON_ATTACH_MAX_PACKET);
    bool sock_open = buf != NULL;
    while (sock_open) {
        struct pollfd pfd[3] = { { s->sock, POLLIN, 0 }, { s->stop, POLLIN, 0 }, { s->in_r, POLLIN, 0 } };
        if (poll(pfd, s->in_r >= 0 ? 3 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        if (pfd[0].revents) {
            ssize_t n;
            do
                n = recv(s->sock, buf, MON_ATTACH_MAX_PACKET, 0);
            while (n < 0 && errno == EINTR);
            if (n <= 0) {
                sock_open = false; /* the monitor closed: the process ended, or we were dropped */
                break;
            }
            switch ((unsigned char)buf[0]) {
            case MON_ATTACH_STDOUT:
                if (s->out_w >= 0 && write_all(s->out_w, buf + 1, (size_t)n - 1) < 0)
                    close_fd(&s->out_w); /* the session stopped reading */
                break;
            case MON_ATTACH_STDERR:
                if (s->err_w >= 0 && write_all(s->err_w, buf + 1, (size_t)n - 1) < 0)
                    close_fd(&s->err_w);
                break;
            case MON_ATTACH_EXIT: {
                char num[16];
                size_t k = (size_t)n - 1 < sizeof(num) - 1 ? (size_t)n - 1 : sizeof(num) - 1;
                memcpy(num, buf + 1, k);
                num[k] = '\0';
                pthread_mutex_lock(&s->mu);
                s->exit_code = atoi(num);
                s->got_exit = true;
                pthread_mutex_unlock(&s->mu);
                break;
            }
            default:
                break;
            }
        }
        if (s->in_r >= 0 && pfd[2].revents) {
            ssize_t n;
            do
                n = read(s->in_r, buf + 1, MON_ATTACH_MAX_PAYLOAD);
            while (n < 0 && errno == EINTR);
            if (n > 0) {
                if (send_packet(s->sock, MON_ATTACH_STDIN, buf + 1, (size_t)n) < 0)
                    close_fd(&s->in_r);
            } else {
                /* The client's stdin ended. */
                if (s->close_stdin_on_eof)
                    send_packet(s->sock, MON_ATTACH_CLOSE_STDIN, NULL, 0);
                close_fd(&s->in_r);
            }
        }
    }
    free(buf);
    /* EOF for the session's readers. */
    close_fd(&s->out_w);
    close_fd(&s->err_w);
    pthread_mutex_lock(&s->mu);
    s->relay_done = true;
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sess_free(sess *s)
{
    if (!s)
        return;
    close_fd(&s->sock);
    close_fd(&s->ctl);
    close_fd(&s->in_r);
    close_fd(&s->out_w);
    close_fd(&s->err_w);
    close_fd(&s->stop);
    if (s->state_dir) {
        cr_remove_tree(s->state_dir, NULL);
        free(s->state_dir);
    }
    if (s->process_file) {
        unlink(s->process_file);
        free(s->process_file);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->done_cond);
    free(s);
}

static sess *sess_new(srv_daemon *d, sess_kind kind, const char *id)
{
    sess *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->d = d;
    s->kind = kind;
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->sock = s->ctl = s->in_r = s->out_w = s->err_w = s->stop = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    return s;
}

/* Pipes between the session and the relay, and the relay thread. */
static int relay_start(sess *s, const st_request *req, st_proc *p, cr_err **err)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
    bool want_err = req->want_stderr && !req->tty;
    if ((req->want_stdin && pipe2(in, O_CLOEXEC) < 0) || (req->want_stdout && pipe2(out, O_CLOEXEC) < 0) ||
        (want_err && pipe2(er, O_CLOEXEC) < 0) || (s->stop = eventfd(0, EFD_CLOEXEC)) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&in[i]);
            close_fd(&out[i]);
            close_fd(&er[i]);
        }
        return cr_err_errno(err, CR_INTERNAL, e, "%s: pipes", s->id);
    }
    s->in_r = in[0];
    s->out_w = out[1];
    s->err_w = er[1];
    p->stdin_fd = in[1];
    p->stdout_fd = out[0];
    p->stderr_fd = er[0];
    int e = pthread_create(&s->relay, NULL, relay_main, s);
    if (e) {
        close_fd(&p->stdin_fd);
        close_fd(&p->stdout_fd);
        close_fd(&p->stderr_fd);
        return cr_err_errno(err, CR_INTERNAL, e, "%s: start the relay thread", s->id);
    }
    s->relay_started = true;
    return 0;
}

/* Wait up to ms for the relay to end by itself; true when it did. */
static bool relay_wait(sess *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->relay_done && pthread_cond_timedwait(&s->done_cond, &s->mu, &ts) != ETIMEDOUT)
        ;
    bool done = s->relay_done;
    pthread_mutex_unlock(&s->mu);
    return done;
}

static void relay_stop(sess *s)
{
    if (!s->relay_started)
        return;
    uint64_t one = 1;
    if (write(s->stop, &one, sizeof(one)) < 0) {
        /* an eventfd write cannot fail short of a bug; the join still ends
         * once the monitor closes */
    }
    pthread_join(s->relay, NULL);
    s->relay_started = false;
}

static void ctl_write(sess *s, const char *line, size_t n)
{
    if (s->ctl >= 0 && write(s->ctl, line, n) < 0)
        cr_log_debug("streaming: ctl fifo write failed", "container", s->id, "error", strerror(errno), NULL);
}

static int open_ctl(const char *dir)
{
    _cleanup_free_ char *path = srv_pathf("%s/" MON_CTL_FIFO, dir);
    /* Non-blocking: a monitor that is gone must not hold a session up. */
    return path ? open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) : -1;
}

/* ---- the backend ---- */

static int start_exec_tty(srv_daemon *d, srv_container *c, const oci_runtime *rt, const st_request *req,
                          const st_proc *p, sess *s, cr_err **err)
{
    char rnd[65];
    if (cr_random_id(rnd) < 0)
        return cr_err_set(err, CR_INTERNAL, "exec in %s: no randomness for a session id", c->id);
    rnd[32] = '\0';
    s->state_dir = srv_pathf("%s/exec/%s", d->cfg->runroot, rnd);
    _cleanup_free_ char *bundle = srv_container_bundle(d, c->id);
    _cleanup_free_ char *process = srv_pathf("%s/exec/%s.process.json", d->cfg->runroot, rnd);
    if (!s->state_dir || !bundle || !process)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    /* The container's process with this command and, when the client told
     * it already, the terminal's size: the pty has it before the command
     * starts (runc; crun 1.8 ignores it and gets the resize after). */
    if (cr_mkdir_p(s->state_dir, 0700, err) < 0 ||
        oci_exec_process_write(bundle, (const char *const *)req->cmd, true, p->width, p->height, process, err) < 0)
        return cr_err_prefix(err, "exec in %s", c->id);
    s->process_file = process;
    process = NULL;
    srv_monitor_req m = {
        .id = c->id, .name = c->name, .bundle = bundle, .rt = rt, .state_dir = s->state_dir, .tty = true,
        .stdin_ = req->want_stdin, .stdin_once = req->want_stdin, .exec_process = s->process_file,
        .attach_fd = &s->sock,
    };
    int pid = 0;
    if (srv_monitor_launch(d, &m, &pid, err) < 0)
        return -1;
    s->ctl = open_ctl(s->state_dir);
    s->close_stdin_on_eof = true;
    return 0;
}

static int start_attach(srv_daemon *d, srv_container *c, sess *s, cr_err **err)
{
    _cleanup_free_ char *dir = srv_container_rundir(d, c->id);
    if (!dir)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    _cleanup_close_ int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct sockaddr_un sa;
    socklen_t salen;
    if (mon_sockaddr(&sa, &salen, dir, dirfd, MON_ATTACH_SOCKET) < 0)
        return cr_err_set(err, CR_INTERNAL, "attach to %s: socket path too long", c->id);
    s->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s->sock < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "attach to %s: socket", c->id);
    if (connect(s->sock, (struct sockaddr *)&sa, salen) < 0) {
        /* No monitor listening: the container has just exited. */
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "attach to %s: the container's monitor", c->id);
    }
    s->ctl = open_ctl(dir);
    s->close_stdin_on_eof = c->config->stdin_once;
    return 0;
}

static int be_start(void *ctx, const st_request *req, st_proc *p, cr_err **err)
{
    srv_daemon *d = ctx;
    srv_container *c = srv_container_get(d, req->container_id, err);
    if (!c)
        return -1;
    int r = -1;
    sess *s = NULL;
    oci_runtime rt;
    const char *what = req->kind == ST_ATTACH ? "attach to" : "exec in";
    if (srv_container_state(d, c) != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING) {
        cr_err_set(err, CR_FAILED_PRECONDITION, "%s %s: the container is not running", what, c->id);
        goto out;
    }
    if (!srv_handler_runtime(d, c->runtime_handler, &rt)) {
        cr_err_set(err, CR_FAILED_PRECONDITION, "%s %s: runtime handler %s is gone", what, c->id, c->runtime_handler);
        goto out;
    }
    sess_kind kind = req->kind == ST_ATTACH ? SESS_ATTACH : req->tty ? SESS_EXEC_TTY : SESS_EXEC;
    if (!(s = sess_new(d, kind, c->id))) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    p->stdin_fd = p->stdout_fd = p->stderr_fd = p->exit_fd = -1;
    if (kind == SESS_EXEC) {
        if (oci_exec_start(&rt, c->id, (const char *const *)req->cmd, req->want_stdin, req->want_stdout,
                           req->want_stderr, &s->proc, &p->stdin_fd, &p->stdout_fd, &p->stderr_fd, err) < 0)
            goto out;
        p->exit_fd = oci_exec_pidfd(s->proc);
    } else {
        if ((kind == SESS_EXEC_TTY ? start_exec_tty(d, c, &rt, req, p, s, err) : start_attach(d, c, s, err)) < 0 ||
            relay_start(s, req, p, err) < 0) {
            if (kind == SESS_EXEC_TTY && s->sock >= 0) {
                ctl_write(s, MON_CTL_KILL "\n", sizeof(MON_CTL_KILL));
            }
            goto out;
        }
    }
    p->priv = s;
    s = NULL;
    r = 0;
out:
    sess_free(s);
    srv_container_put(d, c);
    return r;
}

static void be_resize(void *ctx, st_proc *p, unsigned short width, unsigned short height)
{
    sess *s = p->priv;
    if (s->kind == SESS_EXEC)
        return; /* no terminal */
    char line[MON_CTL_MAX_LINE];
    int n = mon_ctl_resize(line, sizeof(line), height, width);
    if (n > 0)
        ctl_write(s, line, (size_t)n);
}

static int be_wait(void *ctx, st_proc *p, int *exit_code, cr_err **err)
{
    sess *s = p->priv;
    *exit_code = 0;
    if (s->kind == SESS_EXEC)
        return oci_exec_wait(s->proc, exit_code, err);
    /* The output reached EOF: the relay is done or about to be. */
    relay_wait(s, KILL_GRACE_MS);
    relay_stop(s);
    if (s->kind == SESS_ATTACH)
        return 0;
    if (s->got_exit) {
        *exit_code = s->exit_code;
        return 0;
    }
    /* The monitor went away without telling: its exit file may still say. */
    _cleanup_free_ char *path = srv_pathf("%s/%s", s->state_dir, s->id);
    _cleanup_free_ char *text = path ? cr_read_file(path, NULL, NULL) : NULL;
    struct mon_exit ex;
    if (text && mon_exit_parse(text, &ex) == 0) {
        *exit_code = ex.exit_code;
        return 0;
    }
    return cr_err_set(err, CR_UNAVAILABLE, "exec in %s: the session's monitor ended without an exit status", s->id);
}

static void be_release(void *ctx, st_proc *p)
{
    sess *s = p->priv;
    /* The session's ends first: a relay blocked writing to them wakes up. */
    close_fd(&p->stdin_fd);
    close_fd(&p->stdout_fd);
    close_fd(&p->stderr_fd);
    if (s->kind == SESS_EXEC) {
        oci_exec_free(s->proc); /* kills the process unless it was waited for */
        s->proc = NULL;
    } else {
        if (s->kind == SESS_EXEC_TTY && s->relay_started && !s->relay_done) {
            /* The client left while the process runs: end it, and let the
             * monitor report the exit before the relay goes. */
            ctl_write(s, MON_CTL_KILL "\n", sizeof(MON_CTL_KILL));
            relay_wait(s, KILL_GRACE_MS);
        }
        relay_stop(s); /* attach: only detaches, the container runs on */
    }
    p->exit_fd = -1; /* the exec proc's, closed with it */
    sess_free(s);
    p->priv = NULL;
}

/* A pod by id or unique prefix, with a reference; NULL with *err set. */
static srv_sandbox *sandbox_or_err(srv_daemon *d, const char *id, cr_err **err)
{
    cr_err *gerr = NULL;
    srv_sandbox *sb = srv_sandbox_get(d, id, &gerr);
    if (!sb) {
        if (gerr)
            cr_err_set(err, gerr->code, "%s", gerr->msg);
        else
            cr_err_set(err, CR_NOT_FOUND, "pod sandbox %s not found", id ? id : "");
        cr_err_free(gerr);
    }
    return sb;
}

static int be_dial(void *ctx, const st_request *req, int32_t port, cr_err **err)
{
    srv_daemon *d = ctx;
    srv_sandbox *sb = sandbox_or_err(d, req->sandbox_id, err);
    if (!sb)
        return -1;
    int fd = net_ns_dial(sb->host_network ? NULL : sb->netns, port, DIAL_TIMEOUT_MS, err);
    if (fd < 0)
        cr_err_prefix(err, "port-forward to pod %s", sb->id);
    srv_sandbox_put(d, sb);
    return fd;
}

static const st_backend backend = {
    .start = be_start, .resize = be_resize, .wait = be_wait, .release = be_release, .dial = be_dial,
};

/* ---- start / stop ---- */

/* Exec monitors of a crispd that died: end their processes, drop their folders. */
static void sweep_exec_dirs(srv_daemon *d)
{
    _cleanup_free_ char *dir = srv_pathf("%s/exec", d->cfg->runroot);
    DIR *dp = dir ? opendir(dir) : NULL;
    if (!dp)
        return;
    for (struct dirent *e; (e = readdir(dp));) {
        if (e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *sub = srv_pathf("%s/%s", dir, e->d_name);
        if (!sub)
            continue;
        int ctl = open_ctl(sub);
        if (ctl >= 0) {
            if (write(ctl, MON_CTL_KILL "\n", sizeof(MON_CTL_KILL)) < 0)
                cr_log_debug("streaming: stale exec monitor did not take kill", "dir", sub, NULL);
            close(ctl);
            /* Its exit file goes into this folder as it ends: let it finish
             * (monitor.pid is its last file to go) before removing. */
            _cleanup_free_ char *pidf = srv_pathf("%s/" MON_PID_FILE, sub);
            for (int64_t until = srv_now_ns() + SWEEP_WAIT_NS; pidf && access(pidf, F_OK) == 0 && srv_now_ns() < until;)
                srv_sleep_ms(10);
        }
        cr_remove_tree(sub, NULL);
        cr_log_info("streaming: ended an exec session left by a previous crispd", "dir", sub, NULL);
    }
    closedir(dp);
}

int srv_streaming_start(srv_daemon *d, cr_err **err)
{
    sweep_exec_dirs(d);
    st_backend b = backend;
    b.ctx = d;
    st_options o = {
        .address = d->cfg->stream_address, .port = (int)d->cfg->stream_port,
        .token_ttl_sec = (int)d->cfg->stream_token_ttl, .idle_timeout_sec = (int)d->cfg->stream_idle_timeout,
    };
    if (st_server_start(&d->stream, &o, &b, err) < 0)
        return cr_err_prefix(err, "streaming server on %s port %d", o.address, o.port);
    cr_log_info("streaming server listening", "address", st_server_address(d->stream), NULL);
    return 0;
}

void srv_streaming_stop(srv_daemon *d)
{
    if (d->stream)
        st_server_stop(d->stream);
    d->stream = NULL;
}

char *srv_streaming_info(srv_daemon *d)
{
    return d->stream ? strdup(st_server_address(d->stream)) : NULL;
}

/* ---- the RPCs ---- */

static int issue(srv_daemon *d, st_request *req, char **url, cr_err **err)
{
    if (!d->stream) {
        st_request_free(req);
        return cr_err_set(err, CR_UNAVAILABLE, "the streaming server is not running");
    }
    return st_server_issue(d->stream, req, url, err);
}

/* The container exists and runs; what exec and attach both need. */
static int check_container(srv_daemon *d, const char *what, const char *id, bool in, bool out, bool er, bool tty,
                           cr_err **err)
{
    if (!in && !out && !er)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "%s %s: one of stdin, stdout and stderr must be requested",
                          what, id ? id : "");
    if (tty && er)
        return cr_err_set(err, CR_INVALID_ARGUMENT,
                          "%s %s: tty and stderr cannot both be requested (a terminal has one output stream)",
                          what, id ? id : "");
    srv_container *c = srv_container_get(d, id, err);
    if (!c)
        return -1;
    Runtime__V1__ContainerState st = srv_container_state(d, c);
    int r = 0;
    if (st != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING) {
        r = cr_err_set(err, CR_FAILED_PRECONDITION, "%s %s: the container is %s, not running", what, c->id,
                       srv_container_state_name(st));
    }
    srv_container_put(d, c);
    return r;
}

static char **copy_argv(char **v, size_t n)
{
    char **out = calloc(n + 1, sizeof(*out));
    for (size_t i = 0; out && i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            cr_strvfree(out);
            return NULL;
        }
    }
    return out;
}

/* Exec, Attach and PortForward responses are all { base; url }. */
typedef struct url_response {
    ProtobufCMessage base;
    char *url;
} url_response;
_Static_assert(offsetof(Runtime__V1__ExecResponse, url) == offsetof(url_response, url), "ExecResponse layout");
_Static_assert(offsetof(Runtime__V1__AttachResponse, url) == offsetof(url_response, url), "AttachResponse layout");
_Static_assert(offsetof(Runtime__V1__PortForwardResponse, url) == offsetof(url_response, url),
               "PortForwardResponse layout");

/* Register r (consumed) and answer with its URL in a desc message. */
static int issue_reply(srv_daemon *d, st_request *r, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
                       cr_err **err)
{
    char *url = NULL;
    if (issue(d, r, &url, err) < 0)
        return -1;
    url_response *pb = malloc(desc->sizeof_message);
    if (!pb) {
        free(url);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    desc->message_init(&pb->base);
    pb->url = url;
    *resp = &pb->base;
    return 0;
}

/* An exec or attach request for the streaming server (cmd: exec only). */
static st_request *stdio_request(st_kind kind, const char *id, char **cmd, size_t n_cmd, bool tty, bool in, bool out,
                                 bool er)
{
    st_request *r = calloc(1, sizeof(*r));
    if (!r || !(r->container_id = strdup(id)) || (cmd && !(r->cmd = copy_argv(cmd, n_cmd)))) {
        if (r)
            st_request_free(r);
        return NULL;
    }
    r->kind = kind;
    r->tty = tty;
    r->want_stdin = in;
    r->want_stdout = out;
    r->want_stderr = er;
    return r;
}

int srv_exec(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ExecRequest *in = (const Runtime__V1__ExecRequest *)req;
    if (!in->n_cmd || !in->cmd[0] || !*in->cmd[0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: cmd is empty", in->container_id);
    if (check_container(d, "exec in", in->container_id, in->stdin, in->stdout, in->stderr, in->tty, err) < 0)
        return -1;
    st_request *r = stdio_request(ST_EXEC, in->container_id, in->cmd, in->n_cmd, in->tty, in->stdin, in->stdout,
                                  in->stderr);
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    return issue_reply(d, r, &runtime__v1__exec_response__descriptor, resp, err);
}

int srv_attach(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__AttachRequest *in = (const Runtime__V1__AttachRequest *)req;
    if (check_container(d, "attach to", in->container_id, in->stdin, in->stdout, in->stderr, in->tty, err) < 0)
        return -1;
    st_request *r = stdio_request(ST_ATTACH, in->container_id, NULL, 0, in->tty, in->stdin, in->stdout, in->stderr);
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    return issue_reply(d, r, &runtime__v1__attach_response__descriptor, resp, err);
}

int srv_port_forward(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__PortForwardRequest *in = (const Runtime__V1__PortForwardRequest *)req;
    for (size_t i = 0; i < in->n_port; i++)
        if (in->port[i] <= 0 || in->port[i] > 65535)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "port-forward to pod %s: port %d: want 1 to 65535",
                              in->pod_sandbox_id, in->port[i]);
    srv_sandbox *sb = sandbox_or_err(d, in->pod_sandbox_id, err);
    if (!sb)
        return -1;
    /* Read as the lists read it: not behind a lifecycle call in flight. */
    pthread_mutex_lock(&d->sb_mu);
    bool ready = sb->ready;
    pthread_mutex_unlock(&d->sb_mu);
    char id[65];
    snprintf(id, sizeof(id), "%s", sb->id);
    srv_sandbox_put(d, sb);
    if (!ready)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "port-forward to pod %s: the pod is not ready", id);
    st_request *r = calloc(1, sizeof(*r));
    if (!r || !(r->sandbox_id = strdup(id)) ||
        (in->n_port && !(r->ports = malloc(in->n_port * sizeof(*r->ports))))) {
        if (r)
            st_request_free(r);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->kind = ST_PORTFORWARD;
    for (size_t i = 0; i < in->n_port; i++)
        r->ports[i] = in->port[i];
    r->n_ports = in->n_port;
    return issue_reply(d, r, &runtime__v1__port_forward_response__descriptor, resp, err);
}
