/* Runtime handler invocation: `<runtime> --root R --log L --log-format json
 * <command> ...` in a child process of its own process group, bounded by a
 * deadline.  Safe to call from several threads: each call waits only for its
 * own child, and the child closes every inherited descriptor, so one call's
 * pipes never leak into another call's runtime (or into a container). */
#include "oci.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "lib/cleanup.h"
#include "lib/fs.h"

extern char **environ;

#define OUTPUT_MAX (1 << 20) /* keep at most this much of stdout / stderr */

typedef enum { RT_OTHER = 0, RT_RUNC, RT_CRUN } rt_flavor;

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static rt_flavor flavor_of(const oci_runtime *rt)
{
    const char *b = base_name(rt->path);
    if (strstr(b, "crun"))
        return RT_CRUN;
    if (strstr(b, "runc"))
        return RT_RUNC;
    return RT_OTHER;
}

static const char *rt_label(const oci_runtime *rt)
{
    return rt->name && *rt->name ? rt->name : base_name(rt->path);
}

/* Where the runtime keeps its state for id: both runc and crun use a
 * folder named after the container under --root. */
static bool container_known(const oci_runtime *rt, const char *id)
{
    const char *root = rt->root;
    if (!root || !*root) {
        switch (flavor_of(rt)) {
        case RT_RUNC:
            root = "/run/runc";
            break;
        case RT_CRUN:
            root = "/run/crun";
            break;
        default:
            return true; /* cannot tell: trust the runtime's message */
        }
    }
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", root, id) >= (int)sizeof(path))
        return true;
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- output buffers ---- */

typedef struct obuf {
    char *data;
    size_t len, cap;
    size_t limit;       /* keep at most this much; 0: OUTPUT_MAX */
    bool truncated;     /* more came than limit (and was discarded) */
} obuf;

static void obuf_add(obuf *b, const char *p, size_t n)
{
    size_t limit = b->limit ? b->limit : OUTPUT_MAX;
    if (b->len + n > limit) {
        n = limit - b->len;
        b->truncated = true;
    }
    if (!n)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Read what fd has now; false at EOF or error (then fd is closed). */
static bool drain(int *fd, obuf *b)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(*fd, buf, sizeof(buf));
        if (n > 0) {
            obuf_add(b, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        close(*fd);
        *fd = -1;
        return false;
    }
}

/* ---- the runtime's own messages ---- */

/* The last error-level "msg" in the JSON log from offset on. */
static char *log_last_error(const char *log_path, off_t offset)
{
    if (!log_path)
        return NULL;
    _cleanup_fclose_ FILE *f = fopen(log_path, "re");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size < offset)
        offset = 0; /* the runtime truncated it: all of it is this call's */
    if (offset > 0 && fseeko(f, offset, SEEK_SET) < 0)
        return NULL;
    char *line = NULL, *found = NULL, *any = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        yajl_val v = yajl_tree_parse(line, NULL, 0);
        if (!v)
            continue;
        const char *k_msg[] = { "msg", NULL }, *k_level[] = { "level", NULL };
        yajl_val msg = yajl_tree_get(v, k_msg, yajl_t_string);
        yajl_val level = yajl_tree_get(v, k_level, yajl_t_string);
        if (msg && level && (strcmp(level->u.string, "error") == 0 || strcmp(level->u.string, "fatal") == 0)) {
            free(found);
            found = strdup(msg->u.string);
        } else if (msg && level && strcmp(level->u.string, "warning") == 0) {
            free(any);
            any = strdup(msg->u.string);
        }
        yajl_tree_free(v);
    }
    free(line);
    if (found) {
        free(any);
        return found;
    }
    return any;
}

/* stderr without surrounding blanks, lines joined with "; ". */
static char *tidy_stderr(const obuf *b)
{
    if (!b->data || !b->len)
        return NULL;
    char *s = strdup(b->data);
    if (!s)
        return NULL;
    char *out = s;
    for (char *p = s; *p; p++)
        if (*p == '\r')
            *p = ' ';
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    while (*out == '\n' || *out == ' ' || *out == '\t')
        out++;
    if (!*out) {
        free(s);
        return NULL;
    }
    /* Keep the last line: runtimes print the final error last. */
    char *last = strrchr(out, '\n');
    char *r = strdup(last ? last + 1 : out);
    free(s);
    return r;
}

/* ---- running the runtime ---- */

typedef struct rt_call {
    const oci_runtime *rt;
    const char *cmd;          /* "create", "state", ... */
    const char *id;
    const char *const *args;  /* after cmd, NULL-terminated */
    const char *log_path;     /* NULL: a temporary file */
    bool detached;            /* create: every stdio on /dev/null */
    bool want_stdout;
    int timeout_s;
    const char *kill_pid_file; /* exec: at the deadline, kill the process named there first */
    bool own_timeout_error;   /* at the deadline, leave err for the caller to set */
    /* results */
    bool timed_out;
    int status;               /* waitpid status */
    obuf out, err;
    char *message;            /* the runtime's error message, if it failed */
} rt_call;

static void rt_call_clear(rt_call *c)
{
    free(c->out.data);
    free(c->err.data);
    free(c->message);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_group(pid_t pid)
{
    if (kill(-pid, SIGKILL) < 0)
        kill(pid, SIGKILL);
}

static int wait_child(pid_t pid, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, 0);
        if (r == pid)
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* ---- killing an exec'd process and what it started ---- */

typedef struct pid_list {
    pid_t *v;
    size_t n, cap;
} pid_list;

static bool pid_list_has(const pid_list *l, pid_t p)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == p)
            return true;
    return false;
}

static void pid_list_add(pid_list *l, pid_t p)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        pid_t *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = p;
}

/* root and its descendants, from the parent pids in /proc. */
static void collect_tree(pid_t root, pid_list *tree)
{
    tree->n = 0;
    pid_list pids = { 0 }, ppids = { 0 };
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            char *end;
            long pid = strtol(de->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            char path[64], buf[512];
            snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (n <= 0)
                continue;
            buf[n] = '\0';
            char *p = strrchr(buf, ')');
            int ppid;
            if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                continue;
            pid_list_add(&pids, (pid_t)pid);
            pid_list_add(&ppids, (pid_t)ppid);
        }
        closedir(d);
    }
    pid_list_add(tree, root);
    for (size_t k = 0; k < tree->n; k++)
        for (size_t i = 0; i < pids.n && i < ppids.n; i++)
            if (ppids.v[i] == tree->v[k] && !pid_list_has(tree, pids.v[i]))
                pid_list_add(tree, pids.v[i]);
    free(pids.v);
    free(ppids.v);
}

/* SIGKILL the process named in pid_file and its descendants: stopped first,
 * so that none forks meanwhile and none is reparented out of sight. */
static void kill_pid_file_tree(const char *pid_file)
{
    char buf[32] = "";
    int fd = open(pid_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    if (pid <= 1 || pid > INT_MAX)
        return;
    pid_list tree = { 0 };
    for (int round = 0; round < 2; round++) {
        collect_tree((pid_t)pid, &tree);
        for (size_t i = 0; i < tree.n; i++)
            kill(tree.v[i], SIGSTOP);
    }
    collect_tree((pid_t)pid, &tree);
    for (size_t i = 0; i < tree.n; i++)
        kill(tree.v[i], SIGKILL);
    free(tree.v);
}

/* Wait up to ms for the child to exit on its own; true when it did. */
static bool wait_child_ms(pid_t pid, int ms, int *status)
{
    long long deadline = now_ms() + ms;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return true;
        if (w < 0 && errno != EINTR)
            return false;
        if (now_ms() >= deadline)
            return false;
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

/* argv: `runtime [--root R] --log L --log-format json`, the first n slots;
 * the caller appends the command and a NULL. */
static size_t runtime_argv(const oci_runtime *rt, const char *log_path, const char **argv)
{
    size_t n = 0;
    argv[n++] = rt->path;
    if (rt->root && *rt->root) {
        argv[n++] = "--root";
        argv[n++] = rt->root;
    }
    argv[n++] = "--log";
    argv[n++] = log_path;
    argv[n++] = "--log-format";
    argv[n++] = "json";
    return n;
}

/* fork + exec the runtime in a process group of its own, with stdio
 * fd0/fd1/fd2 and nothing else inherited; the child's pid, or -1 (errno). */
static pid_t spawn_runtime(const oci_runtime *rt, const char *const *argv, int fd0, int fd1, int fd2)
{
    /* Everything the child needs is ready before fork: after it, the child
     * only makes async-signal-safe calls (the daemon has threads). */
    sigset_t empty;
    sigemptyset(&empty);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                sigaction(s, &dfl, NULL);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        if (dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 || dup2(fd2, 2) < 0)
            _exit(127);
        if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
            for (int fd = 3; fd < 65536; fd++)
                close(fd);
        execve(rt->path, (char *const *)argv, environ);
        _exit(127);
    }
    if (pid > 0)
        setpgid(pid, pid); /* also from here, so a kill of the group cannot miss */
    return pid;
}

/* Runs the call; 0 when the runtime ran to its end (whatever its exit
 * status), -1 with err set when it could not be run or timed out. */
static int rt_run(rt_call *c, cr_err **err)
{
    const oci_runtime *rt = c->rt;
    const char *label = rt_label(rt);
    if (!rt->path || !*rt->path)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "runtime %s: no binary configured", label);
    if (access(rt->path, X_OK) < 0)
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "%s %s %s: runtime %s", label, c->cmd,
                            c->id, rt->path);

    /* The log: the caller's (create: the bundle's) or a temporary file. */
    char tmp_log[PATH_MAX] = "";
    const char *log_path = c->log_path;
    off_t log_offset = 0;
    if (!log_path) {
        const char *tmpdir = getenv("TMPDIR");
        if (!tmpdir || !*tmpdir)
            tmpdir = "/tmp";
        snprintf(tmp_log, sizeof(tmp_log), "%s/crisp-runtime-XXXXXX", tmpdir);
        int fd = mkostemp(tmp_log, O_CLOEXEC);
        if (fd < 0)
            return cr_err_errno(err, CR_INTERNAL, errno, "%s %s %s: create a log file in %s", label,
                                c->cmd, c->id, tmpdir);
        close(fd);
        log_path = tmp_log;
    } else {
        struct stat st;
        if (stat(log_path, &st) == 0)
            log_offset = st.st_size;
    }

    size_t n_args = 0;
    for (const char *const *p = c->args; p && *p; p++)
        n_args++;
    _cleanup_free_ const char **argv = calloc(n_args + 10, sizeof(*argv));
    if (!argv) {
        if (tmp_log[0])
            unlink(tmp_log);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "%s %s %s: out of memory", label, c->cmd, c->id);
    }
    size_t n = runtime_argv(rt, log_path, argv);
    argv[n++] = c->cmd;
    for (const char *const *p = c->args; p && *p; p++)
        argv[n++] = *p;
    argv[n] = NULL;

    int ret = -1;
    int devnull = -1, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, pidfd = -1;
    pid_t pid = -1;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        cr_err_errno(err, CR_INTERNAL, errno, "%s %s %s: open /dev/null", label, c->cmd, c->id);
        goto out;
    }
    if (!c->detached) {
        if ((c->want_stdout && pipe2(out_pipe, O_CLOEXEC) < 0) || pipe2(err_pipe, O_CLOEXEC) < 0) {
            cr_err_errno(err, CR_INTERNAL, errno, "%s %s %s: pipe", label, c->cmd, c->id);
            goto out;
        }
    }
    int fd_out = out_pipe[1] >= 0 ? out_pipe[1] : devnull;
    int fd_err = err_pipe[1] >= 0 ? err_pipe[1] : devnull;

    pid = spawn_runtime(rt, argv, devnull, fd_out, fd_err);
    if (pid < 0) {
        cr_err_errno(err, CR_INTERNAL, errno, "%s %s %s: fork", label, c->cmd, c->id);
        goto out;
    }
    if (out_pipe[1] >= 0) {
        close(out_pipe[1]);
        out_pipe[1] = -1;
        fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    }
    if (err_pipe[1] >= 0) {
        close(err_pipe[1]);
        err_pipe[1] = -1;
        fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    long long deadline = c->timeout_s > 0 ? now_ms() + (long long)c->timeout_s * 1000 : -1;
    bool exited = false;
    while (!exited) {
        struct pollfd pfd[3];
        int np = 0, i_out = -1, i_err = -1, i_pid = -1;
        if (out_pipe[0] >= 0) {
            i_out = np;
            pfd[np++] = (struct pollfd){ .fd = out_pipe[0], .events = POLLIN };
        }
        if (err_pipe[0] >= 0) {
            i_err = np;
            pfd[np++] = (struct pollfd){ .fd = err_pipe[0], .events = POLLIN };
        }
        if (pidfd >= 0) {
            i_pid = np;
            pfd[np++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
        }
        int wait_ms = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                break;
            wait_ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        if (pidfd < 0 && (wait_ms < 0 || wait_ms > 20))
            wait_ms = 20; /* no pidfd (old kernel): look at the child now and then */
        int r = poll(pfd, (nfds_t)np, wait_ms);
        if (r < 0 && errno != EINTR) {
            cr_err_errno(err, CR_INTERNAL, errno, "%s %s %s: poll", label, c->cmd, c->id);
            kill_group(pid);
            wait_child(pid, &c->status);
            goto out;
        }
        if (r > 0) {
            if (i_out >= 0 && pfd[i_out].revents)
                drain(&out_pipe[0], &c->out);
            if (i_err >= 0 && pfd[i_err].revents)
                drain(&err_pipe[0], &c->err);
        }
        if (pidfd < 0 || (i_pid >= 0 && r > 0 && pfd[i_pid].revents)) {
            pid_t w;
            do
                w = waitpid(pid, &c->status, WNOHANG);
            while (w < 0 && errno == EINTR);
            if (w == pid) {
                exited = true;
            } else if (w < 0) {
                cr_err_errno(err, CR_INTERNAL, errno, "%s %s %s: wait", label, c->cmd, c->id);
                kill_group(pid);
                goto out;
            }
        }
    }
    if (!exited) {
        c->timed_out = true;
        if (c->kill_pid_file) {
            /* The process first: the runtime, its parent, then reaps it and
             * exits by itself (no zombie left in the container). */
            kill_pid_file_tree(c->kill_pid_file);
            if (!wait_child_ms(pid, 2000, &c->status)) {
                kill_group(pid);
                wait_child(pid, &c->status);
                kill_pid_file_tree(c->kill_pid_file); /* written meanwhile */
            }
        } else {
            kill_group(pid);
            wait_child(pid, &c->status);
        }
        if (out_pipe[0] >= 0)
            drain(&out_pipe[0], &c->out);
        if (err_pipe[0] >= 0)
            drain(&err_pipe[0], &c->err);
        if (!c->own_timeout_error)
            cr_err_set(err, CR_DEADLINE_EXCEEDED, "%s %s %s: timed out after %ds", label, c->cmd, c->id,
                       c->timeout_s);
        goto out;
    }
    /* What is left in the pipes; a grandchild holding them open cannot stall us. */
    if (out_pipe[0] >= 0)
        drain(&out_pipe[0], &c->out);
    if (err_pipe[0] >= 0)
        drain(&err_pipe[0], &c->err);

    if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0) {
        c->message = log_last_error(log_path, log_offset);
        if (!c->message)
            c->message = tidy_stderr(&c->err);
        if (!c->message) {
            char why[PATH_MAX + 64];
            if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 127)
                snprintf(why, sizeof(why), "cannot run %s (exit status 127)", rt->path);
            else if (WIFEXITED(c->status))
                snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(c->status));
            else
                snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(c->status));
            c->message = strdup(why);
        }
    }
    ret = 0;
out:
    if (pidfd >= 0)
        close(pidfd);
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    if (devnull >= 0)
        close(devnull);
    if (tmp_log[0])
        unlink(tmp_log);
    return ret;
}

static bool call_failed(const rt_call *c) { return !WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0; }

static int call_error(const rt_call *c, int code, cr_err **err)
{
    return cr_err_set(err, code, "%s %s %s: %s", rt_label(c->rt), c->cmd, c->id,
                      c->message ? c->message : "failed");
}

static bool check_id(const oci_runtime *rt, const char *cmd, const char *id, cr_err **err)
{
    if (!rt || !rt->path) {
        cr_err_set(err, CR_FAILED_PRECONDITION, "%s %s: no runtime", cmd, id ? id : "");
        return false;
    }
    /* Also keeps the id from reading as an option or a path. */
    if (!id || !*id || id[0] == '-' || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "%s %s %s: invalid container id", rt_label(rt), cmd,
                   id ? id : "(null)");
        return false;
    }
    return true;
}

int oci_create(const oci_runtime *rt, const char *id, const char *bundle, const char *pid_file,
               int timeout_s, cr_err **err)
{
    if (!check_id(rt, "create", id, err))
        return -1;
    if (!bundle || !*bundle)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "%s create %s: no bundle", rt_label(rt), id);
    _cleanup_free_ char *log_path = NULL;
    if (asprintf(&log_path, "%s/runtime.log", bundle) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "%s create %s: out of memory", rt_label(rt), id);
    const char *args[8];
    size_t n = 0;
    args[n++] = "--bundle";
    args[n++] = bundle;
    if (pid_file && *pid_file) {
        args[n++] = "--pid-file";
        args[n++] = pid_file;
    }
    args[n++] = id;
    args[n] = NULL;
    rt_call c = { .rt = rt, .cmd = "create", .id = id, .args = args, .log_path = log_path,
                  .detached = true, .timeout_s = timeout_s };
    int r = rt_run(&c, err);
    if (r == 0 && call_failed(&c))
        r = call_error(&c, CR_INTERNAL, err);
    rt_call_clear(&c);
    return r;
}

/* A simple command on an existing container; a container the runtime does
 * not know is CR_NOT_FOUND. */
static int simple(const oci_runtime *rt, const char *cmd, const char *id, const char *const *args,
                  int timeout_s, bool *not_found, cr_err **err)
{
    rt_call c = { .rt = rt, .cmd = cmd, .id = id, .args = args, .timeout_s = timeout_s };
    int r = rt_run(&c, err);
    if (r == 0 && call_failed(&c)) {
        bool gone = !container_known(rt, id);
        if (not_found)
            *not_found = gone;
        r = call_error(&c, gone ? CR_NOT_FOUND : CR_INTERNAL, err);
    }
    rt_call_clear(&c);
    return r;
}

int oci_start(const oci_runtime *rt, const char *id, int timeout_s, cr_err **err)
{
    if (!check_id(rt, "start", id, err))
        return -1;
    const char *args[] = { id, NULL };
    return simple(rt, "start", id, args, timeout_s, NULL, err);
}

#define KILL_TIMEOUT_S 30

int oci_kill(const oci_runtime *rt, const char *id, int sig, bool all, cr_err **err)
{
    if (!check_id(rt, "kill", id, err))
        return -1;
    if (sig <= 0 || sig >= NSIG)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "%s kill %s: invalid signal %d", rt_label(rt), id, sig);
    char signum[16];
    snprintf(signum, sizeof(signum), "%d", sig);
    const char *args[4];
    size_t n = 0;
    if (all)
        args[n++] = "--all";
    args[n++] = id;
    args[n++] = signum;
    args[n] = NULL;
    return simple(rt, "kill", id, args, KILL_TIMEOUT_S, NULL, err);
}

#define DELETE_TIMEOUT_S 60

int oci_delete(const oci_runtime *rt, const char *id, bool force, cr_err **err)
{
    if (!check_id(rt, "delete", id, err))
        return -1;
    if (!container_known(rt, id))
        return 0;
    const char *args[3];
    size_t n = 0;
    if (force)
        args[n++] = "--force";
    args[n++] = id;
    args[n] = NULL;
    cr_err *e = NULL;
    bool not_found = false;
    if (simple(rt, "delete", id, args, DELETE_TIMEOUT_S, &not_found, &e) < 0) {
        if (not_found) { /* gone meanwhile: what delete wanted */
            cr_err_free(e);
            return 0;
        }
        if (err && !*err)
            *err = e;
        else
            cr_err_free(e);
        return -1;
    }
    return 0;
}

#define STATE_TIMEOUT_S 30

/* state, and the bundle folder when bundle is set (heap, may stay NULL). */
static int state_query(const oci_runtime *rt, const char *id, oci_state *out, char **bundle, cr_err **err)
{
    if (!check_id(rt, "state", id, err))
        return -1;
    memset(out, 0, sizeof(*out));
    const char *args[] = { id, NULL };
    rt_call c = { .rt = rt, .cmd = "state", .id = id, .args = args, .want_stdout = true,
                  .timeout_s = STATE_TIMEOUT_S };
    int r = rt_run(&c, err);
    if (r == 0 && call_failed(&c))
        r = call_error(&c, container_known(rt, id) ? CR_INTERNAL : CR_NOT_FOUND, err);
    if (r == 0) {
        char ebuf[128] = "";
        yajl_val v = c.out.data ? yajl_tree_parse(c.out.data, ebuf, sizeof(ebuf)) : NULL;
        const char *k_status[] = { "status", NULL }, *k_pid[] = { "pid", NULL };
        yajl_val status = v ? yajl_tree_get(v, k_status, yajl_t_string) : NULL;
        yajl_val pid = v ? yajl_tree_get(v, k_pid, yajl_t_number) : NULL;
        if (!status || strlen(status->u.string) >= sizeof(out->status)) {
            r = cr_err_set(err, CR_INTERNAL, "%s state %s: unexpected output: %.200s", rt_label(rt), id,
                           c.out.data ? c.out.data : "(none)");
        } else {
            strcpy(out->status, status->u.string);
            out->pid = pid && YAJL_IS_INTEGER(pid) ? (int)YAJL_GET_INTEGER(pid) : 0;
            const char *k_bundle[] = { "bundle", NULL };
            yajl_val b = bundle ? yajl_tree_get(v, k_bundle, yajl_t_string) : NULL;
            if (b && !(*bundle = strdup(b->u.string)))
                r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "%s state %s: out of memory", rt_label(rt), id);
        }
        if (v)
            yajl_tree_free(v);
    }
    rt_call_clear(&c);
    return r;
}

int oci_state_get(const oci_runtime *rt, const char *id, oci_state *out, cr_err **err)
{
    return state_query(rt, id, out, NULL, err);
}

/* ---- exec, update, pause, resume ---- */

/* The code for a command that failed on a container the runtime may know:
 * CR_NOT_FOUND when it does not, CR_FAILED_PRECONDITION when it is not in
 * the state the command needs, else CR_INTERNAL.  *status: its state. */
static int failure_code(const oci_runtime *rt, const char *id, const char *needs, char *status, size_t n)
{
    status[0] = '\0';
    if (!container_known(rt, id))
        return CR_NOT_FOUND;
    oci_state st;
    cr_err *e = NULL;
    if (oci_state_get(rt, id, &st, &e) < 0) {
        int code = e && e->code == CR_NOT_FOUND ? CR_NOT_FOUND : CR_INTERNAL;
        cr_err_free(e);
        return code;
    }
    snprintf(status, n, "%s", st.status);
    return strcmp(st.status, needs) == 0 ? CR_INTERNAL : CR_FAILED_PRECONDITION;
}

static int state_call_error(const rt_call *c, const char *needs, cr_err **err)
{
    char status[16];
    int code = failure_code(c->rt, c->id, needs, status, sizeof(status));
    if (code == CR_FAILED_PRECONDITION)
        return cr_err_set(err, code, "%s %s %s: %s (the container is %s)", rt_label(c->rt), c->cmd, c->id,
                          c->message ? c->message : "failed", status);
    return call_error(c, code, err);
}

void oci_exec_result_clear(oci_exec_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

static void obuf_take(obuf *b, char **data, size_t *len, bool *truncated)
{
    *data = b->data ? b->data : strdup("");
    *len = b->data ? b->len : 0;
    *truncated = b->truncated;
    b->data = NULL;
    b->len = b->cap = 0;
}

static bool file_nonempty(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static size_t env_key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* The container's environment (process.env of its config.json) with env
 * over it.  crun's `exec --env` replaces the whole environment where runc's
 * adds to it, so both are handed the whole list. */
static char **merged_env(const char *bundle, const char *const *env, const char *id, cr_err **err)
{
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/config.json", bundle) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "exec in %s: out of memory", id), NULL;
    cr_err *e = NULL;
    _cleanup_free_ char *text = cr_read_file(path, NULL, &e);
    if (!text) {
        cr_err_set(err, CR_INTERNAL, "exec in %s: the container's environment: %s", id, e ? e->msg : "?");
        cr_err_free(e);
        return NULL;
    }
    char ebuf[128] = "";
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    const char *k_env[] = { "process", "env", NULL };
    yajl_val cenv = v ? yajl_tree_get(v, k_env, yajl_t_array) : NULL;
    size_t n_c = cenv ? cenv->u.array.len : 0, n_e = 0;
    for (const char *const *p = env; p && *p; p++)
        n_e++;
    char **out = calloc(n_c + n_e + 1, sizeof(*out));
    size_t n = 0;
    bool ok = out != NULL;
    for (size_t i = 0; ok && i < n_c; i++) {
        yajl_val s = cenv->u.array.values[i];
        if (!YAJL_IS_STRING(s))
            continue;
        size_t kl = env_key_len(s->u.string);
        bool overridden = false;
        for (const char *const *p = env; *p && !overridden; p++)
            overridden = env_key_len(*p) == kl && strncmp(*p, s->u.string, kl) == 0;
        if (!overridden && !(out[n++] = strdup(s->u.string)))
            ok = false;
    }
    for (const char *const *p = env; ok && *p; p++)
        if (!(out[n++] = strdup(*p)))
            ok = false;
    if (v)
        yajl_tree_free(v);
    if (!ok) {
        cr_strvfree(out);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "exec in %s: out of memory", id), NULL;
    }
    return out;
}

static int exec_sync(const oci_runtime *rt, const char *id, const char *const *args, const char *const *env,
                     int timeout_s, size_t cap, bool known_running, oci_exec_result *res, cr_err **err)
{
    if (res)
        memset(res, 0, sizeof(*res));
    if (!check_id(rt, "exec", id, err))
        return -1;
    if (!res)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: no result", id);
    res->exit_code = -1;
    if (!args || !args[0] || !args[0][0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: no command", id);
    size_t n_args = 0, n_env = 0;
    for (const char *const *p = args; *p; p++)
        n_args++;
    for (const char *const *p = env; p && *p; p++) {
        if (!strchr(*p, '=') || (*p)[0] == '=')
            return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: environment variable %s: not KEY=VALUE",
                              id, *p);
        n_env++;
    }

    /* Runtimes differ (runc execs in a created container) and CRI wants
     * exec in a running one only: ask first. */
    oci_state st;
    _cleanup_free_ char *bundle = NULL;
    if (!known_running || n_env) {
        if (state_query(rt, id, &st, &bundle, err) < 0)
            return cr_err_prefix(err, "exec in %s", id);
        if (strcmp(st.status, "running") != 0)
            return cr_err_set(err, CR_FAILED_PRECONDITION, "exec in %s: the container is %s, not running", id,
                              st.status);
    }
    _cleanup_strv_ char **full_env = NULL;
    if (n_env) {
        if (!bundle)
            return cr_err_set(err, CR_INTERNAL, "exec in %s: the runtime did not tell the bundle", id);
        if (!(full_env = merged_env(bundle, env, id, err)))
            return -1;
        n_env = 0;
        for (char **p = full_env; *p; p++)
            n_env++;
    }

    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    char dir[PATH_MAX], pid_file[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/crisp-exec-XXXXXX", tmpdir);
    if (!mkdtemp(dir))
        return cr_err_errno(err, CR_INTERNAL, errno, "exec in %s: create a folder in %s", id, tmpdir);
    snprintf(pid_file, sizeof(pid_file), "%s/pid", dir);

    int r = -1;
    const char **argv = calloc(2 * n_env + n_args + 4, sizeof(*argv));
    if (!argv) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "exec in %s: out of memory", id);
        goto out;
    }
    size_t n = 0;
    argv[n++] = "--pid-file";
    argv[n++] = pid_file;
    for (char **p = full_env; p && *p; p++) {
        argv[n++] = "--env";
        argv[n++] = *p;
    }
    argv[n++] = id;
    for (const char *const *p = args; *p; p++)
        argv[n++] = *p;
    argv[n] = NULL;

    rt_call c = { .rt = rt, .cmd = "exec", .id = id, .args = argv, .want_stdout = true,
                  .timeout_s = timeout_s, .kill_pid_file = pid_file, .own_timeout_error = true };
    c.out.limit = c.err.limit = cap ? cap : OCI_EXEC_DEFAULT_CAP;
    r = rt_run(&c, err);
    bool started = file_nonempty(pid_file);
    obuf_take(&c.out, &res->out, &res->out_len, &res->out_truncated);
    obuf_take(&c.err, &res->err, &res->err_len, &res->err_truncated);
    if (r < 0) {
        if (c.timed_out)
            cr_err_set(err, CR_DEADLINE_EXCEEDED, "exec in %s timed out after %ds", id, timeout_s);
    } else if (!call_failed(&c) || started) {
        /* The runtime exits with the status of the process it ran. */
        res->exit_code = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : 128 + WTERMSIG(c.status);
    } else {
        r = state_call_error(&c, "running", err);
    }
    rt_call_clear(&c);
out:
    free(argv);
    unlink(pid_file);
    rmdir(dir);
    return r;
}

/* ---- interactive exec (streaming, no terminal) ---- */

struct oci_exec_proc {
    oci_runtime rt;          /* path and root copied: the caller's may go */
    char *rt_name, *rt_path, *rt_root;
    char id[256];
    char dir[PATH_MAX];      /* pid file and runtime log */
    char pid_file[PATH_MAX + 8], log_path[PATH_MAX + 8];
    pid_t pid;               /* the runtime */
    int pidfd;
    bool reaped;
    int status;
};

int oci_exec_start(const oci_runtime *rt, const char *id, const char *const *args, bool want_stdin,
                   bool want_stdout, bool want_stderr, oci_exec_proc **out, int *stdin_fd, int *stdout_fd,
                   int *stderr_fd, cr_err **err)
{
    *out = NULL;
    *stdin_fd = *stdout_fd = *stderr_fd = -1;
    if (!check_id(rt, "exec", id, err))
        return -1;
    if (!args || !args[0] || !args[0][0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: no command", id);
    if (strlen(id) >= sizeof(((oci_exec_proc *)0)->id))
        return cr_err_set(err, CR_INVALID_ARGUMENT, "exec in %s: id too long", id);
    if (access(rt->path, X_OK) < 0)
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "exec in %s: runtime %s", id, rt->path);
    oci_exec_proc *p = calloc(1, sizeof(*p));
    if (!p)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "exec in %s: out of memory", id);
    p->pid = -1;
    p->pidfd = -1;
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->rt_name = rt->name ? strdup(rt->name) : NULL;
    p->rt_path = strdup(rt->path);
    p->rt_root = rt->root ? strdup(rt->root) : NULL;
    p->rt = (oci_runtime){ .name = p->rt_name, .path = p->rt_path, .root = p->rt_root };
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    snprintf(p->dir, sizeof(p->dir), "%s/crisp-exec-XXXXXX", tmpdir);
    size_t n_args = 0;
    for (const char *const *a = args; *a; a++)
        n_args++;
    const char **argv = calloc(n_args + 12, sizeof(*argv));
    int in[2] = { -1, -1 }, o[2] = { -1, -1 }, e[2] = { -1, -1 }, devnull = -1;
    if (!p->rt_path || !argv) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "exec in %s: out of memory", id);
        goto fail;
    }
    if (!mkdtemp(p->dir)) {
        cr_err_errno(err, CR_INTERNAL, errno, "exec in %s: create a folder in %s", id, tmpdir);
        p->dir[0] = '\0';
        goto fail;
    }
    snprintf(p->pid_file, sizeof(p->pid_file), "%s/pid", p->dir);
    snprintf(p->log_path, sizeof(p->log_path), "%s/log", p->dir);
    size_t n = runtime_argv(rt, p->log_path, argv);
    argv[n++] = "exec";
    argv[n++] = "--pid-file";
    argv[n++] = p->pid_file;
    argv[n++] = id;
    for (const char *const *a = args; *a; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 || (want_stdin && pipe2(in, O_CLOEXEC) < 0) ||
        (want_stdout && pipe2(o, O_CLOEXEC) < 0) || (want_stderr && pipe2(e, O_CLOEXEC) < 0)) {
        cr_err_errno(err, CR_INTERNAL, errno, "exec in %s: pipes", id);
        goto fail;
    }
    int fd0 = in[0] >= 0 ? in[0] : devnull, fd1 = o[1] >= 0 ? o[1] : devnull, fd2 = e[1] >= 0 ? e[1] : devnull;
    p->pid = spawn_runtime(rt, argv, fd0, fd1, fd2);
    if (p->pid < 0) {
        cr_err_errno(err, CR_INTERNAL, errno, "exec in %s: fork", id);
        goto fail;
    }
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    close(devnull);
    if (in[0] >= 0)
        close(in[0]);
    if (o[1] >= 0)
        close(o[1]);
    if (e[1] >= 0)
        close(e[1]);
    free(argv);
    *stdin_fd = in[1];
    *stdout_fd = o[0];
    *stderr_fd = e[0];
    *out = p;
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (o[i] >= 0)
            close(o[i]);
        if (e[i] >= 0)
            close(e[i]);
    }
    if (devnull >= 0)
        close(devnull);
    free(argv);
    oci_exec_free(p);
    return -1;
}

int oci_exec_process_write(const char *bundle, const char *const *args, bool terminal, unsigned width,
                           unsigned height, const char *path, cr_err **err)
{
    if (!args || !args[0] || !args[0][0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "exec process: no command");
    _cleanup_free_ char *cfg_path = NULL;
    if (asprintf(&cfg_path, "%s/config.json", bundle) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    _cleanup_free_ char *text = cr_read_file(cfg_path, NULL, err);
    if (!text)
        return cr_err_prefix(err, "exec process");
    char ebuf[128] = "";
    yajl_val root = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    const char *k_proc[] = { "process", NULL };
    yajl_val proc = root ? yajl_tree_get(root, k_proc, yajl_t_object) : NULL;
    if (!proc) {
        if (root)
            yajl_tree_free(root);
        return cr_err_set(err, CR_INTERNAL, "exec process: %s has no process object%s%s", cfg_path,
                          ebuf[0] ? ": " : "", ebuf);
    }
    oci_jw w = { .g = yajl_gen_alloc(NULL) };
    if (!w.g) {
        yajl_tree_free(root);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    oci_jw_map(&w);
    for (size_t i = 0; i < proc->u.object.len; i++) {
        const char *k = proc->u.object.keys[i];
        if (!strcmp(k, "args") || !strcmp(k, "terminal") || !strcmp(k, "consoleSize") || !strcmp(k, "commandLine"))
            continue;
        oci_jw_str(&w, k);
        oci_jw_tree(&w, proc->u.object.values[i]);
    }
    oci_jw_str(&w, "args");
    oci_jw_arr(&w);
    for (const char *const *a = args; *a; a++)
        oci_jw_str(&w, *a);
    oci_jw_arr_end(&w);
    oci_jw_kbool(&w, "terminal", terminal);
    if (terminal && width > 0 && height > 0) {
        oci_jw_str(&w, "consoleSize");
        oci_jw_map(&w);
        oci_jw_kint(&w, "height", height);
        oci_jw_kint(&w, "width", width);
        oci_jw_map_end(&w);
    }
    oci_jw_map_end(&w);
    yajl_tree_free(root);
    const unsigned char *buf;
    size_t len;
    int r;
    if (w.bad || yajl_gen_get_buf(w.g, &buf, &len) != yajl_gen_status_ok)
        r = cr_err_set(err, CR_INTERNAL, "exec process: JSON generation failed");
    else
        r = cr_write_file_atomic(path, (const char *)buf, len, 0600, err);
    yajl_gen_free(w.g);
    return r;
}

int oci_exec_pidfd(const oci_exec_proc *p) { return p ? p->pidfd : -1; }

int oci_exec_wait(oci_exec_proc *p, int *exit_code, cr_err **err)
{
    *exit_code = -1;
    if (!p->reaped) {
        if (wait_child(p->pid, &p->status) < 0)
            return cr_err_errno(err, CR_INTERNAL, errno, "exec in %s: wait for the runtime", p->id);
        p->reaped = true;
    }
    bool failed = !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0;
    if (!failed || file_nonempty(p->pid_file)) {
        /* The process ran: the runtime exits with its status. */
        *exit_code = WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128 + WTERMSIG(p->status);
        return 0;
    }
    rt_call c = { .rt = &p->rt, .cmd = "exec", .id = p->id, .status = p->status };
    c.message = log_last_error(p->log_path, 0);
    if (!c.message) {
        char why[64];
        if (WIFEXITED(p->status))
            snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(p->status));
        else
            snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(p->status));
        c.message = strdup(why);
    }
    int r = state_call_error(&c, "running", err);
    rt_call_clear(&c);
    return r;
}

void oci_exec_free(oci_exec_proc *p)
{
    if (!p)
        return;
    if (p->pid > 0 && !p->reaped) {
        /* The process first: the runtime, its parent, then reaps it and
         * exits by itself; if not, the runtime's group goes too. */
        kill_pid_file_tree(p->pid_file);
        if (!wait_child_ms(p->pid, 2000, &p->status)) {
            kill_group(p->pid);
            wait_child(p->pid, &p->status);
            kill_pid_file_tree(p->pid_file); /* written meanwhile */
        }
        p->reaped = true;
    }
    if (p->pidfd >= 0)
        close(p->pidfd);
    if (p->dir[0]) {
        unlink(p->pid_file);
        unlink(p->log_path);
        rmdir(p->dir);
    }
    free(p->rt_name);
    free(p->rt_path);
    free(p->rt_root);
    free(p);
}

int oci_exec_sync(const oci_runtime *rt, const char *id, const char *const *args, const char *const *env,
                  int timeout_s, size_t cap, oci_exec_result *res, cr_err **err)
{
    return exec_sync(rt, id, args, env, timeout_s, cap, false, res, err);
}

int oci_exec_sync_running(const oci_runtime *rt, const char *id, const char *const *args, int timeout_s, size_t cap,
                          oci_exec_result *res, cr_err **err)
{
    return exec_sync(rt, id, args, NULL, timeout_s, cap, true, res, err);
}

#define UPDATE_TIMEOUT_S 60

int oci_update(const oci_runtime *rt, const char *id, const oci_spec_input *resources, cr_err **err)
{
    if (!check_id(rt, "update", id, err))
        return -1;
    _cleanup_free_ char *json = oci_resources_json(resources, err);
    if (!json)
        return cr_err_prefix(err, "%s update %s", rt_label(rt), id);
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/crisp-resources-XXXXXX", tmpdir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "%s update %s: create a file in %s", rt_label(rt), id,
                            tmpdir);
    size_t len = strlen(json), done = 0;
    while (done < len) {
        ssize_t w = write(fd, json + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return cr_err_errno(err, CR_INTERNAL, e, "%s update %s: write %s", rt_label(rt), id, path);
        }
        done += (size_t)w;
    }
    close(fd);
    const char *args[] = { "--resources", path, id, NULL };
    int r = simple(rt, "update", id, args, UPDATE_TIMEOUT_S, NULL, err);
    unlink(path);
    return r;
}

#define PAUSE_TIMEOUT_S 60

/* pause needs a running container, resume a paused one; one already in
 * the state wanted is fine (crun says so, runc refuses: the same for both). */
static int freeze_call(const oci_runtime *rt, const char *cmd, const char *needs, const char *done,
                       const char *id, cr_err **err)
{
    if (!check_id(rt, cmd, id, err))
        return -1;
    const char *args[] = { id, NULL };
    rt_call c = { .rt = rt, .cmd = cmd, .id = id, .args = args, .timeout_s = PAUSE_TIMEOUT_S };
    int r = rt_run(&c, err);
    if (r == 0 && call_failed(&c)) {
        char status[16];
        int code = failure_code(rt, id, needs, status, sizeof(status));
        if (code == CR_FAILED_PRECONDITION && strcmp(status, done) == 0)
            r = 0;
        else if (code == CR_FAILED_PRECONDITION)
            r = cr_err_set(err, code, "%s %s %s: %s (the container is %s)", rt_label(rt), cmd, id,
                           c.message ? c.message : "failed", status);
        else
            r = call_error(&c, code, err);
    }
    rt_call_clear(&c);
    return r;
}

int oci_pause(const oci_runtime *rt, const char *id, cr_err **err)
{
    return freeze_call(rt, "pause", "running", "paused", id, err);
}

int oci_resume(const oci_runtime *rt, const char *id, cr_err **err)
{
    return freeze_call(rt, "resume", "paused", "running", id, err);
}
