/* The streaming server behind the CRI Exec, Attach and PortForward RPCs
 * (component server/stream/, the door to it with client.h).
 *
 * The RPCs hand each request to st_server_issue() and answer with the URL
 * it returns, http://<addr>:<port>/{exec,attach,portforward}/<token>.  The
 * kubelet (or crictl) then connects there and upgrades the HTTP/1.1 request
 * to SPDY/3.1 or a WebSocket, speaking the same protocols as Kubernetes'
 * streaming server (k8s.io/kubelet/pkg/cri/streaming):
 *
 *   exec, attach  SPDY with X-Stream-Protocol-Version v5/v4/v3/v2.channel.k8s.io
 *                 or channel.k8s.io; WebSocket with v5.channel.k8s.io,
 *                 v4.channel.k8s.io, v4.base64.channel.k8s.io, channel.k8s.io,
 *                 base64.channel.k8s.io (or no sub-protocol)
 *   portforward   SPDY with portforward.k8s.io; WebSocket with
 *                 v4.channel.k8s.io, v4.base64.channel.k8s.io, portforward.k8s.io
 *
 * Tokens are single-use and expire after token_ttl_sec; an unknown, used or
 * expired token answers 404, a protocol mismatch 403 listing what is
 * supported.  Each connection runs on its own thread; the process side is
 * the backend's (crispd runs `runc exec`, connects the monitor's attach
 * socket, dials into the pod's network namespace). */
#ifndef CRISP_STREAM_STREAM_H
#define CRISP_STREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

typedef enum st_kind { ST_EXEC, ST_ATTACH, ST_PORTFORWARD } st_kind;

/* What a token stands for; filled by the caller of st_server_issue. */
typedef struct st_request {
    st_kind kind;
    char *container_id;        /* exec, attach */
    char *sandbox_id;          /* portforward */
    char **cmd;                /* exec: NULL-terminated argv */
    bool tty;                  /* exec, attach: stdout is a terminal (no stderr) */
    bool want_stdin, want_stdout, want_stderr;
    int32_t *ports;            /* portforward: ports it may reach (none: any) */
    size_t n_ports;
    void *data;                /* the backend's own */
} st_request;

/* A started exec or attach, as file descriptors.  The session may close
 * stdin_fd early (the client's stdin ended) and then sets it to -1; every
 * other fd stays the backend's, closed by release(). */
typedef struct st_proc {
    int stdin_fd;     /* the client's stdin is written here; -1: none */
    int stdout_fd;    /* read until EOF; -1: none (with a tty, the terminal) */
    int stderr_fd;    /* read until EOF; -1: none (always with a tty) */
    int exit_fd;      /* optional: readable once the process has exited (a
                       * pidfd), so wait() need not block; -1: none */
    unsigned short width, height; /* in, for start(): the terminal size the
                       * client sent before the start (tty), 0: none yet */
    void *priv;
} st_proc;

/* The process side, provided by crispd (or a test).  Calls for one session
 * come from that session's thread; sessions run concurrently. */
typedef struct st_backend {
    /* exec: start req->cmd in the container; attach: connect to its stdio.
     * Fills *p (fds not wanted: -1). */
    int (*start)(void *ctx, const st_request *req, st_proc *p, cr_err **err);
    /* The client's terminal size changed (tty sessions). */
    void (*resize)(void *ctx, st_proc *p, unsigned short width, unsigned short height);
    /* Called once the output reached EOF and exit_fd, if any, fired (or 2 s
     * after exit_fd fired when something else keeps the output open): the
     * exit code (exec; attach sessions report success whatever it is). */
    int (*wait)(void *ctx, st_proc *p, int *exit_code, cr_err **err);
    /* Always called once after a successful start: exec: kill the process
     * if still running; attach: detach (the container keeps running); then
     * close the fds still open (>= 0 in *p) and free. */
    void (*release)(void *ctx, st_proc *p);
    /* portforward: a connected stream socket to port in the pod. */
    int (*dial)(void *ctx, const st_request *req, int32_t port, cr_err **err);
    /* Free a request (NULL: st_request_free). */
    void (*free_request)(void *ctx, st_request *req);
    void *ctx;
} st_backend;

typedef struct st_options {
    const char *address;          /* listen address (NULL: 127.0.0.1) */
    int port;                     /* 0: pick a free one */
    int token_ttl_sec;            /* 0: 60 */
    int idle_timeout_sec;         /* 0: 4 hours */
    int stream_creation_timeout_sec; /* SPDY: wait for the client's streams; 0: 30 */
    int max_sessions;             /* concurrent connections; 0: 1024 */
    int max_tokens;               /* outstanding tokens; 0: 1000 */
} st_options;

typedef struct st_server st_server;

int st_server_start(st_server **out, const st_options *o, const st_backend *b, cr_err **err);
/* The port the server listens on. */
int st_server_port(st_server *s);
/* "host:port" (IPv6 hosts in brackets), for Status info. */
const char *st_server_address(st_server *s);
/* Register req under a fresh random token and return its URL (free()).
 * Ownership of req passes to the server in every case: it is freed with
 * free_request when its session ends, when it expires, or at once when this
 * fails (INVALID_ARGUMENT for a request the streaming server would refuse,
 * RESOURCE_EXHAUSTED when too many tokens are outstanding). */
int st_server_issue(st_server *s, st_request *req, char **url_out, cr_err **err);
/* Connections being served now. */
int st_server_sessions(st_server *s);
/* Stop listening, end every session (processes released), join every
 * thread, free outstanding requests and the server. */
void st_server_stop(st_server *s);

/* Free a request allocated field by field with malloc (and the struct). */
void st_request_free(st_request *req);

#endif
