/* Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox, StreamPodSandboxes, and the records
 * that let them survive a crispd restart.
 *
 * A sandbox is a pause process (crisp-pause from a tiny read-only rootfs, or
 * the configured pause image) run by the OCI runtime, holding the pod's
 * network namespace (pinned under <runroot>/netns, wired by CNI), IPC and UTS
 * namespaces, plus a per-pod /dev/shm tmpfs and /etc/hosts, resolv.conf and
 * hostname files.  Records live in <root>/sandboxes/<id>/{state.json,config.pb};
 * every change is written atomically before the call returns. */
#include "internal.h"
#include "sandbox.h"
#include "metrics.h"
#include "container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/ids.h"
#include "lib/log.h"
#include "network/network.h"
#include "oci/oci.h"

#define RUNTIME_TIMEOUT_S 60
#define STOP_GRACE_MS 2000
#define STREAM_CHUNK 100
#define INFRA_OOM_SCORE_ADJ (-998)

/* ---- records ---- */

static void sandbox_free(srv_sandbox *sb)
{
    if (!sb)
        return;
    free(sb->name);
    if (sb->config)
        protobuf_c_message_free_unpacked(&sb->config->base, NULL);
    free(sb->runtime_handler);
    free(sb->netns);
    cr_strvfree(sb->ips);
    free(sb->cgroups_path);
    pthread_mutex_destroy(&sb->op_mu);
    free(sb);
}

void srv_sandbox_put(srv_daemon *d, srv_sandbox *sb)
{
    if (!sb)
        return;
    pthread_mutex_lock(&d->sb_mu);
    bool last = --sb->refs == 0 && sb->gone;
    pthread_mutex_unlock(&d->sb_mu);
    if (last)
        sandbox_free(sb);
}

/* A sandbox by full id or unique id prefix, with a reference; NULL if none. */
srv_sandbox *srv_sandbox_get(srv_daemon *d, const char *id, cr_err **err)
{
    if (!id || !*id) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "pod sandbox id is empty");
        return NULL;
    }
    pthread_mutex_lock(&d->sb_mu);
    srv_sandbox *found = NULL;
    size_t len = strlen(id);
    int matches = 0;
    for (size_t i = 0; i < d->n_sandboxes; i++) {
        srv_sandbox *sb = d->sandboxes[i];
        if (strcmp(sb->id, id) == 0) {
            found = sb;
            matches = 1;
            break;
        }
        if (strncmp(sb->id, id, len) == 0) {
            found = sb;
            matches++;
        }
    }
    if (matches > 1) {
        found = NULL;
        cr_err_set(err, CR_INVALID_ARGUMENT, "pod sandbox id prefix %s matches several sandboxes", id);
    } else if (found) {
        found->refs++;
    }
    pthread_mutex_unlock(&d->sb_mu);
    return found;
}

char *srv_sandbox_dir(srv_daemon *d, const char *id)
{
    return srv_pathf("%s/sandboxes/%s", d->cfg->root, id);
}

char *srv_sandbox_rundir(srv_daemon *d, const char *id)
{
    return srv_pathf("%s/sandboxes/%s", d->cfg->runroot, id);
}

static void gen_str(yajl_gen g, const char *k, const char *v)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    yajl_gen_string(g, (const unsigned char *)(v ? v : ""), strlen(v ? v : ""));
}

static void gen_int(yajl_gen g, const char *k, long long v)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    yajl_gen_integer(g, v);
}

static int sandbox_save(srv_daemon *d, const srv_sandbox *sb, cr_err **err)
{
    _cleanup_free_ char *dir = srv_sandbox_dir(d, sb->id);
    _cleanup_free_ char *state = srv_pathf("%s/state.json", dir ? dir : "");
    if (!dir || !state)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    yajl_gen_map_open(g);
    gen_str(g, "id", sb->id);
    gen_str(g, "name", sb->name);
    gen_str(g, "state", sb->ready ? "ready" : "notready");
    gen_int(g, "createdAt", sb->created_at);
    gen_str(g, "runtimeHandler", sb->runtime_handler);
    gen_int(g, "hostNetwork", sb->host_network);
    gen_str(g, "netns", sb->netns);
    gen_str(g, "cgroupsPath", sb->cgroups_path);
    gen_int(g, "pid", sb->pid);
    gen_int(g, "pidStart", (long long)sb->pid_start);
    yajl_gen_string(g, (const unsigned char *)"ips", 3);
    yajl_gen_array_open(g);
    for (size_t i = 0; sb->ips && sb->ips[i]; i++)
        yajl_gen_string(g, (const unsigned char *)sb->ips[i], strlen(sb->ips[i]));
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    int r = cr_write_file_atomic(state, buf, len, 0600, err);
    yajl_gen_free(g);
    return r;
}

static int save_config(srv_daemon *d, const srv_sandbox *sb, cr_err **err)
{
    _cleanup_free_ char *p = srv_pathf("%s/sandboxes/%s/config.pb", d->cfg->root, sb->id);
    size_t len = protobuf_c_message_get_packed_size(&sb->config->base);
    _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
    if (!p || !buf)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_pack(&sb->config->base, buf);
    return cr_write_file_atomic(p, buf, len, 0600, err);
}

static bool infra_alive(const srv_sandbox *sb)
{
    return sb->pid > 0 && sb->pid_start && srv_proc_start_time(sb->pid) == sb->pid_start;
}

/* A READY pod whose infra process died is NOTREADY from now on. */
static void refresh_state(srv_daemon *d, srv_sandbox *sb)
{
    if (!sb->ready || infra_alive(sb))
        return;
    if (pthread_mutex_trylock(&sb->op_mu) != 0)
        return; /* an operation is under way: it will set the state */
    if (sb->ready && !infra_alive(sb)) {
        sb->ready = false;
        cr_log_warn("pod infra process is gone; sandbox NOTREADY", "id", sb->id, NULL);
        cr_err *err = NULL;
        if (sandbox_save(d, sb, &err) < 0) {
            cr_log_error("cannot save sandbox state", "id", sb->id, "error", err->msg, NULL);
            cr_err_free(err);
        }
        pthread_mutex_unlock(&sb->op_mu);
        srv_publish_event(d, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
        return;
    }
    pthread_mutex_unlock(&sb->op_mu);
}

void srv_sandbox_infra_exited(srv_daemon *d, const char *id)
{
    srv_sandbox *sb = srv_sandbox_get(d, id, NULL);
    if (!sb)
        return;
    refresh_state(d, sb);
    srv_sandbox_put(d, sb);
}

/* ---- helpers ---- */

static const Runtime__V1__NamespaceOption *ns_options(const Runtime__V1__PodSandboxConfig *c)
{
    return c->linux && c->linux->security_context ? c->linux->security_context->namespace_options : NULL;
}

static bool ns_is_node(const Runtime__V1__PodSandboxConfig *c, int which)
{
    const Runtime__V1__NamespaceOption *o = ns_options(c);
    if (!o)
        return false;
    Runtime__V1__NamespaceMode m = which == 0 ? o->network : which == 1 ? o->pid : o->ipc;
    return m == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

static char *known_handlers(srv_daemon *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < d->cfg->n_runtimes; i++)
        fprintf(f, "%s%s", i ? ", " : "", d->cfg->runtimes[i].name);
    fclose(f);
    return buf;
}

/* Bandwidth annotations ("10M", "1G", "500k") in bits per second. */
static uint64_t parse_rate(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return 0;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1e3; break;
    case 'M': mult = 1e6; break;
    case 'G': mult = 1e9; break;
    case 'T': mult = 1e12; break;
    }
    if (*end && end[1] == 'i')
        mult = mult == 1e3 ? 1024.0 : mult == 1e6 ? 1048576.0 : mult == 1e9 ? 1073741824.0 : mult;
    return (uint64_t)(v * mult);
}

/* ---- pause rootfs ---- */

int srv_pause_prepare(srv_daemon *d, cr_err **err)
{
    _cleanup_free_ char *src = cr_find_executable(d->cfg->pause_command);
    if (!src) {
        /* Not installed yet (make run): use the one built beside crispd. */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) {
                *slash = '\0';
                _cleanup_free_ char *cand = srv_pathf("%s/crisp-pause", self);
                src = cand ? cr_find_executable(cand) : NULL;
            }
        }
    }
    if (!src) {
        cr_log_warn("crisp-pause not found: pods need pause_image", "pause_command",
                    d->cfg->pause_command, NULL);
        return 0;
    }
    _cleanup_free_ char *rootfs = srv_pathf("%s/pause/rootfs", d->cfg->root);
    if (!rootfs)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    static const char *const dirs[] = { "proc", "dev", "sys", "etc", "tmp" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        _cleanup_free_ char *p = srv_pathf("%s/%s", rootfs, dirs[i]);
        if (!p || cr_mkdir_p(p, 0755, err) < 0)
            return -1;
    }
    static const char *const files[] = { "etc/hosts", "etc/resolv.conf", "etc/hostname" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        _cleanup_free_ char *p = srv_pathf("%s/%s", rootfs, files[i]);
        struct stat st;
        if (p && stat(p, &st) < 0 && cr_write_file_atomic(p, "", 0, 0644, err) < 0)
            return -1;
    }
    /* Copy (not link) the binary so the rootfs stands on its own. */
    size_t len = 0;
    _cleanup_free_ char *bin = cr_read_file(src, &len, err);
    _cleanup_free_ char *dst = srv_pathf("%s/pause", rootfs);
    if (!bin || !dst || cr_write_file_atomic(dst, bin, len, 0755, err) < 0)
        return cr_err_prefix(err, "prepare pause rootfs from %s", src);
    d->pause_rootfs = cr_steal(&rootfs);
    return 0;
}

/* ---- files for the pod ---- */

static int write_pod_files(srv_daemon *d, const srv_sandbox *sb, const char *hostname, cr_err **err)
{
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    _cleanup_free_ char *dir = srv_sandbox_dir(d, sb->id);
    _cleanup_free_ char *hosts = srv_pathf("%s/hosts", dir), *resolv = srv_pathf("%s/resolv.conf", dir);
    _cleanup_free_ char *hn = srv_pathf("%s/hostname", dir);
    if (!dir || !hosts || !resolv || !hn)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    if (sb->host_network) {
        /* Host network: the host's own files, as the kubelet expects. */
        size_t n = 0;
        _cleanup_free_ char *h = cr_read_file("/etc/hosts", &n, NULL);
        if (cr_write_file_atomic(hosts, h ? h : "", h ? n : 0, 0644, err) < 0)
            return -1;
    } else {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        if (!f)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                   "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n"
                   "fe00::2\tip6-allrouters\n");
        for (size_t i = 0; sb->ips && sb->ips[i]; i++)
            fprintf(f, "%s\t%s\n", sb->ips[i], hostname);
        fclose(f);
        int r = cr_write_file_atomic(hosts, buf, n, 0644, err);
        free(buf);
        if (r < 0)
            return -1;
    }
    const Runtime__V1__DNSConfig *dns = c->dns_config;
    if (dns && (dns->n_servers || dns->n_searches || dns->n_options)) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        if (!f)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        if (dns->n_searches) {
            fputs("search", f);
            for (size_t i = 0; i < dns->n_searches; i++)
                fprintf(f, " %s", dns->searches[i]);
            fputc('\n', f);
        }
        for (size_t i = 0; i < dns->n_servers; i++)
            fprintf(f, "nameserver %s\n", dns->servers[i]);
        if (dns->n_options) {
            fputs("options", f);
            for (size_t i = 0; i < dns->n_options; i++)
                fprintf(f, " %s", dns->options[i]);
            fputc('\n', f);
        }
        fclose(f);
        int r = cr_write_file_atomic(resolv, buf, n, 0644, err);
        free(buf);
        if (r < 0)
            return -1;
    } else {
        size_t n = 0;
        _cleanup_free_ char *h = cr_read_file("/etc/resolv.conf", &n, NULL);
        if (cr_write_file_atomic(resolv, h ? h : "", h ? n : 0, 0644, err) < 0)
            return -1;
    }
    _cleanup_free_ char *line = srv_pathf("%s\n", hostname);
    return line ? cr_write_file_atomic(hn, line, strlen(line), 0644, err)
                : cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
}

static int mount_shm(const char *path, cr_err **err)
{
    if (cr_mkdir_p(path, 0755, err) < 0)
        return -1;
    if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "mount pod shm at %s", path);
    return 0;
}

static void unmount_shm(const char *path)
{
    while (umount2(path, MNT_DETACH) == 0)
        ;
}

/* ---- stop / teardown ---- */

/* Stop the infra process: SIGTERM, a short grace, then SIGKILL; waits until
 * the runtime says stopped (or no longer knows the container). */
static int stop_infra(srv_daemon *d, srv_sandbox *sb, cr_err **err)
{
    oci_runtime rt;
    oci_state st;
    cr_err *e = NULL;
    if (!srv_handler_runtime(d, sb->runtime_handler, &rt) || oci_state_get(&rt, sb->id, &st, &e) < 0) {
        int code = e ? e->code : CR_FAILED_PRECONDITION;
        _cleanup_free_ char *why = e ? strdup(e->msg) : srv_pathf("runtime handler %s is no longer configured",
                                                                  sb->runtime_handler);
        cr_err_free(e);
        if (code == CR_NOT_FOUND)
            return 0;
        /* The runtime cannot tell (its binary gone, its state broken): end
         * the infra process ourselves, known by pid and start time. */
        if (infra_alive(sb) && kill(sb->pid, SIGKILL) == 0) {
            cr_log_warn("runtime unusable; killed the infra process by pid", "id", sb->id, "error",
                        why ? why : "", NULL);
            for (int i = 0; i < 1000 && infra_alive(sb); i++)
                srv_sleep_ms(10);
        }
        if (!infra_alive(sb))
            return 0;
        return cr_err_set(err, CR_INTERNAL, "pod %s: cannot query the runtime: %s", sb->id, why ? why : "");
    }
    if (!strcmp(st.status, "stopped"))
        return 0;
    int sig = SIGTERM;
    long until = 0;
    for (int round = 0; round < 2; round++, sig = SIGKILL) {
        e = NULL;
        if (oci_kill(&rt, sb->id, sig, false, &e) < 0)
            cr_err_free(e); /* it may have exited meanwhile: the state tells */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        until = ts.tv_sec * 1000L + ts.tv_nsec / 1000000L + (round == 0 ? STOP_GRACE_MS : 10000);
        for (;;) {
            e = NULL;
            if (oci_state_get(&rt, sb->id, &st, &e) < 0) {
                bool gone = e->code == CR_NOT_FOUND;
                cr_err_free(e);
                if (gone)
                    return 0;
            } else if (!strcmp(st.status, "stopped")) {
                return 0;
            }
            clock_gettime(CLOCK_MONOTONIC, &ts);
            if (ts.tv_sec * 1000L + ts.tv_nsec / 1000000L > until)
                break;
            srv_sleep_ms(10);
        }
    }
    return cr_err_set(err, CR_DEADLINE_EXCEEDED, "pod %s: the infra process did not stop after SIGKILL", sb->id);
}

static net_pod pod_for_cni(const srv_sandbox *sb, net_port_mapping *ports)
{
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    const Runtime__V1__PodSandboxMetadata *m = c->metadata;
    net_pod p = {
        .id = sb->id, .name = m->name, .ns = m->namespace_, .uid = m->uid,
        .netns_path = sb->netns, .ifname = "eth0",
    };
    if (ports) {
        for (size_t i = 0; i < c->n_port_mappings; i++) {
            const Runtime__V1__PortMapping *pm = c->port_mappings[i];
            if (pm->host_port <= 0)
                continue; /* no host port: nothing for portmap to do */
            ports[p.n_ports++] = (net_port_mapping){
                .host_port = pm->host_port, .container_port = pm->container_port,
                .protocol = pm->protocol == RUNTIME__V1__PROTOCOL__UDP ? "udp"
                            : pm->protocol == RUNTIME__V1__PROTOCOL__SCTP ? "sctp" : "tcp",
                .host_ip = pm->host_ip ? pm->host_ip : "",
            };
        }
        p.ports = ports;
    }
    if (c->dns_config) {
        p.dns_servers = c->dns_config->n_servers ? c->dns_config->servers : NULL;
        p.dns_searches = c->dns_config->n_searches ? c->dns_config->searches : NULL;
        p.dns_options = c->dns_config->n_options ? c->dns_config->options : NULL;
    }
    p.ingress_rate = parse_rate(srv_map_get(c->n_annotations, (void *const *)c->annotations,
                                        "kubernetes.io/ingress-bandwidth"));
    p.egress_rate = parse_rate(srv_map_get(c->n_annotations, (void *const *)c->annotations,
                                       "kubernetes.io/egress-bandwidth"));
    return p;
}

/* Everything but the record: containers, infra process, network, shm. */
static int teardown(srv_daemon *d, srv_sandbox *sb, bool remove, cr_err **err)
{
    int r = remove ? srv_containers_remove_pod(d, sb->id, err) : srv_containers_stop_pod(d, sb->id, err);
    if (r < 0 && !remove)
        return -1;
    r = stop_infra(d, sb, err);
    if (r < 0 && !remove)
        return -1;
    if (!sb->host_network) {
        net_pod p = pod_for_cni(sb, NULL);
        cr_err *e = NULL;
        if (net_cni_del(d->cni, &p, &e) < 0) {
            if (!remove) {
                cr_err_set(err, e->code, "pod %s: %s", sb->id, e->msg);
                cr_err_free(e);
                return -1;
            }
            cr_log_warn("CNI DEL failed while removing the pod", "id", sb->id, "error", e->msg, NULL);
            cr_err_free(e);
        }
    }
    _cleanup_free_ char *run = srv_sandbox_rundir(d, sb->id);
    _cleanup_free_ char *shm = srv_pathf("%s/shm", run ? run : "");
    if (shm)
        unmount_shm(shm);
    if (!remove)
        return 0;
    oci_runtime rt;
    cr_err *e = NULL;
    if (srv_handler_runtime(d, sb->runtime_handler, &rt) && oci_delete(&rt, sb->id, true, &e) < 0) {
        cr_log_warn("runtime delete failed", "id", sb->id, "error", e->msg, NULL);
        cr_err_free(e);
    }
    if (sb->netns && *sb->netns && net_ns_remove(sb->netns, &e) < 0) {
        cr_log_warn("cannot remove netns", "id", sb->id, "error", e->msg, NULL);
        cr_err_free(e);
    }
    if (d->cfg->pause_image[0])
        img_store_unmount(d->images, sb->id, true, NULL);
    _cleanup_free_ char *dir = srv_sandbox_dir(d, sb->id);
    _cleanup_free_ char *exit_file = srv_pathf("%s/exits/%s", d->cfg->runroot, sb->id);
    if (exit_file)
        unlink(exit_file);
    if (run)
        cr_remove_tree(run, NULL);
    if (dir && cr_remove_tree(dir, err) < 0)
        return -1;
    return 0;
}

/* ---- RunPodSandbox ---- */

static char *pod_name(const Runtime__V1__PodSandboxMetadata *m)
{
    return srv_pathf("k8s_%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
}

/* The infra process's arguments and rootfs. */
static int infra_rootfs(srv_daemon *d, srv_sandbox *sb, char **rootfs, char ***args, cr_err **err)
{
    if (!d->cfg->pause_image[0]) {
        if (!d->pause_rootfs)
            return cr_err_set(err, CR_FAILED_PRECONDITION,
                              "pod %s: crisp-pause is not installed (%s) and no pause_image is configured",
                              sb->id, d->cfg->pause_command);
        *rootfs = strdup(d->pause_rootfs);
        *args = calloc(2, sizeof(char *));
        if (!*rootfs || !*args || !((*args)[0] = strdup("/pause")))
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        return 0;
    }
    /* A pause image: pulled once (pinned), mounted like a container's rootfs. */
    img_image *im = NULL;
    int found = img_store_find(d->images, d->cfg->pause_image, &im, err);
    if (found < 0)
        return -1;
    if (!found && img_store_pull(d->images, d->cfg->pause_image, NULL, &im, err) < 0)
        return cr_err_prefix(err, "pod %s: pause image", sb->id);
    yajl_val cfg = yajl_tree_parse(im->config_json ? im->config_json : "{}", NULL, 0);
    const char *p_ep[] = { "config", "Entrypoint", NULL }, *p_cmd[] = { "config", "Cmd", NULL };
    yajl_val ep = cfg ? yajl_tree_get(cfg, p_ep, yajl_t_array) : NULL;
    yajl_val cmd = cfg ? yajl_tree_get(cfg, p_cmd, yajl_t_array) : NULL;
    size_t n = (ep ? ep->u.array.len : 0) + (cmd ? cmd->u.array.len : 0);
    *args = calloc(n + 2, sizeof(char *));
    size_t k = 0;
    for (int part = 0; *args && part < 2; part++) {
        yajl_val a = part ? cmd : ep;
        for (size_t i = 0; a && i < a->u.array.len; i++)
            if (YAJL_IS_STRING(a->u.array.values[i])) {
                const char *sv = YAJL_GET_STRING(a->u.array.values[i]);
                (*args)[k++] = strdup(sv ? sv : "");
            }
    }
    if (*args && k == 0)
        (*args)[k++] = strdup("/pause");
    yajl_tree_free(cfg);
    int r = img_store_mount(d->images, im->id, sb->id, rootfs, err);
    img_image_free(im);
    if (!*args)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    return r;
}

static int start_infra(srv_daemon *d, srv_sandbox *sb, const char *hostname, cr_err **err)
{
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    const Runtime__V1__LinuxSandboxSecurityContext *sc = c->linux ? c->linux->security_context : NULL;
    oci_runtime rt;
    srv_handler_runtime(d, sb->runtime_handler, &rt);
    _cleanup_free_ char *rootfs = NULL;
    _cleanup_strv_ char **args = NULL;
    if (infra_rootfs(d, sb, &rootfs, &args, err) < 0)
        return -1;
    _cleanup_free_ char *dir = srv_sandbox_dir(d, sb->id), *run = srv_sandbox_rundir(d, sb->id);
    _cleanup_free_ char *bundle = srv_pathf("%s/bundle", dir);
    _cleanup_free_ char *shm = srv_pathf("%s/shm", run), *hosts = srv_pathf("%s/hosts", dir);
    _cleanup_free_ char *resolv = srv_pathf("%s/resolv.conf", dir), *hn = srv_pathf("%s/hostname", dir);
    if (!dir || !run || !bundle || !shm || !hosts || !resolv || !hn)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    if (cr_mkdir_p(bundle, 0700, err) < 0)
        return -1;

    static const char *const bind_ro[] = { "rbind", "ro", "nosuid", "nodev", "noexec", NULL };
    static const char *const bind_rw[] = { "rbind", "rw", "nosuid", "nodev", "noexec", NULL };
    bool host_ipc = ns_is_node(c, 2);
    oci_mount mounts[] = {
        { "/dev/shm", "bind", host_ipc ? "/dev/shm" : shm, bind_rw },
        { "/etc/hosts", "bind", hosts, bind_ro },
        { "/etc/resolv.conf", "bind", resolv, bind_ro },
        { "/etc/hostname", "bind", hn, bind_ro },
    };
    size_t n_sysctls = c->linux ? c->linux->n_sysctls : 0;
    _cleanup_strv_ char **sysctls = calloc(n_sysctls + 1, sizeof(char *));
    if (!sysctls)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n_sysctls; i++)
        if (!(sysctls[i] = srv_pathf("%s=%s", c->linux->sysctls[i]->key, c->linux->sysctls[i]->value)))
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    /* Seccomp: RuntimeDefault unless the pod asks otherwise. */
    _cleanup_free_ char *seccomp = srv_security_profile(sc ? sc->seccomp : NULL, sc ? sc->seccomp_profile_path : NULL);
    const char *annotations[] = { "io.kubernetes.cri.container-type", "sandbox",
                                  "io.kubernetes.cri.sandbox-id", sb->id, NULL };
    const char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
    oci_spec_input in = {
        .args = (const char *const *)args,
        .env = env,
        .cwd = "/",
        .uid = sc && sc->run_as_user ? (uint32_t)sc->run_as_user->value : 0,
        .gid = sc && sc->run_as_group ? (uint32_t)sc->run_as_group->value : 0,
        .rootfs = rootfs,
        .readonly_rootfs = true,
        .hostname = sb->host_network ? NULL : hostname,
        .mounts = mounts,
        .n_mounts = sizeof(mounts) / sizeof(mounts[0]),
        .net = sb->host_network ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_PATH, sb->netns },
        .ipc = host_ipc ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_NEW, NULL },
        .uts = sb->host_network ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_NEW, NULL },
        .pid = ns_is_node(c, 1) ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_NEW, NULL },
        .cgroups_path = sb->cgroups_path,
        .sysctls = (const char *const *)sysctls,
        .privileged = sc && sc->privileged,
        .no_new_privileges = true,
        .seccomp = seccomp,
        .set_oom_score_adj = true,
        .oom_score_adj = INFRA_OOM_SCORE_ADJ,
        .annotations = annotations,
    };
    if (!seccomp)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    if (oci_spec_write(&in, bundle, err) < 0)
        return cr_err_prefix(err, "pod %s: infra spec", sb->id);
    /* The infra process runs under a crisp-monitor like any container: it
     * reaps it, records its exit and is not crispd's child. */
    _cleanup_free_ char *log = srv_pathf("%s/infra.log", run);
    if (!log)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    srv_monitor_req m = { .id = sb->id, .name = sb->name, .bundle = bundle, .rt = &rt, .log_path = log,
                          .state_dir = run, .cgroups_path = sb->cgroups_path };
    int pid = 0;
    if (srv_monitor_launch(d, &m, &pid, err) < 0)
        return -1;
    if (oci_start(&rt, sb->id, RUNTIME_TIMEOUT_S, err) < 0) {
        srv_metrics_failure(d, "runtime", "start");
        return -1;
    }
    sb->pid = pid;
    sb->pid_start = srv_proc_start_time(pid);
    return 0;
}

static int validate_config(srv_daemon *d, const Runtime__V1__RunPodSandboxRequest *in, cr_err **err)
{
    const Runtime__V1__PodSandboxConfig *c = in->config;
    if (!c || !c->metadata)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "RunPodSandbox: config.metadata is required");
    const Runtime__V1__PodSandboxMetadata *m = c->metadata;
    if (!m->name || !*m->name || !m->namespace_ || !*m->namespace_ || !m->uid || !*m->uid)
        return cr_err_set(err, CR_INVALID_ARGUMENT,
                          "RunPodSandbox: metadata name, namespace and uid are required (got name=%s namespace=%s uid=%s)",
                          m->name ? m->name : "", m->namespace_ ? m->namespace_ : "", m->uid ? m->uid : "");
    const char *h = in->runtime_handler && *in->runtime_handler ? in->runtime_handler : d->cfg->default_runtime;
    if (!cr_config_runtime(d->cfg, h)) {
        _cleanup_free_ char *known = known_handlers(d);
        return cr_err_set(err, CR_INVALID_ARGUMENT, "pod %s/%s: unknown runtime handler %s (known: %s)",
                          m->namespace_, m->name, h, known ? known : "");
    }
    bool host_net = ns_is_node(c, 0), host_ipc = ns_is_node(c, 2);
    for (size_t i = 0; c->linux && i < c->linux->n_sysctls; i++) {
        const char *k = c->linux->sysctls[i]->key;
        bool net = !strncmp(k, "net.", 4);
        bool ipc = !strncmp(k, "kernel.shm", 10) || !strncmp(k, "kernel.msg", 10) ||
                   !strcmp(k, "kernel.sem") || !strncmp(k, "fs.mqueue.", 10);
        if (!oci_sysctl_namespaced(k) || (net && host_net) || (ipc && host_ipc))
            return cr_err_set(err, CR_INVALID_ARGUMENT,
                              "pod %s/%s: sysctl %s is not namespaced%s; refused", m->namespace_, m->name, k,
                              net && host_net ? " with the host network" : ipc && host_ipc ? " with the host IPC namespace" : "");
    }
    return 0;
}

/* Create everything for a new sandbox; on failure undo it all. */
static int create_sandbox(srv_daemon *d, srv_sandbox *sb, cr_err **err)
{
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    _cleanup_free_ char *dir = srv_sandbox_dir(d, sb->id), *run = srv_sandbox_rundir(d, sb->id);
    _cleanup_free_ char *shm = srv_pathf("%s/shm", run ? run : ""), *netdir = srv_pathf("%s/netns", d->cfg->runroot);
    if (!dir || !run || !shm || !netdir)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    char hostname[256];
    if (sb->host_network) {
        gethostname(hostname, sizeof(hostname));
        hostname[sizeof(hostname) - 1] = '\0';
    } else {
        snprintf(hostname, sizeof(hostname), "%s", c->hostname && *c->hostname ? c->hostname : c->metadata->name);
    }
    if (cr_mkdir_p(dir, 0700, err) < 0 || cr_mkdir_p(run, 0700, err) < 0)
        goto fail;
    if (c->log_directory && *c->log_directory && cr_mkdir_p(c->log_directory, 0755, err) < 0)
        goto fail;
    if (!ns_is_node(c, 2) && mount_shm(shm, err) < 0)
        goto fail;
    if (!sb->host_network) {
        char *pin = NULL;
        if (net_ns_create(netdir, sb->id, &pin, err) < 0)
            goto fail;
        free(sb->netns);
        sb->netns = pin;
        if (save_config(d, sb, err) < 0 || sandbox_save(d, sb, err) < 0) /* so a crash can DEL */
            goto fail;
        net_port_mapping ports[c->n_port_mappings ? c->n_port_mappings : 1];
        net_pod p = pod_for_cni(sb, ports);
        net_result res = { 0 };
        if (net_cni_add(d->cni, &p, &res, err) < 0) {
            srv_metrics_failure(d, "cni", "add");
            cr_err_prefix(err, "pod %s/%s", c->metadata->namespace_, c->metadata->name);
            goto fail;
        }
        sb->ips = res.ips;
        res.ips = NULL;
        net_result_clear(&res);
    }
    if (write_pod_files(d, sb, hostname, err) < 0)
        goto fail;
    sb->cgroups_path = srv_cgroups_path(d, sb->config->linux ? sb->config->linux->cgroup_parent : NULL, sb->id);
    if (!sb->cgroups_path) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (start_infra(d, sb, hostname, err) < 0)
        goto fail;
    sb->ready = true;
    if (save_config(d, sb, err) < 0 || sandbox_save(d, sb, err) < 0)
        goto fail;
    return 0;
fail:
    {
        cr_err *e = NULL;
        if (teardown(d, sb, true, &e) < 0) {
            cr_log_error("cleanup after a failed RunPodSandbox was incomplete", "id", sb->id,
                         "error", e->msg, NULL);
            cr_err_free(e);
        }
    }
    return -1;
}

static bool name_in_flight(srv_daemon *d, const char *name)
{
    for (size_t i = 0; d->sb_reserving && d->sb_reserving[i]; i++)
        if (!strcmp(d->sb_reserving[i], name))
            return true;
    return false;
}

static srv_sandbox *find_by_name_locked(srv_daemon *d, const char *name)
{
    for (size_t i = 0; i < d->n_sandboxes; i++)
        if (!strcmp(d->sandboxes[i]->name, name))
            return d->sandboxes[i];
    return NULL;
}

static int reserve(srv_daemon *d, const char *name)
{
    size_t n = 0;
    while (d->sb_reserving && d->sb_reserving[n])
        n++;
    char **nv = realloc(d->sb_reserving, (n + 2) * sizeof(char *));
    if (!nv)
        return -1;
    d->sb_reserving = nv;
    if (!(nv[n] = strdup(name)))
        return -1;
    nv[n + 1] = NULL;
    return 0;
}

static void unreserve(srv_daemon *d, const char *name)
{
    for (size_t i = 0; d->sb_reserving && d->sb_reserving[i]; i++)
        if (!strcmp(d->sb_reserving[i], name)) {
            free(d->sb_reserving[i]);
            for (size_t k = i; d->sb_reserving[k]; k++)
                d->sb_reserving[k] = d->sb_reserving[k + 1];
            break;
        }
    pthread_cond_broadcast(&d->sb_cond);
}

static int add_sandbox_locked(srv_daemon *d, srv_sandbox *sb)
{
    srv_sandbox **nv = realloc(d->sandboxes, (d->n_sandboxes + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    d->sandboxes = nv;
    d->sandboxes[d->n_sandboxes++] = sb;
    sb->refs = 1; /* the list's reference */
    return 0;
}

static int run_response(const char *id, ProtobufCMessage **resp, cr_err **err)
{
    Runtime__V1__RunPodSandboxResponse *r = malloc(sizeof(*r));
    if (r) {
        runtime__v1__run_pod_sandbox_response__init(r);
        r->pod_sandbox_id = strdup(id);
    }
    if (!r || !r->pod_sandbox_id) {
        free(r);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    *resp = &r->base;
    return 0;
}

int srv_run_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__RunPodSandboxRequest *in = (const Runtime__V1__RunPodSandboxRequest *)req;
    if (validate_config(d, in, err) < 0)
        return -1;
    _cleanup_free_ char *name = pod_name(in->config->metadata);
    if (!name)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");

    /* The name is reserved while a sandbox is made: a retry of the same
     * request waits for the first one and gets its id. */
    pthread_mutex_lock(&d->sb_mu);
    for (;;) {
        srv_sandbox *have = find_by_name_locked(d, name);
        if (have) {
            char id[65];
            memcpy(id, have->id, sizeof(id));
            bool ready = have->ready;
            pthread_mutex_unlock(&d->sb_mu);
            if (ready)
                return run_response(id, resp, err);
            return cr_err_set(err, CR_ALREADY_EXISTS, "pod sandbox name %s is in use by sandbox %s (NOTREADY); remove it first",
                              name, id);
        }
        if (!name_in_flight(d, name))
            break;
        pthread_cond_wait(&d->sb_cond, &d->sb_mu);
    }
    if (reserve(d, name) < 0) {
        pthread_mutex_unlock(&d->sb_mu);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    pthread_mutex_unlock(&d->sb_mu);

    srv_sandbox *sb = calloc(1, sizeof(*sb));
    int r = -1;
    if (!sb || cr_random_id(sb->id) < 0) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "cannot allocate a sandbox id");
        free(sb);
        sb = NULL;
        goto out;
    }
    pthread_mutex_init(&sb->op_mu, NULL);
    sb->name = strdup(name);
    sb->runtime_handler = strdup(in->runtime_handler && *in->runtime_handler ? in->runtime_handler
                                                                              : d->cfg->default_runtime);
    sb->created_at = srv_now_ns();
    sb->host_network = ns_is_node(in->config, 0);
    sb->netns = strdup("");
    /* Keep our own copy of the config: pack and unpack it. */
    size_t len = protobuf_c_message_get_packed_size(&in->config->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        protobuf_c_message_pack(&in->config->base, buf);
        sb->config = runtime__v1__pod_sandbox_config__unpack(NULL, len, buf);
        free(buf);
    }
    if (!sb->name || !sb->runtime_handler || !sb->netns || !sb->config) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        sandbox_free(sb);
        sb = NULL;
        goto out;
    }
    if (create_sandbox(d, sb, err) < 0) {
        sandbox_free(sb);
        sb = NULL;
        goto out;
    }
    r = 0;
out:
    pthread_mutex_lock(&d->sb_mu);
    if (r == 0 && add_sandbox_locked(d, sb) < 0)
        r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    unreserve(d, name);
    pthread_mutex_unlock(&d->sb_mu);
    if (r == 0) {
        cr_log_info("pod sandbox ready", "id", sb->id, "name", name,
                    "ip", sb->ips && sb->ips[0] ? sb->ips[0] : "", NULL);
        srv_publish_event(d, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
        srv_publish_event(d, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
        return run_response(sb->id, resp, err);
    }
    return -1;
}

/* ---- Stop / Remove ---- */

int srv_stop_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__StopPodSandboxRequest *in = (const Runtime__V1__StopPodSandboxRequest *)req;
    cr_err *gerr = NULL;
    srv_sandbox *sb = srv_sandbox_get(d, in->pod_sandbox_id, &gerr);
    if (!sb) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
            return -1;
        }
        /* Unknown: it may have been removed already; stop is idempotent. */
        return cr_err_set(err, CR_NOT_FOUND, "pod sandbox %s not found", in->pod_sandbox_id);
    }
    pthread_mutex_lock(&sb->op_mu);
    bool was_ready = sb->ready;
    int r = teardown(d, sb, false, err);
    if (r == 0) {
        sb->ready = false;
        r = sandbox_save(d, sb, err);
    }
    pthread_mutex_unlock(&sb->op_mu);
    if (r == 0) {
        cr_log_info("pod sandbox stopped", "id", sb->id, NULL);
        if (was_ready)
            srv_publish_event(d, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    }
    srv_sandbox_put(d, sb);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__stop_pod_sandbox_response__descriptor, resp, err);
}

int srv_remove_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__RemovePodSandboxRequest *in = (const Runtime__V1__RemovePodSandboxRequest *)req;
    cr_err *gerr = NULL;
    srv_sandbox *sb = srv_sandbox_get(d, in->pod_sandbox_id, &gerr);
    if (!sb) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
            return -1;
        }
        return srv_empty_response(&runtime__v1__remove_pod_sandbox_response__descriptor, resp, err);
    }
    pthread_mutex_lock(&sb->op_mu);
    int r = sb->gone ? 0 : teardown(d, sb, true, err);
    if (r == 0 && !sb->gone) {
        sb->ready = false;
        srv_publish_event(d, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
        pthread_mutex_lock(&d->sb_mu);
        for (size_t i = 0; i < d->n_sandboxes; i++)
            if (d->sandboxes[i] == sb) {
                memmove(&d->sandboxes[i], &d->sandboxes[i + 1], (d->n_sandboxes - i - 1) * sizeof(sb));
                d->n_sandboxes--;
                sb->gone = true;
                sb->refs--; /* the list's reference */
                break;
            }
        pthread_mutex_unlock(&d->sb_mu);
        cr_log_info("pod sandbox removed", "id", sb->id, NULL);
    }
    pthread_mutex_unlock(&sb->op_mu);
    srv_sandbox_put(d, sb);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__remove_pod_sandbox_response__descriptor, resp, err);
}

/* ---- Status / List ---- */

static Runtime__V1__PodSandboxMetadata *copy_metadata(bool *oom, const Runtime__V1__PodSandboxMetadata *m)
{
    Runtime__V1__PodSandboxMetadata *c = malloc(sizeof(*c));
    if (!c) {
        *oom = true;
        return NULL;
    }
    runtime__v1__pod_sandbox_metadata__init(c);
    c->name = strdup(m->name ? m->name : "");
    c->uid = strdup(m->uid ? m->uid : "");
    c->namespace_ = strdup(m->namespace_ ? m->namespace_ : "");
    c->attempt = m->attempt;
    if (!c->name || !c->uid || !c->namespace_)
        *oom = true;
    return c;
}

static Runtime__V1__PodSandbox *sandbox_to_pb(bool *oom, const srv_sandbox *sb)
{
    Runtime__V1__PodSandbox *p = malloc(sizeof(*p));
    if (!p) {
        *oom = true;
        return NULL;
    }
    runtime__v1__pod_sandbox__init(p);
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    p->id = strdup(sb->id);
    p->metadata = copy_metadata(oom, c->metadata);
    p->state = sb->ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
    p->created_at = sb->created_at;
    p->labels = srv_copy_map(oom, c->n_labels, (void *const *)c->labels,
                         &runtime__v1__pod_sandbox__labels_entry__descriptor, &p->n_labels);
    p->annotations = srv_copy_map(oom, c->n_annotations, (void *const *)c->annotations,
                              &runtime__v1__pod_sandbox__annotations_entry__descriptor, &p->n_annotations);
    p->runtime_handler = strdup(sb->runtime_handler);
    if (!p->id || !p->runtime_handler)
        *oom = true;
    return p;
}

static Runtime__V1__PodSandboxStatus *status_to_pb(bool *oom, const srv_sandbox *sb)
{
    Runtime__V1__PodSandboxStatus *s = malloc(sizeof(*s));
    Runtime__V1__PodSandboxNetworkStatus *net = malloc(sizeof(*net));
    Runtime__V1__LinuxPodSandboxStatus *lx = malloc(sizeof(*lx));
    Runtime__V1__Namespace *ns = malloc(sizeof(*ns));
    Runtime__V1__NamespaceOption *opt = malloc(sizeof(*opt));
    if (!s || !net || !lx || !ns || !opt) {
        free(s);
        free(net);
        free(lx);
        free(ns);
        free(opt);
        *oom = true;
        return NULL;
    }
    runtime__v1__pod_sandbox_status__init(s);
    runtime__v1__pod_sandbox_network_status__init(net);
    runtime__v1__linux_pod_sandbox_status__init(lx);
    runtime__v1__namespace__init(ns);
    runtime__v1__namespace_option__init(opt);
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    s->id = strdup(sb->id);
    s->metadata = copy_metadata(oom, c->metadata);
    s->state = sb->ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
    s->created_at = sb->created_at;
    /* Only a ready pod with its own network has addresses to report. */
    net->ip = strdup(!sb->host_network && sb->ips && sb->ips[0] ? sb->ips[0] : "");
    size_t nips = 0;
    while (!sb->host_network && sb->ips && sb->ips[nips])
        nips++;
    if (nips > 1) {
        net->additional_ips = calloc(nips - 1, sizeof(*net->additional_ips));
        for (size_t i = 1; net->additional_ips && i < nips; i++) {
            Runtime__V1__PodIP *ip = malloc(sizeof(*ip));
            if (!ip) {
                *oom = true;
                break;
            }
            runtime__v1__pod_ip__init(ip);
            ip->ip = strdup(sb->ips[i]);
            net->additional_ips[net->n_additional_ips++] = ip;
        }
    }
    s->network = net;
    const Runtime__V1__NamespaceOption *o = ns_options(c);
    if (o) {
        opt->network = o->network;
        opt->pid = o->pid;
        opt->ipc = o->ipc;
    }
    ns->options = opt;
    lx->namespaces = ns;
    s->linux = lx;
    s->labels = srv_copy_map(oom, c->n_labels, (void *const *)c->labels,
                         &runtime__v1__pod_sandbox_status__labels_entry__descriptor, &s->n_labels);
    s->annotations = srv_copy_map(oom, c->n_annotations, (void *const *)c->annotations,
                              &runtime__v1__pod_sandbox_status__annotations_entry__descriptor, &s->n_annotations);
    s->runtime_handler = strdup(sb->runtime_handler);
    if (!s->id || !net->ip || !s->runtime_handler)
        *oom = true;
    return s;
}

Runtime__V1__PodSandboxStatus *srv_sandbox_status_pb(bool *oom, const srv_sandbox *sb)
{
    return status_to_pb(oom, sb);
}

static char *status_info_json(srv_daemon *d, const srv_sandbox *sb)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    const cr_runtime_handler *h = cr_config_runtime(d->cfg, sb->runtime_handler);
    fprintf(f, "{\"pid\":%d,\"name\":\"%s\",\"netns\":\"%s\",\"hostNetwork\":%s,\"cgroupsPath\":\"%s\","
               "\"runtimeHandler\":\"%s\",\"runtimeRoot\":\"%s\",\"bundle\":\"%s/sandboxes/%s/bundle\"}",
            sb->pid, sb->name, sb->netns ? sb->netns : "", sb->host_network ? "true" : "false",
            sb->cgroups_path ? sb->cgroups_path : "", sb->runtime_handler, h ? h->runtime_root : "",
            d->cfg->root, sb->id);
    fclose(f);
    return buf;
}

int srv_pod_sandbox_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__PodSandboxStatusRequest *in = (const Runtime__V1__PodSandboxStatusRequest *)req;
    cr_err *gerr = NULL;
    srv_sandbox *sb = srv_sandbox_get(d, in->pod_sandbox_id, &gerr);
    if (!sb) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
            return -1;
        }
        return cr_err_set(err, CR_NOT_FOUND, "pod sandbox %s not found", in->pod_sandbox_id);
    }
    refresh_state(d, sb);
    bool oom = false;
    Runtime__V1__PodSandboxStatusResponse *r = malloc(sizeof(*r));
    if (r) {
        runtime__v1__pod_sandbox_status_response__init(r);
        *resp = &r->base;
        pthread_mutex_lock(&sb->op_mu);
        r->status = status_to_pb(&oom, sb);
        if (in->verbose) {
            Runtime__V1__PodSandboxStatusResponse__InfoEntry *e = malloc(sizeof(*e));
            r->info = malloc(sizeof(*r->info));
            if (e && r->info) {
                runtime__v1__pod_sandbox_status_response__info_entry__init(e);
                e->key = strdup("info");
                e->value = status_info_json(d, sb);
                oom = oom || !e->key || !e->value;
                r->info[r->n_info++] = e;
            } else {
                free(e);
                oom = true;
            }
        }
        pthread_mutex_unlock(&sb->op_mu);
        r->timestamp = srv_now_ns();
    }
    srv_sandbox_put(d, sb);
    if (!r || oom)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "pod sandbox status: out of memory");
    return 0;
}

static bool filter_match(const srv_sandbox *sb, const Runtime__V1__PodSandboxFilter *f)
{
    if (!f)
        return true;
    if (f->id && *f->id && strncmp(sb->id, f->id, strlen(f->id)) != 0)
        return false;
    if (f->state && (f->state->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY) != sb->ready)
        return false;
    for (size_t i = 0; i < f->n_label_selector; i++) {
        const char *v = srv_map_get(sb->config->n_labels, (void *const *)sb->config->labels,
                                f->label_selector[i]->key);
        if (!v || strcmp(v, f->label_selector[i]->value) != 0)
            return false;
    }
    return true;
}

/* Snapshot the matching sandboxes (with references) for a list. */
static srv_sandbox **select_sandboxes(srv_daemon *d, const Runtime__V1__PodSandboxFilter *f, size_t *n)
{
    pthread_mutex_lock(&d->sb_mu);
    srv_sandbox **v = calloc(d->n_sandboxes + 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; v && i < d->n_sandboxes; i++) {
        d->sandboxes[i]->refs++;
        v[(*n)++] = d->sandboxes[i];
    }
    pthread_mutex_unlock(&d->sb_mu);
    size_t k = 0;
    for (size_t i = 0; v && i < *n; i++) {
        refresh_state(d, v[i]);
        if (filter_match(v[i], f))
            v[k++] = v[i];
        else
            srv_sandbox_put(d, v[i]);
    }
    *n = k;
    return v;
}

int srv_list_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ListPodSandboxRequest *in = (const Runtime__V1__ListPodSandboxRequest *)req;
    size_t n = 0;
    srv_sandbox **v = select_sandboxes(d, in->filter, &n);
    bool oom = !v;
    Runtime__V1__ListPodSandboxResponse *r = malloc(sizeof(*r));
    if (r) {
        runtime__v1__list_pod_sandbox_response__init(r);
        *resp = &r->base;
        r->items = n ? calloc(n, sizeof(*r->items)) : NULL;
        oom = oom || (n && !r->items);
        for (size_t i = 0; !oom && i < n; i++)
            if ((r->items[r->n_items] = sandbox_to_pb(&oom, v[i])))
                r->n_items++;
    }
    for (size_t i = 0; v && i < n; i++)
        srv_sandbox_put(d, v[i]);
    free(v);
    if (!r || oom)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "list pod sandboxes: out of memory");
    return 0;
}

int srv_stream_pod_sandboxes(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    const Runtime__V1__StreamPodSandboxesRequest *in = (const Runtime__V1__StreamPodSandboxesRequest *)req;
    size_t n = 0;
    srv_sandbox **v = select_sandboxes(d, in->filter, &n);
    if (!v)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream pod sandboxes: out of memory");
    int r = 0;
    for (size_t start = 0; start < n && r == 0; start += STREAM_CHUNK) {
        size_t k = n - start < STREAM_CHUNK ? n - start : STREAM_CHUNK;
        bool oom = false;
        Runtime__V1__StreamPodSandboxesResponse pb = RUNTIME__V1__STREAM_POD_SANDBOXES_RESPONSE__INIT;
        Runtime__V1__PodSandbox *items[STREAM_CHUNK];
        pb.pod_sandboxes = items;
        for (size_t i = 0; i < k; i++)
            if ((items[pb.n_pod_sandboxes] = sandbox_to_pb(&oom, v[start + i])))
                pb.n_pod_sandboxes++;
        if (oom)
            r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream pod sandboxes: out of memory");
        else if (srv_stream_send(st, &pb.base) < 0)
            r = -1;
        for (size_t i = 0; i < pb.n_pod_sandboxes; i++)
            protobuf_c_message_free_unpacked(&items[i]->base, NULL);
    }
    for (size_t i = 0; i < n; i++)
        srv_sandbox_put(d, v[i]);
    free(v);
    return r;
}

/* ---- restart ---- */

static srv_sandbox *load_one(srv_daemon *d, const char *id, cr_err **err)
{
    _cleanup_free_ char *dir = srv_sandbox_dir(d, id);
    _cleanup_free_ char *sp = srv_pathf("%s/state.json", dir ? dir : ""), *cp = srv_pathf("%s/config.pb", dir ? dir : "");
    _cleanup_free_ char *text = sp ? cr_read_file(sp, NULL, err) : NULL;
    size_t clen = 0;
    _cleanup_free_ char *cbuf = cp ? cr_read_file(cp, &clen, err) : NULL;
    if (!text || !cbuf)
        return NULL;
    char ebuf[128];
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (!v) {
        cr_err_set(err, CR_DATA_LOSS, "%s: %s", sp, ebuf);
        return NULL;
    }
    srv_sandbox *sb = calloc(1, sizeof(*sb));
    if (!sb) {
        yajl_tree_free(v);
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sb->op_mu, NULL);
#define JS(key) ({ const char *p_[] = { key, NULL }; yajl_val x_ = yajl_tree_get(v, p_, yajl_t_string); x_ ? YAJL_GET_STRING(x_) : ""; })
#define JI(key) ({ const char *p_[] = { key, NULL }; yajl_val x_ = yajl_tree_get(v, p_, yajl_t_number); x_ && YAJL_IS_INTEGER(x_) ? YAJL_GET_INTEGER(x_) : 0; })
    snprintf(sb->id, sizeof(sb->id), "%s", id);
    sb->name = strdup(JS("name"));
    sb->ready = !strcmp(JS("state"), "ready");
    sb->created_at = JI("createdAt");
    sb->runtime_handler = strdup(JS("runtimeHandler"));
    sb->host_network = JI("hostNetwork") != 0;
    sb->netns = strdup(JS("netns"));
    sb->cgroups_path = strdup(JS("cgroupsPath"));
    sb->pid = (int)JI("pid");
    sb->pid_start = (uint64_t)JI("pidStart");
#undef JS
#undef JI
    const char *p_ips[] = { "ips", NULL };
    yajl_val ips = yajl_tree_get(v, p_ips, yajl_t_array);
    size_t n = ips ? ips->u.array.len : 0;
    sb->ips = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; sb->ips && i < n; i++)
        sb->ips[i] = strdup(YAJL_IS_STRING(ips->u.array.values[i]) ? YAJL_GET_STRING(ips->u.array.values[i]) : "");
    yajl_tree_free(v);
    sb->config = runtime__v1__pod_sandbox_config__unpack(NULL, clen, (const uint8_t *)cbuf);
    if (!sb->name || !sb->runtime_handler || !sb->netns || !sb->cgroups_path || !sb->ips || !sb->config ||
        !sb->config->metadata) {
        sandbox_free(sb);
        cr_err_set(err, CR_DATA_LOSS, "%s: incomplete sandbox record", dir);
        return NULL;
    }
    return sb;
}

int srv_sandboxes_load(srv_daemon *d, cr_err **err)
{
    _cleanup_free_ char *dir = srv_pathf("%s/sandboxes", d->cfg->root);
    if (!dir || cr_mkdir_p(dir, 0700, err) < 0)
        return -1;
    _cleanup_closedir_ DIR *dp = opendir(dir);
    if (!dp)
        return cr_err_errno(err, CR_INTERNAL, errno, "open %s", dir);
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) != 64)
            continue;
        cr_err *e = NULL;
        srv_sandbox *sb = load_one(d, de->d_name, &e);
        if (!sb) {
            /* A record that never got written completely (crash inside
             * RunPodSandbox): nothing ever referred to it; undo what it may
             * have left and drop it. */
            cr_log_warn("dropping incomplete sandbox", "id", de->d_name, "error", e ? e->msg : "", NULL);
            cr_err_free(e);
            _cleanup_free_ char *p = srv_pathf("%s/%s", dir, de->d_name);
            if (p)
                cr_remove_tree(p, NULL);
            continue;
        }
        /* The runtime, not the record, knows whether the pause still runs. */
        bool was_ready = sb->ready;
        sb->ready = sb->ready && infra_alive(sb);
        if (was_ready != sb->ready) {
            cr_log_warn("pod infra process died while crispd was down; NOTREADY", "id", sb->id, NULL);
            sandbox_save(d, sb, NULL);
        }
        pthread_mutex_lock(&d->sb_mu);
        int r = add_sandbox_locked(d, sb);
        pthread_mutex_unlock(&d->sb_mu);
        if (r < 0) {
            sandbox_free(sb);
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    char count[24];
    snprintf(count, sizeof(count), "%zu", d->n_sandboxes);
    cr_log_info("pod sandboxes loaded", "count", count, NULL);
    return 0;
}

void srv_sandboxes_free(srv_daemon *d)
{
    for (size_t i = 0; i < d->n_sandboxes; i++)
        sandbox_free(d->sandboxes[i]);
    free(d->sandboxes);
    d->sandboxes = NULL;
    d->n_sandboxes = 0;
    cr_strvfree(d->sb_reserving);
    d->sb_reserving = NULL;
    free(d->pause_rootfs);
    d->pause_rootfs = NULL;
}
