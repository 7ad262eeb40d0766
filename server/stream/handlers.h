/* Private to server/stream/: what the connection code (stream.c) and the
 * session handlers (exec.c: exec and attach; portforward.c) share. */
#ifndef CRISP_STREAM_HANDLERS_H
#define CRISP_STREAM_HANDLERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/stream/session.h"
#include "server/stream/stream.h"
#include "server/stream/ws.h"

#define CLOSE_DRAIN_MS 2000     /* after the last frame, wait this long for the peer to close */

struct st_token;
struct st_conn;

struct st_server {
    st_options opt;          /* defaults filled in */
    st_backend be;
    char *host;              /* listen host as given (for URLs) */
    char *hostport;
    int port;
    int listen_fd;
    int stop_fd;             /* eventfd: readable once stopping */
    pthread_t accept_th;
    bool accept_started;
    pthread_mutex_t mu;      /* tokens, conns, n_active */
    struct st_token *tokens;
    size_t n_tokens;
    struct st_conn *conns;
    int n_active;
};

const char *st_kind_name(st_kind k);

/* Serve an upgraded connection (fd is theirs from now on); extra holds bytes
 * the client sent after the HTTP head. */
void st_serve_exec(st_server *srv, int fd, const st_request *req, bool ws, const char *proto, const ws_proto *wsp,
                   const uint8_t *extra, size_t extra_len);
void st_serve_portforward(st_server *srv, int fd, const st_request *req, bool ws, const ws_proto *wsp,
                          const int32_t *ports, size_t n_ports, const uint8_t *extra, size_t extra_len);
/* The ports of a WebSocket port-forward: the `port` query parameters (each
 * may be a comma list) checked against the request's, else the request's.
 * -1 with *why (free) when they are missing or bad. */
int st_ws_ports(const st_request *req, const char *query, int32_t **out, size_t *n, char **why);
/* Log how a session ended, release the process, close the connection. */
void st_end_session(st_server *srv, st_sess *s, int end, bool started, st_proc *proc);

#endif
