/* Network namespace counters: /proc/net/dev parsing, and real namespaces
 * (pinned by crisp's own net_ns_create in a scratch folder) joined by a veth
 * pair, with traffic sent across and counters checked to rise; reads from
 * many threads at once leave every caller's namespace alone.  The pins, and
 * with them the namespaces and their links, are gone at the end. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "network/netstats.h"
#include "network/network.h"

static char tmp[128];
static char *ns_a, *ns_b;          /* pins: A has eth0 (10.213.7.1/30), lo up and a veth pair
                                    * veth-a0/veth-a1 of its own; B has eth0 (.2) */
static char setup_error[512];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void umount_under(const char *prefix)
{
    for (int round = 0; round < 16; round++) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
            return;
        char line[4096], found[4096] = "";
        size_t plen = strlen(prefix);
        while (fgets(line, sizeof(line), f)) {
            char mp[4096];
            if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, prefix, plen) &&
                (mp[plen] == '/' || !mp[plen]) && strlen(mp) >= strlen(found))
                snprintf(found, sizeof(found), "%s", mp);
        }
        fclose(f);
        if (!*found || umount2(found, MNT_DETACH) < 0)
            return;
    }
}

static void setup(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/crispstats-net-XXXXXX");
    if (!mkdtemp(tmp))
        exit(1);
    char a[64], b[64];
    snprintf(a, sizeof(a), "crispstats-%d-a", (int)getpid());
    snprintf(b, sizeof(b), "crispstats-%d-b", (int)getpid());
    cr_err *err = NULL;
    if (net_ns_create(tmp, a, &ns_a, &err) < 0 || net_ns_create(tmp, b, &ns_b, &err) < 0) {
        snprintf(setup_error, sizeof(setup_error), "create netns: %s", err->msg);
        cr_err_free(err);
        return;
    }
    /* The veth pair is made inside A with its peer moved straight to B:
     * no link ever appears in the host's namespace. */
    int rc = sh("set -e; A='nsenter --net=%s'; B='nsenter --net=%s';"
                "$A ip link add eth0 type veth peer name eth0 netns %s;"
                "$A ip addr add 10.213.7.1/30 dev eth0; $A ip link set eth0 up; $A ip link set lo up;"
                "$A ip link add veth-a0 type veth peer name veth-a1; $A ip link set veth-a0 up;"
                "$B ip addr add 10.213.7.2/30 dev eth0; $B ip link set eth0 up",
                ns_a, ns_b, ns_b);
    if (rc != 0)
        snprintf(setup_error, sizeof(setup_error), "set up links in the test namespaces: exit %d", rc);
}

static void teardown(void)
{
    cr_err *err = NULL;
    if (ns_a && net_ns_remove(ns_a, &err) < 0)
        fprintf(stderr, "test_netstats: remove %s: %s\n", ns_a, err->msg);
    cr_err_freep(&err);
    if (ns_b && net_ns_remove(ns_b, &err) < 0)
        fprintf(stderr, "test_netstats: remove %s: %s\n", ns_b, err->msg);
    cr_err_freep(&err);
    free(ns_a);
    free(ns_b);
    ns_a = ns_b = NULL;
    umount_under(tmp);
    sh("rm -rf '%s'", tmp);
}

static void need_setup(void)
{
    ck_assert_msg(!*setup_error, "%s", setup_error);
}

static void read_ok(const char *path, net_stats *st)
{
    _cleanup_err_ cr_err *err = NULL;
    int r = net_stats_read(path, st, &err);
    ck_assert_msg(r == 0, "read %s: %s", path ? path : "(own)", err ? err->msg : "?");
}

/* ---- parsing ---- */

static const char proc_net_dev[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo: 1827362    9034    0    0    0     0          0         0  1827362    9034    0    0    0     0       0          0\n"
    "  eth0: 8589934592123 4294967297    3    4    0     0          0        12 123456789   98765    5    6    0     0       0          0\n"
    "veth1a2b3c4d: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n"
    "cni0:       0       0    0    0    0     0          0         0      656       8    0    1    0     0       0          0\n";

START_TEST(parse_text)
{
    _cleanup_err_ cr_err *err = NULL;
    net_stats st;
    ck_assert_int_eq(net_stats_parse(proc_net_dev, &st, &err), 0);
    ck_assert(st.has_lo);
    ck_assert_str_eq(st.lo.name, "lo");
    ck_assert_uint_eq(st.lo.rx_bytes, 1827362);
    ck_assert_uint_eq(st.lo.tx_packets, 9034);
    ck_assert_uint_eq(st.n, 3);
    /* Sorted by name, loopback apart. */
    ck_assert_str_eq(st.ifs[0].name, "cni0");
    ck_assert_str_eq(st.ifs[1].name, "eth0");
    ck_assert_str_eq(st.ifs[2].name, "veth1a2b3c4d");
    const net_if_stats *e = net_stats_find(&st, "eth0");
    ck_assert_ptr_eq(e, &st.ifs[1]);
    ck_assert_uint_eq(e->rx_bytes, 8589934592123ULL);   /* beyond 32 bits */
    ck_assert_uint_eq(e->rx_packets, 4294967297ULL);
    ck_assert_uint_eq(e->rx_errors, 3);
    ck_assert_uint_eq(e->rx_dropped, 4);
    ck_assert_uint_eq(e->tx_bytes, 123456789);
    ck_assert_uint_eq(e->tx_packets, 98765);
    ck_assert_uint_eq(e->tx_errors, 5);
    ck_assert_uint_eq(e->tx_dropped, 6);
    ck_assert_uint_eq(net_stats_find(&st, "veth1a2b3c4d")->tx_bytes, 20);
    ck_assert_uint_eq(net_stats_find(&st, "cni0")->tx_dropped, 1);
    ck_assert_ptr_eq(net_stats_find(&st, "lo"), &st.lo);
    ck_assert_ptr_null(net_stats_find(&st, "eth1"));
    net_stats_free(&st);
    ck_assert_ptr_null(st.ifs);

    /* Headers only: nothing, not even lo. */
    ck_assert_int_eq(net_stats_parse("Inter-|\n face |\n", &st, &err), 0);
    ck_assert_uint_eq(st.n, 0);
    ck_assert(!st.has_lo);
    net_stats_free(&st);

    static const struct {
        const char *text;
        const char *line;
    } bad[] = {
        {"h1\nh2\n  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "line 3"},              /* no colon */
        {"h1\nh2\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", "line 3"},                /* 15 fields */
        {"h1\nh2\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n", "line 3"},              /* not a number */
        {"h1\nh2\nabcdefghijklmnopq: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "line 3"},  /* name too long */
        {"h1\nh2\n  lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 1 2\n3 4 5 6 7 8 9 10 11 12 13 14\n",
         "line 4"},                                                                      /* a line split */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        ck_assert_msg(net_stats_parse(bad[i].text, &st, &err) < 0, "bad text %zu parsed", i);
        ck_assert_int_eq(err->code, CR_INTERNAL);
        ck_assert_msg(strstr(err->msg, bad[i].line), "bad text %zu: %s", i, err->msg);
        ck_assert_ptr_null(st.ifs);
        cr_err_freep(&err);
    }
}
END_TEST

/* ---- real namespaces ---- */

START_TEST(new_netns_has_only_lo)
{
    need_setup();
    char name[64];
    snprintf(name, sizeof(name), "crispstats-%d-c", (int)getpid());
    _cleanup_err_ cr_err *err = NULL;
    _cleanup_free_ char *c = NULL;
    ck_assert_int_eq(net_ns_create(tmp, name, &c, &err), 0);
    net_stats st;
    int r = net_stats_read(c, &st, &err);
    net_ns_remove(c, NULL);
    ck_assert_msg(r == 0, "%s", err ? err->msg : "");
    ck_assert_uint_eq(st.n, 0);
    ck_assert(st.has_lo);
    ck_assert_uint_eq(st.lo.rx_packets + st.lo.tx_packets, 0);
    ck_assert_int_gt(st.timestamp_ns, 1600000000LL * 1000000000LL);
    net_stats_free(&st);
}
END_TEST

/* In a child joined to ns: n UDP datagrams of size bytes to each address. */
static void send_udp(const char *ns, const char *const *addrs, int n, size_t size)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
            _exit(1);
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            _exit(2);
        char buf[1500];
        memset(buf, 'p', sizeof(buf));
        for (const char *const *a = addrs; *a; a++) {
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9)};
            inet_pton(AF_INET, *a, &sin.sin_addr);
            for (int i = 0; i < n; i++)
                if (sendto(s, buf, size, 0, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != ECONNREFUSED)
                    _exit(3);
        }
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender failed (%d)", st);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

START_TEST(traffic_counters_rise)
{
    need_setup();
    net_stats a0, b0;
    read_ok(ns_a, &a0);
    read_ok(ns_b, &b0);
    /* A: eth0, veth-a0, veth-a1 (sorted), lo apart; B: eth0. */
    ck_assert_uint_eq(a0.n, 3);
    ck_assert_str_eq(a0.ifs[0].name, "eth0");
    ck_assert_str_eq(a0.ifs[1].name, "veth-a0");
    ck_assert_str_eq(a0.ifs[2].name, "veth-a1");
    ck_assert(a0.has_lo);
    ck_assert_uint_eq(b0.n, 1);
    ck_assert_str_eq(b0.ifs[0].name, "eth0");

    enum { N = 50, SIZE = 200 };
    send_udp(ns_a, (const char *const[]){"10.213.7.2", "127.0.0.1", NULL}, N, SIZE);

    /* veth delivery is immediate, but poll (with a deadline) rather than trust it. */
    net_stats a1 = {0}, b1 = {0};
    const net_if_stats *ta = NULL, *rb = NULL;
    const net_if_stats *ta0 = net_stats_find(&a0, "eth0"), *rb0 = net_stats_find(&b0, "eth0");
    for (int64_t deadline = now_ms() + 10000;;) {
        net_stats_free(&a1);
        net_stats_free(&b1);
        read_ok(ns_a, &a1);
        read_ok(ns_b, &b1);
        ta = net_stats_find(&a1, "eth0");
        rb = net_stats_find(&b1, "eth0");
        ck_assert(ta && rb);
        if ((ta->tx_packets >= ta0->tx_packets + N && rb->rx_packets >= rb0->rx_packets + N &&
             a1.lo.rx_packets >= a0.lo.rx_packets + N) ||
            now_ms() > deadline)
            break;
        poll(NULL, 0, 20);
    }
    ck_assert_uint_ge(ta->tx_packets - ta0->tx_packets, N);
    ck_assert_uint_ge(ta->tx_bytes - ta0->tx_bytes, (uint64_t)N * (SIZE + 8 + 20 + 14));
    ck_assert_uint_ge(rb->rx_packets - rb0->rx_packets, N);
    ck_assert_uint_ge(rb->rx_bytes - rb0->rx_bytes, (uint64_t)N * (SIZE + 8 + 20 + 14));
    ck_assert_uint_eq(ta->tx_errors + ta->rx_errors + rb->rx_errors + rb->tx_errors, 0);
    /* The loopback's counters, apart from the list. */
    ck_assert_uint_ge(a1.lo.tx_packets - a0.lo.tx_packets, N);
    ck_assert_uint_ge(a1.lo.rx_bytes - a0.lo.rx_bytes, (uint64_t)N * SIZE);
    /* B's loopback and A's down veth-a1 saw nothing of it. */
    ck_assert_uint_eq(b1.lo.tx_packets, b0.lo.tx_packets);
    ck_assert_uint_eq(net_stats_find(&a1, "veth-a1")->rx_packets, 0);
    ck_assert_int_ge(a1.timestamp_ns, a0.timestamp_ns);
    net_stats_free(&a0);
    net_stats_free(&b0);
    net_stats_free(&a1);
    net_stats_free(&b1);
}
END_TEST

static void own_netns(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/thread-self/ns/net", buf, size - 1);
    buf[n < 0 ? 0 : n] = '\0';
}

typedef struct worker {
    pthread_t t;
    int bad;
    char why[256];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char before[64], after[64];
    own_netns(before, sizeof(before));
    for (int i = 0; i < 40 && !w->bad; i++) {
        net_stats st;
        cr_err *err = NULL;
        const char *p = i % 2 ? ns_a : ns_b;
        if (net_stats_read(p, &st, &err) < 0) {
            w->bad = 1;
            snprintf(w->why, sizeof(w->why), "read: %s", err->msg);
            cr_err_free(err);
            break;
        }
        size_t want = i % 2 ? 3 : 1;
        if (st.n != want || !net_stats_find(&st, "eth0") || (i % 2 && !net_stats_find(&st, "veth-a1"))) {
            w->bad = 1;
            snprintf(w->why, sizeof(w->why), "%s: %zu interfaces, want %zu", p, st.n, want);
        }
        net_stats_free(&st);
    }
    own_netns(after, sizeof(after));
    if (!w->bad && strcmp(before, after)) {
        w->bad = 1;
        snprintf(w->why, sizeof(w->why), "thread moved from %s to %s", before, after);
    }
    return NULL;
}

START_TEST(callers_namespace_untouched)
{
    need_setup();
    char before[64], after[64], host_a[64];
    own_netns(before, sizeof(before));
    ck_assert_ptr_nonnull(strstr(before, "net:["));
    worker w[8];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&w[i].t, NULL, work, &w[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(w[i].t, NULL);
        ck_assert_msg(!w[i].bad, "worker %d: %s", i, w[i].why);
    }
    own_netns(after, sizeof(after));
    ck_assert_str_eq(before, after);
    /* The process-wide view (/proc/self/net) is still the host's. */
    ssize_t n = readlink("/proc/self/ns/net", host_a, sizeof(host_a) - 1);
    ck_assert_int_gt(n, 0);
    host_a[n] = '\0';
    ck_assert_str_eq(host_a, before);
    /* NULL: the caller's own namespace, read the same way. */
    net_stats own;
    read_ok(NULL, &own);
    ck_assert(own.has_lo);
    net_stats_free(&own);
}
END_TEST

START_TEST(errors)
{
    _cleanup_err_ cr_err *err = NULL;
    net_stats st;
    char p[256];
    snprintf(p, sizeof(p), "%s/no-such-netns", tmp);
    ck_assert_int_lt(net_stats_read(p, &st, &err), 0);
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err->msg, p));
    cr_err_freep(&err);

    snprintf(p, sizeof(p), "%s/plain-file", tmp);
    FILE *f = fopen(p, "we");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_lt(net_stats_read(p, &st, &err), 0);
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err->msg, "not a network namespace"));
    cr_err_freep(&err);

    /* Another kind of namespace. */
    ck_assert_int_lt(net_stats_read("/proc/self/ns/uts", &st, &err), 0);
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    ck_assert_ptr_null(st.ifs);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("netstats");
    TCase *tc = tcase_create("netstats");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, parse_text);
    tcase_add_test(tc, new_netns_has_only_lo);
    tcase_add_test(tc, traffic_counters_rise);
    tcase_add_test(tc, callers_namespace_untouched);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
