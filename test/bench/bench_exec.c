/* Exec benchmark: COUNT sequential round trips of `true` in a running
 * busybox container, each way below in turn:
 *   spdy   Exec RPC (stdout + stderr, no stdin, no tty) for a URL, then the
 *          session on the daemon's streaming server over SPDY/3.1
 *          (server/stream/client.h, as crictl and kubectl) until the exit
 *          code is known; also split into its Exec RPC and session parts;
 *   ws     the same over WebSocket (with --websocket);
 *   sync   ExecSync (as the kubelet's exec probes), timeout 10 s.
 * Prints median, p95, min, max and mean of each.  Works against any CRI
 * endpoint.  Measures; asserts nothing (but a target whose exec fails or
 * exits non-zero drops out: its figures come from the rounds before).
 *
 *   bench-exec --image 127.0.0.1:5000/busybox:latest [--count 200] [--warmup 3] [--websocket]
 *              [--seccomp unset|runtime-default|unconfined]
 *              (--endpoint unix:///run/crisp/crisp.sock [--runtime HANDLER] | --target NAME,ENDPOINT,HANDLER...)
 *
 * For each target (an endpoint and a runtime handler, "" for the endpoint's
 * default) it pulls the image, runs a host-network pod (no CNI) with one
 * busybox container (`sh -c "trap 'exit 0' TERM; sleep 3600 & wait"`), and
 * removes both at the end.  With several --target, each round runs every
 * target in turn (starting with a different one each round), so that
 * whatever else loads the machine hits them alike and their ratios hold.
 * The first --warmup rounds are not counted.  --seccomp sets the
 * container's seccomp profile: left unset, daemons differ (crispd takes
 * RuntimeDefault, containerd 1.6 unconfined), and runc loads the profile on
 * every exec, which shows in its exec times.
 *
 * Lines starting with "exec " (exec TARGET WAY n=N median X ms p95 Y ms ...)
 * are meant for scripts: test/bench/exec.sh computes its ratios from them. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cmd/crispctl/client.h"
#include "server/stream/client.h"

#define EXEC_SYNC_TIMEOUT_S 10
#define MAX_TARGETS 8

static const char *const CONTAINER_CMD[] = { "/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait" };
static const char *const EXEC_CMD[] = { "true", NULL };

enum { W_SPDY, W_SPDY_RPC, W_SPDY_SESSION, W_WS, W_WS_RPC, W_WS_SESSION, W_SYNC, W_COUNT };
static const char *const WAY_NAMES[W_COUNT] = {
    "spdy", "spdy-rpc", "spdy-session", "ws", "ws-rpc", "ws-session", "sync",
};

typedef struct target {
    char *name, *endpoint, *handler; /* one heap block: name holds them all */
    cc_conn *conn;
    char *pod_id, *ctr_id;
    double *t[W_COUNT];
    int done;            /* counted rounds done */
    bool failed;
} target;

/* One streaming exec of `true`: the Exec RPC, then the session.  Fills the
 * two parts' times in ms; fails on an error or a non-zero exit code. */
static int stream_exec(cc_conn *c, const char *id, st_transport transport, int devnull, double *rpc_ms,
                       double *session_ms, cr_err **err)
{
    double t0 = now_ms();
    char *url = cc_exec(c, id, EXEC_CMD, false, false, true, true, err);
    double t1 = now_ms();
    if (!url)
        return -1;
    st_exec_opts o;
    st_exec_opts_init(&o);
    o.transport = transport;
    o.stdout_fd = devnull;
    o.stderr_fd = devnull;
    int code = -1;
    int rc = st_client_exec(url, &o, &code, err);
    double t2 = now_ms();
    if (rc == 0 && code != 0)
        rc = cr_err_set(err, CR_UNKNOWN, "session %s (%s): exit code %d, not 0", url, o.negotiated, code);
    free(url);
    *rpc_ms = t1 - t0;
    *session_ms = t2 - t1;
    return rc;
}

static int sync_exec(cc_conn *c, const char *id, double *ms, cr_err **err)
{
    double t0 = now_ms();
    Runtime__V1__ExecSyncResponse *r = cc_exec_sync(c, id, EXEC_CMD, EXEC_SYNC_TIMEOUT_S, err);
    *ms = now_ms() - t0;
    if (!r)
        return -1;
    int code = r->exit_code;
    cc_free(r);
    return code ? cr_err_set(err, CR_UNKNOWN, "exit code %d, not 0", code) : 0;
}

/* A host-network pod with one running busybox container, seccomp set to
 * profile (NULL: left unset), in tg->pod_id and tg->ctr_id. */
static int make_container(target *tg, const char *image, const Runtime__V1__SecurityProfile *profile, cr_err **err)
{
    cc_conn *c = tg->conn;
    char uid[96];
    snprintf(uid, sizeof(uid), "bench-exec-%s-%ld-%d", tg->name, (long)time(NULL), (int)getpid());
    Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    md.name = "bench-exec";
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

    Runtime__V1__PullImageResponse *pr = cc_pull_image(c, image, NULL, err);
    if (!pr)
        return cr_err_prefix(err, "PullImage %s", image);
    cc_free(pr);
    Runtime__V1__RunPodSandboxResponse *rp = cc_run_pod_sandbox(c, &pod, tg->handler, err);
    if (!rp)
        return cr_err_prefix(err, "RunPodSandbox");
    tg->pod_id = strdup(rp->pod_sandbox_id);
    cc_free(rp);

    Runtime__V1__ContainerMetadata cm = RUNTIME__V1__CONTAINER_METADATA__INIT;
    cm.name = "target";
    Runtime__V1__ImageSpec is = RUNTIME__V1__IMAGE_SPEC__INIT;
    is.image = (char *)image;
    Runtime__V1__LinuxContainerSecurityContext csc = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
    csc.seccomp = (Runtime__V1__SecurityProfile *)profile;
    Runtime__V1__LinuxContainerConfig clx = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
    clx.security_context = &csc;
    Runtime__V1__ContainerConfig cfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
    cfg.metadata = &cm;
    cfg.image = &is;
    cfg.command = (char **)CONTAINER_CMD;
    cfg.n_command = sizeof(CONTAINER_CMD) / sizeof(CONTAINER_CMD[0]);
    cfg.linux = &clx;
    Runtime__V1__CreateContainerResponse *cr = cc_create_container(c, tg->pod_id, &cfg, &pod, err);
    if (!cr)
        return cr_err_prefix(err, "CreateContainer");
    tg->ctr_id = strdup(cr->container_id);
    cc_free(cr);
    if (cc_start_container(c, tg->ctr_id, err) < 0)
        return cr_err_prefix(err, "StartContainer");
    /* StartContainer returns once the runtime started it; wait for RUNNING
     * anyway, in case a daemon reports the state late. */
    double t0 = now_ms();
    for (;;) {
        Runtime__V1__ContainerStatusResponse *cs = cc_container_status(c, tg->ctr_id, 0, err);
        if (!cs)
            return cr_err_prefix(err, "ContainerStatus");
        int state = cs->status ? (int)cs->status->state : -1;
        cc_free(cs);
        if (state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
            return 0;
        if (state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED || now_ms() - t0 > 30000)
            return cr_err_set(err, CR_UNKNOWN, "container %s is in state %d, not RUNNING", tg->ctr_id, state);
        usleep(1000);
    }
}

/* One round for one target: spdy, ws (when asked), sync.  Slot k of each
 * way's times (warm-up rounds pass the same slot 0 again). */
static int run_round(target *tg, int k, bool websocket, int devnull, const char **way, cr_err **err)
{
    double rpc, session, sync;
    *way = "spdy";
    if (stream_exec(tg->conn, tg->ctr_id, ST_TRANSPORT_SPDY, devnull, &rpc, &session, err) < 0)
        return -1;
    tg->t[W_SPDY_RPC][k] = rpc;
    tg->t[W_SPDY_SESSION][k] = session;
    tg->t[W_SPDY][k] = rpc + session;
    if (websocket) {
        *way = "ws";
        if (stream_exec(tg->conn, tg->ctr_id, ST_TRANSPORT_WEBSOCKET, devnull, &rpc, &session, err) < 0)
            return -1;
        tg->t[W_WS_RPC][k] = rpc;
        tg->t[W_WS_SESSION][k] = session;
        tg->t[W_WS][k] = rpc + session;
    }
    *way = "sync";
    if (sync_exec(tg->conn, tg->ctr_id, &sync, err) < 0)
        return -1;
    tg->t[W_SYNC][k] = sync;
    return 0;
}

/* "NAME,ENDPOINT,HANDLER" (HANDLER may be empty; the endpoint may hold
 * commas: the name ends at the first, the handler starts after the last). */
static bool parse_target(const char *spec, target *tg)
{
    char *s = strdup(spec);
    char *first = s ? strchr(s, ',') : NULL, *last = s ? strrchr(s, ',') : NULL;
    if (!first || first == last || first == s || last == first + 1) {
        free(s);
        return false;
    }
    *first = *last = '\0';
    tg->name = s;
    tg->endpoint = first + 1;
    tg->handler = last + 1;
    return true;
}

static void report(const target *tg, bool websocket)
{
    for (int w = 0; w < W_COUNT; w++) {
        if (!websocket && (w == W_WS || w == W_WS_RPC || w == W_WS_SESSION))
            continue;
        bench_figures f = bench_summary(tg->t[w], tg->done);
        printf("exec %-16s %-13s n=%-4d median %7.2f ms  p95 %7.2f ms  min %7.2f ms  max %7.2f ms  mean %7.2f ms\n",
               tg->name, WAY_NAMES[w], tg->done, f.median, f.p95, f.min, f.max, f.mean);
    }
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *image = NULL, *handler = "", *seccomp = "unset";
    int count = 200, warmup = 3, n = 0;
    bool websocket = false, usage = false;
    target tgs[MAX_TARGETS];
    memset(tgs, 0, sizeof(tgs));
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'e' }, { "image", required_argument, NULL, 'i' },
        { "target", required_argument, NULL, 'T' },   { "count", required_argument, NULL, 'n' },
        { "warmup", required_argument, NULL, 'w' },   { "runtime", required_argument, NULL, 'r' },
        { "websocket", no_argument, NULL, 'W' },      { "seccomp", required_argument, NULL, 's' },
        { 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e': endpoint = optarg; break;
        case 'i': image = optarg; break;
        case 'T':
            if (n == MAX_TARGETS || !parse_target(optarg, &tgs[n])) {
                fprintf(stderr, "bench-exec: --target %s: expected NAME,ENDPOINT,HANDLER (at most %d targets)\n",
                        optarg, MAX_TARGETS);
                return 2;
            }
            n++;
            break;
        case 'n': count = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'r': handler = optarg; break;
        case 'W': websocket = true; break;
        case 's': seccomp = optarg; break;
        default: return 2;
        }
    }
    Runtime__V1__SecurityProfile profile = RUNTIME__V1__SECURITY_PROFILE__INIT;
    const Runtime__V1__SecurityProfile *pp = &profile;
    if (!strcmp(seccomp, "runtime-default"))
        profile.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
    else if (!strcmp(seccomp, "unconfined"))
        profile.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
    else if (!strcmp(seccomp, "unset"))
        pp = NULL;
    else
        usage = true;
    if (endpoint && !n) {
        char spec[4096];
        snprintf(spec, sizeof(spec), "%s,%s,%s", *handler ? handler : "default", endpoint, handler);
        usage |= !parse_target(spec, &tgs[n++]);
    }
    if (usage || !image || !n || (endpoint && n > 1) || count < 1 || warmup < 0) {
        fprintf(stderr,
                "usage: bench-exec --image IMG [--count N] [--warmup N] [--websocket]\n"
                "                  [--seccomp unset|runtime-default|unconfined]\n"
                "                  (--endpoint E [--runtime HANDLER] | --target NAME,ENDPOINT,HANDLER...)\n");
        return 2;
    }
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) {
        perror("bench-exec: /dev/null");
        return 1;
    }

    int rc = 0;
    cr_err *err = NULL;
    for (int j = 0; j < n; j++) {
        target *tg = &tgs[j];
        for (int w = 0; w < W_COUNT; w++)
            tg->t[w] = calloc((size_t)count, sizeof(double));
        if ((tg->conn = cc_connect(tg->endpoint, &err)))
            cc_set_timeout(tg->conn, 120000);
        if (!tg->conn || make_container(tg, image, pp, &err) < 0) {
            fprintf(stderr, "bench-exec: %s (%s, handler %s): setting up a busybox container: %s\n", tg->name,
                    tg->endpoint, *tg->handler ? tg->handler : "(default)", err->msg);
            cr_err_free(err);
            err = NULL;
            tg->failed = true;
            rc = 1;
        }
    }

    for (int i = -warmup; i < count; i++) {
        int left = 0;
        for (int jj = 0; jj < n; jj++) {
            target *tg = &tgs[(jj + (i < 0 ? 0 : i)) % n]; /* a different first target each round */
            if (tg->failed)
                continue;
            const char *way = "";
            if (run_round(tg, i < 0 ? 0 : i, websocket, devnull, &way, &err) < 0) {
                fprintf(stderr, "bench-exec: %s: %s exec of `true` in %s (%s round %d): %s\n", tg->name, way,
                        tg->ctr_id, i < 0 ? "warm-up" : "counted", i < 0 ? i + warmup + 1 : i + 1, err->msg);
                cr_err_free(err);
                err = NULL;
                tg->failed = true;
                rc = 1;
                continue;
            }
            if (i >= 0)
                tg->done = i + 1;
            left++;
        }
        if (!left)
            break;
    }

    printf("image %s, seccomp %s, %d rounds of `true` (%d warm-up rounds not counted)%s\n", image, seccomp, count,
           warmup, n > 1 ? ", the targets in turn" : "");
    for (int j = 0; j < n; j++) {
        target *tg = &tgs[j];
        printf("%s: endpoint %s, handler %s\n", tg->name, tg->endpoint, *tg->handler ? tg->handler : "(default)");
        if (tg->done < count)
            printf("%s: %d rounds done%s\n", tg->name, tg->done, tg->done ? ": figures from those" : ", no figures");
        if (tg->done)
            report(tg, websocket);
    }

    for (int j = 0; j < n; j++) {
        target *tg = &tgs[j];
        if (tg->pod_id) {
            cc_set_timeout(tg->conn, 300000);
            if ((tg->ctr_id && cc_stop_container(tg->conn, tg->ctr_id, 0, &err) < 0) ||
                cc_stop_pod_sandbox(tg->conn, tg->pod_id, &err) < 0 ||
                cc_remove_pod_sandbox(tg->conn, tg->pod_id, &err) < 0) {
                fprintf(stderr, "bench-exec: %s: removing pod %s: %s\n", tg->name, tg->pod_id, err->msg);
                cr_err_free(err);
                err = NULL;
                rc = 1;
            }
        }
        if (tg->conn)
            cc_close(tg->conn);
        for (int w = 0; w < W_COUNT; w++)
            free(tg->t[w]);
        free(tg->pod_id);
        free(tg->ctr_id);
        free(tg->name);
    }
    close(devnull);
    return rc;
}
