/* crisp-monitor protocol: what crispd needs to launch a monitor and talk to it.
 *
 * Launch (crispd forks and execs; the monitor forks again, its first process
 * exits 0 once the second is set up, so crispd reaps it at once and the
 * monitor is never crispd's child).  Two modes:
 *
 * Container mode: one monitor per container, runs `runtime create`.
 *
 *   crisp-monitor --id ID --runtime PATH --runtime-root DIR --bundle DIR
 *                 --log-path FILE --exit-dir DIR --state-dir DIR
 *                 [--terminal] [--stdin] [--stdin-once] [--log-max-line BYTES]
 *                 [--cgroup-path PATH] [--sync-fd N] [--runtime-arg ARG]...
 *                 [--name NAME]
 *
 * Exec mode: one monitor per exec session (kubectl exec), runs
 * `runtime exec -d` in the running container ID.
 *
 *   crisp-monitor --exec --id CONTAINER-ID --runtime PATH --runtime-root DIR
 *                 --exit-dir DIR --state-dir DIR [--bundle DIR] [--log-path FILE]
 *                 [--terminal] [--stdin] [--stdin-once] [--log-max-line BYTES]
 *                 [--sync-fd N] [--runtime-arg ARG]... [--name NAME]
 *                 [--attach-timeout SECONDS] (-- ARG... | --exec-process FILE)
 *
 *   The command is everything after "--" (at least one ARG), or the whole
 *   OCI process in FILE (`exec --process FILE`: args, env, user, terminal
 *   and consoleSize, which runc applies to the pty before the command
 *   starts; crun 1.8 ignores consoleSize, so a resize still follows).  --bundle is
 *   optional and ignored (the runtime finds the bundle in its own state);
 *   without --log-path no CRI log is written; --cgroup-path is ignored (no
 *   OOM watch).  --state-dir must be the session's own folder, never the
 *   container's.  --attach-timeout defaults to 30 (1..86400).
 *   The monitor does not run anything until the FIRST attach client has
 *   connected (so no output is lost); control commands sent before that are
 *   applied (a resize reaches the pty as soon as the pty exists).  Then it
 *   runs, with the container's runtime flags as for create:
 *     RUNTIME --root R --log <state>/runtime.log --log-format json [runtime args]
 *             exec -d --pid-file <state>/container.pid
 *             [--tty --console-socket <state>/console.sock] ID ARG...
 *   or, with --exec-process:  ... exec -d --process FILE --pid-file ...
 *             [--console-socket ...] ID  (terminal comes from FILE)
 *   (crun: --log=FILE --log-format=json, as for create) and serves the
 *   exec'd process exactly as container mode serves a
 *   container's init (pipes or pty, attach, ctl, exit file, EXIT packet).
 *   The exec'd process is reparented to the monitor (a subreaper) when the
 *   runtime exits, so the monitor reaps it and records its exit.
 *
 * The launcher's exit status is 0 when the monitor is set up (state dir, attach
 * socket, control fifo, log file), 1 with a message on stderr otherwise.  It
 * never waits for the runtime: in exec mode it exits 0 before the command
 * runs, so a failed exec (a missing executable, no attach client) is a sync
 * error, never a launcher status.
 * Everything after that is reported on --sync-fd only: the monitor writes ONE
 * line there (in exec mode, only once the first attach client is connected):
 *   {"pid": 1234}\n                 container mode: created (crispd runs
 *                                   `runtime start` itself); exec mode: the
 *                                   exec'd process runs, this is its pid
 *   {"error": "message"}\n          failed: no exit file will ever be written;
 *                                   the runtime's own message when it failed,
 *                                   in exec mode also
 *                                   "exec in ID: no attach client within Ns"
 *                                   "exec in ID: killed before it started"
 *
 * Files in --state-dir (0700, made by the monitor):
 *   monitor.pid      the monitor's pid, decimal and a newline
 *   attach           SOCK_SEQPACKET listening socket (protocol below)
 *   ctl              FIFO of text commands (below)
 *   container.pid    written by the runtime (--pid-file): the container's init,
 *                    or the exec'd process
 *   runtime.log      the runtime's own log (--log, JSON lines)
 *   console.sock     while the runtime runs, with --terminal
 * At exit the monitor removes monitor.pid, attach and ctl; crispd removes the
 * folder with the container.  In exec mode the monitor removes all of its
 * files (container.pid and runtime.log too), so the folder is left empty for
 * crispd to remove.
 *
 * Exit file <exit-dir>/<id>, written atomically once the container's init (in
 * exec mode: the exec'd process) is reaped and its output is in the log, as
 * one JSON object and a newline:
 *   {"exitCode": 137, "exitedAt": 1700000000123456789, "oomKilled": true, "signal": 9}
 * exitCode is 128+signal for a death by signal; exitedAt is unix nanoseconds.
 * oomKilled is always false in exec mode.
 *
 * Attach: every SOCK_SEQPACKET packet starts with one type byte.
 *   monitor -> client: MON_ATTACH_STDOUT / MON_ATTACH_STDERR + data (a tty is
 *                      all stdout), MON_ATTACH_EXIT + exit code in decimal,
 *                      then the monitor closes the connection.  A client
 *                      sees EOF without an EXIT packet when the monitor ends
 *                      without a process (exec mode: the runtime failed).
 *   client -> monitor: MON_ATTACH_STDIN + data (ignored without --stdin),
 *                      MON_ATTACH_CLOSE_STDIN (no payload).
 * Payloads are at most MON_ATTACH_MAX_PAYLOAD bytes: receive into a buffer of
 * MON_ATTACH_MAX_PACKET.  A client that does not keep up (its socket buffer is
 * full) is disconnected: the container is never blocked on it.  With
 * --stdin-once the container's stdin is closed when the first client that
 * connected leaves (a tty gets its EOF character instead).
 *
 * Control fifo, both modes: lines
 *   "resize <rows> <cols>\n"   set the pty's size (with --terminal)
 *   "reopen\n"                 reopen --log-path after the kubelet rotated it
 *   "kill\n"                   SIGKILL the process group of the container's
 *                              init / the exec'd process (the group it is in:
 *                              kill(-getpgid(pid)), which is kill(-pid) when
 *                              it leads one; never the monitor's own group),
 *                              and the process itself, unless already reaped;
 *                              the monitor then ends as usual (exit file with
 *                              137, EXIT packet).
 *                              In exec mode before the first attach client:
 *                              nothing is run, sync error, the monitor exits 1.
 * Unknown lines are ignored.
 */
#ifndef CRISP_CONMON_MONITOR_H
#define CRISP_CONMON_MONITOR_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MON_BINARY "crisp-monitor"

/* Files in --state-dir. */
#define MON_PID_FILE "monitor.pid"
#define MON_ATTACH_SOCKET "attach"
#define MON_CTL_FIFO "ctl"
#define MON_CONTAINER_PID_FILE "container.pid"
#define MON_RUNTIME_LOG "runtime.log"
#define MON_CONSOLE_SOCKET "console.sock"

#define MON_LOG_MAX_LINE_DEFAULT 16384
#define MON_ATTACH_TIMEOUT_DEFAULT 30 /* seconds, exec mode */

/* Attach packet types (first byte of every packet). */
enum mon_attach_type {
    MON_ATTACH_STDIN = 0,
    MON_ATTACH_STDOUT = 1,
    MON_ATTACH_STDERR = 2,
    MON_ATTACH_EXIT = 3,
    MON_ATTACH_CLOSE_STDIN = 4,
};
#define MON_ATTACH_MAX_PAYLOAD 32768
#define MON_ATTACH_MAX_PACKET (MON_ATTACH_MAX_PAYLOAD + 1)

/* Control fifo commands. */
#define MON_CTL_RESIZE "resize"
#define MON_CTL_REOPEN "reopen"
#define MON_CTL_KILL "kill"
#define MON_CTL_MAX_LINE 128

/* Format a resize command; returns its length (< len) or -1. */
static inline int mon_ctl_resize(char *buf, size_t len, unsigned rows, unsigned cols)
{
    int n = snprintf(buf, len, MON_CTL_RESIZE " %u %u\n", rows, cols);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* The address of a socket in a state dir.  sun_path holds 107 bytes: a longer
 * path is reached through an open O_PATH descriptor of the folder
 * (/proc/self/fd/N/name), which the monitor does too.  dirfd < 0 means none;
 * returns -ENAMETOOLONG when the path is too long and there is no dirfd. */
static inline int mon_sockaddr(struct sockaddr_un *sa, socklen_t *salen, const char *dir, int dirfd,
                               const char *name)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
        if (dirfd < 0)
            return -ENAMETOOLONG;
        n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dirfd, name);
        if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
            return -ENAMETOOLONG;
    }
    *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
    return 0;
}

/* The exit file, parsed. */
struct mon_exit {
    int exit_code;
    int64_t exited_at; /* unix ns */
    bool oom_killed;
    int signal;
};

/* Find "key": in a flat JSON object and return what follows the colon. */
static inline const char *mon__json_value(const char *json, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = json; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, klen) == 0 && p[klen + 1] == '"') {
            const char *v = p + klen + 2;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v != ':')
                continue;
            v++;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

/* Parse an exit file's text (as written by the monitor); 0 or -EINVAL. */
static inline int mon_exit_parse(const char *json, struct mon_exit *out)
{
    const char *code = mon__json_value(json, "exitCode");
    const char *at = mon__json_value(json, "exitedAt");
    const char *oom = mon__json_value(json, "oomKilled");
    const char *sig = mon__json_value(json, "signal");
    if (!code || !at || !oom || !sig)
        return -EINVAL;
    char *end;
    errno = 0;
    long c = strtol(code, &end, 10);
    if (end == code || errno)
        return -EINVAL;
    long long a = strtoll(at, &end, 10);
    if (end == at || errno)
        return -EINVAL;
    long s = strtol(sig, &end, 10);
    if (end == sig || errno)
        return -EINVAL;
    if (strncmp(oom, "true", 4) == 0)
        out->oom_killed = true;
    else if (strncmp(oom, "false", 5) == 0)
        out->oom_killed = false;
    else
        return -EINVAL;
    out->exit_code = (int)c;
    out->exited_at = (int64_t)a;
    out->signal = (int)s;
    return 0;
}

#endif
