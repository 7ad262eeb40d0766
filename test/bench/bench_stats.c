/* Stats benchmark: one pod (host network) with N running containers, then
 * ListContainerStats back to back (median and p95 latency), then a
 * kubelet-style poll (ListContainerStats + ListPodSandboxStats every
 * --interval seconds for --duration seconds) while measuring the daemon's CPU
 * time (utime + stime from /proc/PID/stat) per second of wall time.
 * Works against any CRI endpoint.  Measures; asserts nothing.
 *
 *   bench-stats --endpoint E --image IMG [--count 50] [--calls 100] [--pid PID]
 *               [--interval 10] [--duration 60] [--runtime H]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cmd/crispctl/client.h"

/* utime + stime of pid in ms (-1 if unreadable). */
static double cpu_ms(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int list_stats(cc_conn *c, size_t *n, cr_err **err)
{
    Runtime__V1__ListContainerStatsRequest req = RUNTIME__V1__LIST_CONTAINER_STATS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    if (cc_call(c, CC_RUNTIME "ListContainerStats", &req.base, &runtime__v1__list_container_stats_response__descriptor,
                &resp, err) < 0)
        return -1;
    *n = ((Runtime__V1__ListContainerStatsResponse *)resp)->n_stats;
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static int list_pod_stats(cc_conn *c, cr_err **err)
{
    Runtime__V1__ListPodSandboxStatsRequest req = RUNTIME__V1__LIST_POD_SANDBOX_STATS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    if (cc_call(c, CC_RUNTIME "ListPodSandboxStats", &req.base,
                &runtime__v1__list_pod_sandbox_stats_response__descriptor, &resp, err) < 0)
        return -1;
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *image = NULL, *handler = "";
    int count = 50, calls = 100, pid = 0, interval = 10, duration = 60;
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'e' }, { "image", required_argument, NULL, 'i' },
        { "count", required_argument, NULL, 'n' }, { "calls", required_argument, NULL, 'c' },
        { "pid", required_argument, NULL, 'p' }, { "interval", required_argument, NULL, 'I' },
        { "duration", required_argument, NULL, 'd' }, { "runtime", required_argument, NULL, 'r' }, { 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e': endpoint = optarg; break;
        case 'i': image = optarg; break;
        case 'n': count = atoi(optarg); break;
        case 'c': calls = atoi(optarg); break;
        case 'p': pid = atoi(optarg); break;
        case 'I': interval = atoi(optarg); break;
        case 'd': duration = atoi(optarg); break;
        case 'r': handler = optarg; break;
        default: return 2;
        }
    }
    if (!endpoint || !image || count < 1 || calls < 1 || interval < 1) {
        fprintf(stderr, "usage: bench-stats --endpoint E --image IMG [--count N] [--calls N] [--pid PID] "
                        "[--interval S] [--duration S] [--runtime H]\n");
        return 2;
    }
    cr_err *err = NULL;
    cc_conn *c = cc_connect(endpoint, &err);
    if (!c) {
        fprintf(stderr, "bench-stats: %s\n", err->msg);
        return 1;
    }
    cc_set_timeout(c, 120000);
    Runtime__V1__PullImageResponse *pr = cc_pull_image(c, image, NULL, &err);
    if (!pr) {
        fprintf(stderr, "bench-stats: pull %s: %s\n", image, err->msg);
        return 1;
    }
    cc_free(pr);
    char uid[64];
    snprintf(uid, sizeof(uid), "bench-stats-%ld", (long)time(NULL));
    Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    md.name = "bench-stats";
    md.namespace_ = "bench";
    md.uid = uid;
    Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    sc.namespace_options = &nso;
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    lx.security_context = &sc;
    Runtime__V1__PodSandboxConfig pod = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    pod.metadata = &md;
    pod.linux = &lx;
    Runtime__V1__RunPodSandboxResponse *rp = cc_run_pod_sandbox(c, &pod, handler, &err);
    if (!rp) {
        fprintf(stderr, "bench-stats: RunPodSandbox: %s\n", err->msg);
        return 1;
    }
    char *pod_id = strdup(rp->pod_sandbox_id);
    cc_free(rp);
    int rc = 0, started = 0;
    for (int i = 0; i < count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "c%d", i);
        Runtime__V1__ContainerMetadata cm = RUNTIME__V1__CONTAINER_METADATA__INIT;
        cm.name = name;
        Runtime__V1__ImageSpec is = RUNTIME__V1__IMAGE_SPEC__INIT;
        is.image = (char *)image;
        char *cmd[] = { "/bin/sleep", "3600" };
        Runtime__V1__ContainerConfig cfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
        cfg.metadata = &cm;
        cfg.image = &is;
        cfg.command = cmd;
        cfg.n_command = 2;
        Runtime__V1__CreateContainerResponse *cr = cc_create_container(c, pod_id, &cfg, &pod, &err);
        if (!cr || cc_start_container(c, cr->container_id, &err) < 0) {
            fprintf(stderr, "bench-stats: container %d: %s\n", i, err ? err->msg : "?");
            if (cr)
                cc_free(cr);
            rc = 1;
            break;
        }
        cc_free(cr);
        started++;
    }
    printf("endpoint %s, one pod with %d running containers\n", endpoint, started);
    double *lat = calloc((size_t)calls, sizeof(double));
    size_t seen = 0;
    for (int i = 0; rc == 0 && i < calls; i++) {
        double t0 = now_ms();
        if (list_stats(c, &seen, &err) < 0) {
            fprintf(stderr, "bench-stats: ListContainerStats: %s\n", err->msg);
            rc = 1;
            break;
        }
        lat[i] = now_ms() - t0;
    }
    if (rc == 0) {
        bench_figures f = bench_summary(lat, calls);
        printf("ListContainerStats (%zu containers) n=%d  median %.2f ms  p95 %.2f ms  mean %.2f ms\n", seen, calls,
               f.median, f.p95, f.mean);
    }
    if (rc == 0 && pid && duration > 0) {
        double c0 = cpu_ms(pid), t0 = now_ms();
        int polls = 0;
        while (now_ms() - t0 < duration * 1000.0) {
            size_t n;
            if (list_stats(c, &n, &err) < 0 || list_pod_stats(c, &err) < 0) {
                fprintf(stderr, "bench-stats: poll: %s\n", err->msg);
                rc = 1;
                break;
            }
            polls++;
            double next = t0 + polls * interval * 1000.0;
            while (now_ms() < next && now_ms() - t0 < duration * 1000.0)
                usleep(100000);
        }
        double c1 = cpu_ms(pid), el = (now_ms() - t0) / 1000.0;
        printf("kubelet-style poll every %d s for %.0f s (%d polls of ListContainerStats + ListPodSandboxStats): "
               "daemon CPU %.1f ms, %.2f ms per second of wall time\n",
               interval, el, polls, c1 - c0, (c1 - c0) / el);
    }
    cc_set_timeout(c, 600000);
    if (cc_stop_pod_sandbox(c, pod_id, &err) < 0 || cc_remove_pod_sandbox(c, pod_id, &err) < 0) {
        fprintf(stderr, "bench-stats: cleanup: %s\n", err->msg);
        rc = 1;
    }
    free(pod_id);
    free(lat);
    cc_close(c);
    return rc;
}
