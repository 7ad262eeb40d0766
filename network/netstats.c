/* Network namespace counters: see netstats.h for why a short-lived thread
 * reads /proc/thread-self/net/dev. */
#include "netstats.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"

void net_stats_free(net_stats *s)
{
    if (!s)
        return;
    free(s->ifs);
    s->ifs = NULL;
    s->n = 0;
}

static int parse_u64(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *sp = s;
    return 0;
}

static int cmp_if(const void *a, const void *b)
{
    return strcmp(((const net_if_stats *)a)->name, ((const net_if_stats *)b)->name);
}

/* Format (two header lines, then one line per interface):
 *   "  eth0: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed multicast
 *            tx_bytes tx_packets tx_errs tx_drop fifo colls carrier compressed" */
int net_stats_parse(const char *text, net_stats *out, cr_err **err)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    int line_no = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        line_no++;
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (line_no <= 2 || line == end) {
            line = nl ? nl + 1 : NULL;
            continue;
        }
        if (!colon)
            goto bad;
        const char *name = line;
        while (name < colon && *name == ' ')
            name++;
        size_t nlen = (size_t)(colon - name);
        if (!nlen || nlen >= NET_IF_NAME_MAX)
            goto bad;
        net_if_stats st = {0};
        memcpy(st.name, name, nlen);
        uint64_t v[16];
        const char *p = colon + 1;
        for (int i = 0; i < 16; i++)
            if (parse_u64(&p, &v[i]) < 0 || p > end)
                goto bad;
        st.rx_bytes = v[0];
        st.rx_packets = v[1];
        st.rx_errors = v[2];
        st.rx_dropped = v[3];
        st.tx_bytes = v[8];
        st.tx_packets = v[9];
        st.tx_errors = v[10];
        st.tx_dropped = v[11];
        if (!strcmp(st.name, "lo")) {
            out->lo = st;
            out->has_lo = true;
        } else {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                net_if_stats *ni = realloc(out->ifs, cap * sizeof(*ni));
                if (!ni) {
                    net_stats_free(out);
                    return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "network stats: out of memory");
                }
                out->ifs = ni;
            }
            out->ifs[out->n++] = st;
        }
        line = nl ? nl + 1 : NULL;
        continue;
    bad:
        net_stats_free(out);
        return cr_err_set(err, CR_INTERNAL, "network stats: /proc/net/dev line %d: unexpected content", line_no);
    }
    if (out->n > 1)
        qsort(out->ifs, out->n, sizeof(*out->ifs), cmp_if);
    return 0;
}

const net_if_stats *net_stats_find(const net_stats *s, const char *name)
{
    if (!s || !name)
        return NULL;
    if (s->has_lo && !strcmp(name, "lo"))
        return &s->lo;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->ifs[i].name, name))
            return &s->ifs[i];
    return NULL;
}

typedef struct reader {
    int nsfd;          /* -1: stay in the thread's own namespace */
    char *text;        /* heap, NUL-terminated */
    int err;           /* errno */
    const char *what;  /* the step that failed */
} reader;

static char *read_fd_all(int fd, int *e)
{
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        *e = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                *e = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *e = errno;
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    return buf;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    if (r->nsfd >= 0 && setns(r->nsfd, CLONE_NEWNET) < 0) {
        r->err = errno;
        r->what = "join";
        return NULL;
    }
    int fd = open("/proc/thread-self/net/dev", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r->err = errno;
        r->what = "open /proc/thread-self/net/dev in";
        return NULL;
    }
    r->text = read_fd_all(fd, &r->err);
    if (!r->text)
        r->what = "read /proc/thread-self/net/dev in";
    close(fd);
    return NULL;
}

int net_stats_read(const char *netns_path, net_stats *out, cr_err **err)
{
    memset(out, 0, sizeof(*out));
    const char *label = netns_path ? netns_path : "(own network namespace)";
    _cleanup_close_ int nsfd = -1;
    if (netns_path) {
        nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) {
            if (errno == ENOENT)
                return cr_err_set(err, CR_NOT_FOUND, "network stats: %s: no such network namespace", label);
            return cr_err_errno(err, CR_INTERNAL, errno, "network stats: open %s", label);
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);

    reader r = {.nsfd = nsfd};
    pthread_attr_t attr;
    sigset_t all;
    sigfillset(&all);
    int e = pthread_attr_init(&attr);
    if (e)
        return cr_err_errno(err, CR_INTERNAL, e, "network stats: %s: thread attributes", label);
    /* Small stack (the thread only reads a file), and no signal may land on
     * a thread about to live in another namespace. */
    pthread_attr_setstacksize(&attr, 128 * 1024);
    e = pthread_attr_setsigmask_np(&attr, &all);
    pthread_t t;
    if (!e)
        e = pthread_create(&t, &attr, reader_main, &r);
    pthread_attr_destroy(&attr);
    if (e)
        return cr_err_errno(err, CR_INTERNAL, e, "network stats: %s: start reader thread", label);
    pthread_join(t, NULL);

    if (!r.text) {
        if (r.err == EINVAL && !strcmp(r.what, "join"))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "network stats: %s is not a network namespace", label);
        return cr_err_errno(err, CR_INTERNAL, r.err, "network stats: %s %s", r.what, label);
    }
    int rc = net_stats_parse(r.text, out, err);
    free(r.text);
    if (rc < 0)
        return cr_err_prefix(err, "%s", label);
    out->timestamp_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}
