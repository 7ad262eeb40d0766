/* crisp-monitor internals: the one context every part takes, and the parts.
 * Private to conmon/; crispd includes monitor.h only. */
#ifndef CRISP_CONMON_INTERNAL_H
#define CRISP_CONMON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conmon/monitor.h"

#define MON_MAX_CLIENTS 16
#define MON_IO_BUF MON_ATTACH_MAX_PAYLOAD
/* A partial line older than this is written out as P, so a prompt or a
 * progress bar shows in the log without waiting for its newline. */
#define MON_PARTIAL_FLUSH_NS 1000000000LL
#define MON_REAPED_STASH 16

struct mon_opts {
    const char *id, *runtime, *runtime_root, *bundle, *log_path, *exit_dir, *state_dir;
    const char *cgroup_path, *name;
    bool terminal, stdin_, stdin_once;
    bool exec;              /* exec mode: `runtime exec -d` of exec_argv */
    char **exec_argv;       /* the command after "--" (into argv) */
    size_t n_exec_argv;
    const char *exec_process; /* exec mode: an OCI process JSON (--process) instead of a command */
    int attach_timeout;     /* seconds to wait for the first client (exec) */
    size_t log_max_line;
    int sync_fd;
    const char **runtime_args;
    size_t n_runtime_args;
};

/* One output stream of the container: a pipe, or the pty master for stdout. */
struct mon_stream {
    int fd;           /* -1 once closed (EOF) */
    bool owned;       /* fd is ours to close (not the console) */
    int type;         /* MON_ATTACH_STDOUT or MON_ATTACH_STDERR */
    const char *name; /* "stdout" / "stderr" */
    char *line;       /* the partial line, at most log_max_line bytes */
    size_t len;
    int64_t since;    /* monotonic ns when the partial line began */
};

struct mon_client {
    int fd; /* -1: free slot */
    bool first;
};

struct mon_reaped {
    pid_t pid;
    int status;
    int64_t at; /* realtime ns */
};

struct mon {
    struct mon_opts o;
    int state_dirfd, exit_dirfd;
    int sigfd;
    int log_fd;
    struct mon_stream out, err;
    int console_fd;      /* pty master, -1 without --terminal */
    int stdin_fd;        /* pipe write end or the console; -1 when none/closed */
    bool stdin_close_pending;
    int attach_fd, ctl_fd;
    struct mon_client clients[MON_MAX_CLIENTS];
    bool had_client;
    char ctl_buf[MON_CTL_MAX_LINE];
    size_t ctl_len;
    bool ctl_skip; /* discarding an over-long line */
    bool have_size;
    unsigned short rows, cols;

    pid_t runtime_pid, container_pid;
    bool runtime_done, container_done;
    bool kill_requested; /* "kill" before the process existed (exec mode) */
    int runtime_status, container_status;
    int64_t container_exited_at;
    struct mon_reaped stash[MON_REAPED_STASH];
    unsigned stash_next;

    int oom_fd;
    bool oom_v2;
    long long oom_start;

    size_t in_off, in_len; /* pending stdin bytes in in_buf */
    char in_buf[MON_ATTACH_MAX_PACKET];
    char io_buf[MON_IO_BUF];
    char errmsg[1024];
};

/* main.c */
int64_t mon_now_ns(int clock);
int mon_write_all(int fd, const void *buf, size_t len);
int mon_mkdir_p(const char *path, mode_t mode);
void mon_reap(struct mon *m);
void mon_set_error(struct mon *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t mon_json_escape(char *out, size_t outlen, const char *s);

/* runtime.c: `runtime create`, or `runtime exec -d` in exec mode; 0 once
 * the process exists and container_pid is set, or -1 with m->errmsg set. */
int mon_runtime_run(struct mon *m);

/* log.c: the CRI log writer. */
int mon_log_open(struct mon *m);
void mon_log_reopen(struct mon *m);
void mon_log_feed(struct mon *m, struct mon_stream *s, const char *data, size_t n);
void mon_log_flush_partial(struct mon *m, struct mon_stream *s);

/* attach.c */
int mon_attach_listen(struct mon *m);
void mon_attach_accept(struct mon *m);
void mon_attach_broadcast(struct mon *m, int type, const char *data, size_t n);
void mon_attach_client_input(struct mon *m, int idx);
void mon_attach_exit(struct mon *m, int exit_code);
void mon_stdin_flush(struct mon *m);
void mon_stdin_close(struct mon *m);

/* ctl.c */
int mon_ctl_open(struct mon *m);
void mon_ctl_read(struct mon *m);
void mon_apply_size(struct mon *m);
void mon_kill(struct mon *m);

/* exit.c */
void mon_oom_start(struct mon *m);
bool mon_oom_killed(struct mon *m);
int mon_exit_write(struct mon *m);

#endif
