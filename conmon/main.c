/* crisp-monitor: one per container (or per exec session, --exec).  Parses
 * the command line, detaches from its launcher, sets up the state dir, runs
 * `runtime create` (exec mode: waits for the first attach client, then runs
 * `runtime exec -d`), then serves the process's stdio, log, attach and
 * control fifo from one poll() loop until the container's init (the exec'd
 * process) is reaped and its exit is recorded.  The protocol is in monitor.h.
 *
 * Size: libc only, one thread, fixed buffers (no allocation per byte or per
 * line).  Measured VmRSS beside a running busybox container that has logged
 * a line (runc 1.1.5, glibc 2.36, kernel 6.x): static build 780-800 kB (84 kB
 * anonymous), the same code linked dynamically 1650 kB, Debian's conmon 2.1.6
 * on the same container 2040-2200 kB (340 kB anonymous).  Hence the static
 * link (Makefile); -Os changed nothing measurable.  test_monitor's test_rss
 * checks the budget: at most half of conmon's VmRSS. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conmon/internal.h"

int64_t mon_now_ns(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int mon_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int mon_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

void mon_set_error(struct mon *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->errmsg, sizeof(m->errmsg), fmt, ap);
    va_end(ap);
}

size_t mon_json_escape(char *out, size_t outlen, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)c;
        } else if (c == '\n') {
            tmp[n++] = '\\';
            tmp[n++] = 'n';
        } else if (c == '\t') {
            tmp[n++] = '\\';
            tmp[n++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(tmp, "\\u00", 4);
            n = 4;
            tmp[n++] = hex[c >> 4];
            tmp[n++] = hex[c & 15];
        } else {
            tmp[n++] = (char)c;
        }
        if (o + n + 1 > outlen)
            break;
        memcpy(out + o, tmp, n);
        o += n;
    }
    if (outlen)
        out[o] = '\0';
    return o;
}

/* Reap every child that has exited: the runtime, the container's init
 * (reparented to us as subreaper), and whatever else the container left. */
void mon_reap(struct mon *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        int64_t at = mon_now_ns(CLOCK_REALTIME);
        if (pid == m->runtime_pid) {
            m->runtime_done = true;
            m->runtime_status = status;
        } else if (m->container_pid > 0 && pid == m->container_pid) {
            m->container_done = true;
            m->container_status = status;
            m->container_exited_at = at;
        } else if (m->container_pid <= 0) {
            /* Its pid is not known yet (create still running): keep it. */
            struct mon_reaped *r = &m->stash[m->stash_next++ % MON_REAPED_STASH];
            r->pid = pid;
            r->status = status;
            r->at = at;
        }
    }
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fputs("usage: " MON_BINARY " --id ID --runtime PATH --runtime-root DIR --bundle DIR --log-path FILE\n"
          "       --exit-dir DIR --state-dir DIR [--terminal] [--stdin] [--stdin-once]\n"
          "       [--log-max-line BYTES] [--cgroup-path PATH] [--sync-fd N]\n"
          "       [--runtime-arg ARG]... [--name NAME]\n"
          "   or: " MON_BINARY " --exec --id CONTAINER-ID --runtime PATH --runtime-root DIR\n"
          "       --exit-dir DIR --state-dir DIR [--bundle DIR] [--log-path FILE]\n"
          "       [--terminal] [--stdin] [--stdin-once] [--log-max-line BYTES] [--sync-fd N]\n"
          "       [--runtime-arg ARG]... [--name NAME] [--attach-timeout SECONDS]\n"
          "       (-- ARG... | --exec-process FILE)\n"
          "The first form runs `runtime create` of a container; --exec waits for the first\n"
          "attach client, then runs ARG... in the running container (`runtime exec -d`);\n"
          "there --bundle is ignored, no CRI log is written without --log-path, and\n"
          "--attach-timeout defaults to 30 seconds.\n",
          f);
}

/* An absolute version of a path option: we chdir("/") once detached. */
static const char *absolute(const char *p)
{
    if (p[0] == '/')
        return p;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return p;
    size_t n = strlen(cwd) + strlen(p) + 2;
    char *r = malloc(n);
    if (!r)
        return p;
    snprintf(r, n, "%s/%s", cwd, p);
    return r;
}

static int parse_opts(struct mon_opts *o, int argc, char **argv)
{
    enum {
        O_ID = 256, O_RUNTIME, O_RUNTIME_ROOT, O_BUNDLE, O_LOG_PATH, O_EXIT_DIR, O_STATE_DIR,
        O_TERMINAL, O_STDIN, O_STDIN_ONCE, O_LOG_MAX_LINE, O_CGROUP_PATH, O_SYNC_FD,
        O_RUNTIME_ARG, O_NAME, O_EXEC, O_EXEC_PROCESS, O_ATTACH_TIMEOUT, O_HELP, O_VERSION,
    };
    static const struct option longopts[] = {
        {"id", required_argument, NULL, O_ID},
        {"runtime", required_argument, NULL, O_RUNTIME},
        {"runtime-root", required_argument, NULL, O_RUNTIME_ROOT},
        {"bundle", required_argument, NULL, O_BUNDLE},
        {"log-path", required_argument, NULL, O_LOG_PATH},
        {"exit-dir", required_argument, NULL, O_EXIT_DIR},
        {"state-dir", required_argument, NULL, O_STATE_DIR},
        {"terminal", no_argument, NULL, O_TERMINAL},
        {"stdin", no_argument, NULL, O_STDIN},
        {"stdin-once", no_argument, NULL, O_STDIN_ONCE},
        {"log-max-line", required_argument, NULL, O_LOG_MAX_LINE},
        {"cgroup-path", required_argument, NULL, O_CGROUP_PATH},
        {"sync-fd", required_argument, NULL, O_SYNC_FD},
        {"runtime-arg", required_argument, NULL, O_RUNTIME_ARG},
        {"name", required_argument, NULL, O_NAME},
        {"exec", no_argument, NULL, O_EXEC},
        {"exec-process", required_argument, NULL, O_EXEC_PROCESS},
        {"attach-timeout", required_argument, NULL, O_ATTACH_TIMEOUT},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    o->log_max_line = MON_LOG_MAX_LINE_DEFAULT;
    o->sync_fd = -1;
    o->attach_timeout = MON_ATTACH_TIMEOUT_DEFAULT;
    o->runtime_args = calloc((size_t)argc + 1, sizeof(char *));
    if (!o->runtime_args)
        return -1;
    int c;
    char *end;
    /* "+": stop at the first non-option, so a command's own flags after
     * "--" are never ours; dashdash tells whether getopt stopped at "--". */
    bool dashdash = false;
    for (;;) {
        int before = optind;
        c = getopt_long(argc, argv, "+", longopts, NULL);
        if (c == -1) {
            dashdash = optind > before && strcmp(argv[optind - 1], "--") == 0;
            break;
        }
        switch (c) {
        case O_ID: o->id = optarg; break;
        case O_RUNTIME: o->runtime = strchr(optarg, '/') ? absolute(optarg) : optarg; break;
        case O_RUNTIME_ROOT: o->runtime_root = absolute(optarg); break;
        case O_BUNDLE: o->bundle = absolute(optarg); break;
        case O_LOG_PATH: o->log_path = *optarg ? absolute(optarg) : optarg; break;
        case O_EXIT_DIR: o->exit_dir = absolute(optarg); break;
        case O_STATE_DIR: o->state_dir = absolute(optarg); break;
        case O_TERMINAL: o->terminal = true; break;
        case O_STDIN: o->stdin_ = true; break;
        case O_STDIN_ONCE: o->stdin_once = true; break;
        case O_CGROUP_PATH: o->cgroup_path = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_EXEC: o->exec = true; break;
        case O_EXEC_PROCESS: o->exec_process = absolute(optarg); break;
        case O_ATTACH_TIMEOUT: {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > 86400) {
                fprintf(stderr, MON_BINARY ": --attach-timeout %s: want 1..86400 seconds\n", optarg);
                return -1;
            }
            o->attach_timeout = (int)v;
            break;
        }
        case O_RUNTIME_ARG: o->runtime_args[o->n_runtime_args++] = optarg; break;
        case O_LOG_MAX_LINE: {
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || v == 0 || v > (64ULL << 20)) {
                fprintf(stderr, MON_BINARY ": --log-max-line %s: want 1..%llu bytes\n", optarg, 64ULL << 20);
                return -1;
            }
            o->log_max_line = (size_t)v;
            break;
        }
        case O_SYNC_FD: {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0) {
                fprintf(stderr, MON_BINARY ": --sync-fd %s: not an open descriptor\n", optarg);
                return -1;
            }
            o->sync_fd = (int)v;
            break;
        }
        case O_HELP: usage(stdout); exit(0);
        case O_VERSION: puts(MON_BINARY " " CRISP_VERSION); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->exec && dashdash) {
        o->exec_argv = argv + optind;
        o->n_exec_argv = (size_t)(argc - optind);
        optind = argc;
    }
    if (optind < argc) {
        fprintf(stderr, MON_BINARY ": unexpected argument %s%s\n", argv[optind],
                o->exec ? " (the command follows --)" : "");
        return -1;
    }
    if (o->exec_process && (!o->exec || o->n_exec_argv)) {
        fprintf(stderr, MON_BINARY ": --exec-process goes with --exec and replaces the command after --\n");
        return -1;
    }
    if (o->exec && o->n_exec_argv == 0 && !o->exec_process) {
        fprintf(stderr, MON_BINARY ": --exec needs a command after -- (or --exec-process FILE)\n");
        usage(stderr);
        return -1;
    }
    /* Exec mode: the runtime finds the bundle itself; the log is optional. */
    const struct { const char *v, *name; bool exec_too; } req[] = {
        {o->id, "--id", true}, {o->runtime, "--runtime", true}, {o->runtime_root, "--runtime-root", true},
        {o->bundle, "--bundle", false}, {o->log_path, "--log-path", false}, {o->exit_dir, "--exit-dir", true},
        {o->state_dir, "--state-dir", true},
    };
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        if (o->exec && !req[i].exec_too)
            continue;
        if (!req[i].v || !*req[i].v) {
            fprintf(stderr, MON_BINARY ": %s is required\n", req[i].name);
            return -1;
        }
    }
    if (o->log_path && !*o->log_path)
        o->log_path = NULL;
    if (strchr(o->id, '/') || strcmp(o->id, ".") == 0 || strcmp(o->id, "..") == 0) {
        fprintf(stderr, MON_BINARY ": --id %s: not a valid container id\n", o->id);
        return -1;
    }
    if (o->stdin_once && !o->stdin_)
        o->stdin_once = false;
    return 0;
}

/* ---- setup, in the detached process ---- */

/* Close every descriptor the launcher leaked to us but the sync fd and the
 * ready pipe: the runtime and the container inherit our fds otherwise. */
static void close_inherited(int a, int b)
{
    int keep[2] = {a < b ? a : b, a < b ? b : a};
    unsigned int from = 3;
    for (int i = 0; i < 2; i++) {
        if (keep[i] < (int)from)
            continue;
        if ((unsigned)keep[i] > from)
            syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

static int setup(struct mon *m, char *why, size_t whylen)
{
    int r;
    const struct mon_opts *o = &m->o;
    if (setsid() < 0) {
        snprintf(why, whylen, "setsid: %s", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        snprintf(why, whylen, "become a subreaper: %s", strerror(errno));
        return -1;
    }
    /* Ignored signals survive exec: what the launcher ignored (SIGCHLD would
     * even stop us from reaping) must not reach us, the runtime or the
     * container. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            signal(sig, SIG_DFL);
    }
    signal(SIGPIPE, SIG_IGN);
    umask(022);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    m->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m->sigfd < 0) {
        snprintf(why, whylen, "signalfd: %s", strerror(errno));
        return -1;
    }

    if ((r = mon_mkdir_p(o->state_dir, 0700)) < 0) {
        snprintf(why, whylen, "state dir %s: %s", o->state_dir, strerror(-r));
        return -1;
    }
    m->state_dirfd = open(o->state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (m->state_dirfd < 0) {
        snprintf(why, whylen, "state dir %s: %s", o->state_dir, strerror(errno));
        return -1;
    }
    if ((r = mon_mkdir_p(o->exit_dir, 0755)) < 0 ||
        (m->exit_dirfd = open(o->exit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(why, whylen, "exit dir %s: %s", o->exit_dir, strerror(r < 0 ? -r : errno));
        return -1;
    }
    if (mon_log_open(m) < 0) {
        snprintf(why, whylen, "%s", m->errmsg);
        return -1;
    }
    if (mon_attach_listen(m) < 0 || mon_ctl_open(m) < 0) {
        snprintf(why, whylen, "%s", m->errmsg);
        return -1;
    }
    for (int i = 0; o->log_path && i < 2; i++) {
        struct mon_stream *s = i ? &m->err : &m->out;
        s->line = malloc(o->log_max_line);
        if (!s->line) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }
    char pidbuf[32];
    int n = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
    int fd = openat(m->state_dirfd, MON_PID_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || mon_write_all(fd, pidbuf, (size_t)n) < 0) {
        snprintf(why, whylen, "write %s/" MON_PID_FILE ": %s", o->state_dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);

    /* Our own stdio: nothing of the launcher's (it may wait for EOF on them). */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) {
        snprintf(why, whylen, "open /dev/null: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < 3; i++)
        dup2(null, i);
    close(null);
    if (chdir("/") < 0) {
        snprintf(why, whylen, "chdir /: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void write_sync(struct mon *m, bool ok)
{
    if (m->o.sync_fd < 0)
        return;
    char buf[sizeof(m->errmsg) * 6 + 32];
    int n;
    if (ok) {
        n = snprintf(buf, sizeof(buf), "{\"pid\": %d}\n", (int)m->container_pid);
    } else {
        memcpy(buf, "{\"error\": \"", 11);
        size_t e = mon_json_escape(buf + 11, sizeof(buf) - 16, m->errmsg);
        memcpy(buf + 11 + e, "\"}\n", 4);
        n = (int)(11 + e + 3);
    }
    mon_write_all(m->o.sync_fd, buf, (size_t)n);
    close(m->o.sync_fd);
    m->o.sync_fd = -1;
}

/* ---- the loop ---- */

static void stream_close(struct mon *m, struct mon_stream *s)
{
    mon_log_flush_partial(m, s);
    if (s->owned && s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* One read from a stream; returns the bytes read, 0 at EOF, -1 when nothing. */
static ssize_t stream_read(struct mon *m, struct mon_stream *s)
{
    ssize_t n = read(s->fd, m->io_buf, sizeof(m->io_buf));
    if (n > 0) {
        mon_log_feed(m, s, m->io_buf, (size_t)n);
        mon_attach_broadcast(m, s->type, m->io_buf, (size_t)n);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -1;
    /* EOF, or EIO from a pty whose other side is closed. */
    stream_close(m, s);
    return 0;
}

static int exit_code_of(int status, int *sig)
{
    *sig = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        return 128 + *sig;
    }
    return 255;
}

enum { P_SIG, P_CTL, P_OUT, P_ERR, P_STDIN, P_LISTEN, P_CLIENT0 };

static void loop(struct mon *m)
{
    struct pollfd pfd[P_CLIENT0 + MON_MAX_CLIENTS];
    while (!m->container_done) {
        bool stdin_pending = m->in_len > m->in_off;
        pfd[P_SIG] = (struct pollfd){m->sigfd, POLLIN, 0};
        pfd[P_CTL] = (struct pollfd){m->ctl_fd, POLLIN, 0};
        pfd[P_OUT] = (struct pollfd){m->out.fd, POLLIN, 0};
        pfd[P_ERR] = (struct pollfd){m->err.fd, POLLIN, 0};
        pfd[P_STDIN] = (struct pollfd){stdin_pending ? m->stdin_fd : -1, POLLOUT, 0};
        pfd[P_LISTEN] = (struct pollfd){m->attach_fd, POLLIN, 0};
        for (int i = 0; i < MON_MAX_CLIENTS; i++) {
            /* While stdin is backed up, clients wait: their input stays queued
             * in their sockets (flow control without buffering). */
            int fd = stdin_pending ? -1 : m->clients[i].fd;
            pfd[P_CLIENT0 + i] = (struct pollfd){fd, POLLIN, 0};
        }
        int timeout = -1;
        int64_t now = mon_now_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < 2; i++) {
            struct mon_stream *s = i ? &m->err : &m->out;
            if (s->len > 0) {
                int64_t left = s->since + MON_PARTIAL_FLUSH_NS - now;
                int ms = left <= 0 ? 0 : (int)(left / 1000000) + 1;
                if (timeout < 0 || ms < timeout)
                    timeout = ms;
            }
        }
        if (poll(pfd, P_CLIENT0 + MON_MAX_CLIENTS, timeout) < 0)
            continue; /* EINTR, or ENOMEM: try again */
        if (pfd[P_SIG].revents) {
            struct signalfd_siginfo si;
            while (read(m->sigfd, &si, sizeof(si)) == sizeof(si))
                ;
            mon_reap(m);
        }
        /* Control commands before client input: a client that wrote the fifo
         * first sees its command applied first. */
        if (pfd[P_CTL].revents)
            mon_ctl_read(m);
        if (pfd[P_OUT].revents && m->out.fd >= 0)
            stream_read(m, &m->out);
        if (pfd[P_ERR].revents && m->err.fd >= 0)
            stream_read(m, &m->err);
        if (pfd[P_STDIN].revents)
            mon_stdin_flush(m);
        if (pfd[P_LISTEN].revents)
            mon_attach_accept(m);
        for (int i = 0; i < MON_MAX_CLIENTS; i++)
            if (pfd[P_CLIENT0 + i].revents && m->clients[i].fd >= 0 && m->in_len <= m->in_off)
                mon_attach_client_input(m, i);
        now = mon_now_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < 2; i++) {
            struct mon_stream *s = i ? &m->err : &m->out;
            if (s->len > 0 && now - s->since >= MON_PARTIAL_FLUSH_NS)
                mon_log_flush_partial(m, s);
        }
    }
}

static void cleanup(struct mon *m)
{
    for (int i = 0; i < 2; i++) {
        struct mon_stream *s = i ? &m->err : &m->out;
        if (s->owned && s->fd >= 0)
            close(s->fd);
        free(s->line);
    }
    free(m->o.runtime_args);
}

/* What the monitor leaves in the state dir when it ends: nothing of its own
 * in exec mode (crispd removes the session's folder), the runtime's files
 * beside a container. */
static void remove_state_files(struct mon *m)
{
    if (m->state_dirfd < 0)
        return;
    unlinkat(m->state_dirfd, MON_ATTACH_SOCKET, 0);
    unlinkat(m->state_dirfd, MON_CTL_FIFO, 0);
    unlinkat(m->state_dirfd, MON_PID_FILE, 0);
    if (m->o.exec) {
        unlinkat(m->state_dirfd, MON_CONSOLE_SOCKET, 0);
        unlinkat(m->state_dirfd, MON_CONTAINER_PID_FILE, 0);
        unlinkat(m->state_dirfd, MON_RUNTIME_LOG, 0);
    }
}

/* Exec mode: run nothing before the first attach client is there, so that
 * it sees all the output.  Control commands are applied meanwhile: a resize
 * is kept for the pty, a kill means the command never runs. */
static int wait_first_client(struct mon *m)
{
    int64_t deadline = mon_now_ns(CLOCK_MONOTONIC) + (int64_t)m->o.attach_timeout * 1000000000LL;
    while (!m->had_client) {
        int64_t left = deadline - mon_now_ns(CLOCK_MONOTONIC);
        if (left <= 0) {
            mon_set_error(m, "exec in %s: no attach client within %ds", m->o.id, m->o.attach_timeout);
            return -1;
        }
        struct pollfd pfd[2] = {{m->ctl_fd, POLLIN, 0}, {m->attach_fd, POLLIN, 0}};
        if (poll(pfd, 2, (int)((left + 999999) / 1000000)) < 0 && errno != EINTR && errno != ENOMEM) {
            mon_set_error(m, "exec in %s: poll: %s", m->o.id, strerror(errno));
            return -1;
        }
        if (pfd[1].revents)
            mon_attach_accept(m);
        /* Every command written so far (the fifo does not block), those
         * written just before the client connected included. */
        mon_ctl_read(m);
        if (m->kill_requested) {
            mon_set_error(m, "exec in %s: killed before it started", m->o.id);
            return -1;
        }
    }
    return 0;
}

/* The monitor ends without a process: report, remove our files. */
static int fail(struct mon *m)
{
    write_sync(m, false);
    remove_state_files(m);
    cleanup(m);
    return 1;
}

/* The container's init is gone: the rest of its output is already in the
 * pipes (or the pty's buffer); read it all, then record the exit. */
static void finish(struct mon *m)
{
    for (int i = 0; i < 2; i++) {
        struct mon_stream *s = i ? &m->err : &m->out;
        while (s->fd >= 0 && stream_read(m, s) > 0)
            ;
        mon_log_flush_partial(m, s);
    }
    int sig;
    int code = exit_code_of(m->container_status, &sig);
    mon_exit_write(m);
    mon_attach_exit(m, code);
    remove_state_files(m);
}

int main(int argc, char **argv)
{
    /* Large buffers live here, in one place, rather than in globals. */
    static struct mon mon;
    struct mon *m = &mon;
    m->state_dirfd = m->exit_dirfd = m->sigfd = m->log_fd = -1;
    m->out = (struct mon_stream){.fd = -1, .type = MON_ATTACH_STDOUT, .name = "stdout"};
    m->err = (struct mon_stream){.fd = -1, .type = MON_ATTACH_STDERR, .name = "stderr"};
    m->console_fd = m->stdin_fd = m->attach_fd = m->ctl_fd = m->oom_fd = -1;
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        m->clients[i].fd = -1;

    if (parse_opts(&m->o, argc, argv) < 0) {
        free(m->o.runtime_args);
        return 1;
    }
    if (m->o.sync_fd >= 0 && m->o.sync_fd < 3) {
        /* Keep it clear of the stdio we replace with /dev/null. */
        int fd = fcntl(m->o.sync_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            fprintf(stderr, MON_BINARY ": --sync-fd: %s\n", strerror(errno));
            return 1;
        }
        m->o.sync_fd = fd;
    }
    if (m->o.sync_fd >= 0)
        fcntl(m->o.sync_fd, F_SETFD, FD_CLOEXEC);

    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) {
        fprintf(stderr, MON_BINARY ": pipe: %s\n", strerror(errno));
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, MON_BINARY ": fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid > 0) {
        /* The launcher: wait until the monitor is set up, then leave, so the
         * monitor is reparented and never the caller's child. */
        close(ready[1]);
        char buf[1024];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof(buf) - 1 && ((n = read(ready[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
                                         (n < 0 && errno == EINTR)))
            if (n > 0)
                len += (size_t)n;
        buf[len] = '\0';
        free(m->o.runtime_args);
        if (len == 2 && memcmp(buf, "OK", 2) == 0)
            return 0;
        fprintf(stderr, MON_BINARY ": %s: %s\n", m->o.name ? m->o.name : m->o.id,
                len ? buf : "monitor died during setup");
        return 1;
    }

    close(ready[0]);
    close_inherited(m->o.sync_fd, ready[1]);
    char why[sizeof(m->errmsg) + 64];
    if (setup(m, why, sizeof(why)) < 0) {
        mon_write_all(ready[1], why, strlen(why));
        mon_set_error(m, "monitor setup: %s", why);
        return fail(m);
    }
    mon_write_all(ready[1], "OK", 2);
    close(ready[1]);

    if (m->o.exec && wait_first_client(m) < 0)
        return fail(m);
    if (mon_runtime_run(m) < 0)
        return fail(m);
    mon_oom_start(m);
    mon_apply_size(m);
    write_sync(m, true);
    loop(m);
    finish(m);
    cleanup(m);
    return 0;
}
