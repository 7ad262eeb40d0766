/* Unit tests for the streaming server and client (server/stream/): the HTTP
 * head parser, the Status and resize message formats, upgrade negotiation
 * (403 with the supported list, 404 for unknown, used, expired or
 * mismatched tokens, ...), and end to end, in one process, a server with a
 * backend that forks real processes (/bin/sh, /bin/echo, /bin/cat over
 * pipes; a pty for tty sessions) and dials real TCP listeners on 127.0.0.1,
 * driven by our client over SPDY and WebSocket: output, stdin half-close,
 * exit codes, tty resize, attach, port-forward, 20 concurrent sessions,
 * client disconnects, idle timeout, stop.  Every wait polls with a
 * deadline; every process and fd is cleaned up. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "server/stream/client.h"
#include "server/stream/http.h"
#include "server/stream/internal.h"
#include "server/stream/spdy.h"
#include "server/stream/stream.h"
#include "server/stream/ws.h"

#define DEADLINE_MS 20000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (by polling nothing) for a condition, failing after the deadline. */
#define WAIT_FOR(cond, what)                                                          \
    do {                                                                              \
        int64_t dl_ = now_ms() + DEADLINE_MS;                                         \
        while (!(cond)) {                                                             \
            if (now_ms() > dl_)                                                       \
                ck_abort_msg("timed out waiting for %s", what);                       \
            poll(NULL, 0, 10);                                                        \
        }                                                                             \
    } while (0)

#define CK_OK(rc, e, what)                                                            \
    do {                                                                              \
        if ((rc) != 0)                                                                \
            ck_abort_msg("%s failed: %s", (what), (e) ? (e)->msg : "(no error)");    \
    } while (0)

/* ------------------------------------------------------------------ */
/* HTTP head parser                                                    */

static int parse_req(const char *s, http_msg *m)
{
    cr_err *e = NULL;
    int r = http_parse_request(s, strlen(s), m, &e);
    cr_err_free(e);
    return r;
}

START_TEST(http_request_ok)
{
    http_msg m;
    const char *req = "POST /exec/abc?port=80&port=443,8080&x=%41+b HTTP/1.1\r\n"
                      "Host: 127.0.0.1:1\r\n"
                      "Connection: keep-alive, Upgrade\r\n"
                      "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                      "x-stream-protocol-version:  v3.channel.k8s.io ,v2.channel.k8s.io,,\r\n"
                      "Empty:\r\n"
                      "\r\n"
                      "trailing frames";
    ck_assert_int_eq(parse_req(req, &m), 1);
    ck_assert_str_eq(m.method, "POST");
    ck_assert_str_eq(m.path, "/exec/abc");
    ck_assert_str_eq(m.query, "port=80&port=443,8080&x=%41+b");
    ck_assert_int_eq(m.minor, 1);
    ck_assert_uint_eq(m.head_len, strlen(req) - strlen("trailing frames"));
    ck_assert_str_eq(http_header_get(&m, "host"), "127.0.0.1:1");
    ck_assert_str_eq(http_header_get(&m, "EMPTY"), "");
    ck_assert(http_header_has_token(&m, "Connection", "upgrade"));
    ck_assert(!http_header_has_token(&m, "Connection", "close"));
    char **v = http_header_list(&m, "X-Stream-Protocol-Version");
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v[0], "v4.channel.k8s.io");
    ck_assert_str_eq(v[1], "v3.channel.k8s.io");
    ck_assert_str_eq(v[2], "v2.channel.k8s.io");
    ck_assert_ptr_null(v[3]);
    static const char *const sup[] = { "v2.channel.k8s.io", "v3.channel.k8s.io", NULL };
    ck_assert_str_eq(http_negotiate(v, sup), "v3.channel.k8s.io"); /* the client's order wins */
    static const char *const none[] = { "portforward.k8s.io", NULL };
    ck_assert_ptr_null(http_negotiate(v, none));
    cr_strvfree(v);
    v = http_query_values(m.query, "port");
    ck_assert_str_eq(v[0], "80");
    ck_assert_str_eq(v[1], "443,8080");
    ck_assert_ptr_null(v[2]);
    cr_strvfree(v);
    v = http_query_values(m.query, "x");
    ck_assert_str_eq(v[0], "A b");
    cr_strvfree(v);
    http_msg_free(&m);

    /* Incomplete heads ask for more, at every length. */
    const char *small = "GET /attach/t HTTP/1.1\r\nHost: h\r\n\r\n";
    for (size_t n = 0; n < strlen(small); n++) {
        cr_err *e = NULL;
        ck_assert_int_eq(http_parse_request(small, n, &m, &e), 0);
        http_msg_free(&m);
    }
}
END_TEST

START_TEST(http_request_bad)
{
    struct {
        const char *req;
        int status;
    } cases[] = {
        { "GET /x HTTP/1.1\nHost: h\r\n\r\n", 400 },            /* bare LF */
        { "GET /x HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400 }, /* obs-fold */
        { "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n", 400 },
        { "GET /x HTTP/1.1\r\n: v\r\n\r\n", 400 },
        { "GET  /x HTTP/1.1\r\n\r\n", 400 },
        { "GET x HTTP/1.1\r\n\r\n", 400 },
        { "GET /x HTTP/2.0\r\n\r\n", 505 },
        { "GET /x HTTQ/1.1\r\n\r\n", 400 },
        { "G(T /x HTTP/1.1\r\n\r\n", 400 },
        { "GET /x HTTP/1.1\r\nA: \x01\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_msg m;
        if (parse_req(cases[i].req, &m) != -1)
            ck_abort_msg("case %zu parsed", i);
        ck_assert_int_eq(m.error_status, cases[i].status);
        http_msg_free(&m);
    }
    /* Limits: a huge target (414), a huge head (431), too many headers. */
    st_buf b = { 0 };
    st_buf_add_str(&b, "GET /");
    for (int i = 0; i < HTTP_MAX_TARGET + 100; i++)
        st_buf_u8(&b, 'a');
    st_buf_add_str(&b, " HTTP/1.1\r\n\r\n");
    http_msg m;
    cr_err *e = NULL;
    ck_assert_int_eq(http_parse_request((char *)st_buf_head(&b), b.len, &m, &e), -1);
    ck_assert_int_eq(m.error_status, 414);
    cr_err_freep(&e);
    http_msg_free(&m);
    st_buf_reset(&b);
    st_buf_add_str(&b, "GET / HTTP/1.1\r\n");
    while (b.len < HTTP_MAX_HEAD + 10)
        st_buf_add_str(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    ck_assert_int_eq(http_parse_request((char *)st_buf_head(&b), b.len, &m, &e), -1);
    ck_assert_int_eq(m.error_status, 431);
    cr_err_freep(&e);
    http_msg_free(&m);
    st_buf_reset(&b);
    st_buf_add_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        st_buf_printf(&b, "H%d: v\r\n", i);
    st_buf_add_str(&b, "\r\n");
    ck_assert_int_eq(http_parse_request((char *)st_buf_head(&b), b.len, &m, &e), -1);
    ck_assert_int_eq(m.error_status, 431);
    cr_err_freep(&e);
    http_msg_free(&m);
    st_buf_free(&b);
}
END_TEST

START_TEST(http_response_parse_and_write)
{
    st_buf b = { 0 };
    const char *const h[] = { "Upgrade", "SPDY/3.1", "X-Stream-Protocol-Version", "v4.channel.k8s.io", NULL };
    http_put_response(&b, 101, h, NULL);
    st_buf_u8(&b, 0);
    ck_assert_str_eq((char *)st_buf_head(&b), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n"
                                              "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
    http_msg m;
    cr_err *e = NULL;
    ck_assert_int_eq(http_parse_response((char *)st_buf_head(&b), b.len - 1, &m, &e), 1);
    ck_assert_int_eq(m.status, 101);
    ck_assert_str_eq(m.reason, "Switching Protocols");
    ck_assert_str_eq(http_header_get(&m, "upgrade"), "SPDY/3.1");
    http_msg_free(&m);
    st_buf_reset(&b);
    http_put_response(&b, 404, NULL, "404 page not found\n");
    st_buf_u8(&b, 0);
    ck_assert_ptr_nonnull(strstr((char *)st_buf_head(&b), "Content-Length: 19\r\n"));
    ck_assert_int_eq(http_parse_response((char *)st_buf_head(&b), b.len - 1, &m, &e), 1);
    ck_assert_int_eq(m.status, 404);
    http_msg_free(&m);
    st_buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* message formats                                                     */

START_TEST(status_messages)
{
    char *s = st_status_json(true, NULL, NULL, NULL, NULL, 0);
    ck_assert_str_eq(s, "{\"metadata\":{},\"status\":\"Success\"}");
    free(s);
    s = st_status_json(false, "command terminated with non-zero exit code: x", "NonZeroExitCode", "ExitCode", "3", 0);
    ck_assert_str_eq(s, "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero "
                        "exit code: x\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":"
                        "\"ExitCode\",\"message\":\"3\"}]}}");
    int code = -1;
    cr_err *e = NULL;
    ck_assert_int_eq(st_status_decode(4, (uint8_t *)s, strlen(s), &code, &e), 0);
    ck_assert_int_eq(code, 3);
    free(s);
    s = st_status_json(false, "Internal error occurred: boom", "InternalError", NULL, "boom", 500);
    ck_assert_ptr_nonnull(strstr(s, "\"code\":500"));
    ck_assert_int_eq(st_status_decode(5, (uint8_t *)s, strlen(s), &code, &e), -1);
    ck_assert_int_eq(e->code, CR_INTERNAL);
    ck_assert_str_eq(e->msg, "Internal error occurred: boom");
    cr_err_freep(&e);
    free(s);
    /* Old protocols: text; nothing means success. */
    ck_assert_int_eq(st_status_decode(2, NULL, 0, &code, &e), 0);
    ck_assert_int_eq(code, 0);
    ck_assert_int_eq(st_status_decode(3, (uint8_t *)"bad", 3, &code, &e), -1);
    ck_assert_str_eq(e->msg, "error executing remote command: bad");
    cr_err_freep(&e);
    /* Malformed v4 statuses. */
    static const char exit300[] = "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":"
                                  "{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"300\"}]}}";
    const char *bad[] = { "not json", "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\"}", exit300,
                          "{\"status\":\"Weird\"}" };
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(st_status_decode(4, (const uint8_t *)bad[i], strlen(bad[i]), &code, &e), -1);
        cr_err_freep(&e);
    }
}
END_TEST

static unsigned short got_w[8], got_h[8];
static int n_got;
static void got_size(void *arg, unsigned short w, unsigned short h)
{
    (void)arg;
    got_w[n_got] = w;
    got_h[n_got++] = h;
}

START_TEST(resize_messages)
{
    st_buf b = { 0 };
    st_put_resize(&b, 80, 24);
    st_buf_u8(&b, 0);
    ck_assert_str_eq((char *)st_buf_head(&b), "{\"Width\":80,\"Height\":24}\n");
    st_buf_reset(&b);
    n_got = 0;
    /* Split across frames, odd spacing and case, junk, a string with a brace. */
    const char *parts[] = { "{\"Width\":1", "00,\"Height\":30}\n {\"width\": 7, \"HEIGHT\":8, \"x\":\"}\"}",
                            "garbage{\"Width\":5}{\"Width\":9,\"Height\":70000}{\"Width\":2,\"Height\":3}{\"Wi" };
    for (int i = 0; i < 3; i++) {
        st_buf_add_str(&b, parts[i]);
        st_parse_resize(&b, got_size, NULL);
    }
    ck_assert_int_eq(n_got, 3);
    ck_assert(got_w[0] == 100 && got_h[0] == 30);
    ck_assert(got_w[1] == 7 && got_h[1] == 8);
    ck_assert(got_w[2] == 2 && got_h[2] == 3);
    ck_assert_uint_eq(b.len, 4); /* the incomplete object waits */
    st_buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* a backend with real processes                                       */

typedef struct tb_proc {
    pid_t pid;
    bool waited;
} tb_proc;

static struct {
    pthread_mutex_t mu;
    int starts, releases, resizes, frees;
    pid_t pids[64];
    int n_pids;
    unsigned short last_w, last_h;
    bool fail_start;
    int fd_base;
} TB;

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void tb_reset(void)
{
    memset(&TB, 0, sizeof(TB));
    pthread_mutex_init(&TB.mu, NULL);
    TB.fd_base = fd_count();
}

/* Every fd the server, the clients and the test opened is closed again. */
static void expect_no_fd_leak(void)
{
    int n = fd_count();
    if (n != TB.fd_base) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", getpid());
        if (system(cmd) < 0)
            n = -1;
        ck_abort_msg("%d fds open, %d before the test", n, TB.fd_base);
    }
}

static int tb_count(int *field)
{
    pthread_mutex_lock(&TB.mu);
    int v = *field;
    pthread_mutex_unlock(&TB.mu);
    return v;
}

static int tb_start(void *ctx, const st_request *req, st_proc *p, cr_err **err)
{
    (void)ctx;
    if (TB.fail_start)
        return cr_err_set(err, CR_NOT_FOUND, "container %s not found", req->container_id);
    char **argv = req->kind == ST_EXEC ? req->cmd : (char **)req->data;
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 }, master = -1, slave = -1;
    if (req->tty) {
        struct winsize ws = { 0 };
        if (openpty(&master, &slave, NULL, NULL, &ws) < 0)
            return cr_err_errno(err, CR_INTERNAL, errno, "openpty");
        fcntl(master, F_SETFD, FD_CLOEXEC);
        fcntl(slave, F_SETFD, FD_CLOEXEC);
    } else {
        if ((req->want_stdin && pipe2(in, O_CLOEXEC) < 0) || (req->want_stdout && pipe2(out, O_CLOEXEC) < 0) ||
            (req->want_stderr && pipe2(er, O_CLOEXEC) < 0))
            return cr_err_errno(err, CR_INTERNAL, errno, "pipe");
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        if (req->tty) {
            ioctl(slave, TIOCSCTTY, 0);
            dup2(slave, 0);
            dup2(slave, 1);
            dup2(slave, 2);
        } else {
            dup2(in[0] >= 0 ? in[0] : devnull, 0);
            dup2(out[1] >= 0 ? out[1] : devnull, 1);
            dup2(er[1] >= 0 ? er[1] : devnull, 2);
        }
        syscall(SYS_close_range, 3, ~0U, 0);
        execve(argv[0], argv, (char *[]){ "PATH=/usr/bin:/bin", NULL });
        _exit(127);
    }
    close(devnull);
    if (slave >= 0)
        close(slave);
    if (in[0] >= 0)
        close(in[0]);
    if (out[1] >= 0)
        close(out[1]);
    if (er[1] >= 0)
        close(er[1]);
    if (pid < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "fork");
    tb_proc *t = calloc(1, sizeof(*t));
    t->pid = pid;
    p->priv = t;
    if (req->tty) {
        p->stdin_fd = req->want_stdin ? master : -1;
        p->stdout_fd = master;
    } else {
        p->stdin_fd = in[1];
        p->stdout_fd = out[0];
        p->stderr_fd = er[0];
    }
    p->exit_fd = (int)syscall(SYS_pidfd_open, pid, 0);
    pthread_mutex_lock(&TB.mu);
    TB.starts++;
    if (TB.n_pids < 64)
        TB.pids[TB.n_pids++] = pid;
    pthread_mutex_unlock(&TB.mu);
    return 0;
}

static void tb_resize(void *ctx, st_proc *p, unsigned short w, unsigned short h)
{
    (void)ctx;
    struct winsize ws = { .ws_row = h, .ws_col = w };
    ioctl(p->stdout_fd, TIOCSWINSZ, &ws);
    pthread_mutex_lock(&TB.mu);
    TB.resizes++;
    TB.last_w = w;
    TB.last_h = h;
    pthread_mutex_unlock(&TB.mu);
}

static int tb_wait(void *ctx, st_proc *p, int *code, cr_err **err)
{
    (void)ctx;
    tb_proc *t = p->priv;
    int st = 0;
    if (waitpid(t->pid, &st, 0) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "waitpid");
    t->waited = true;
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

static void tb_release(void *ctx, st_proc *p)
{
    (void)ctx;
    tb_proc *t = p->priv;
    /* The whole process group: a background child may outlive the command. */
    kill(-t->pid, SIGKILL);
    if (!t->waited) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    int fds[4] = { p->stdin_fd, p->stdout_fd, p->stderr_fd, p->exit_fd };
    for (int i = 0; i < 4; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= fds[j] == fds[i];
        if (fds[i] >= 0 && !dup)
            close(fds[i]);
    }
    free(t);
    pthread_mutex_lock(&TB.mu);
    TB.releases++;
    pthread_mutex_unlock(&TB.mu);
}

static int tb_dial(void *ctx, const st_request *req, int32_t port, cr_err **err)
{
    (void)ctx;
    (void)req;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return cr_err_errno(err, CR_UNAVAILABLE, e, "dial 127.0.0.1:%d", port);
    }
    return fd;
}

static void tb_free_request(void *ctx, st_request *req)
{
    (void)ctx;
    if (req->kind == ST_ATTACH)
        cr_strvfree(req->data);
    st_request_free(req);
    pthread_mutex_lock(&TB.mu);
    TB.frees++;
    pthread_mutex_unlock(&TB.mu);
}

static const st_backend tb_backend = {
    .start = tb_start, .resize = tb_resize, .wait = tb_wait, .release = tb_release,
    .dial = tb_dial, .free_request = tb_free_request,
};

static st_server *server_start_opts(st_options o)
{
    tb_reset();
    st_server *s = NULL;
    cr_err *e = NULL;
    int r = st_server_start(&s, &o, &tb_backend, &e);
    CK_OK(r, e, "st_server_start");
    return s;
}

static st_server *server_start(int idle_sec, int ttl_sec)
{
    st_options o = { .address = "127.0.0.1", .idle_timeout_sec = idle_sec, .token_ttl_sec = ttl_sec };
    return server_start_opts(o);
}

static char **strv(const char *a, ...)
{
    size_t n = 1;
    va_list ap;
    va_start(ap, a);
    while (va_arg(ap, const char *))
        n++;
    va_end(ap);
    char **v = calloc(n + 1, sizeof(char *));
    v[0] = strdup(a);
    va_start(ap, a);
    for (size_t i = 1; i < n; i++)
        v[i] = strdup(va_arg(ap, const char *));
    va_end(ap);
    return v;
}

enum { IN = 1, OUT = 2, ERR = 4, TTY = 8 };

static char *issue(st_server *s, st_kind kind, char **cmd, int flags)
{
    st_request *r = calloc(1, sizeof(*r));
    r->kind = kind;
    r->container_id = strdup("c0ffee");
    if (kind == ST_EXEC)
        r->cmd = cmd;
    else
        r->data = cmd;
    r->want_stdin = flags & IN;
    r->want_stdout = flags & OUT;
    r->want_stderr = flags & ERR;
    r->tty = flags & TTY;
    char *url = NULL;
    cr_err *e = NULL;
    int rc = st_server_issue(s, r, &url, &e);
    CK_OK(rc, e, "st_server_issue");
    return url;
}

static char *issue_pf(st_server *s, const int32_t *ports, size_t n)
{
    st_request *r = calloc(1, sizeof(*r));
    r->kind = ST_PORTFORWARD;
    r->sandbox_id = strdup("pod1");
    if (n) {
        r->ports = calloc(n, sizeof(int32_t));
        memcpy(r->ports, ports, n * sizeof(int32_t));
        r->n_ports = n;
    }
    char *url = NULL;
    cr_err *e = NULL;
    int rc = st_server_issue(s, r, &url, &e);
    CK_OK(rc, e, "st_server_issue");
    return url;
}

/* A file-like fd holding text (or empty): never blocks a writer. */
static int memfile(const char *text, size_t len)
{
    int fd = memfd_create("t", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    if (len)
        ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static char *memfile_read(int fd, size_t *len)
{
    off_t n = lseek(fd, 0, SEEK_END);
    char *b = malloc((size_t)n + 1);
    ck_assert_int_eq(pread(fd, b, (size_t)n, 0), n);
    b[n] = 0;
    if (len)
        *len = (size_t)n;
    return b;
}

typedef struct run {
    const char *url;
    st_exec_opts o;
    int rc, code;
    cr_err *err;
    pthread_t th;
    atomic_bool done;
} run;

static void *run_main(void *arg)
{
    run *r = arg;
    r->rc = st_client_exec(r->url, &r->o, &r->code, &r->err);
    atomic_store(&r->done, true);
    return NULL;
}

static void run_start(run *r) { ck_assert_int_eq(pthread_create(&r->th, NULL, run_main, r), 0); }

static void run_join(run *r)
{
    WAIT_FOR(atomic_load(&r->done), "the client to return");
    pthread_join(r->th, NULL);
}

/* Run one exec with the given fds; returns rc (exit code in *code). */
static int exec_once(const char *url, st_transport t, int in, int out, int err_fd, int *code, cr_err **e,
                     char *proto, size_t plen)
{
    st_exec_opts o;
    st_exec_opts_init(&o);
    o.transport = t;
    o.stdin_fd = in;
    o.stdout_fd = out;
    o.stderr_fd = err_fd;
    int rc = st_client_exec(url, &o, code, e);
    if (proto)
        snprintf(proto, plen, "%s", o.negotiated);
    return rc;
}

static bool group_gone(pid_t pgid) { return kill(-pgid, 0) < 0 && errno == ESRCH; }

/* Sessions over, every process released and gone, its whole group too. */
static void wait_idle(st_server *s, int releases)
{
    WAIT_FOR(st_server_sessions(s) == 0, "sessions to end");
    WAIT_FOR(tb_count(&TB.releases) == releases, "release() calls");
    for (int i = 0; i < tb_count(&TB.n_pids); i++)
        WAIT_FOR(group_gone(TB.pids[i]), "a process group to be gone");
}

/* ------------------------------------------------------------------ */
/* end to end: exec                                                    */

static void echo_stdout_only(st_transport t, const char *want_proto)
{
    st_server *s = server_start(0, 0);
    _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/echo", "hello", "stream", NULL), OUT);
    ck_assert_ptr_nonnull(strstr(url, "/exec/"));
    int out = memfile(NULL, 0), code = -1;
    cr_err *e = NULL;
    char proto[64];
    int rc = exec_once(url, t, -1, out, -1, &code, &e, proto, sizeof(proto));
    CK_OK(rc, e, "exec");
    ck_assert_int_eq(code, 0);
    ck_assert_str_eq(proto, want_proto);
    _cleanup_free_ char *got = memfile_read(out, NULL);
    ck_assert_str_eq(got, "hello stream\n");
    close(out);
    wait_idle(s, 1);
    st_server_stop(s);
    expect_no_fd_leak();
    ck_assert_int_eq(TB.frees, 1);
}

START_TEST(exec_echo_spdy) { echo_stdout_only(ST_TRANSPORT_SPDY, "v4.channel.k8s.io"); }
END_TEST
START_TEST(exec_echo_ws) { echo_stdout_only(ST_TRANSPORT_WEBSOCKET, "v5.channel.k8s.io"); }
END_TEST

/* stdin piped through cat and closed: the half-close reaches the process
 * (SPDY FIN / WebSocket v5 close signal), far more data than a window. */
static void stdin_cat(st_transport t)
{
    st_server *s = server_start(0, 0);
    size_t n = 700 * 1024;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/cat", NULL), IN | OUT | ERR);
    int in = memfile(data, n), out = memfile(NULL, 0), er = memfile(NULL, 0), code = -1;
    cr_err *e = NULL;
    int rc = exec_once(url, t, in, out, er, &code, &e, NULL, 0);
    CK_OK(rc, e, "exec cat");
    ck_assert_int_eq(code, 0);
    size_t len = 0;
    char *got = memfile_read(out, &len);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(got, data, n) == 0);
    free(got);
    free(data);
    close(in);
    close(out);
    close(er);
    wait_idle(s, 1);
    st_server_stop(s);
    expect_no_fd_leak();
}

/* stdin that ends at once (before the process even started): cat still
 * gets its EOF. */
START_TEST(exec_empty_stdin)
{
    st_server *s = server_start(0, 0);
    for (int t = 0; t < 2; t++) {
        _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/sh", "-c", "cat; echo end", NULL), IN | OUT);
        int in = memfile(NULL, 0), out = memfile(NULL, 0), code = -1;
        cr_err *e = NULL;
        int rc = exec_once(url, t ? ST_TRANSPORT_WEBSOCKET : ST_TRANSPORT_SPDY, in, out, -1, &code, &e, NULL, 0);
        CK_OK(rc, e, "exec with empty stdin");
        ck_assert_int_eq(code, 0);
        _cleanup_free_ char *got = memfile_read(out, NULL);
        ck_assert_str_eq(got, "end\n");
        close(in);
        close(out);
        wait_idle(s, t + 1);
    }
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

START_TEST(exec_stdin_spdy) { stdin_cat(ST_TRANSPORT_SPDY); }
END_TEST
START_TEST(exec_stdin_ws) { stdin_cat(ST_TRANSPORT_WEBSOCKET); }
END_TEST

static void exit_code_3(st_transport t)
{
    st_server *s = server_start(0, 0);
    _cleanup_free_ char *url =
        issue(s, ST_EXEC, strv("/bin/sh", "-c", "echo out; echo oops >&2; exit 3", NULL), OUT | ERR);
    int out = memfile(NULL, 0), er = memfile(NULL, 0), code = -1;
    cr_err *e = NULL;
    int rc = exec_once(url, t, -1, out, er, &code, &e, NULL, 0);
    CK_OK(rc, e, "exec exit 3");
    ck_assert_int_eq(code, 3);
    _cleanup_free_ char *o = memfile_read(out, NULL);
    _cleanup_free_ char *r = memfile_read(er, NULL);
    ck_assert_str_eq(o, "out\n");
    ck_assert_str_eq(r, "oops\n");
    close(out);
    close(er);
    wait_idle(s, 1);
    st_server_stop(s);
    expect_no_fd_leak();
}

START_TEST(exec_exit_code_spdy) { exit_code_3(ST_TRANSPORT_SPDY); }
END_TEST
START_TEST(exec_exit_code_ws) { exit_code_3(ST_TRANSPORT_WEBSOCKET); }
END_TEST

/* Older protocols carry no exit code: success is silence, failure a text
 * message. */
START_TEST(exec_old_protocols)
{
    st_server *s = server_start(0, 0);
    struct {
        st_transport t;
        const char *proto;
    } cases[] = {
        { ST_TRANSPORT_SPDY, "v3.channel.k8s.io" },
        { ST_TRANSPORT_SPDY, "v2.channel.k8s.io" },
        { ST_TRANSPORT_SPDY, "channel.k8s.io" },
        { ST_TRANSPORT_WEBSOCKET, "channel.k8s.io" },
        { ST_TRANSPORT_WEBSOCKET, "v4.base64.channel.k8s.io" },
        { ST_TRANSPORT_WEBSOCKET, "base64.channel.k8s.io" },
    };
    int releases = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int fail = 0; fail < 2; fail++) {
            _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/sh", "-c", fail ? "echo x; exit 4" : "echo x", NULL), OUT);
            const char *offer[] = { cases[i].proto, NULL };
            st_exec_opts o;
            st_exec_opts_init(&o);
            o.transport = cases[i].t;
            o.protocols = offer;
            o.stdout_fd = memfile(NULL, 0);
            int code = -1;
            cr_err *e = NULL;
            int rc = st_client_exec(url, &o, &code, &e);
            ck_assert_str_eq(o.negotiated, cases[i].proto);
            _cleanup_free_ char *got = memfile_read(o.stdout_fd, NULL);
            ck_assert_str_eq(got, "x\n");
            close(o.stdout_fd);
            bool v4 = strncmp(cases[i].proto, "v4.", 3) == 0;
            if (!fail || v4) {
                CK_OK(rc, e, cases[i].proto);
                ck_assert_int_eq(code, fail ? 4 : 0);
            } else {
                ck_assert_int_eq(rc, -1);
                ck_assert_ptr_nonnull(strstr(e->msg, "command terminated with non-zero exit code"));
                ck_assert_ptr_nonnull(strstr(e->msg, "exited with 4"));
                cr_err_free(e);
            }
            wait_idle(s, ++releases);
        }
    }
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

START_TEST(exec_start_failure)
{
    st_server *s = server_start(0, 0);
    TB.fail_start = true;
    for (int t = 0; t < 2; t++) {
        _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
        int out = memfile(NULL, 0), code = -1;
        cr_err *e = NULL;
        int rc = exec_once(url, t ? ST_TRANSPORT_WEBSOCKET : ST_TRANSPORT_SPDY, -1, out, -1, &code, &e, NULL, 0);
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(e->code, CR_INTERNAL);
        ck_assert_ptr_nonnull(
            strstr(e->msg, "Internal error occurred: error executing command in container: container c0ffee not found"));
        cr_err_free(e);
        close(out);
        WAIT_FOR(st_server_sessions(s) == 0, "the session to end");
    }
    ck_assert_int_eq(TB.releases, 0);
    st_server_stop(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* tty and resize                                                      */

/* Read fd into acc until it contains want. */
static void read_until(int fd, st_buf *acc, const char *want)
{
    int64_t dl = now_ms() + DEADLINE_MS;
    for (;;) {
        st_buf_u8(acc, 0);
        acc->len--;
        if (strstr((char *)st_buf_head(acc), want))
            return;
        int64_t left = dl - now_ms();
        if (left <= 0)
            ck_abort_msg("timed out waiting for \"%s\"; have \"%s\"", want, (char *)st_buf_head(acc));
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char b[512];
        ssize_t n = read(fd, b, sizeof(b));
        if (n <= 0)
            ck_abort_msg("EOF waiting for \"%s\"; have \"%s\"", want, (char *)st_buf_head(acc));
        st_buf_append(acc, b, (size_t)n);
    }
}

static void tty_resize(st_transport t)
{
    st_server *s = server_start(0, 0);
    /* The pty starts at 0x0: wait for the client's initial size, print it,
     * wait for it to change, print it again. */
    const char *script = "while [ \"$(stty size)\" = \"0 0\" ]; do sleep 0.02; done; stty size; "
                         "while [ \"$(stty size)\" = \"30 100\" ]; do sleep 0.02; done; stty size";
    _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/sh", "-c", script, NULL), OUT | TTY);
    int outp[2], rsz[2];
    ck_assert_int_eq(pipe2(outp, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(rsz, O_CLOEXEC), 0);
    run r = { .url = url };
    st_exec_opts_init(&r.o);
    r.o.transport = t;
    r.o.tty = true;
    r.o.stdout_fd = outp[1];
    r.o.resize_fd = rsz[0];
    r.o.width = 100;
    r.o.height = 30;
    run_start(&r);
    st_buf acc = { 0 };
    read_until(outp[0], &acc, "30 100\r\n");
    st_winsize ws = { .width = 120, .height = 50 };
    ck_assert_int_eq(write(rsz[1], &ws, sizeof(ws)), (ssize_t)sizeof(ws));
    read_until(outp[0], &acc, "50 120\r\n");
    run_join(&r);
    CK_OK(r.rc, r.err, "tty exec");
    ck_assert_int_eq(r.code, 0);
    ck_assert_int_ge(tb_count(&TB.resizes), 2);
    ck_assert_int_eq(TB.last_w, 120);
    ck_assert_int_eq(TB.last_h, 50);
    st_buf_free(&acc);
    close(outp[0]);
    close(outp[1]);
    close(rsz[0]);
    close(rsz[1]);
    wait_idle(s, 1);
    st_server_stop(s);
    expect_no_fd_leak();
}

START_TEST(tty_resize_spdy) { tty_resize(ST_TRANSPORT_SPDY); }
END_TEST
START_TEST(tty_resize_ws) { tty_resize(ST_TRANSPORT_WEBSOCKET); }
END_TEST

START_TEST(attach_stdin_stdout)
{
    st_server *s = server_start(0, 0);
    for (int t = 0; t < 2; t++) {
        _cleanup_free_ char *url = issue(s, ST_ATTACH, strv("/bin/sh", "-c", "echo attached; cat; exit 7", NULL), IN | OUT);
        ck_assert_ptr_nonnull(strstr(url, "/attach/"));
        int in = memfile("ping\n", 5), out = memfile(NULL, 0), code = -1;
        cr_err *e = NULL;
        int rc = exec_once(url, t ? ST_TRANSPORT_WEBSOCKET : ST_TRANSPORT_SPDY, in, out, -1, &code, &e, NULL, 0);
        CK_OK(rc, e, "attach");
        ck_assert_int_eq(code, 0); /* attach reports success, as the kubelet */
        _cleanup_free_ char *got = memfile_read(out, NULL);
        ck_assert_str_eq(got, "attached\nping\n");
        close(in);
        close(out);
        wait_idle(s, t + 1);
    }
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

/* ------------------------------------------------------------------ */
/* port forwarding                                                     */

typedef struct pod_server {
    int lfd, stop[2];
    int port;
    pthread_t th;
    atomic_int served;
} pod_server;

static void *pod_main(void *arg)
{
    pod_server *p = arg;
    for (;;) {
        struct pollfd pf[2] = { { .fd = p->lfd, .events = POLLIN }, { .fd = p->stop[0], .events = POLLIN } };
        if (poll(pf, 2, -1) < 0 || pf[1].revents)
            return NULL;
        int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        st_buf req = { 0 };
        char b[1024];
        while (!req.len || !memmem(st_buf_head(&req), req.len, "\r\n\r\n", 4)) {
            struct pollfd q = { .fd = c, .events = POLLIN };
            if (poll(&q, 1, DEADLINE_MS) <= 0)
                break;
            ssize_t n = read(c, b, sizeof(b));
            if (n <= 0)
                break;
            st_buf_append(&req, b, (size_t)n);
        }
        char resp[128];
        int n = snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\n\r\nhello from port %d, %zu bytes asked", p->port, req.len);
        ssize_t w = write(c, resp, (size_t)n);
        (void)w;
        close(c);
        st_buf_free(&req);
        atomic_fetch_add(&p->served, 1);
    }
}

static void pod_start(pod_server *p)
{
    memset(p, 0, sizeof(*p));
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(p->lfd, 16), 0);
    socklen_t l = sizeof(a);
    getsockname(p->lfd, (struct sockaddr *)&a, &l);
    p->port = ntohs(a.sin_port);
    ck_assert_int_eq(pipe2(p->stop, O_CLOEXEC), 0);
    ck_assert_int_eq(pthread_create(&p->th, NULL, pod_main, p), 0);
}

static void pod_stop(pod_server *p)
{
    ssize_t w = write(p->stop[1], "x", 1);
    (void)w;
    pthread_join(p->th, NULL);
    close(p->lfd);
    close(p->stop[0]);
    close(p->stop[1]);
}

/* A port that nothing listens on. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct pf_run {
    const char *url;
    int32_t port;
    int fd;
    st_transport t;
    int rc;
    cr_err *err;
    pthread_t th;
    atomic_bool done;
} pf_run;

static void *pf_main(void *arg)
{
    pf_run *r = arg;
    r->rc = st_client_portforward(r->url, r->port, r->fd, r->t, &r->err);
    atomic_store(&r->done, true);
    return NULL;
}

/* Fetch through a forwarded port; returns the response (or NULL: the
 * client's error is in *err). */
static char *pf_fetch(const char *url, int32_t port, st_transport t, cr_err **err)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pf_run r = { .url = url, .port = port, .fd = sv[1], .t = t };
    ck_assert_int_eq(pthread_create(&r.th, NULL, pf_main, &r), 0);
    const char *req = "GET / HTTP/1.0\r\n\r\n";
    ck_assert_int_eq(write(sv[0], req, strlen(req)), (ssize_t)strlen(req));
    st_buf got = { 0 };
    int64_t dl = now_ms() + DEADLINE_MS;
    for (;;) {
        struct pollfd p = { .fd = sv[0], .events = POLLIN };
        int64_t left = dl - now_ms();
        if (left <= 0)
            ck_abort_msg("port-forward fetch timed out");
        if (atomic_load(&r.done) && poll(&p, 1, 0) <= 0)
            break;
        if (poll(&p, 1, 50) <= 0)
            continue;
        char b[512];
        ssize_t n = read(sv[0], b, sizeof(b));
        if (n <= 0)
            break;
        st_buf_append(&got, b, (size_t)n);
    }
    WAIT_FOR(atomic_load(&r.done), "the port-forward client");
    pthread_join(r.th, NULL);
    close(sv[0]);
    close(sv[1]);
    st_buf_u8(&got, 0);
    if (r.rc < 0) {
        *err = r.err;
        st_buf_free(&got);
        return NULL;
    }
    return (char *)got.data;
}

static void portforward(st_transport t)
{
    st_server *s = server_start(0, 0);
    pod_server pod;
    pod_start(&pod);
    char want[128];
    snprintf(want, sizeof(want), "HTTP/1.0 200 OK\r\n\r\nhello from port %d, 18 bytes asked", pod.port);
    /* Any port (the request lists none), then a listed one. */
    for (int i = 0; i < 2; i++) {
        int32_t ports[1] = { pod.port };
        _cleanup_free_ char *url = issue_pf(s, ports, (size_t)i);
        cr_err *e = NULL;
        _cleanup_free_ char *got = pf_fetch(url, pod.port, t, &e);
        if (!got)
            ck_abort_msg("fetch: %s", e ? e->msg : "?");
        ck_assert_str_eq(got, want);
    }
    ck_assert_int_eq(atomic_load(&pod.served), 2);
    /* Nothing listening: the dial error comes back on the error stream. */
    int dead = dead_port();
    _cleanup_free_ char *url = issue_pf(s, NULL, 0);
    cr_err *e = NULL;
    char *got = pf_fetch(url, dead, t, &e);
    ck_assert_ptr_null(got);
    char head[64];
    snprintf(head, sizeof(head), "error forwarding port %d to pod pod1", dead);
    ck_assert_ptr_nonnull(strstr(e->msg, head));
    ck_assert_ptr_nonnull(strstr(e->msg, "Connection refused"));
    cr_err_free(e);
    /* A port the request does not list. */
    int32_t only[1] = { pod.port };
    _cleanup_free_ char *url2 = issue_pf(s, only, 1);
    e = NULL;
    got = pf_fetch(url2, pod.port + 1 == 65536 ? 1 : pod.port + 1, t, &e);
    ck_assert_ptr_null(got);
    ck_assert_ptr_nonnull(strstr(e->msg, "not among the ports"));
    cr_err_free(e);
    WAIT_FOR(st_server_sessions(s) == 0, "sessions to end");
    pod_stop(&pod);
    st_server_stop(s);
    expect_no_fd_leak();
    ck_assert_int_eq(TB.frees, 4);
}

START_TEST(portforward_spdy) { portforward(ST_TRANSPORT_SPDY); }
END_TEST
START_TEST(portforward_ws) { portforward(ST_TRANSPORT_WEBSOCKET); }
END_TEST

/* ------------------------------------------------------------------ */
/* many sessions                                                       */

START_TEST(concurrent_sessions)
{
    enum { N = 20 };
    st_server *s = server_start(0, 0);
    run r[N];
    int inp[N][2];
    char *urls[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "sess%d", i);
        urls[i] = issue(s, ST_EXEC, strv("/bin/sh", "-c", "read x; echo \"$x-$0\"", name, NULL), IN | OUT);
        ck_assert_int_eq(pipe2(inp[i], O_CLOEXEC), 0);
        memset(&r[i], 0, sizeof(r[i]));
        r[i].url = urls[i];
        st_exec_opts_init(&r[i].o);
        r[i].o.transport = i % 2 ? ST_TRANSPORT_WEBSOCKET : ST_TRANSPORT_SPDY;
        r[i].o.stdin_fd = inp[i][0];
        r[i].o.stdout_fd = memfile(NULL, 0);
        run_start(&r[i]);
    }
    /* All 20 are connected and their processes running at once. */
    WAIT_FOR(st_server_sessions(s) == N && tb_count(&TB.starts) == N, "20 concurrent sessions");
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(write(inp[i][1], "go\n", 3), 3);
        close(inp[i][1]);
    }
    for (int i = 0; i < N; i++) {
        run_join(&r[i]);
        CK_OK(r[i].rc, r[i].err, "concurrent exec");
        ck_assert_int_eq(r[i].code, 0);
        char want[32];
        snprintf(want, sizeof(want), "go-sess%d\n", i);
        _cleanup_free_ char *got = memfile_read(r[i].o.stdout_fd, NULL);
        ck_assert_str_eq(got, want);
        close(r[i].o.stdout_fd);
        close(inp[i][0]);
        free(urls[i]);
    }
    wait_idle(s, N);
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

/* ------------------------------------------------------------------ */
/* raw clients: negotiation, disconnects                               */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static const char *url_path(const char *url) { return strchr(url + 7, '/'); }

/* Send a raw request, read the response head (and, for errors, the body
 * until the server closes). */
static int raw_request(st_server *s, const char *req, http_msg *m, st_buf *rest, int *fd_out)
{
    int fd = tcp_connect(st_server_port(s));
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    st_buf in = { 0 };
    int64_t dl = now_ms() + DEADLINE_MS;
    for (;;) {
        if (in.len) {
            cr_err *e = NULL;
            int r = http_parse_response((char *)st_buf_head(&in), in.len, m, &e);
            cr_err_free(e);
            ck_assert_int_ge(r, 0);
            if (r == 1)
                break;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_gt(poll(&p, 1, (int)(dl - now_ms())), 0);
        char b[4096];
        ssize_t n = read(fd, b, sizeof(b));
        ck_assert_int_gt(n, 0);
        st_buf_append(&in, b, (size_t)n);
    }
    st_buf_consume(&in, m->head_len);
    if (m->status != 101) {
        for (;;) {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            if (poll(&p, 1, (int)(dl - now_ms())) <= 0)
                break;
            char b[4096];
            ssize_t n = read(fd, b, sizeof(b));
            if (n <= 0)
                break;
            st_buf_append(&in, b, (size_t)n);
        }
    }
    st_buf_u8(&in, 0);
    in.len--;
    *rest = in;
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return m->status;
}

static int raw_status(st_server *s, const char *fmt, const char *path, char **body)
{
    _cleanup_free_ char *req = NULL;
    ck_assert_int_ge(asprintf(&req, fmt, path), 0);
    http_msg m;
    st_buf rest;
    int st = raw_request(s, req, &m, &rest, NULL);
    if (body)
        *body = strdup((char *)st_buf_head(&rest));
    st_buf_free(&rest);
    http_msg_free(&m);
    return st;
}

#define SPDY_REQ(proto) \
    "POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: " proto "\r\n\r\n"
#define WS_REQ(proto)                                                                                                \
    "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: " proto "\r\n\r\n"

START_TEST(negotiation)
{
    st_server *s = server_start(0, 0);
    char *body = NULL;
    /* An unknown token, a wrong path, a wrong method. */
    ck_assert_int_eq(raw_status(s, SPDY_REQ("v4.channel.k8s.io"), "/exec/nosuchtok", &body), 404);
    ck_assert_str_eq(body, "404 page not found\n");
    free(body);
    ck_assert_int_eq(raw_status(s, SPDY_REQ("v4.channel.k8s.io"), "/shell/x", NULL), 404);
    ck_assert_int_eq(raw_status(s, "PUT %s HTTP/1.1\r\nHost: x\r\n\r\n", "/exec/x", NULL), 405);
    ck_assert_int_eq(raw_status(s, "GET %s HTTP/1.1\r\nHost: x\n\r\n", "/exec/x", NULL), 400);

    /* No common protocol: 403 listing ours, header and body. */
    _cleanup_free_ char *u1 = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    _cleanup_free_ char *req = NULL;
    ck_assert_int_ge(asprintf(&req, SPDY_REQ("v9.channel.k8s.io, bogus"), url_path(u1)), 0);
    http_msg m;
    st_buf rest;
    ck_assert_int_eq(raw_request(s, req, &m, &rest, NULL), 403);
    char **acc = http_header_list(&m, "X-Accepted-Stream-Protocol-Versions");
    ck_assert_str_eq(acc[0], "v5.channel.k8s.io");
    ck_assert_str_eq(acc[1], "v4.channel.k8s.io");
    ck_assert_str_eq(acc[4], "channel.k8s.io");
    cr_strvfree(acc);
    ck_assert_ptr_nonnull(strstr((char *)st_buf_head(&rest), "client supports [v9.channel.k8s.io bogus]"));
    ck_assert_ptr_nonnull(strstr((char *)st_buf_head(&rest), "server accepts [v5.channel.k8s.io v4.channel.k8s.io"));
    st_buf_free(&rest);
    http_msg_free(&m);
    /* The token is spent now: 404. */
    ck_assert_int_eq(raw_status(s, SPDY_REQ("v4.channel.k8s.io"), url_path(u1), NULL), 404);

    /* No X-Stream-Protocol-Version at all: 400; no upgrade headers: 400. */
    _cleanup_free_ char *u2 = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    ck_assert_int_eq(raw_status(s, "POST %s HTTP/1.1\r\nHost: x\r\n\r\n", url_path(u2), NULL), 400);
    _cleanup_free_ char *u3 = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    ck_assert_int_eq(raw_status(s, "POST %s HTTP/1.1\r\nHost: x\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
                                url_path(u3), NULL), 400);

    /* WebSocket: unknown sub-protocol 403, bad version 426, POST 405. */
    _cleanup_free_ char *u4 = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    ck_assert_int_eq(raw_status(s, WS_REQ("v9.channel.k8s.io"), url_path(u4), &body), 403);
    ck_assert_ptr_nonnull(strstr(body, "v5.channel.k8s.io"));
    free(body);
    _cleanup_free_ char *u5 = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    ck_assert_int_eq(raw_status(s,
                                "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                                url_path(u5), NULL),
                     426);
    /* A token used on the wrong endpoint is spent too. */
    _cleanup_free_ char *u6 = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    char wrong[64];
    snprintf(wrong, sizeof(wrong), "/attach/%s", strrchr(u6, '/') + 1);
    ck_assert_int_eq(raw_status(s, SPDY_REQ("v4.channel.k8s.io"), wrong, NULL), 404);
    ck_assert_int_eq(raw_status(s, SPDY_REQ("v4.channel.k8s.io"), url_path(u6), NULL), 404);
    /* Port-forward over WebSocket needs ports from somewhere. */
    _cleanup_free_ char *u7 = issue_pf(s, NULL, 0);
    ck_assert_int_eq(raw_status(s, WS_REQ("v4.channel.k8s.io"), url_path(u7), &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "query parameter \"port\" is required"));
    free(body);
    _cleanup_free_ char *u8 = issue_pf(s, NULL, 0);
    _cleanup_free_ char *p8 = NULL;
    ck_assert_int_ge(asprintf(&p8, "%s?port=80,x", url_path(u8)), 0);
    ck_assert_int_eq(raw_status(s, WS_REQ("v4.channel.k8s.io"), p8, NULL), 400);

    /* A comma list and repeated headers both negotiate, client order first;
     * the 101 names the choice. */
    _cleanup_free_ char *u9 = issue(s, ST_EXEC, strv("/bin/echo", "x", NULL), OUT);
    free(req);
    req = NULL;
    ck_assert_int_ge(asprintf(&req,
                              "POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                              "X-Stream-Protocol-Version: v9.bogus\r\nX-Stream-Protocol-Version: v3.channel.k8s.io, "
                              "v4.channel.k8s.io\r\n\r\n",
                              url_path(u9)),
                     0);
    int fd = -1;
    ck_assert_int_eq(raw_request(s, req, &m, &rest, &fd), 101);
    ck_assert_str_eq(http_header_get(&m, "X-Stream-Protocol-Version"), "v3.channel.k8s.io");
    ck_assert(http_header_has_token(&m, "Upgrade", "SPDY/3.1"));
    http_msg_free(&m);
    st_buf_free(&rest);
    close(fd); /* gone before creating streams: the session just ends */
    _cleanup_free_ char *u10 = issue(s, ST_EXEC, strv("/bin/echo", "x", NULL), OUT);
    free(req);
    req = NULL;
    ck_assert_int_ge(asprintf(&req, WS_REQ("bogus, v4.base64.channel.k8s.io"), url_path(u10)), 0);
    ck_assert_int_eq(raw_request(s, req, &m, &rest, &fd), 101);
    ck_assert_str_eq(http_header_get(&m, "Sec-WebSocket-Protocol"), "v4.base64.channel.k8s.io");
    ck_assert_str_eq(http_header_get(&m, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    http_msg_free(&m);
    st_buf_free(&rest);
    close(fd);
    WAIT_FOR(st_server_sessions(s) == 0, "sessions to end");
    st_server_stop(s);
    expect_no_fd_leak();
    ck_assert_int_eq(TB.frees, 10);
}
END_TEST

START_TEST(token_expiry_and_limits)
{
    st_server *s = server_start(0, 1);
    _cleanup_free_ char *u = issue(s, ST_EXEC, strv("/bin/true", NULL), OUT);
    int64_t until = now_ms() + 1100;
    while (now_ms() < until) /* time must pass for a token to expire */
        poll(NULL, 0, 50);
    ck_assert_int_eq(raw_status(s, SPDY_REQ("v4.channel.k8s.io"), url_path(u), NULL), 404);
    ck_assert_int_eq(TB.frees, 1); /* the expired request was freed */

    /* Requests the kubelet's streaming server refuses. */
    st_request *r = calloc(1, sizeof(*r));
    r->kind = ST_EXEC;
    r->container_id = strdup("c");
    r->cmd = strv("/bin/sh", NULL);
    r->tty = r->want_stderr = r->want_stdout = true;
    char *url = NULL;
    cr_err *e = NULL;
    ck_assert_int_eq(st_server_issue(s, r, &url, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(e->msg, "tty and stderr cannot both be true"));
    cr_err_freep(&e);
    r = calloc(1, sizeof(*r));
    r->kind = ST_EXEC;
    r->container_id = strdup("c");
    r->cmd = strv("/bin/sh", NULL);
    ck_assert_int_eq(st_server_issue(s, r, &url, &e), -1);
    ck_assert_ptr_nonnull(strstr(e->msg, "one of stdin, stdout, or stderr must be set"));
    cr_err_freep(&e);
    ck_assert_int_eq(TB.frees, 3);
    st_server_stop(s);

    /* A cap on outstanding tokens. */
    tb_reset();
    st_options o = { .address = "127.0.0.1", .max_tokens = 2 };
    ck_assert_int_eq(st_server_start(&s, &o, &tb_backend, &e), 0);
    for (int i = 0; i < 3; i++) {
        r = calloc(1, sizeof(*r));
        r->kind = ST_PORTFORWARD;
        r->sandbox_id = strdup("p");
        int rc = st_server_issue(s, r, &url, &e);
        if (i < 2) {
            ck_assert_int_eq(rc, 0);
            free(url);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_int_eq(e->code, CR_RESOURCE_EXHAUSTED);
            cr_err_freep(&e);
        }
    }
    ck_assert_int_eq(TB.frees, 1);
    st_server_stop(s); /* frees the two outstanding ones */
    ck_assert_int_eq(TB.frees, 3);
}
END_TEST

/* A raw SPDY client whose stdin stream is finished in its SYN_STREAM,
 * before the process starts: the EOF still reaches the process. */
START_TEST(exec_stdin_fin_in_syn_stream)
{
    st_server *s = server_start(0, 0);
    _cleanup_free_ char *u = issue(s, ST_EXEC, strv("/bin/sh", "-c", "cat; echo end", NULL), IN | OUT);
    _cleanup_free_ char *req = NULL;
    ck_assert_int_ge(asprintf(&req, SPDY_REQ("v4.channel.k8s.io"), url_path(u)), 0);
    http_msg m;
    st_buf rest;
    int fd = -1;
    ck_assert_int_eq(raw_request(s, req, &m, &rest, &fd), 101);
    http_msg_free(&m);
    st_buf out = { 0 };
    spdy_conn c;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_conn_init(&c, false, &out, &e), 0);
    const char *types[3] = { "error", "stdin", "stdout" };
    spdy_stream *so = NULL;
    for (int i = 0; i < 3; i++) {
        spdy_headers h = { 0 };
        spdy_headers_add(&h, "streamType", types[i]);
        so = spdy_conn_open(&c, &h, i == 1, &e);
        spdy_headers_free(&h);
    }
    ck_assert_int_eq(write(fd, st_buf_head(&out), out.len), (ssize_t)out.len);
    st_buf got = { 0 };
    bool fin = false;
    int64_t dl = now_ms() + DEADLINE_MS;
    while (!fin) {
        spdy_frame f;
        size_t used;
        while (spdy_parse(&c.codec, st_buf_head(&rest), rest.len, &f, &used, &e) == 1) {
            spdy_event ev;
            ck_assert_int_eq(spdy_conn_handle(&c, &f, &ev, &e), 0);
            if (ev.type == SPDY_EV_DATA && ev.stream == so) {
                st_buf_append(&got, ev.data, ev.len);
                fin |= ev.fin;
            }
            spdy_frame_clear(&f);
            st_buf_consume(&rest, used);
        }
        if (fin)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_gt(poll(&p, 1, (int)(dl - now_ms())), 0);
        char b[4096];
        ssize_t n = read(fd, b, sizeof(b));
        ck_assert_int_gt(n, 0);
        st_buf_append(&rest, b, (size_t)n);
    }
    ck_assert(got.len == 4 && memcmp(st_buf_head(&got), "end\n", 4) == 0);
    close(fd);
    spdy_conn_free(&c);
    st_buf_free(&out);
    st_buf_free(&got);
    st_buf_free(&rest);
    wait_idle(s, 1);
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

static bool pid_gone(pid_t pid) { return kill(pid, 0) < 0 && errno == ESRCH; }

/* Read frames from a raw WebSocket until a binary message on channel ch
 * contains want. */
static void ws_read_until(int fd, st_buf *in, int ch, const char *want)
{
    int64_t dl = now_ms() + DEADLINE_MS;
    for (;;) {
        ws_frame f;
        size_t used;
        int cc;
        cr_err *e = NULL;
        while (ws_parse_frame(st_buf_head(in), in->len, 1 << 20, &f, &used, &cc, &e) == 1) {
            bool hit = f.opcode == WS_OP_BINARY && f.len > 1 && f.payload[0] == ch &&
                       memmem(f.payload + 1, f.len - 1, want, strlen(want));
            st_buf_consume(in, used);
            if (hit)
                return;
        }
        cr_err_free(e);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_gt(poll(&p, 1, (int)(dl - now_ms())), 0);
        char b[4096];
        ssize_t n = read(fd, b, sizeof(b));
        ck_assert_int_gt(n, 0);
        st_buf_append(in, b, (size_t)n);
    }
}

START_TEST(client_disconnect_ws)
{
    st_server *s = server_start(0, 0);
    _cleanup_free_ char *u = issue(s, ST_EXEC, strv("/bin/sh", "-c", "echo started; exec sleep 1000", NULL), OUT);
    _cleanup_free_ char *req = NULL;
    ck_assert_int_ge(asprintf(&req, WS_REQ("v4.channel.k8s.io"), url_path(u)), 0);
    http_msg m;
    st_buf rest;
    int fd = -1;
    ck_assert_int_eq(raw_request(s, req, &m, &rest, &fd), 101);
    http_msg_free(&m);
    ws_read_until(fd, &rest, 1, "started");
    ck_assert_int_eq(tb_count(&TB.n_pids), 1);
    pid_t pid = TB.pids[0];
    ck_assert(!pid_gone(pid));
    close(fd); /* the client vanishes mid-session */
    WAIT_FOR(tb_count(&TB.releases) == 1, "release() after the disconnect");
    WAIT_FOR(pid_gone(pid), "the process to be gone");
    WAIT_FOR(st_server_sessions(s) == 0, "the session to end");
    st_buf_free(&rest);
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

START_TEST(client_disconnect_spdy)
{
    st_server *s = server_start(0, 0);
    _cleanup_free_ char *u = issue(s, ST_EXEC, strv("/bin/sh", "-c", "echo started; exec sleep 1000", NULL), OUT);
    _cleanup_free_ char *req = NULL;
    ck_assert_int_ge(asprintf(&req, SPDY_REQ("v4.channel.k8s.io"), url_path(u)), 0);
    http_msg m;
    st_buf rest;
    int fd = -1;
    ck_assert_int_eq(raw_request(s, req, &m, &rest, &fd), 101);
    http_msg_free(&m);
    /* Open the error and stdout streams by hand, as spdystream would. */
    st_buf out = { 0 };
    spdy_conn c;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_conn_init(&c, false, &out, &e), 0);
    const char *types[2] = { "error", "stdout" };
    spdy_stream *so = NULL;
    for (int i = 0; i < 2; i++) {
        spdy_headers h = { 0 };
        spdy_headers_add(&h, "streamType", types[i]);
        so = spdy_conn_open(&c, &h, false, &e);
        spdy_headers_free(&h);
    }
    ck_assert_int_eq(write(fd, st_buf_head(&out), out.len), (ssize_t)out.len);
    st_buf_reset(&out);
    bool started = false;
    int64_t dl = now_ms() + DEADLINE_MS;
    while (!started) {
        spdy_frame f;
        size_t used;
        while (!started && spdy_parse(&c.codec, st_buf_head(&rest), rest.len, &f, &used, &e) == 1) {
            spdy_event ev;
            ck_assert_int_eq(spdy_conn_handle(&c, &f, &ev, &e), 0);
            if (ev.type == SPDY_EV_DATA && ev.stream == so && memmem(ev.data, ev.len, "started", 7))
                started = true;
            spdy_frame_clear(&f);
            st_buf_consume(&rest, used);
        }
        if (started)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_gt(poll(&p, 1, (int)(dl - now_ms())), 0);
        char b[4096];
        ssize_t n = read(fd, b, sizeof(b));
        ck_assert_int_gt(n, 0);
        st_buf_append(&rest, b, (size_t)n);
    }
    pid_t pid = TB.pids[0];
    close(fd);
    WAIT_FOR(tb_count(&TB.releases) == 1, "release() after the disconnect");
    WAIT_FOR(pid_gone(pid), "the process to be gone");
    WAIT_FOR(st_server_sessions(s) == 0, "the session to end");
    spdy_conn_free(&c);
    st_buf_free(&out);
    st_buf_free(&rest);
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

static void idle_timeout(st_transport t)
{
    st_server *s = server_start(1, 0);
    _cleanup_free_ char *u = issue(s, ST_EXEC, strv("/bin/sh", "-c", "exec sleep 1000", NULL), OUT);
    run r = { .url = u };
    st_exec_opts_init(&r.o);
    r.o.transport = t;
    r.o.stdout_fd = memfile(NULL, 0);
    run_start(&r);
    WAIT_FOR(tb_count(&TB.starts) == 1, "the process to start");
    pid_t pid = TB.pids[0];
    /* Nothing moves: the server gives up after a second. */
    WAIT_FOR(tb_count(&TB.releases) == 1, "the idle timeout");
    WAIT_FOR(pid_gone(pid), "the process to be gone");
    run_join(&r);
    /* The client learns that the session was cut: no exit status came. */
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.err->code, CR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(r.err->msg, "without an exit status"));
    cr_err_free(r.err);
    close(r.o.stdout_fd);
    WAIT_FOR(st_server_sessions(s) == 0, "the session to end");
    st_server_stop(s);
    expect_no_fd_leak();
}

START_TEST(idle_timeout_spdy) { idle_timeout(ST_TRANSPORT_SPDY); }
END_TEST
START_TEST(idle_timeout_ws) { idle_timeout(ST_TRANSPORT_WEBSOCKET); }
END_TEST

/* Stopping the server ends live sessions: processes released, clients
 * unblocked, threads joined. */
START_TEST(stop_with_live_sessions)
{
    st_server *s = server_start(0, 0);
    run r[2];
    char *urls[2];
    for (int i = 0; i < 2; i++) {
        urls[i] = issue(s, ST_EXEC, strv("/bin/sh", "-c", "exec sleep 1000", NULL), OUT);
        memset(&r[i], 0, sizeof(r[i]));
        r[i].url = urls[i];
        st_exec_opts_init(&r[i].o);
        r[i].o.transport = i ? ST_TRANSPORT_WEBSOCKET : ST_TRANSPORT_SPDY;
        r[i].o.stdout_fd = memfile(NULL, 0);
        run_start(&r[i]);
    }
    WAIT_FOR(tb_count(&TB.starts) == 2, "both processes");
    st_server_stop(s);
    ck_assert_int_eq(TB.releases, 2);
    ck_assert(pid_gone(TB.pids[0]) && pid_gone(TB.pids[1]));
    for (int i = 0; i < 2; i++) {
        run_join(&r[i]);
        ck_assert_int_eq(r[i].rc, -1);
        cr_err_free(r[i].err);
        close(r[i].o.stdout_fd);
        free(urls[i]);
    }
    expect_no_fd_leak();
}
END_TEST

/* A background child keeps stdout open after the command exited: the
 * session still ends (shortly after the exit), with its status. */
START_TEST(exec_background_child)
{
    st_server *s = server_start(0, 0);
    _cleanup_free_ char *url = issue(s, ST_EXEC, strv("/bin/sh", "-c", "sleep 1000 & echo done; exit 5", NULL), OUT);
    int out = memfile(NULL, 0), code = -1;
    cr_err *e = NULL;
    int rc = exec_once(url, ST_TRANSPORT_SPDY, -1, out, -1, &code, &e, NULL, 0);
    CK_OK(rc, e, "exec with a background child");
    ck_assert_int_eq(code, 5);
    _cleanup_free_ char *got = memfile_read(out, NULL);
    ck_assert_str_eq(got, "done\n");
    close(out);
    wait_idle(s, 1);
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

/* SPDY: a client that does not open the streams the request needs is
 * dropped after the stream creation timeout; nothing is started. */
START_TEST(spdy_stream_creation_timeout)
{
    st_options o = { .address = "127.0.0.1", .stream_creation_timeout_sec = 1 };
    st_server *s = server_start_opts(o);
    _cleanup_free_ char *u = issue(s, ST_EXEC, strv("/bin/echo", "x", NULL), IN | OUT);
    _cleanup_free_ char *req = NULL;
    ck_assert_int_ge(asprintf(&req, SPDY_REQ("v4.channel.k8s.io"), url_path(u)), 0);
    http_msg m;
    st_buf rest;
    int fd = -1;
    ck_assert_int_eq(raw_request(s, req, &m, &rest, &fd), 101);
    http_msg_free(&m);
    st_buf out = { 0 };
    spdy_conn c;
    cr_err *e = NULL;
    ck_assert_int_eq(spdy_conn_init(&c, false, &out, &e), 0);
    spdy_headers h = { 0 };
    spdy_headers_add(&h, "streamType", "error");
    ck_assert_ptr_nonnull(spdy_conn_open(&c, &h, false, &e));
    spdy_headers_free(&h);
    ck_assert_int_eq(write(fd, st_buf_head(&out), out.len), (ssize_t)out.len);
    /* The server replies, then gives up: GOAWAY and EOF. */
    bool goaway = false, replied = false;
    int64_t dl = now_ms() + DEADLINE_MS;
    for (;;) {
        spdy_frame f;
        size_t used;
        while (spdy_parse(&c.codec, st_buf_head(&rest), rest.len, &f, &used, &e) == 1) {
            spdy_event ev;
            ck_assert_int_eq(spdy_conn_handle(&c, &f, &ev, &e), 0);
            replied |= ev.type == SPDY_EV_REPLY;
            goaway |= ev.type == SPDY_EV_GOAWAY;
            spdy_frame_clear(&f);
            st_buf_consume(&rest, used);
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_gt(poll(&p, 1, (int)(dl - now_ms())), 0);
        char b[4096];
        ssize_t n = read(fd, b, sizeof(b));
        if (n <= 0)
            break;
        st_buf_append(&rest, b, (size_t)n);
    }
    ck_assert(replied && goaway);
    ck_assert_int_eq(TB.starts, 0);
    close(fd);
    spdy_conn_free(&c);
    st_buf_free(&out);
    st_buf_free(&rest);
    WAIT_FOR(st_server_sessions(s) == 0, "the session to end");
    st_server_stop(s);
    expect_no_fd_leak();
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("formats");
    tcase_add_test(tc, http_request_ok);
    tcase_add_test(tc, http_request_bad);
    tcase_add_test(tc, http_response_parse_and_write);
    tcase_add_test(tc, status_messages);
    tcase_add_test(tc, resize_messages);
    suite_add_tcase(s, tc);

    tc = tcase_create("server");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, negotiation);
    tcase_add_test(tc, token_expiry_and_limits);
    tcase_add_test(tc, exec_echo_spdy);
    tcase_add_test(tc, exec_echo_ws);
    tcase_add_test(tc, exec_empty_stdin);
    tcase_add_test(tc, exec_stdin_fin_in_syn_stream);
    tcase_add_test(tc, exec_stdin_spdy);
    tcase_add_test(tc, exec_stdin_ws);
    tcase_add_test(tc, exec_exit_code_spdy);
    tcase_add_test(tc, exec_exit_code_ws);
    tcase_add_test(tc, exec_old_protocols);
    tcase_add_test(tc, exec_start_failure);
    tcase_add_test(tc, tty_resize_spdy);
    tcase_add_test(tc, tty_resize_ws);
    tcase_add_test(tc, attach_stdin_stdout);
    tcase_add_test(tc, portforward_spdy);
    tcase_add_test(tc, portforward_ws);
    tcase_add_test(tc, concurrent_sessions);
    tcase_add_test(tc, client_disconnect_ws);
    tcase_add_test(tc, client_disconnect_spdy);
    tcase_add_test(tc, idle_timeout_spdy);
    tcase_add_test(tc, idle_timeout_ws);
    tcase_add_test(tc, stop_with_live_sessions);
    tcase_add_test(tc, exec_background_child);
    tcase_add_test(tc, spdy_stream_creation_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
