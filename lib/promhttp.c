/* Metrics over HTTP with libmicrohttpd.  The listening socket is made here
 * (not by MHD) so a bind failure has a clear error and port 0 can be read
 * back with getsockname; MHD takes it over (MHD_OPTION_LISTEN_SOCKET) and
 * closes it in MHD_stop_daemon. */
#include "promhttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

struct cr_promhttp {
    struct MHD_Daemon *mhd;
    cr_prom_registry *reg;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body, const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    cr_promhttp *h = cls;
    /* A request body (none expected) is swallowed before the answer. */
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/metrics"))
        return reply(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed\n", "GET, HEAD");
    size_t len = 0;
    char *body = cr_prom_render(h->reg, &len);
    if (!body)
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CR_PROM_CONTENT_TYPE);
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    cr_log_warn("metrics endpoint", "error", msg, NULL);
}

int cr_promhttp_start(cr_prom_registry *reg, const char *addr, int port, cr_promhttp **out, cr_err **err)
{
    *out = NULL;
    if (!addr || !*addr)
        addr = "127.0.0.1";
    if (port < 0 || port > 65535)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "metrics endpoint: port %d out of range", port);
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    /* "[::1]" is accepted for IPv6 too. */
    char a6[INET6_ADDRSTRLEN + 2];
    size_t al = strlen(addr);
    if (addr[0] == '[' && al > 2 && addr[al - 1] == ']' && al - 2 < sizeof(a6)) {
        memcpy(a6, addr + 1, al - 2);
        a6[al - 2] = '\0';
    } else {
        snprintf(a6, sizeof(a6), "%s", addr);
    }
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sl = sizeof(*in4);
    } else if (inet_pton(AF_INET6, a6, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*in6);
    } else {
        return cr_err_set(err, CR_INVALID_ARGUMENT, "metrics endpoint: \"%s\" is not an IP address", addr);
    }

    _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "metrics endpoint: socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        return cr_err_errno(err, errno == EADDRINUSE ? CR_ALREADY_EXISTS : CR_INTERNAL, errno,
                            "metrics endpoint: listen on %s port %d", addr, port);
    if (listen(fd, 64) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "metrics endpoint: listen on %s port %d", addr, port);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "metrics endpoint: getsockname");

    cr_promhttp *h = calloc(1, sizeof(*h));
    if (!h)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metrics endpoint: out of memory");
    h->reg = reg;
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, h,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, or MHD says so */
                              MHD_OPTION_LISTEN_SOCKET, fd,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                              MHD_OPTION_END);
    if (!h->mhd) {
        /* Whether MHD closed a socket handed to it when it fails to start
         * differs between versions: close it only if still open. */
        if (fcntl(fd, F_GETFD) < 0)
            fd = -1;
        free(h);
        return cr_err_set(err, CR_INTERNAL, "metrics endpoint: cannot start the HTTP server on %s port %d", addr,
                          port);
    }
    fd = -1;   /* MHD owns it now */
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", h->port);
    cr_log_info("metrics endpoint listening", "address", addr, "port", port_s, NULL);
    *out = h;
    return 0;
}

int cr_promhttp_port(const cr_promhttp *h)
{
    return h ? h->port : 0;
}

void cr_promhttp_stop(cr_promhttp *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    free(h);
}
