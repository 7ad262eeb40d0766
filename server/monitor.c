/* Launching crisp-monitor: one per container and one per pod infra process.
 * The launcher double-forks (crispd is not the monitor's parent), the
 * monitor runs `runtime create` and reports the container's pid, or the
 * runtime's error, as one JSON line on the sync pipe. */
#include "internal.h"
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "conmon/monitor.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "oci/oci.h"

#define MONITOR_TIMEOUT_MS 60000L

static char *monitor_binary(srv_daemon *d)
{
    char *p = cr_find_executable(d->cfg->monitor_path);
    if (p)
        return p;
    /* Next to crispd (a build tree, or an install without the libexec dir). */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    _cleanup_free_ char *cand = srv_pathf("%s/" MON_BINARY, self);
    return cand ? cr_find_executable(cand) : NULL;
}

/* Read the monitor's one-line answer from fd, up to the deadline. */
static size_t read_answer(int fd, char *line, size_t size)
{
    size_t len = 0;
    while (len < size - 1) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, (int)MONITOR_TIMEOUT_MS) <= 0)
            break;
        ssize_t k = read(fd, line + len, size - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        if (memchr(line, '\n', len))
            break;
    }
    line[len] = '\0';
    return len;
}

/* Connect to the monitor's attach socket in state_dir. */
static int attach_connect(const char *state_dir, cr_err **err)
{
    _cleanup_close_ int dirfd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct sockaddr_un sa;
    socklen_t salen;
    if (mon_sockaddr(&sa, &salen, state_dir, dirfd, MON_ATTACH_SOCKET) < 0)
        return cr_err_set(err, CR_INTERNAL, "attach socket in %s: path too long", state_dir);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "attach socket");
    if (connect(fd, (struct sockaddr *)&sa, salen) < 0) {
        int e = errno;
        close(fd);
        return cr_err_errno(err, CR_INTERNAL, e, "connect to %s/" MON_ATTACH_SOCKET, state_dir);
    }
    return fd;
}

int srv_monitor_launch(srv_daemon *d, const srv_monitor_req *m, int *pid_out, cr_err **err)
{
    _cleanup_free_ char *mon = monitor_binary(d);
    if (!mon)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "crisp-monitor not found (%s)", d->cfg->monitor_path);
    bool exec = m->exec_args != NULL || m->exec_process != NULL;
    _cleanup_free_ char *exits = exec ? strdup(m->state_dir) : srv_pathf("%s/exits", d->cfg->runroot);
    size_t n_exec = 0;
    for (const char *const *a = m->exec_args; a && *a; a++)
        n_exec++;
    _cleanup_free_ const char **argv = calloc(n_exec + 40, sizeof(*argv));
    if (!exits || !argv)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    int n = 0;
    argv[n++] = mon;
    if (exec)
        argv[n++] = "--exec";
    argv[n++] = "--id"; argv[n++] = m->id;
    argv[n++] = "--runtime"; argv[n++] = m->rt->path;
    argv[n++] = "--runtime-root"; argv[n++] = m->rt->root;
    argv[n++] = "--bundle"; argv[n++] = m->bundle;
    if (m->log_path) {
        argv[n++] = "--log-path";
        argv[n++] = m->log_path;
    }
    argv[n++] = "--exit-dir"; argv[n++] = exits;
    argv[n++] = "--state-dir"; argv[n++] = m->state_dir;
    argv[n++] = "--sync-fd"; argv[n++] = "3";
    argv[n++] = "--name"; argv[n++] = m->name;
    if (m->cgroups_path && m->cgroups_path[0] == '/') {
        argv[n++] = "--cgroup-path";
        argv[n++] = m->cgroups_path;
    }
    if (m->tty)
        argv[n++] = "--terminal";
    if (m->stdin_)
        argv[n++] = "--stdin";
    if (m->stdin_once)
        argv[n++] = "--stdin-once";
    if (m->exec_process) {
        argv[n++] = "--exec-process";
        argv[n++] = m->exec_process;
    } else if (exec) {
        argv[n++] = "--";
        for (const char *const *a = m->exec_args; *a; a++)
            argv[n++] = *a;
    }
    argv[n] = NULL;
    if (m->attach_fd)
        *m->attach_fd = -1;
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(sync[0]);
        close(sync[1]);
        return cr_err_errno(err, CR_INTERNAL, errno, "fork crisp-monitor");
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        if (dup2(sync[1], 3) < 0)
            _exit(126);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        execv(mon, (char *const *)argv);
        _exit(127);
    }
    close(sync[1]);
    /* The launcher exits once the monitor is set up; the monitor then reports
     * the runtime's create (or exec) on the sync pipe. */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && exec) {
        /* It runs nothing before its first client is there. */
        int fd = attach_connect(m->state_dir, err);
        if (fd < 0) {
            close(sync[0]);
            return -1;
        }
        *m->attach_fd = fd;
    }
    char line[4096];
    size_t len = read_answer(sync[0], line, sizeof(line));
    close(sync[0]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        srv_metrics_failure(d, "monitor", "launch");
        return cr_err_set(err, CR_INTERNAL, "%s: crisp-monitor failed to start (status %d)%s%s", m->id, st,
                          len ? ": " : "", line);
    }
    yajl_val v = yajl_tree_parse(line, NULL, 0);
    const char *p_pid[] = { "pid", NULL }, *p_err[] = { "error", NULL };
    yajl_val pv = v ? yajl_tree_get(v, p_pid, yajl_t_number) : NULL;
    yajl_val ev = v ? yajl_tree_get(v, p_err, yajl_t_string) : NULL;
    int r = 0;
    if (pv)
        *pid_out = (int)YAJL_GET_INTEGER(pv);
    else {
        srv_metrics_failure(d, "runtime", exec ? "exec" : "create");
        r = cr_err_set(err, CR_INTERNAL, "%s %s %s: %s", m->rt->name, exec ? "exec in" : "create", m->id,
                       ev ? YAJL_GET_STRING(ev) : len ? line : "no answer from crisp-monitor");
    }
    yajl_tree_free(v);
    if (r < 0 && m->attach_fd && *m->attach_fd >= 0) {
        close(*m->attach_fd);
        *m->attach_fd = -1;
    }
    return r;
}
