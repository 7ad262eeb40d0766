/* `runtime create`, or `runtime exec -d` in exec mode: the process's stdio
 * (pipes, or a pty received on a console socket), the runtime's own log, and
 * the error it reports.  Both commands leave the process behind when the
 * runtime exits (create: waiting for start; exec -d: running), reparented to
 * us as subreaper, with its pid in the pid file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conmon/internal.h"

#define RUNTIME_LOG_TAIL 65536

static int console_listen(struct mon *m, char *path, size_t pathlen)
{
    struct sockaddr_un sa;
    socklen_t salen;
    unlinkat(m->state_dirfd, MON_CONSOLE_SOCKET, 0);
    if (mon_sockaddr(&sa, &salen, m->o.state_dir, m->state_dirfd, MON_CONSOLE_SOCKET) < 0) {
        mon_set_error(m, "console socket in %s: path too long", m->o.state_dir);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, salen) < 0 || listen(fd, 1) < 0) {
        mon_set_error(m, "console socket %s/" MON_CONSOLE_SOCKET ": %s", m->o.state_dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* The runtime is another process: /proc/self would be its own. */
    if (strncmp(sa.sun_path, "/proc/self/", 11) == 0)
        snprintf(path, pathlen, "/proc/%d/%s", (int)getpid(), sa.sun_path + 11);
    else
        snprintf(path, pathlen, "%s", sa.sun_path);
    return fd;
}

/* Accept the runtime's connection and take the pty master it sends. */
static void console_receive(struct mon *m, int lfd)
{
    int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return;
    struct timeval tv = {5, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char name[256];
    struct iovec iov = {name, sizeof(name)};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    ssize_t n;
    do
        n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    close(conn);
    if (n < 0)
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
            if (m->console_fd >= 0) {
                close(fd);
            } else {
                m->console_fd = fd;
                /* At once: an exec'd process already runs and may read its
                 * size any moment (a resize sent before is pending). */
                mon_apply_size(m);
            }
        }
    }
}

/* Decode the JSON string that starts after the opening quote at *p. */
static void json_string(const char *p, const char *end, char *out, size_t outlen)
{
    size_t o = 0;
    while (p < end && *p != '"' && o + 4 < outlen) {
        char c = *p++;
        if (c != '\\' || p >= end) {
            out[o++] = c;
            continue;
        }
        c = *p++;
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            unsigned v = 0;
            int i;
            for (i = 0; i < 4 && p < end; i++, p++) {
                char h = *p;
                v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
            }
            if (v < 0x80) {
                out[o++] = (char)v;
            } else if (v < 0x800) {
                out[o++] = (char)(0xc0 | (v >> 6));
                out[o++] = (char)(0x80 | (v & 0x3f));
            } else {
                out[o++] = (char)(0xe0 | (v >> 12));
                out[o++] = (char)(0x80 | ((v >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (v & 0x3f));
            }
            break;
        }
        default: out[o++] = c; break; /* \" \\ \/ */
        }
    }
    out[o] = '\0';
}

/* The value of "key" (a string) in one JSON log line, or false. */
static bool json_line_get(const char *line, const char *end, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (const char *p = line; p + klen + 2 < end; p++) {
        if (*p != '"' || strncmp(p + 1, key, klen) != 0 || p[klen + 1] != '"')
            continue;
        const char *v = p + klen + 2;
        while (v < end && (*v == ' ' || *v == ':'))
            v++;
        if (v >= end || *v != '"')
            continue;
        json_string(v + 1, end, out, outlen);
        return true;
    }
    return false;
}

/* The runtime's message: the last error in its JSON log (runc and crun both
 * write {"level": ..., "msg": ...} lines), else what it printed on stderr. */
static void runtime_error(struct mon *m, const char *verb, int errfd, int status)
{
    char *buf = malloc(RUNTIME_LOG_TAIL + 1);
    char msg[sizeof(m->errmsg)];
    msg[0] = '\0';
    int fd = buf ? openat(m->state_dirfd, MON_RUNTIME_LOG, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        off_t from = size > RUNTIME_LOG_TAIL ? size - RUNTIME_LOG_TAIL : 0;
        ssize_t n = pread(fd, buf, RUNTIME_LOG_TAIL, from);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            char level[32], text[sizeof(msg)];
            for (char *line = buf, *nl; line < buf + n; line = nl + 1) {
                nl = memchr(line, '\n', (size_t)(buf + n - line));
                if (!nl)
                    nl = buf + n;
                if (!json_line_get(line, nl, "msg", text, sizeof(text)))
                    continue;
                bool err = json_line_get(line, nl, "level", level, sizeof(level)) &&
                           (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0);
                if (err || !msg[0])
                    memcpy(msg, text, sizeof(msg));
            }
        }
    }
    if (!msg[0] && errfd >= 0 && buf) {
        ssize_t n = read(errfd, buf, sizeof(msg) - 1);
        if (n > 0) {
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
            memcpy(msg, buf, (size_t)n);
            msg[n] = '\0';
        }
    }
    free(buf);
    if (msg[0])
        mon_set_error(m, "%s", msg);
    else if (WIFEXITED(status))
        mon_set_error(m, "%s %s %s: exit status %d", m->o.runtime, verb, m->o.id, WEXITSTATUS(status));
    else
        mon_set_error(m, "%s %s %s: killed by signal %d", m->o.runtime, verb, m->o.id, WTERMSIG(status));
}

static pid_t read_pid_file(struct mon *m)
{
    char buf[32];
    int fd = openat(m->state_dirfd, MON_CONTAINER_PID_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return end == buf || pid <= 0 ? -1 : (pid_t)pid;
}

static bool basename_is(const char *path, const char *name)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strncmp(b, name, strlen(name)) == 0;
}

int mon_runtime_run(struct mon *m)
{
    const struct mon_opts *o = &m->o;
    const char *verb = o->exec ? "exec" : "create";
    char state_path[4096], log_arg[4200], pid_path[4200], console_path[128];
    int lfd = -1, in_r = -1, out_w = -1, err_w = -1, err_r = -1;
    int rc = -1;

    snprintf(state_path, sizeof(state_path), "%s", o->state_dir);
    snprintf(pid_path, sizeof(pid_path), "%s/" MON_CONTAINER_PID_FILE, state_path);
    unlinkat(m->state_dirfd, MON_CONTAINER_PID_FILE, 0);
    unlinkat(m->state_dirfd, MON_RUNTIME_LOG, 0);

    /* argv: runtime --root DIR --log ... [runtime args] create --bundle B
     *       --pid-file P [--console-socket S] ID
     * or:   runtime --root DIR --log ... [runtime args] exec -d
     *       --pid-file P [--tty --console-socket S] ID ARG...
     * or:   ... exec -d --process FILE --pid-file P [--console-socket S] ID */
    const char **argv = calloc(o->n_runtime_args + o->n_exec_argv + 20, sizeof(char *));
    if (!argv) {
        mon_set_error(m, "out of memory");
        return -1;
    }
    size_t a = 0;
    bool crun = basename_is(o->runtime, "crun");
    argv[a++] = o->runtime;
    argv[a++] = "--root";
    argv[a++] = o->runtime_root;
    if (crun) {
        /* crun (argp) documents --log=FILE and --log-format=FORMAT. */
        snprintf(log_arg, sizeof(log_arg), "--log=%s/" MON_RUNTIME_LOG, state_path);
        argv[a++] = log_arg;
        argv[a++] = "--log-format=json";
    } else {
        snprintf(log_arg, sizeof(log_arg), "%s/" MON_RUNTIME_LOG, state_path);
        argv[a++] = "--log";
        argv[a++] = log_arg;
        argv[a++] = "--log-format";
        argv[a++] = "json";
    }
    for (size_t i = 0; i < o->n_runtime_args; i++)
        argv[a++] = o->runtime_args[i];
    argv[a++] = verb;
    if (o->exec) {
        argv[a++] = "-d";
        if (o->exec_process) {
            argv[a++] = "--process";
            argv[a++] = o->exec_process;
        }
    } else {
        argv[a++] = "--bundle";
        argv[a++] = o->bundle;
    }
    argv[a++] = "--pid-file";
    argv[a++] = pid_path;
    if (o->terminal) {
        lfd = console_listen(m, console_path, sizeof(console_path));
        if (lfd < 0)
            goto out;
        if (o->exec && !o->exec_process)
            argv[a++] = "--tty"; /* create (and --process) take it from the JSON */
        argv[a++] = "--console-socket";
        argv[a++] = console_path;
    }
    argv[a++] = o->id;
    for (size_t i = 0; i < o->n_exec_argv; i++)
        argv[a++] = o->exec_argv[i];
    argv[a] = NULL;

    /* The runtime's stdio becomes the process's (without a tty). */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        goto pipe_err;
    err_r = p[0];
    err_w = p[1];
    if (!o->terminal) {
        if (pipe2(p, O_CLOEXEC) < 0)
            goto pipe_err;
        m->out.fd = p[0];
        out_w = p[1];
        m->out.owned = m->err.owned = true;
        if (o->stdin_) {
            if (pipe2(p, O_CLOEXEC) < 0)
                goto pipe_err;
            in_r = p[0];
            m->stdin_fd = p[1];
            fcntl(m->stdin_fd, F_SETFL, O_NONBLOCK);
        }
    }
    if (in_r < 0 && (in_r = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        goto pipe_err;
    if (out_w < 0 && (out_w = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
        goto pipe_err;

    m->runtime_pid = fork();
    if (m->runtime_pid < 0) {
        mon_set_error(m, "fork: %s", strerror(errno));
        goto out;
    }
    if (m->runtime_pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
            _exit(127);
        execvp(argv[0], (char *const *)argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in_r);
    close(out_w);
    close(err_w);
    in_r = out_w = err_w = -1;

    /* Wait for the runtime, taking the console when it sends it.  Whatever
     * exits meanwhile is stashed by mon_reap: an exec'd process that ends
     * before the runtime does is reparented to us as a zombie by then. */
    while (!m->runtime_done) {
        struct pollfd pfd[2] = {{m->sigfd, POLLIN, 0}, {lfd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
            mon_set_error(m, "poll: %s", strerror(errno));
            goto out;
        }
        if (pfd[1].revents)
            console_receive(m, lfd);
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            while (read(m->sigfd, &si, sizeof(si)) > 0)
                ;
            mon_reap(m);
        }
    }
    if (lfd >= 0 && m->console_fd < 0)
        console_receive(m, lfd); /* connected just before it exited */

    if (!WIFEXITED(m->runtime_status) || WEXITSTATUS(m->runtime_status) != 0) {
        fcntl(err_r, F_SETFL, O_NONBLOCK);
        runtime_error(m, verb, err_r, m->runtime_status);
        goto out;
    }
    m->container_pid = read_pid_file(m);
    if (m->container_pid <= 0) {
        mon_set_error(m, "%s %s %s: no pid in %s", o->runtime, verb, o->id, pid_path);
        goto out;
    }
    for (unsigned i = 0; i < MON_REAPED_STASH; i++) {
        if (m->stash[i].pid == m->container_pid) {
            m->container_done = true;
            m->container_status = m->stash[i].status;
            m->container_exited_at = m->stash[i].at;
        }
    }
    if (o->terminal) {
        if (m->console_fd < 0) {
            mon_set_error(m, "%s %s %s: the runtime sent no console", o->runtime, verb, o->id);
            goto out;
        }
        fcntl(m->console_fd, F_SETFL, O_NONBLOCK);
        m->out.fd = m->console_fd;
        m->out.owned = false;
        if (o->stdin_)
            m->stdin_fd = m->console_fd;
    } else {
        m->err.fd = err_r;
        err_r = -1;
        fcntl(m->out.fd, F_SETFL, O_NONBLOCK);
        fcntl(m->err.fd, F_SETFL, O_NONBLOCK);
    }
    rc = 0;
    goto out;

pipe_err:
    mon_set_error(m, "container stdio: %s", strerror(errno));
out:
    if (lfd >= 0) {
        close(lfd);
        unlinkat(m->state_dirfd, MON_CONSOLE_SOCKET, 0);
    }
    if (in_r >= 0)
        close(in_r);
    if (out_w >= 0)
        close(out_w);
    if (err_w >= 0)
        close(err_w);
    if (err_r >= 0)
        close(err_r);
    free(argv);
    return rc;
}
