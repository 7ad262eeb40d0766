/* A strict, small HTTP/1.1 message-head parser and response writer: just
 * enough HTTP for the streaming upgrade handshakes (request line and headers
 * with size limits; GET and POST; no bodies beyond a discarded
 * Content-Length), plus the parts of the handshake both the server and the
 * client need (header lists, protocol negotiation).  Private to
 * server/stream/. */
#ifndef CRISP_STREAM_HTTP_H
#define CRISP_STREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "server/stream/buf.h"

#define HTTP_MAX_HEAD (16 * 1024)   /* request/status line + headers + blank line */
#define HTTP_MAX_TARGET (8 * 1024)  /* request target */
#define HTTP_MAX_HEADERS 100

typedef struct http_header {
    char *name;   /* as sent; compare case-insensitively */
    char *value;  /* leading/trailing whitespace removed */
} http_header;

typedef struct http_msg {
    /* requests */
    char *method;
    char *target;            /* origin-form request target */
    char *path;              /* target before '?' */
    char *query;             /* target after '?', NULL when none */
    /* responses */
    int status;
    char *reason;
    /* both */
    int minor;               /* HTTP/1.<minor> */
    http_header *headers;
    size_t n_headers;
    size_t head_len;         /* bytes of the head, the blank line included */
    int error_status;        /* after a parse failure: the status to answer with */
} http_msg;

/* Parse a request head from buf.  Returns 1 when a complete head was parsed
 * into *m (m->head_len bytes consumed), 0 when more bytes are needed, -1 when
 * the head is malformed or too large: m->error_status holds the status to
 * answer with (400, 414, 431, 505) and *err the reason. */
int http_parse_request(const char *buf, size_t len, http_msg *m, cr_err **err);
/* Same for a response head (the client side of the handshake). */
int http_parse_response(const char *buf, size_t len, http_msg *m, cr_err **err);
void http_msg_free(http_msg *m);

/* The first header called name (case-insensitive), or NULL. */
const char *http_header_get(const http_msg *m, const char *name);
/* Every comma-separated element of every header called name, trimmed, empty
 * ones dropped, in order.  NULL-terminated; NULL only when out of memory. */
char **http_header_list(const http_msg *m, const char *name);
/* Whether a comma-separated header (Connection, Upgrade) holds token,
 * case-insensitively. */
bool http_header_has_token(const http_msg *m, const char *name, const char *token);
/* The percent-decoded values of key in a query string ("a=1&b=2&a=3"), in
 * order.  NULL-terminated; NULL only when out of memory. */
char **http_query_values(const char *query, const char *key);

/* The first protocol the client offers that the server supports (the
 * client's preference wins, as in apimachinery's httpstream.Handshake), or
 * NULL. */
const char *http_negotiate(char *const *offered, const char *const *supported);

const char *http_reason(int status);
/* Append a complete response: status line, extra headers (name, value, ...
 * pairs, NULL-terminated; may be NULL), and when body is non-NULL a text/plain
 * body with its Content-Length and "Connection: close". */
void http_put_response(st_buf *out, int status, const char *const *headers, const char *body);

#endif
