/* crispd's metrics endpoint: GET (or HEAD) /metrics over HTTP, served by
 * libmicrohttpd on its own polling thread; anything else answers 404 (405
 * for another method on /metrics). */
#ifndef CRISP_LIB_PROMHTTP_H
#define CRISP_LIB_PROMHTTP_H

#include "err.h"
#include "prom.h"

typedef struct cr_promhttp cr_promhttp;

/* Listen on addr (a numeric IPv4 or IPv6 address, "[::1]" too; NULL or "" =
 * 127.0.0.1) and port (0 = any free port: cr_promhttp_port says which) and
 * serve reg, rendered afresh for every scrape, until cr_promhttp_stop (reg
 * must outlive the server).  Errors: INVALID_ARGUMENT for a bad address or
 * port, ALREADY_EXISTS when the address is in use, INTERNAL otherwise. */
int cr_promhttp_start(cr_prom_registry *reg, const char *addr, int port, cr_promhttp **out, cr_err **err);
/* The port actually listened on. */
int cr_promhttp_port(const cr_promhttp *h);
/* Stop serving (in-flight requests end first), close the socket, free h.
 * NULL is fine. */
void cr_promhttp_stop(cr_promhttp *h);

#endif
