/* Pod sandboxes with real runc and Debian's CNI plugins (bridge + host-local
 * + loopback + portmap on 10.88.10.0/24, no masquerade, no route out). */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "harness.h"
#include "lib/fs.h"

#define SUBNET "10.88.10.0/24"
#define BRIDGE "crispit0"

static th_daemon D;
static char ip_forward_before[8];

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void suite_setup(void)
{
    char *v = cr_read_file("/proc/sys/net/ipv4/ip_forward", NULL, NULL);
    snprintf(ip_forward_before, sizeof(ip_forward_before), "%s", v ? v : "0\n");
    free(v);
    /* The bridge plugin turns ip_forward on: keep pod traffic on this machine. */
    /* (br_netfilter may run bridged pod-to-pod traffic through FORWARD too,
     * so only traffic crossing the subnet boundary is dropped.) */
    sh("iptables -I FORWARD -s " SUBNET " ! -d " SUBNET " -j DROP && "
       "iptables -I FORWARD -d " SUBNET " ! -s " SUBNET " -j DROP");
}

static void suite_teardown(void)
{
    sh("iptables -D FORWARD -s " SUBNET " ! -d " SUBNET " -j DROP; "
       "iptables -D FORWARD -d " SUBNET " ! -s " SUBNET " -j DROP");
    sh("ip link del " BRIDGE " 2>/dev/null");
    cr_write_file_atomic("/proc/sys/net/ipv4/ip_forward", ip_forward_before, strlen(ip_forward_before), 0644, NULL);
}

static void write_cni(const char *type_override)
{
    char path[256], conf[2048];
    snprintf(path, sizeof(path), "%s/cni/10-crisp-test.conflist", D.dir);
    snprintf(conf, sizeof(conf),
             "{\"cniVersion\":\"1.0.0\",\"name\":\"crisp-test\",\"plugins\":["
             "{\"type\":\"%s\",\"bridge\":\"" BRIDGE "\",\"isGateway\":true,\"ipMasq\":false,"
             "\"hairpinMode\":true,\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s/ipam\","
             "\"ranges\":[[{\"subnet\":\"" SUBNET "\"}]]}},"
             "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}},"
             "{\"type\":\"loopback\"}]}",
             type_override ? type_override : "bridge", D.dir);
    ck_assert_int_eq(cr_write_file_atomic(path, conf, strlen(conf), 0644, NULL), 0);
}

static void start(void)
{
    th_prepare(&D, NULL);
    write_cni(NULL);
    D.pid = th_spawn(&D, NULL);
    ck_assert_msg(th_wait_ready(&D, 20000), "crispd did not come up");
}

/* Remove every pod before crispd goes, so no pause process outlives a test. */
static void teardown(void)
{
    if (D.pid > 0) {
        cc_conn *c = th_connect(&D);
        cr_err *err = NULL;
        Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
        for (size_t i = 0; l && i < l->n_items; i++) {
            cr_err *e = NULL;
            if (cc_remove_pod_sandbox(c, l->items[i]->id, &e) < 0) {
                fprintf(stderr, "teardown: rmp %s: %s\n", l->items[i]->id, e->msg);
                cr_err_free(e);
            }
        }
        if (l)
            cc_free(l);
        cr_err_free(err);
        cc_close(c);
    }
    th_cleanup(&D);
    sh("ip link del " BRIDGE " 2>/dev/null");
}

typedef struct pod_opts {
    const char *name;
    bool host_network;
    const char *hostname;
    const char *const *sysctls;   /* key, value, ..., NULL */
    int host_port, container_port;
    const char *const *labels;    /* key, value, ..., NULL */
    const char *handler;
} pod_opts;

static Runtime__V1__RunPodSandboxResponse *run_pod(cc_conn *c, const pod_opts *o, cr_err **err)
{
    Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    md.name = (char *)o->name;
    md.namespace_ = "crisp-test";
    char uid[128];
    snprintf(uid, sizeof(uid), "uid-%s", o->name);
    md.uid = uid;
    Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    cfg.metadata = &md;
    cfg.hostname = (char *)(o->hostname ? o->hostname : "");
    char logdir[256];
    snprintf(logdir, sizeof(logdir), "%s/logs/%s", D.dir, o->name);
    cfg.log_directory = logdir;
    Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    if (o->host_network)
        nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    sc.namespace_options = &nso;
    lx.security_context = &sc;
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry sys[8], *sysp[8];
    for (int i = 0; o->sysctls && o->sysctls[2 * i]; i++) {
        runtime__v1__linux_pod_sandbox_config__sysctls_entry__init(&sys[i]);
        sys[i].key = (char *)o->sysctls[2 * i];
        sys[i].value = (char *)o->sysctls[2 * i + 1];
        sysp[i] = &sys[i];
        lx.n_sysctls = (size_t)i + 1;
    }
    lx.sysctls = sysp;
    cfg.linux = &lx;
    Runtime__V1__PortMapping pm = RUNTIME__V1__PORT_MAPPING__INIT, *pmp = &pm;
    if (o->host_port) {
        pm.host_port = o->host_port;
        pm.container_port = o->container_port;
        cfg.port_mappings = &pmp;
        cfg.n_port_mappings = 1;
    }
    Runtime__V1__PodSandboxConfig__LabelsEntry lab[8], *labp[8];
    for (int i = 0; o->labels && o->labels[2 * i]; i++) {
        runtime__v1__pod_sandbox_config__labels_entry__init(&lab[i]);
        lab[i].key = (char *)o->labels[2 * i];
        lab[i].value = (char *)o->labels[2 * i + 1];
        labp[i] = &lab[i];
        cfg.n_labels = (size_t)i + 1;
    }
    cfg.labels = labp;
    return cc_run_pod_sandbox(c, &cfg, o->handler, err);
}

static char *must_run(cc_conn *c, const pod_opts *o)
{
    cr_err *err = NULL;
    Runtime__V1__RunPodSandboxResponse *r = run_pod(c, o, &err);
    ck_assert_msg(r != NULL, "runp %s: %s", o->name, err ? err->msg : "");
    char *id = strdup(r->pod_sandbox_id);
    cc_free(r);
    return id;
}

/* Status plus the verbose info's pid and netns. */
static Runtime__V1__PodSandboxStatusResponse *inspect(cc_conn *c, const char *id, int *pid, char *netns, size_t len)
{
    cr_err *err = NULL;
    Runtime__V1__PodSandboxStatusResponse *r = cc_pod_sandbox_status(c, id, 1, &err);
    ck_assert_msg(r != NULL, "inspectp %s: %s", id, err ? err->msg : "");
    ck_assert_int_eq(r->n_info, 1);
    yajl_val v = yajl_tree_parse(r->info[0]->value, NULL, 0);
    ck_assert_ptr_nonnull(v);
    const char *p_pid[] = { "pid", NULL }, *p_ns[] = { "netns", NULL };
    yajl_val pv = yajl_tree_get(v, p_pid, yajl_t_number), nv = yajl_tree_get(v, p_ns, yajl_t_string);
    if (pid)
        *pid = pv ? (int)YAJL_GET_INTEGER(pv) : -1;
    if (netns)
        snprintf(netns, len, "%s", nv ? YAJL_GET_STRING(nv) : "");
    yajl_tree_free(v);
    return r;
}

/* Whether pid ends within 5 s (a zombie waiting for its reaper counts as ended). */
static bool wait_gone(int pid)
{
    long until = th_now_ms() + 5000;
    for (;;) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        char *st = cr_read_file(path, NULL, NULL);
        char *rp = st ? strrchr(st, ')') : NULL;
        bool gone = !st || (rp && rp[1] == ' ' && rp[2] == 'Z');
        free(st);
        if (gone)
            return true;
        if (th_now_ms() > until)
            return false;
        usleep(10000);
    }
}

static char *run_out(const char *cmd)
{
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    char *out = NULL;
    int ws = th_run(argv, &out);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        fprintf(stderr, "command failed: %s\n%s\n", cmd, out);
        free(out);
        return NULL;
    }
    return out;
}

START_TEST(pod_gets_ip_hostname_and_namespaces)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "web", .hostname = "web-host" };
    char *id = must_run(c, &o);
    int pid;
    char netns[256];
    Runtime__V1__PodSandboxStatusResponse *r = inspect(c, id, &pid, netns, sizeof(netns));
    ck_assert_int_eq(r->status->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY);
    ck_assert_msg(strncmp(r->status->network->ip, "10.88.10.", 9) == 0, "ip %s", r->status->network->ip);
    ck_assert_str_eq(r->status->metadata->name, "web");
    ck_assert_int_gt(r->status->created_at, 0);
    ck_assert_int_gt(pid, 1);
    ck_assert_int_eq(kill(pid, 0), 0);
    /* eth0 inside the pinned netns carries the address. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "nsenter --net=%s /bin/busybox ip -4 addr show eth0", netns);
    char *out = run_out(cmd);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, r->status->network->ip), "%s", out);
    free(out);
    /* The infra process is in that netns and has the pod's hostname. */
    snprintf(cmd, sizeof(cmd), "test \"$(stat -L -c %%i /proc/%d/ns/net)\" = \"$(stat -L -c %%i %s)\"", pid, netns);
    ck_assert_int_eq(sh(cmd), 0);
    snprintf(cmd, sizeof(cmd), "nsenter --uts -t %d /bin/busybox hostname", pid);
    out = run_out(cmd);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strncmp(out, "web-host", 8) == 0, "hostname %s", out);
    free(out);
    /* /etc/hosts names the pod. */
    snprintf(cmd, sizeof(cmd), "cat /proc/%d/root/etc/hosts", pid);
    out = run_out(cmd);
    ck_assert_msg(out && strstr(out, r->status->network->ip) && strstr(out, "web-host"), "%s", out);
    free(out);
    cc_free(r);
    free(id);
    cc_close(c);
}
END_TEST

/* rx_bytes of the pod's default interface (eth0), from PodSandboxStats. */
static uint64_t eth0_rx(cc_conn *c, const char *id)
{
    Runtime__V1__PodSandboxStatsRequest req = RUNTIME__V1__POD_SANDBOX_STATS_REQUEST__INIT;
    req.pod_sandbox_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    cr_err *err = NULL;
    ck_assert_msg(cc_call(c, CC_RUNTIME "PodSandboxStats", &req.base,
                          &runtime__v1__pod_sandbox_stats_response__descriptor, &resp, &err) == 0,
                  "PodSandboxStats: %s", err ? err->msg : "");
    const Runtime__V1__PodSandboxStats *st = ((Runtime__V1__PodSandboxStatsResponse *)resp)->stats;
    const Runtime__V1__NetworkInterfaceUsage *ni =
        st && st->linux && st->linux->network ? st->linux->network->default_interface : NULL;
    ck_assert_msg(ni && !strcmp(ni->name, "eth0") && ni->rx_bytes, "no eth0 counters for pod %s", id);
    uint64_t v = ni->rx_bytes->value;
    protobuf_c_message_free_unpacked(resp, NULL);
    return v;
}

START_TEST(two_pods_reach_each_other)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts a = { .name = "a" }, b = { .name = "b" };
    char *ida = must_run(c, &a), *idb = must_run(c, &b);
    char nsa[256];
    Runtime__V1__PodSandboxStatusResponse *ra = inspect(c, ida, NULL, nsa, sizeof(nsa));
    Runtime__V1__PodSandboxStatusResponse *rb = inspect(c, idb, NULL, NULL, 0);
    ck_assert_str_ne(ra->status->network->ip, rb->status->network->ip);
    uint64_t rx0 = eth0_rx(c, idb);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "nsenter --net=%s /bin/busybox ping -c 5 -i 0.2 -W 5 %s >/dev/null", nsa,
             rb->status->network->ip);
    ck_assert_msg(sh(cmd) == 0, "pod a cannot ping pod b");
    /* Pod b's interface counters (PodSandboxStats, read in its netns) show
     * the five echo requests of 98 bytes each. */
    uint64_t rx1 = eth0_rx(c, idb);
    ck_assert_msg(rx1 >= rx0 + 5 * 98, "pod b eth0 rx %llu -> %llu", (unsigned long long)rx0,
                  (unsigned long long)rx1);
    cc_free(ra);
    cc_free(rb);
    free(ida);
    free(idb);
    cc_close(c);
}
END_TEST

START_TEST(host_network_pod_uses_the_host_netns)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "hostnet", .host_network = true };
    char *id = must_run(c, &o);
    int pid;
    Runtime__V1__PodSandboxStatusResponse *r = inspect(c, id, &pid, NULL, 0);
    ck_assert_str_eq(r->status->network->ip, "");
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test \"$(readlink /proc/%d/ns/net)\" = \"$(readlink /proc/self/ns/net)\"", pid);
    ck_assert_int_eq(sh(cmd), 0);
    cc_free(r);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(sysctls_apply_and_bad_ones_are_refused)
{
    start();
    cc_conn *c = th_connect(&D);
    const char *sys[] = { "net.ipv4.ping_group_range", "0 2147483647", "kernel.shmmni", "2048", NULL };
    pod_opts o = { .name = "sysctl", .sysctls = sys };
    char *id = must_run(c, &o);
    int pid;
    char netns[256], cmd[512];
    Runtime__V1__PodSandboxStatusResponse *r = inspect(c, id, &pid, netns, sizeof(netns));
    snprintf(cmd, sizeof(cmd), "nsenter --net=%s cat /proc/sys/net/ipv4/ping_group_range", netns);
    char *out = run_out(cmd);
    ck_assert_msg(out && strstr(out, "2147483647"), "%s", out);
    free(out);
    snprintf(cmd, sizeof(cmd), "nsenter --ipc -t %d cat /proc/sys/kernel/shmmni", pid);
    out = run_out(cmd);
    ck_assert_msg(out && strncmp(out, "2048", 4) == 0, "%s", out);
    free(out);
    cc_free(r);
    free(id);

    const char *bad[] = { "vm.swappiness", "10", NULL };
    pod_opts ob = { .name = "badsysctl", .sysctls = bad };
    cr_err *err = NULL;
    ck_assert_ptr_null(run_pod(c, &ob, &err));
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err->msg, "vm.swappiness"), "%s", err->msg);
    cr_err_free(err);
    err = NULL;
    Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
    ck_assert_int_eq(l->n_items, 1);
    cc_free(l);
    cc_close(c);
}
END_TEST

START_TEST(port_mappings_come_and_go)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "ports", .host_port = 18089, .container_port = 80 };
    char *id = must_run(c, &o);
    ck_assert_int_eq(sh("iptables-save -t nat | grep -q 'dport 18089'"), 0);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_stop_pod_sandbox(c, id, &err), 0);
    ck_assert_int_ne(sh("iptables-save -t nat | grep -q 'dport 18089'"), 0);
    free(id);
    cc_close(c);
}
END_TEST

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

START_TEST(stop_frees_ip_and_is_idempotent)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "stopme" };
    char *id = must_run(c, &o);
    int pid;
    Runtime__V1__PodSandboxStatusResponse *r = inspect(c, id, &pid, NULL, 0);
    char ipfile[512];
    snprintf(ipfile, sizeof(ipfile), "%s/ipam/crisp-test/%s", D.dir, r->status->network->ip);
    ck_assert_int_eq(access(ipfile, F_OK), 0);
    cc_free(r);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_stop_pod_sandbox(c, id, &err), 0);
    ck_assert_int_ne(access(ipfile, F_OK), 0);
    ck_assert_int_eq(cc_stop_pod_sandbox(c, id, &err), 0);
    r = cc_pod_sandbox_status(c, id, 0, &err);
    ck_assert_int_eq(r->status->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY);
    cc_free(r);
    ck_assert_msg(wait_gone(pid), "infra process %d still runs", pid);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(remove_leaves_nothing_behind)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "gone" };
    char *id = must_run(c, &o);
    int pid;
    char netns[256];
    cc_free(inspect(c, id, &pid, netns, sizeof(netns)));
    cr_err *err = NULL;
    ck_assert_int_eq(cc_remove_pod_sandbox(c, id, &err), 0);
    ck_assert_int_eq(cc_remove_pod_sandbox(c, id, &err), 0); /* idempotent */
    ck_assert_ptr_null(cc_pod_sandbox_status(c, id, 0, &err));
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    cr_err_free(err);
    ck_assert_int_ne(access(netns, F_OK), 0);
    char *mounts = cr_read_file("/proc/self/mountinfo", NULL, NULL);
    ck_assert_msg(!strstr(mounts, id), "a mount still names the pod");
    free(mounts);
    ck_assert_msg(wait_gone(pid), "infra process %d still runs", pid);
    char p[512];
    snprintf(p, sizeof(p), "%s/root/sandboxes", D.dir);
    ck_assert_int_eq(count_entries(p), 0);
    snprintf(p, sizeof(p), "%s/run/sandboxes", D.dir);
    ck_assert_int_eq(count_entries(p), 0);
    snprintf(p, sizeof(p), "%s/ipam/crisp-test", D.dir);
    ck_assert_int_le(count_entries(p), 2); /* only host-local's bookkeeping files */
    free(id);
    cc_close(c);
}
END_TEST

typedef struct {
    th_daemon *d;
    int n;
    char id[80];
    char msg[256];
} run_job;

static void *run_thread(void *arg)
{
    run_job *j = arg;
    cc_conn *c = th_connect(j->d);
    char name[32];
    snprintf(name, sizeof(name), "par%d", j->n);
    pod_opts o = { .name = name };
    cr_err *err = NULL;
    Runtime__V1__RunPodSandboxResponse *r = run_pod(c, &o, &err);
    if (r) {
        snprintf(j->id, sizeof(j->id), "%s", r->pod_sandbox_id);
        cc_free(r);
    } else {
        snprintf(j->msg, sizeof(j->msg), "%s", err ? err->msg : "?");
        cr_err_free(err);
    }
    cc_close(c);
    return NULL;
}

START_TEST(twenty_pods_in_parallel)
{
    start();
    enum { N = 20 };
    run_job jobs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (run_job){ .d = &D, .n = i };
        pthread_create(&t[i], NULL, run_thread, &jobs[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        ck_assert_msg(jobs[i].id[0], "pod %d: %s", i, jobs[i].msg);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
    ck_assert_int_eq(l->n_items, N);
    cc_free(l);
    cc_close(c);
}
END_TEST

START_TEST(same_name_joins_the_call_in_flight)
{
    start();
    run_job a = { .d = &D, .n = 7 }, b = { .d = &D, .n = 7 };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_thread, &a);
    pthread_create(&tb, NULL, run_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(a.id[0] && b.id[0], "a: %s b: %s", a.msg, b.msg);
    ck_assert_str_eq(a.id, b.id);
    /* A later retry with the same metadata gets the same pod too. */
    run_job c2 = { .d = &D, .n = 7 };
    run_thread(&c2);
    ck_assert_str_eq(c2.id, a.id);
}
END_TEST

START_TEST(broken_cni_config_fails_cleanly)
{
    start();
    write_cni("no-such-plugin");
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    /* NetworkReady turns false with the reason (the conf dir is watched). */
    bool notready = false;
    long until = th_now_ms() + 10000;
    while (!notready && th_now_ms() < until) {
        Runtime__V1__StatusResponse *s = cc_status(c, 0, &err);
        for (size_t i = 0; s && s->status && i < s->status->n_conditions; i++)
            if (!strcmp(s->status->conditions[i]->type, "NetworkReady") && !s->status->conditions[i]->status)
                notready = strstr(s->status->conditions[i]->message, "no-such-plugin") != NULL;
        if (s)
            cc_free(s);
        if (!notready)
            usleep(20000);
    }
    ck_assert_msg(notready, "NetworkReady did not turn false naming the missing plugin");
    pod_opts o = { .name = "nonet" };
    ck_assert_ptr_null(run_pod(c, &o, &err));
    ck_assert_msg(strstr(err->msg, "no-such-plugin") || strstr(err->msg, "network"), "%s", err->msg);
    cr_err_free(err);
    err = NULL;
    char p[512];
    snprintf(p, sizeof(p), "%s/run/netns", D.dir);
    ck_assert_int_eq(count_entries(p), 0);
    snprintf(p, sizeof(p), "%s/root/sandboxes", D.dir);
    ck_assert_int_eq(count_entries(p), 0);
    Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
    ck_assert_int_eq(l->n_items, 0);
    cc_free(l);
    cc_close(c);
}
END_TEST

START_TEST(sigkill_restart_keeps_pods)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "survivor" };
    char *id = must_run(c, &o);
    Runtime__V1__PodSandboxStatusResponse *r = inspect(c, id, NULL, NULL, 0);
    char ipfile[512];
    snprintf(ipfile, sizeof(ipfile), "%s/ipam/crisp-test/%s", D.dir, r->status->network->ip);
    cc_free(r);
    cc_close(c);
    kill(D.pid, SIGKILL);
    waitpid(D.pid, NULL, 0);
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
    c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
    ck_assert_int_eq(l->n_items, 1);
    ck_assert_str_eq(l->items[0]->id, id);
    ck_assert_int_eq(l->items[0]->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY);
    cc_free(l);
    ck_assert_int_eq(cc_stop_pod_sandbox(c, id, &err), 0);
    ck_assert_int_ne(access(ipfile, F_OK), 0); /* CNI DEL from the cache */
    ck_assert_int_eq(cc_remove_pod_sandbox(c, id, &err), 0);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(dead_infra_means_notready)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts o = { .name = "fragile" };
    char *id = must_run(c, &o);
    int pid;
    cc_free(inspect(c, id, &pid, NULL, 0));
    kill(pid, SIGKILL);
    bool notready = false;
    long until = th_now_ms() + 10000;
    cr_err *err = NULL;
    while (!notready && th_now_ms() < until) {
        Runtime__V1__PodSandboxStatusResponse *r = cc_pod_sandbox_status(c, id, 0, &err);
        notready = r && r->status->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
        if (r)
            cc_free(r);
        if (!notready)
            usleep(20000);
    }
    ck_assert(notready);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(filters_and_unknown_handler)
{
    start();
    cc_conn *c = th_connect(&D);
    const char *la[] = { "app", "one", NULL }, *lb[] = { "app", "two", NULL };
    pod_opts a = { .name = "fa", .labels = la }, b = { .name = "fb", .labels = lb };
    char *ida = must_run(c, &a), *idb = must_run(c, &b);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_stop_pod_sandbox(c, idb, &err), 0);
    Runtime__V1__PodSandboxFilter f = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
    char prefix[8];
    snprintf(prefix, sizeof(prefix), "%.6s", ida);
    f.id = prefix;
    Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, &f, &err);
    ck_assert_int_eq(l->n_items, 1);
    ck_assert_str_eq(l->items[0]->id, ida);
    cc_free(l);
    Runtime__V1__PodSandboxFilter fs = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
    Runtime__V1__PodSandboxStateValue sv = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
    sv.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
    fs.state = &sv;
    l = cc_list_pod_sandbox(c, &fs, &err);
    ck_assert_int_eq(l->n_items, 1);
    ck_assert_str_eq(l->items[0]->id, idb);
    cc_free(l);
    Runtime__V1__PodSandboxFilter fl = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
    Runtime__V1__PodSandboxFilter__LabelSelectorEntry e = RUNTIME__V1__POD_SANDBOX_FILTER__LABEL_SELECTOR_ENTRY__INIT, *ep = &e;
    e.key = "app";
    e.value = "two";
    fl.label_selector = &ep;
    fl.n_label_selector = 1;
    l = cc_list_pod_sandbox(c, &fl, &err);
    ck_assert_int_eq(l->n_items, 1);
    ck_assert_str_eq(l->items[0]->id, idb);
    cc_free(l);

    pod_opts u = { .name = "nohandler", .handler = "kata" };
    ck_assert_ptr_null(run_pod(c, &u, &err));
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err->msg, "kata") && strstr(err->msg, "runc"), "%s", err->msg);
    cr_err_free(err);
    free(ida);
    free(idb);
    cc_close(c);
}
END_TEST

static int count_pods(const ProtobufCMessage *m, void *ud)
{
    const Runtime__V1__StreamPodSandboxesResponse *r = (const Runtime__V1__StreamPodSandboxesResponse *)m;
    int *n = ud;
    *n = r->n_pod_sandboxes ? *n + (int)r->n_pod_sandboxes : -1000;
    return 0;
}

START_TEST(stream_pod_sandboxes)
{
    start();
    cc_conn *c = th_connect(&D);
    pod_opts a = { .name = "s1" }, b = { .name = "s2", .host_network = true };
    free(must_run(c, &a));
    free(must_run(c, &b));
    Runtime__V1__StreamPodSandboxesRequest req = RUNTIME__V1__STREAM_POD_SANDBOXES_REQUEST__INIT;
    int n = 0;
    cr_err *err = NULL;
    ck_assert_int_eq(cc_call_stream(c, CC_RUNTIME "StreamPodSandboxes", &req.base,
                                    &runtime__v1__stream_pod_sandboxes_response__descriptor, count_pods, &n,
                                    &err), 0);
    ck_assert_int_eq(n, 2);
    cc_close(c);
}
END_TEST

START_TEST(crispctl_pod_commands)
{
    start();
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "%s/pod.json", D.dir);
    const char *json = "{\"metadata\":{\"name\":\"ctl\",\"namespace\":\"default\",\"uid\":\"u-ctl\",\"attempt\":1},"
                       "\"log_directory\":\"/tmp\",\"labels\":{\"tier\":\"web\"},\"linux\":{}}";
    ck_assert_int_eq(cr_write_file_atomic(cfg, json, strlen(json), 0644, NULL), 0);
    char *out = NULL;
    const char *runp[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "runp", cfg, NULL };
    int ws = th_run(runp, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "runp: %s", out);
    char id[80];
    snprintf(id, sizeof(id), "%.64s", out);
    free(out);
    const char *pods[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "pods", NULL };
    ws = th_run(pods, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && strstr(out, "ctl") && strstr(out, "Ready"), "pods: %s", out);
    free(out);
    const char *insp[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "inspectp", id, NULL };
    ws = th_run(insp, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && strstr(out, "\"network\"") && strstr(out, "10.88.10."),
                  "inspectp: %s", out);
    free(out);
    const char *stopp[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "stopp", id, NULL };
    ws = th_run(stopp, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && strstr(out, "Stopped sandbox"), "stopp: %s", out);
    free(out);
    const char *rmp[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "rmp", id, NULL };
    ws = th_run(rmp, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && strstr(out, "Removed sandbox"), "rmp: %s", out);
    free(out);
}
END_TEST

int main(void)
{
    suite_setup();
    Suite *s = suite_create("pods");
    TCase *tc = tcase_create("pods");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_unchecked_fixture(tc, NULL, th_collect_leftovers);
    tcase_set_timeout(tc, 180);
    TH_ADD(tc, pod_gets_ip_hostname_and_namespaces);
    TH_ADD(tc, two_pods_reach_each_other);
    TH_ADD(tc, host_network_pod_uses_the_host_netns);
    TH_ADD(tc, sysctls_apply_and_bad_ones_are_refused);
    TH_ADD(tc, port_mappings_come_and_go);
    TH_ADD(tc, stop_frees_ip_and_is_idempotent);
    TH_ADD(tc, remove_leaves_nothing_behind);
    TH_ADD(tc, twenty_pods_in_parallel);
    TH_ADD(tc, same_name_joins_the_call_in_flight);
    TH_ADD(tc, broken_cni_config_fails_cleanly);
    TH_ADD(tc, sigkill_restart_keeps_pods);
    TH_ADD(tc, dead_infra_means_notready);
    TH_ADD(tc, filters_and_unknown_handler);
    TH_ADD(tc, crispctl_pod_commands);
    TH_ADD(tc, stream_pod_sandboxes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    suite_teardown();
    return failed ? 1 : 0;
}
