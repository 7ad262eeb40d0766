/* Container lifecycle benchmark: for N pods in sequence, RunPodSandbox ->
 * CreateContainer -> StartContainer -> ContainerStatus polled until RUNNING;
 * then, pod by pod, StopContainer -> RemoveContainer -> StopPodSandbox ->
 * RemovePodSandbox.  Prints median, p95 and mean per step and end to end.
 * With --pid, the daemon's RSS idle and with all N pods running.  While all
 * pods run it also measures the per-pod helper processes: the parent of every
 * container's and sandbox's init (crisp-monitor for crispd, the
 * containerd-shim-runc-v2 of the pod for containerd), found through the "pid"
 * in the verbose status info.  Works against any CRI endpoint.  Measures;
 * asserts nothing.
 *
 *   bench-containers --endpoint unix:///run/crisp/crisp.sock --image 127.0.0.1:5000/busybox:latest
 *                    [--count 30] [--pid PID] [--runtime HANDLER] [--log-dir DIR] [--stop-timeout S]
 *
 * The image is pulled first (not timed as a step).  The container runs
 * `sh -c "trap 'exit 0' TERM; sleep 3600 & wait"`: a sleep that ends on
 * SIGTERM, so StopContainer measures the graceful path, not the grace period.
 *
 * Lines starting with "step " and "rss " are meant for scripts
 * (test/bench/containers.sh computes its ratios from them). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "bench.h"
#include "cmd/crispctl/client.h"

#define POLL_DEADLINE_MS 30000.0

static const char *const CONTAINER_CMD[] = { "/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait" };

enum {
    S_RUNP, S_CREATE, S_START, S_RUNNING, S_STOP, S_RM, S_STOPP, S_RMP,
    S_UP, S_DOWN, S_TOTAL, S_COUNT
};
static const char *const STEP_NAMES[S_COUNT] = {
    "RunPodSandbox", "CreateContainer", "StartContainer", "Status->RUNNING",
    "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox",
    "pod-up", "pod-down", "end-to-end",
};

static void report(const char *what, double *v, int n)
{
    if (n < 1) {
        printf("step %-18s n=0\n", what);
        return;
    }
    bench_figures f = bench_summary(v, n);
    printf("step %-18s n=%-3d median %8.2f ms  p95 %8.2f ms  mean %8.2f ms\n", what, n, f.median, f.p95, f.mean);
}

/* A "Key:   N kB" line of a /proc file, or -1. */
static long proc_kb(int pid, const char *file, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, klen) && line[klen] == ':')
            kb = strtol(line + klen + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static int parent_pid(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* pid (comm) state ppid ...: comm may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    int ppid = -1;
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return ppid;
}

/* The basename of argv[0]: comm is cut at 15 bytes (containerd-shim-runc-v2). */
static void process_name(int pid, char *out, size_t size)
{
    char path[64], buf[512] = "";
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    const char *slash = strrchr(buf, '/');
    snprintf(out, size, "%s", *buf ? (slash ? slash + 1 : buf) : "?");
}

/* "pid" from the "info" entry of a verbose status (crispd and containerd
 * both put the init's pid there), or -1. */
static int info_pid(Runtime__V1__PodSandboxStatusResponse__InfoEntry **pe, size_t pn,
                    Runtime__V1__ContainerStatusResponse__InfoEntry **ce, size_t cn)
{
    const char *json = NULL;
    for (size_t i = 0; i < pn; i++)
        if (!strcmp(pe[i]->key, "info"))
            json = pe[i]->value;
    for (size_t i = 0; i < cn; i++)
        if (!strcmp(ce[i]->key, "info"))
            json = ce[i]->value;
    if (!json)
        return -1;
    yajl_val v = yajl_tree_parse(json, NULL, 0);
    const char *path[] = { "pid", NULL };
    yajl_val p = v ? yajl_tree_get(v, path, yajl_t_number) : NULL;
    int pid = p && YAJL_IS_INTEGER(p) ? (int)YAJL_GET_INTEGER(p) : -1;
    yajl_tree_free(v);
    return pid;
}

typedef struct pod {
    char *pod_id, *ctr_id;
} pod;

/* Helper processes (the parents of every sandbox and container init), each
 * counted once: RSS and PSS sums, the name of the first. */
static void measure_helpers(cc_conn *c, pod *pods, int n)
{
    int *helpers = calloc((size_t)n * 2 + 1, sizeof(int));
    int nh = 0, unknown = 0;
    char name[128] = "";
    for (int i = 0; i < n; i++) {
        int inits[2] = { -1, -1 };
        cr_err *err = NULL;
        Runtime__V1__PodSandboxStatusResponse *ps = cc_pod_sandbox_status(c, pods[i].pod_id, 1, &err);
        if (ps) {
            inits[0] = info_pid(ps->info, ps->n_info, NULL, 0);
            cc_free(ps);
        } else {
            cr_err_free(err);
            err = NULL;
        }
        Runtime__V1__ContainerStatusResponse *cs = cc_container_status(c, pods[i].ctr_id, 1, &err);
        if (cs) {
            inits[1] = info_pid(NULL, 0, cs->info, cs->n_info);
            cc_free(cs);
        } else {
            cr_err_free(err);
        }
        for (int k = 0; k < 2; k++) {
            int pp = inits[k] > 0 ? parent_pid(inits[k]) : -1;
            if (pp <= 1) {
                unknown++;
                continue;
            }
            int seen = 0;
            for (int j = 0; j < nh; j++)
                seen |= helpers[j] == pp;
            if (!seen)
                helpers[nh++] = pp;
        }
    }
    long rss = 0, pss = 0, lo = -1, hi = -1;
    for (int j = 0; j < nh; j++) {
        long r = proc_kb(helpers[j], "status", "VmRSS"), p = proc_kb(helpers[j], "smaps_rollup", "Pss");
        rss += r > 0 ? r : 0;
        pss += p > 0 ? p : 0;
        lo = lo < 0 || r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    if (nh > 0)
        process_name(helpers[0], name, sizeof(name));
    if (nh == 0) {
        printf("rss helpers none found (%d inits without a known parent)\n", unknown);
    } else {
        printf("rss helpers %d x %s for %d pods: VmRSS sum %ld kB, %.0f kB per process (min %ld, max %ld), "
               "%.0f kB per pod; PSS sum %ld kB, %.0f kB per pod\n",
               nh, name, n, rss, (double)rss / nh, lo, hi, (double)rss / n, pss, (double)pss / n);
        if (unknown)
            printf("rss helpers: %d inits had no known parent\n", unknown);
    }
    free(helpers);
}

static Runtime__V1__PodSandboxConfig *pod_config(int i, const char *log_dir, long stamp)
{
    Runtime__V1__PodSandboxConfig *cfg = calloc(1, sizeof(*cfg));
    Runtime__V1__PodSandboxMetadata *md = calloc(1, sizeof(*md));
    Runtime__V1__LinuxPodSandboxConfig *lx = calloc(1, sizeof(*lx));
    runtime__v1__pod_sandbox_config__init(cfg);
    runtime__v1__pod_sandbox_metadata__init(md);
    runtime__v1__linux_pod_sandbox_config__init(lx);
    char buf[512];
    snprintf(buf, sizeof(buf), "benchc-%d", i);
    md->name = strdup(buf);
    md->namespace_ = strdup("bench");
    snprintf(buf, sizeof(buf), "benchc-uid-%d-%ld", i, stamp);
    md->uid = strdup(buf);
    cfg->metadata = md;
    cfg->linux = lx;
    if (log_dir) {
        snprintf(buf, sizeof(buf), "%s/benchc-%d", log_dir, i);
        cfg->log_directory = strdup(buf);
    }
    return cfg;
}

static void pod_config_free(Runtime__V1__PodSandboxConfig *cfg)
{
    free(cfg->metadata->name);
    free(cfg->metadata->namespace_);
    free(cfg->metadata->uid);
    free(cfg->metadata);
    free(cfg->linux);
    if (cfg->log_directory != protobuf_c_empty_string) /* the __init default */
        free(cfg->log_directory);
    free(cfg);
}

static int fail(const char *what, int i, cr_err **err)
{
    fprintf(stderr, "bench-containers: %s (pod %d): %s\n", what, i, (*err)->msg);
    cr_err_free(*err);
    *err = NULL;
    return 1;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *handler = "", *image = NULL, *log_dir = NULL;
    int count = 30, pid = 0;
    long stop_timeout = 10;
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'e' }, { "count", required_argument, NULL, 'n' },
        { "pid", required_argument, NULL, 'p' }, { "runtime", required_argument, NULL, 'r' },
        { "image", required_argument, NULL, 'i' }, { "log-dir", required_argument, NULL, 'l' },
        { "stop-timeout", required_argument, NULL, 't' }, { 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e': endpoint = optarg; break;
        case 'n': count = atoi(optarg); break;
        case 'p': pid = atoi(optarg); break;
        case 'r': handler = optarg; break;
        case 'i': image = optarg; break;
        case 'l': log_dir = optarg; break;
        case 't': stop_timeout = atol(optarg); break;
        default: return 2;
        }
    }
    if (!endpoint || !image || count < 1 || stop_timeout < 0) {
        fprintf(stderr, "usage: bench-containers --endpoint ENDPOINT --image IMAGE [--count N] [--pid DAEMON_PID]\n"
                        "                        [--runtime HANDLER] [--log-dir DIR] [--stop-timeout S]\n");
        return 2;
    }
    cr_err *err = NULL;
    cc_conn *c = cc_connect(endpoint, &err);
    if (!c) {
        fprintf(stderr, "bench-containers: %s\n", err->msg);
        cr_err_free(err);
        return 1;
    }
    cc_set_timeout(c, 120000);

    double t0 = now_ms();
    Runtime__V1__PullImageResponse *pr = cc_pull_image(c, image, NULL, &err);
    if (!pr) {
        fprintf(stderr, "bench-containers: PullImage %s: %s\n", image, err->msg);
        cr_err_free(err);
        cc_close(c);
        return 1;
    }
    double pull_ms = now_ms() - t0;
    cc_free(pr);

    pod *pods = calloc((size_t)count, sizeof(pod));
    double *t[S_COUNT];
    for (int s = 0; s < S_COUNT; s++)
        t[s] = calloc((size_t)count, sizeof(double));
    long stamp = (long)time(NULL);
    long rss_idle = pid ? proc_kb(pid, "status", "VmRSS") : -1;
    int rc = 0, up = 0;

    Runtime__V1__ImageSpec ispec = RUNTIME__V1__IMAGE_SPEC__INIT;
    ispec.image = (char *)image;
    Runtime__V1__ContainerMetadata cmd = RUNTIME__V1__CONTAINER_METADATA__INIT;
    cmd.name = "sleeper";
    Runtime__V1__LinuxContainerConfig clx = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
    Runtime__V1__ContainerConfig ccfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
    ccfg.metadata = &cmd;
    ccfg.image = &ispec;
    ccfg.n_command = sizeof(CONTAINER_CMD) / sizeof(CONTAINER_CMD[0]);
    ccfg.command = (char **)CONTAINER_CMD;
    ccfg.linux = &clx;
    if (log_dir)
        ccfg.log_path = "sleeper.log";

    for (int i = 0; i < count && !rc; i++) {
        Runtime__V1__PodSandboxConfig *pcfg = pod_config(i, log_dir, stamp);
        t0 = now_ms();
        Runtime__V1__RunPodSandboxResponse *r = cc_run_pod_sandbox(c, pcfg, handler, &err);
        t[S_RUNP][i] = now_ms() - t0;
        if (!r) {
            rc = fail("RunPodSandbox", i, &err);
            pod_config_free(pcfg);
            break;
        }
        pods[i].pod_id = strdup(r->pod_sandbox_id);
        cc_free(r);
        up = i + 1;

        t0 = now_ms();
        Runtime__V1__CreateContainerResponse *cr = cc_create_container(c, pods[i].pod_id, &ccfg, pcfg, &err);
        t[S_CREATE][i] = now_ms() - t0;
        pod_config_free(pcfg);
        if (!cr) {
            rc = fail("CreateContainer", i, &err);
            break;
        }
        pods[i].ctr_id = strdup(cr->container_id);
        cc_free(cr);

        t0 = now_ms();
        if (cc_start_container(c, pods[i].ctr_id, &err) < 0) {
            rc = fail("StartContainer", i, &err);
            break;
        }
        t[S_START][i] = now_ms() - t0;

        t0 = now_ms();
        int state = -1;
        for (;;) {
            Runtime__V1__ContainerStatusResponse *cs = cc_container_status(c, pods[i].ctr_id, 0, &err);
            if (!cs) {
                rc = fail("ContainerStatus", i, &err);
                break;
            }
            state = cs->status ? (int)cs->status->state : -1;
            cc_free(cs);
            if (state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED)
                break;
            if (now_ms() - t0 > POLL_DEADLINE_MS)
                break;
            usleep(1000);
        }
        t[S_RUNNING][i] = now_ms() - t0;
        if (!rc && state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING) {
            fprintf(stderr, "bench-containers: container of pod %d is in state %d, not RUNNING\n", i, state);
            rc = 1;
        }
        t[S_UP][i] = t[S_RUNP][i] + t[S_CREATE][i] + t[S_START][i] + t[S_RUNNING][i];
    }
    int measured = rc ? 0 : up;

    long rss_busy = pid ? proc_kb(pid, "status", "VmRSS") : -1;
    printf("endpoint %s, image %s, %d pods in sequence, handler %s\n", endpoint, image, count,
           *handler ? handler : "(default)");
    printf("pull (not a step): %.1f ms\n", pull_ms);
    if (measured)
        measure_helpers(c, pods, measured);

    for (int i = 0; i < up; i++) {
        if (pods[i].ctr_id) {
            t0 = now_ms();
            if (cc_stop_container(c, pods[i].ctr_id, stop_timeout, &err) < 0)
                rc = fail("StopContainer", i, &err);
            t[S_STOP][i] = now_ms() - t0;
            t0 = now_ms();
            if (cc_remove_container(c, pods[i].ctr_id, &err) < 0)
                rc = fail("RemoveContainer", i, &err);
            t[S_RM][i] = now_ms() - t0;
        }
        t0 = now_ms();
        if (cc_stop_pod_sandbox(c, pods[i].pod_id, &err) < 0)
            rc = fail("StopPodSandbox", i, &err);
        t[S_STOPP][i] = now_ms() - t0;
        t0 = now_ms();
        if (cc_remove_pod_sandbox(c, pods[i].pod_id, &err) < 0)
            rc = fail("RemovePodSandbox", i, &err);
        t[S_RMP][i] = now_ms() - t0;
        t[S_DOWN][i] = t[S_STOP][i] + t[S_RM][i] + t[S_STOPP][i] + t[S_RMP][i];
        t[S_TOTAL][i] = t[S_UP][i] + t[S_DOWN][i];
        free(pods[i].pod_id);
        free(pods[i].ctr_id);
    }
    long rss_after = pid ? proc_kb(pid, "status", "VmRSS") : -1;

    if (measured) {
        for (int s = 0; s < S_COUNT; s++)
            report(STEP_NAMES[s], t[s], measured);
    } else {
        printf("no figures: the run failed after %d pods\n", up);
    }
    if (pid)
        printf("rss daemon %ld kB idle, %ld kB with %d pods running, %ld kB after removing them\n", rss_idle,
               rss_busy, measured, rss_after);
    for (int s = 0; s < S_COUNT; s++)
        free(t[s]);
    free(pods);
    cc_close(c);
    return rc;
}
