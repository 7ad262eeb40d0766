/* Pod lifecycle benchmark: RunPodSandbox for N pods in sequence, then
 * StopPodSandbox and RemovePodSandbox for each; prints median and p95 per
 * RPC, and the daemon's RSS while all N pods run (when --pid is given).
 * Works against any CRI endpoint.  Measures; asserts nothing.
 *
 *   bench-pods --endpoint unix:///run/crisp/crisp.sock [--count 50] [--pid PID] [--runtime HANDLER]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cmd/crispctl/client.h"

static void report(const char *what, double *v, int n)
{
    bench_figures f = bench_summary(v, n);
    printf("%-18s n=%d  median %8.2f ms  p95 %8.2f ms  mean %8.2f ms\n", what, n, f.median, f.p95, f.mean);
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *handler = "";
    int count = 50, pid = 0;
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'e' }, { "count", required_argument, NULL, 'n' },
        { "pid", required_argument, NULL, 'p' }, { "runtime", required_argument, NULL, 'r' }, { 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e': endpoint = optarg; break;
        case 'n': count = atoi(optarg); break;
        case 'p': pid = atoi(optarg); break;
        case 'r': handler = optarg; break;
        default: return 2;
        }
    }
    if (!endpoint || count < 1) {
        fprintf(stderr, "usage: bench-pods --endpoint ENDPOINT [--count N] [--pid DAEMON_PID] [--runtime H]\n");
        return 2;
    }
    cr_err *err = NULL;
    cc_conn *c = cc_connect(endpoint, &err);
    if (!c) {
        fprintf(stderr, "bench-pods: %s\n", err->msg);
        return 1;
    }
    cc_set_timeout(c, 120000);
    char **ids = calloc((size_t)count, sizeof(char *));
    double *run = calloc((size_t)count, sizeof(double)), *stop = calloc((size_t)count, sizeof(double));
    double *rm = calloc((size_t)count, sizeof(double)), *total = calloc((size_t)count, sizeof(double));
    long rss_before = pid ? rss_kb(pid) : -1;
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char name[64], uid[64];
        snprintf(name, sizeof(name), "bench-%d", i);
        snprintf(uid, sizeof(uid), "bench-uid-%d-%ld", i, (long)time(NULL));
        Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
        md.name = name;
        md.namespace_ = "bench";
        md.uid = uid;
        Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
        cfg.metadata = &md;
        Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
        cfg.linux = &lx;
        double t0 = now_ms();
        Runtime__V1__RunPodSandboxResponse *r = cc_run_pod_sandbox(c, &cfg, handler, &err);
        run[i] = now_ms() - t0;
        if (!r) {
            fprintf(stderr, "bench-pods: RunPodSandbox %d: %s\n", i, err->msg);
            rc = 1;
            count = i;
            break;
        }
        ids[i] = strdup(r->pod_sandbox_id);
        cc_free(r);
    }
    long rss_pods = pid ? rss_kb(pid) : -1;
    for (int i = 0; i < count; i++) {
        double t0 = now_ms();
        if (cc_stop_pod_sandbox(c, ids[i], &err) < 0) {
            fprintf(stderr, "bench-pods: StopPodSandbox: %s\n", err->msg);
            cr_err_free(err);
            err = NULL;
            rc = 1;
        }
        stop[i] = now_ms() - t0;
        t0 = now_ms();
        if (cc_remove_pod_sandbox(c, ids[i], &err) < 0) {
            fprintf(stderr, "bench-pods: RemovePodSandbox: %s\n", err->msg);
            cr_err_free(err);
            err = NULL;
            rc = 1;
        }
        rm[i] = now_ms() - t0;
        total[i] = run[i] + stop[i] + rm[i];
        free(ids[i]);
    }
    printf("endpoint %s, %d pods in sequence%s%s\n", endpoint, count, *handler ? ", handler " : "", handler);
    if (count > 0) {
        report("RunPodSandbox", run, count);
        report("StopPodSandbox", stop, count);
        report("RemovePodSandbox", rm, count);
        report("run+stop+remove", total, count);
    }
    if (pid)
        printf("daemon RSS: %ld kB before, %ld kB with %d pods running\n", rss_before, rss_pods, count);
    free(ids);
    free(run);
    free(stop);
    free(rm);
    free(total);
    cc_close(c);
    return rc;
}
