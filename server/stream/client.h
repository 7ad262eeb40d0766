/* Client side of the CRI streaming protocols (component server/stream/):
 * runs an exec/attach or a port-forward against the URL an Exec, Attach or
 * PortForward RPC returned, from crisp's own streaming server or any other
 * (the kubelet's library in containerd, CRI-O), over SPDY/3.1 or WebSocket,
 * as crictl and kubectl do.  Used by crispctl and the integration tests. */
#ifndef CRISP_STREAM_CLIENT_H
#define CRISP_STREAM_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

typedef enum st_transport {
    ST_TRANSPORT_SPDY,       /* offers v4, v3, v2.channel.k8s.io, channel.k8s.io (crictl's order) */
    ST_TRANSPORT_WEBSOCKET,  /* offers v5, v4.channel.k8s.io, channel.k8s.io */
} st_transport;

/* A terminal size record, as written to st_exec_opts.resize_fd. */
typedef struct st_winsize {
    uint16_t width, height;
} st_winsize;

typedef struct st_exec_opts {
    st_transport transport;
    bool tty;
    int stdin_fd;             /* sent as the remote stdin until EOF; -1: none */
    int stdout_fd;            /* the remote stdout is written here; -1: none */
    int stderr_fd;            /* the remote stderr; -1: none (always none with tty) */
    int resize_fd;            /* -1, or an fd delivering st_winsize records (a pipe fed
                               * from a SIGWINCH handler): each becomes a resize message */
    uint16_t width, height;   /* initial terminal size (tty); 0: none sent */
    const char *const *protocols; /* NULL: the default offer for the transport */
    int timeout_sec;          /* connecting and the handshake; 0: 30 */
    char negotiated[64];      /* out: the sub-protocol the server chose */
} st_exec_opts;

/* Initialize opts: SPDY, no fds (-1), no tty. */
void st_exec_opts_init(st_exec_opts *opts);

/* Run an exec or attach session.  Returns 0 once the session ended, with
 * the remote exit code in *exit_code (0 for success or for protocols before
 * v4, which carry none), or -1 with *err: the server refused (NOT_FOUND for
 * an unknown or used token, PERMISSION_DENIED for no common protocol, ...),
 * the connection failed, the session ended without the exit status a v4+
 * server always sends (UNAVAILABLE: idle timeout, server stopping), or the
 * remote command failed to run.  The caller's
 * fds are used as they are (not made non-blocking) and not closed. */
int st_client_exec(const char *url, st_exec_opts *opts, int *exit_code, cr_err **err);

/* Forward one connection: copy between fd (a connected socket, or any fd
 * readable and writable) and port in the pod until the remote side closes.
 * At the remote EOF fd gets shutdown(SHUT_WR); fd stays open.  Fails with
 * the server's message when it could not reach the port. */
int st_client_portforward(const char *url, int32_t port, int fd, st_transport transport, cr_err **err);

#endif
