/* Containers: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer, ContainerStatus, ListContainers, StreamContainers,
 * ReopenContainerLog, and the exit watcher.
 *
 * Each container is an OCI bundle under <root>/containers/<id>/ with an
 * overlay rootfs from the image store, run by the pod's runtime handler under
 * a crisp-monitor (conmon/) that owns its stdio and CRI log and writes
 * <runroot>/exits/<id> when it ends.  A watcher thread turns exit files into
 * state; records are written atomically on every change, so a restarted
 * crispd finds every container as it is. */
#include "internal.h"
#include "container.h"
#include "sandbox.h"
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "conmon/monitor.h"
#include "image/image.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/ids.h"
#include "lib/log.h"
#include "oci/oci.h"

#define RUNTIME_TIMEOUT_S 60
#define KILL_WAIT_MS 30000
#define STREAM_CHUNK 100

/* ---- references ---- */

static void container_free(srv_container *c)
{
    if (!c)
        return;
    free(c->name);
    if (c->config)
        protobuf_c_message_free_unpacked(&c->config->base, NULL);
    free(c->image_id);
    free(c->runtime_handler);
    free(c->log_path);
    free(c->cgroups_path);
    free(c->reason);
    free(c->message);
    pthread_mutex_destroy(&c->op_mu);
    free(c);
}

static void ctr_put(srv_daemon *d, srv_container *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&d->ctr_mu);
    bool last = --c->refs == 0 && c->gone;
    pthread_mutex_unlock(&d->ctr_mu);
    if (last)
        container_free(c);
}

static srv_container *ctr_get(srv_daemon *d, const char *id, cr_err **err)
{
    if (!id || !*id) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "container id is empty");
        return NULL;
    }
    pthread_mutex_lock(&d->ctr_mu);
    srv_container *found = NULL;
    size_t len = strlen(id);
    int matches = 0;
    for (size_t i = 0; i < d->n_containers; i++) {
        srv_container *c = d->containers[i];
        if (!strcmp(c->id, id)) {
            found = c;
            matches = 1;
            break;
        }
        if (!strncmp(c->id, id, len)) {
            found = c;
            matches++;
        }
    }
    if (matches > 1) {
        found = NULL;
        cr_err_set(err, CR_INVALID_ARGUMENT, "container id prefix %s matches several containers", id);
    } else if (found) {
        found->refs++;
    }
    pthread_mutex_unlock(&d->ctr_mu);
    return found;
}

static int ctr_add_locked(srv_daemon *d, srv_container *c)
{
    srv_container **nv = realloc(d->containers, (d->n_containers + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    d->containers = nv;
    d->containers[d->n_containers++] = c;
    c->refs = 1;
    return 0;
}

static char *ctr_dir(srv_daemon *d, const char *id) { return srv_pathf("%s/containers/%s", d->cfg->root, id); }
static char *ctr_rundir(srv_daemon *d, const char *id) { return srv_pathf("%s/containers/%s", d->cfg->runroot, id); }
static char *exit_file(srv_daemon *d, const char *id) { return srv_pathf("%s/exits/%s", d->cfg->runroot, id); }

/* ---- records ---- */

const char *srv_container_state_name(Runtime__V1__ContainerState s)
{
    switch (s) {
    case RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED: return "created";
    case RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING: return "running";
    case RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED: return "exited";
    default: return "unknown";
    }
}

static Runtime__V1__ContainerState state_from(const char *s)
{
    if (!strcmp(s, "created"))
        return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
    if (!strcmp(s, "running"))
        return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    if (!strcmp(s, "exited"))
        return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
}

static void gen_kv(yajl_gen g, const char *k, const char *v)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    yajl_gen_string(g, (const unsigned char *)(v ? v : ""), strlen(v ? v : ""));
}

static void gen_ki(yajl_gen g, const char *k, long long v)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    yajl_gen_integer(g, v);
}

/* Snapshot under ctr_mu, write outside it. */
static int ctr_save(srv_daemon *d, srv_container *c, cr_err **err)
{
    _cleanup_free_ char *dir = ctr_dir(d, c->id);
    _cleanup_free_ char *path = srv_pathf("%s/state.json", dir ? dir : "");
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!dir || !path || !g) {
        if (g)
            yajl_gen_free(g);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    pthread_mutex_lock(&d->ctr_mu);
    yajl_gen_map_open(g);
    gen_kv(g, "id", c->id);
    gen_kv(g, "sandboxId", c->sandbox_id);
    gen_kv(g, "name", c->name);
    gen_kv(g, "imageId", c->image_id);
    gen_kv(g, "runtimeHandler", c->runtime_handler);
    gen_kv(g, "logPath", c->log_path);
    gen_kv(g, "cgroupsPath", c->cgroups_path);
    gen_ki(g, "stopSignal", c->stop_signal);
    gen_kv(g, "state", srv_container_state_name(c->state));
    gen_ki(g, "createdAt", c->created_at);
    gen_ki(g, "startedAt", c->started_at);
    gen_ki(g, "finishedAt", c->finished_at);
    gen_ki(g, "exitCode", c->exit_code);
    gen_ki(g, "oomKilled", c->oom_killed);
    gen_kv(g, "reason", c->reason);
    gen_kv(g, "message", c->message);
    gen_ki(g, "pid", c->pid);
    gen_ki(g, "pidStart", (long long)c->pid_start);
    yajl_gen_map_close(g);
    pthread_mutex_unlock(&d->ctr_mu);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    int r = cr_write_file_atomic(path, buf, len, 0600, err);
    yajl_gen_free(g);
    return r;
}

static int ctr_save_config(srv_daemon *d, const srv_container *c, cr_err **err)
{
    _cleanup_free_ char *p = srv_pathf("%s/containers/%s/config.pb", d->cfg->root, c->id);
    size_t len = protobuf_c_message_get_packed_size(&c->config->base);
    _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
    if (!p || !buf)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_pack(&c->config->base, buf);
    return cr_write_file_atomic(p, buf, len, 0600, err);
}

static void set_str(char **field, const char *v)
{
    char *n = strdup(v ? v : "");
    if (n) {
        free(*field);
        *field = n;
    }
}

/* ---- exits ---- */

/* Fold an exit file into the container's state.  1 applied, 0 no file. */
static int apply_exit(srv_daemon *d, srv_container *c)
{
    _cleanup_free_ char *path = exit_file(d, c->id);
    _cleanup_free_ char *text = path ? cr_read_file(path, NULL, NULL) : NULL;
    struct mon_exit ex;
    if (!text || mon_exit_parse(text, &ex) < 0)
        return 0;
    pthread_mutex_lock(&d->ctr_mu);
    bool changed = c->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    if (changed) {
        c->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
        c->exit_code = ex.exit_code;
        c->finished_at = ex.exited_at;
        c->oom_killed = ex.oom_killed;
        set_str(&c->reason, ex.oom_killed ? "OOMKilled" : ex.exit_code == 0 ? "Completed" : "Error");
        /* Unset, or stamped by a StartContainer that returned after the
         * process had already ended: never after the exit. */
        if (!c->started_at || c->started_at > c->finished_at)
            c->started_at = c->finished_at;
    }
    pthread_cond_broadcast(&d->ctr_cond);
    pthread_mutex_unlock(&d->ctr_mu);
    if (changed) {
        char code[16];
        snprintf(code, sizeof(code), "%d", ex.exit_code);
        cr_log_info("container exited", "id", c->id, "exit_code", code,
                    "oom_killed", ex.oom_killed ? "true" : "false", NULL);
        cr_err *e = NULL;
        if (ctr_save(d, c, &e) < 0) {
            cr_log_error("cannot save container state", "id", c->id, "error", e->msg, NULL);
            cr_err_free(e);
        }
        srv_publish_event(d, c->id, c->sandbox_id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    }
    return 1;
}

static void *exit_watcher(void *arg)
{
    srv_daemon *d = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        struct pollfd p[2] = { { d->exit_inotify, POLLIN, 0 }, { d->exit_wake[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        ssize_t n = read(d->exit_inotify, buf, sizeof(buf));
        if (n <= 0)
            continue;
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)q;
            q += sizeof(*ev) + ev->len;
            if (!ev->len || strchr(ev->name, '.'))
                continue; /* temp files of the atomic write */
            srv_container *c = ctr_get(d, ev->name, NULL);
            if (c) {
                apply_exit(d, c);
                ctr_put(d, c);
            } else {
                srv_sandbox_infra_exited(d, ev->name);
            }
        }
    }
    return NULL;
}

int srv_exit_watcher_start(srv_daemon *d, cr_err **err)
{
    _cleanup_free_ char *dir = srv_pathf("%s/exits", d->cfg->runroot);
    if (!dir || cr_mkdir_p(dir, 0700, err) < 0)
        return -1;
    d->exit_inotify = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (d->exit_inotify < 0 || inotify_add_watch(d->exit_inotify, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "watch %s", dir);
    if (pipe2(d->exit_wake, O_CLOEXEC) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "pipe");
    if (pthread_create(&d->exit_thread, NULL, exit_watcher, d) != 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "cannot start the exit watcher");
    d->exit_thread_started = true;
    return 0;
}

void srv_exit_watcher_stop(srv_daemon *d)
{
    if (d->exit_thread_started) {
        if (write(d->exit_wake[1], "x", 1) < 0)
            cr_log_warn("cannot wake the exit watcher", NULL);
        pthread_join(d->exit_thread, NULL);
        d->exit_thread_started = false;
    }
    if (d->exit_inotify >= 0)
        close(d->exit_inotify);
    d->exit_inotify = -1;
    for (int i = 0; i < 2; i++)
        if (d->exit_wake[i] >= 0)
            close(d->exit_wake[i]);
    d->exit_wake[0] = d->exit_wake[1] = -1;
}

/* Wait (on ctr_cond) until the container has exited, up to ms. */
static bool wait_exited(srv_daemon *d, srv_container *c, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->ctr_mu);
    while (c->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED) {
        pthread_mutex_unlock(&d->ctr_mu);
        apply_exit(d, c); /* the watcher may be slow; the file is the truth */
        pthread_mutex_lock(&d->ctr_mu);
        if (c->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED)
            break;
        struct timespec step;
        clock_gettime(CLOCK_REALTIME, &step);
        step.tv_nsec += 50000000L;
        if (step.tv_nsec >= 1000000000L) {
            step.tv_sec++;
            step.tv_nsec -= 1000000000L;
        }
        if (step.tv_sec > until.tv_sec || (step.tv_sec == until.tv_sec && step.tv_nsec > until.tv_nsec))
            step = until;
        if (pthread_cond_timedwait(&d->ctr_cond, &d->ctr_mu, &step) == ETIMEDOUT &&
            (step.tv_sec == until.tv_sec && step.tv_nsec == until.tv_nsec))
            break;
    }
    bool exited = c->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    pthread_mutex_unlock(&d->ctr_mu);
    return exited;
}

/* ---- image config ---- */

typedef struct image_cfg {
    yajl_val root;
    yajl_val env, entrypoint, cmd;
    const char *workdir, *user, *stop_signal;
} image_cfg;

static void image_cfg_load(image_cfg *ic, const char *json)
{
    memset(ic, 0, sizeof(*ic));
    ic->root = yajl_tree_parse(json ? json : "{}", NULL, 0);
    if (!ic->root)
        return;
    const char *p_env[] = { "config", "Env", NULL }, *p_ep[] = { "config", "Entrypoint", NULL };
    const char *p_cmd[] = { "config", "Cmd", NULL }, *p_wd[] = { "config", "WorkingDir", NULL };
    const char *p_u[] = { "config", "User", NULL }, *p_ss[] = { "config", "StopSignal", NULL };
    ic->env = yajl_tree_get(ic->root, p_env, yajl_t_array);
    ic->entrypoint = yajl_tree_get(ic->root, p_ep, yajl_t_array);
    ic->cmd = yajl_tree_get(ic->root, p_cmd, yajl_t_array);
    yajl_val v;
    ic->workdir = (v = yajl_tree_get(ic->root, p_wd, yajl_t_string)) ? YAJL_GET_STRING(v) : NULL;
    ic->user = (v = yajl_tree_get(ic->root, p_u, yajl_t_string)) ? YAJL_GET_STRING(v) : NULL;
    ic->stop_signal = (v = yajl_tree_get(ic->root, p_ss, yajl_t_string)) ? YAJL_GET_STRING(v) : NULL;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 2) * sizeof(char *));
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -1;
    nv[++*n] = NULL;
    return 0;
}

static void push_json_strings(char ***v, size_t *n, yajl_val a, bool *oom)
{
    for (size_t i = 0; a && i < a->u.array.len; i++) {
        const char *s = YAJL_IS_STRING(a->u.array.values[i]) ? YAJL_GET_STRING(a->u.array.values[i]) : NULL;
        if (s && strv_push(v, n, s) < 0)
            *oom = true;
    }
}

/* Signal by name ("SIGTERM", "TERM") or number. 0 if unknown. */
static int signal_from_name(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end;
    long n = strtol(s, &end, 10);
    if (!*end && n > 0 && n < 65)
        return (int)n;
    if (!strncmp(s, "SIG", 3))
        s += 3;
    for (int i = 1; i < 65; i++) {
        const char *abbrev = sigabbrev_np(i);
        if (abbrev && !strcmp(abbrev, s))
            return i;
    }
    return 0;
}

/* ---- users ---- */

typedef struct user_info {
    uint32_t uid, gid;
    char *home;
    uint32_t *gids;
    size_t n_gids;
} user_info;

/* Look name or uid up in <rootfs>/etc/passwd. */
static bool passwd_lookup(const char *rootfs, const char *name, long uid, uint32_t *uid_out, uint32_t *gid_out,
                          char **home, char **user_name)
{
    _cleanup_free_ char *path = srv_pathf("%s/etc/passwd", rootfs);
    _cleanup_free_ char *text = path ? cr_read_file(path, NULL, NULL) : NULL;
    if (!text)
        return false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[7] = { 0 };
        int k = 0;
        for (char *p = line; k < 7; k++) {
            f[k] = p;
            char *c = strchr(p, ':');
            if (!c)
                break;
            *c = '\0';
            p = c + 1;
        }
        if (k < 3 || !f[2] || !f[3])
            continue;
        long u = strtol(f[2], NULL, 10);
        if ((name && !strcmp(f[0], name)) || (!name && u == uid)) {
            *uid_out = (uint32_t)u;
            *gid_out = (uint32_t)strtol(f[3], NULL, 10);
            if (home)
                *home = strdup(f[5] && *f[5] ? f[5] : "/");
            if (user_name)
                *user_name = strdup(f[0]);
            return true;
        }
    }
    return false;
}

static bool group_lookup(const char *rootfs, const char *name, uint32_t *gid)
{
    _cleanup_free_ char *path = srv_pathf("%s/etc/group", rootfs);
    _cleanup_free_ char *text = path ? cr_read_file(path, NULL, NULL) : NULL;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        if (!strcmp(line, name)) {
            *gid = (uint32_t)strtol(c2 + 1, NULL, 10);
            return true;
        }
    }
    return false;
}

/* Groups of <rootfs>/etc/group that list user as a member. */
static void member_groups(const char *rootfs, const char *user, user_info *ui)
{
    _cleanup_free_ char *path = srv_pathf("%s/etc/group", rootfs);
    _cleanup_free_ char *text = path && user ? cr_read_file(path, NULL, NULL) : NULL;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *c3 = c2 ? strchr(c2 + 1, ':') : NULL;
        if (!c3)
            continue;
        *c3 = '\0';
        char *msave = NULL;
        for (char *m = strtok_r(c3 + 1, ",", &msave); m; m = strtok_r(NULL, ",", &msave))
            if (!strcmp(m, user)) {
                uint32_t *nv = realloc(ui->gids, (ui->n_gids + 1) * sizeof(uint32_t));
                if (nv) {
                    ui->gids = nv;
                    ui->gids[ui->n_gids++] = (uint32_t)strtol(c2 + 1, NULL, 10);
                }
                break;
            }
    }
}

static int resolve_user(const char *rootfs, const Runtime__V1__LinuxContainerSecurityContext *sc,
                        const char *image_user, user_info *ui, cr_err **err)
{
    memset(ui, 0, sizeof(*ui));
    _cleanup_free_ char *uname = NULL;
    bool have_gid = false;
    if (sc && sc->run_as_user) {
        ui->uid = (uint32_t)sc->run_as_user->value;
        passwd_lookup(rootfs, NULL, sc->run_as_user->value, &ui->uid, &ui->gid, &ui->home, &uname);
    } else if (sc && sc->run_as_username && *sc->run_as_username) {
        if (!passwd_lookup(rootfs, sc->run_as_username, -1, &ui->uid, &ui->gid, &ui->home, &uname))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "user %s not found in the image's /etc/passwd",
                              sc->run_as_username);
    } else if (image_user && *image_user) {
        _cleanup_free_ char *u = strdup(image_user);
        if (!u)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        char *g = strchr(u, ':');
        if (g)
            *g++ = '\0';
        char *end;
        long n = strtol(u, &end, 10);
        if (*u && !*end) {
            ui->uid = (uint32_t)n;
            passwd_lookup(rootfs, NULL, n, &ui->uid, &ui->gid, &ui->home, &uname);
        } else if (!passwd_lookup(rootfs, u, -1, &ui->uid, &ui->gid, &ui->home, &uname)) {
            return cr_err_set(err, CR_INVALID_ARGUMENT, "image user %s not found in the image's /etc/passwd", u);
        }
        if (g && *g) {
            long gn = strtol(g, &end, 10);
            if (!*end)
                ui->gid = (uint32_t)gn;
            else if (!group_lookup(rootfs, g, &ui->gid))
                return cr_err_set(err, CR_INVALID_ARGUMENT, "image group %s not found in the image's /etc/group", g);
            have_gid = true;
        }
    } else {
        passwd_lookup(rootfs, NULL, 0, &ui->uid, &ui->gid, &ui->home, &uname);
    }
    if (sc && sc->run_as_group && !have_gid)
        ui->gid = (uint32_t)sc->run_as_group->value;
    member_groups(rootfs, uname, ui);
    for (size_t i = 0; sc && i < sc->n_supplemental_groups; i++) {
        uint32_t *nv = realloc(ui->gids, (ui->n_gids + 1) * sizeof(uint32_t));
        if (!nv)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        ui->gids = nv;
        ui->gids[ui->n_gids++] = (uint32_t)sc->supplemental_groups[i];
    }
    if (!ui->home)
        ui->home = strdup("/");
    return 0;
}

/* ---- the monitor ---- */

/* Launch crisp-monitor for the container; it runs `runtime create`. */
static int run_monitor(srv_daemon *d, srv_container *c, const char *bundle, const oci_runtime *rt, cr_err **err)
{
    _cleanup_free_ char *state = ctr_rundir(d, c->id);
    if (!state)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    srv_monitor_req m = {
        .id = c->id, .name = c->name, .bundle = bundle, .rt = rt, .log_path = c->log_path, .state_dir = state,
        .cgroups_path = c->cgroups_path, .tty = c->config->tty, .stdin_ = c->config->stdin,
        .stdin_once = c->config->stdin_once,
    };
    if (srv_monitor_launch(d, &m, &c->pid, err) < 0)
        return -1;
    c->pid_start = srv_proc_start_time(c->pid);
    return 0;
}

/* ---- CreateContainer ---- */

static bool has_mount(const Runtime__V1__ContainerConfig *cfg, const char *dest)
{
    for (size_t i = 0; i < cfg->n_mounts; i++)
        if (cfg->mounts[i]->container_path && !strcmp(cfg->mounts[i]->container_path, dest))
            return true;
    return false;
}

static const Runtime__V1__NamespaceOption *pod_ns(const srv_sandbox *sb)
{
    const Runtime__V1__PodSandboxConfig *c = sb->config;
    return c->linux && c->linux->security_context ? c->linux->security_context->namespace_options : NULL;
}

/* A NULL-terminated copy of a protobuf-c repeated string field. */
static char **strv_copy(char *const *v, size_t n)
{
    char **out = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(v[i]))) {
            cr_strvfree(out);
            return NULL;
        }
    return out;
}

/* Build and write the container's config.json. */
static int write_spec(srv_daemon *d, srv_container *c, srv_sandbox *sb, const char *rootfs,
                      const image_cfg *ic, const char *bundle, cr_err **err)
{
    const Runtime__V1__ContainerConfig *cfg = c->config;
    const Runtime__V1__LinuxContainerConfig *lx = cfg->linux;
    const Runtime__V1__LinuxContainerSecurityContext *sc = lx ? lx->security_context : NULL;
    const Runtime__V1__LinuxContainerResources *res = lx ? lx->resources : NULL;
    int r = -1;
    bool oom = false;
    char **args = NULL, **env = NULL, **mountv = NULL, **annotations = NULL;
    size_t nargs = 0, nenv = 0, nann = 0;
    oci_mount *mounts = NULL;
    size_t nm = 0;
    user_info ui = { 0 };
    _cleanup_free_ char *seccomp = NULL, *apparmor = NULL;
    _cleanup_strv_ char **masked = NULL, **ro_paths = NULL, **unified = NULL;
    _cleanup_free_ oci_hugepage *hugepages = NULL;
    _cleanup_free_ oci_device *devices = NULL;
    _cleanup_free_ char *ipc_ns = NULL, *uts_ns = NULL, *pid_ns = NULL;
    _cleanup_free_ char *pdir = NULL, *prun = NULL, *shm = NULL, *hosts = NULL, *resolv = NULL, *hn = NULL;

    /* Arguments: command replaces the entrypoint, args replace the cmd. */
    if (cfg->n_command) {
        for (size_t i = 0; i < cfg->n_command; i++)
            oom |= strv_push(&args, &nargs, cfg->command[i]) < 0;
        for (size_t i = 0; i < cfg->n_args; i++)
            oom |= strv_push(&args, &nargs, cfg->args[i]) < 0;
    } else {
        push_json_strings(&args, &nargs, ic->entrypoint, &oom);
        if (cfg->n_args)
            for (size_t i = 0; i < cfg->n_args; i++)
                oom |= strv_push(&args, &nargs, cfg->args[i]) < 0;
        else
            push_json_strings(&args, &nargs, ic->cmd, &oom);
    }
    if (!nargs) {
        r = cr_err_set(err, CR_INVALID_ARGUMENT, "container %s: no command: neither the config nor the image gives one",
                       cfg->metadata->name);
        goto out;
    }
    if (resolve_user(rootfs, sc, ic->user, &ui, err) < 0)
        goto out;
    /* Environment: the image's, then the config's (later wins). */
    push_json_strings(&env, &nenv, ic->env, &oom);
    for (size_t i = 0; i < cfg->n_envs; i++) {
        _cleanup_free_ char *kv = srv_pathf("%s=%s", cfg->envs[i]->key, cfg->envs[i]->value);
        size_t klen = strlen(cfg->envs[i]->key);
        bool replaced = false;
        for (size_t k = 0; kv && k < nenv; k++)
            if (!strncmp(env[k], cfg->envs[i]->key, klen) && env[k][klen] == '=') {
                free(env[k]);
                env[k] = strdup(kv);
                replaced = true;
            }
        if (kv && !replaced)
            oom |= strv_push(&env, &nenv, kv) < 0;
    }
    bool has_home = false, has_path = false;
    for (size_t k = 0; k < nenv; k++) {
        has_home |= !strncmp(env[k], "HOME=", 5);
        has_path |= !strncmp(env[k], "PATH=", 5);
    }
    if (!has_path)
        oom |= strv_push(&env, &nenv, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") < 0;
    if (!has_home) {
        _cleanup_free_ char *h = srv_pathf("HOME=%s", ui.home ? ui.home : "/");
        oom |= !h || strv_push(&env, &nenv, h) < 0;
    }
    /* Mounts: the pod's shm and files, then the config's. */
    pdir = srv_sandbox_dir(d, sb->id);
    prun = srv_sandbox_rundir(d, sb->id);
    shm = srv_pathf("%s/shm", prun);
    hosts = srv_pathf("%s/hosts", pdir);
    resolv = srv_pathf("%s/resolv.conf", pdir);
    hn = srv_pathf("%s/hostname", pdir);
    const Runtime__V1__NamespaceOption *pns = pod_ns(sb);
    bool host_ipc = pns && pns->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
    mounts = calloc(cfg->n_mounts + 4, sizeof(*mounts));
    mountv = calloc(cfg->n_mounts * 4 + 1, sizeof(char *));
    static const char *const bind_rw[] = { "rbind", "rw", "nosuid", "nodev", "noexec", NULL };
    static const char *const bind_ro[] = { "rbind", "ro", "nosuid", "nodev", "noexec", NULL };
    if (!mounts || !mountv || !shm || !hosts || !resolv || !hn) {
        oom = true;
        goto out;
    }
    if (!has_mount(cfg, "/dev/shm"))
        mounts[nm++] = (oci_mount){ "/dev/shm", "bind", host_ipc ? "/dev/shm" : shm, bind_rw };
    if (!has_mount(cfg, "/etc/hosts"))
        mounts[nm++] = (oci_mount){ "/etc/hosts", "bind", hosts, bind_ro };
    if (!has_mount(cfg, "/etc/resolv.conf"))
        mounts[nm++] = (oci_mount){ "/etc/resolv.conf", "bind", resolv, bind_ro };
    if (!has_mount(cfg, "/etc/hostname"))
        mounts[nm++] = (oci_mount){ "/etc/hostname", "bind", hn, bind_ro };
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const Runtime__V1__Mount *m = cfg->mounts[i];
        struct stat st;
        if (!m->container_path || m->container_path[0] != '/') {
            r = cr_err_set(err, CR_INVALID_ARGUMENT, "container %s: mount destination %s is not absolute",
                           cfg->metadata->name, m->container_path ? m->container_path : "");
            goto out;
        }
        if (!m->host_path || stat(m->host_path, &st) < 0) {
            r = cr_err_set(err, CR_INVALID_ARGUMENT, "container %s: mount source %s for %s does not exist",
                           cfg->metadata->name, m->host_path ? m->host_path : "", m->container_path);
            goto out;
        }
        char **opts = &mountv[i * 4];
        opts[0] = "rbind";
        opts[1] = m->readonly ? "ro" : "rw";
        opts[2] = m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL ? "rshared"
                  : m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER ? "rslave"
                                                                                                    : "rprivate";
        opts[3] = NULL;
        mounts[nm++] = (oci_mount){ m->container_path, "bind", m->host_path, (const char *const *)opts };
    }
    /* Namespaces: the pod's network, IPC and UTS; PID per the config. */
    const Runtime__V1__NamespaceOption *cns = sc ? sc->namespace_options : NULL;
    ipc_ns = srv_pathf("/proc/%d/ns/ipc", sb->pid);
    uts_ns = srv_pathf("/proc/%d/ns/uts", sb->pid);
    pid_ns = srv_pathf("/proc/%d/ns/pid", sb->pid);
    oci_ns pid_mode = { OCI_NS_NEW, NULL };
    if (cns && cns->pid == RUNTIME__V1__NAMESPACE_MODE__NODE)
        pid_mode.mode = OCI_NS_HOST;
    else if (cns && cns->pid == RUNTIME__V1__NAMESPACE_MODE__POD)
        pid_mode = (oci_ns){ OCI_NS_PATH, pid_ns };
    seccomp = srv_security_profile(sc ? sc->seccomp : NULL, sc ? sc->seccomp_profile_path : NULL);
    apparmor = srv_security_profile(sc ? sc->apparmor : NULL, sc ? sc->apparmor_profile : NULL);
    /* Annotations: the config's, then the ones that say what this is. */
    for (size_t i = 0; i < cfg->n_annotations; i++) {
        oom |= strv_push(&annotations, &nann, cfg->annotations[i]->key) < 0;
        oom |= strv_push(&annotations, &nann, cfg->annotations[i]->value) < 0;
    }
    oom |= strv_push(&annotations, &nann, "io.kubernetes.cri.container-type") < 0;
    oom |= strv_push(&annotations, &nann, "container") < 0;
    oom |= strv_push(&annotations, &nann, "io.kubernetes.cri.sandbox-id") < 0;
    oom |= strv_push(&annotations, &nann, sb->id) < 0;
    oom |= strv_push(&annotations, &nann, "io.kubernetes.cri.container-name") < 0;
    oom |= strv_push(&annotations, &nann, cfg->metadata->name) < 0;
    /* The kubelet's masked and read-only paths replace the defaults when it
     * sends them (an empty list is indistinguishable from none on the wire). */
    if (sc && sc->n_masked_paths)
        oom |= !(masked = strv_copy(sc->masked_paths, sc->n_masked_paths));
    if (sc && sc->n_readonly_paths)
        oom |= !(ro_paths = strv_copy(sc->readonly_paths, sc->n_readonly_paths));
    /* Resources beyond cpu/memory: huge pages, cgroup v2 unified keys. */
    if (res && res->n_hugepage_limits) {
        oom |= !(hugepages = calloc(res->n_hugepage_limits, sizeof(*hugepages)));
        for (size_t i = 0; hugepages && i < res->n_hugepage_limits; i++)
            hugepages[i] = (oci_hugepage){ res->hugepage_limits[i]->page_size, res->hugepage_limits[i]->limit };
    }
    if (res && res->n_unified) {
        size_t nu = 0;
        for (size_t i = 0; i < res->n_unified; i++) {
            oom |= strv_push(&unified, &nu, res->unified[i]->key) < 0;
            oom |= strv_push(&unified, &nu, res->unified[i]->value) < 0;
        }
    }
    if (cfg->n_devices) {
        oom |= !(devices = calloc(cfg->n_devices, sizeof(*devices)));
        for (size_t i = 0; devices && i < cfg->n_devices; i++)
            devices[i] = (oci_device){ cfg->devices[i]->container_path, cfg->devices[i]->host_path,
                                       cfg->devices[i]->permissions };
    }
    if (oom || !seccomp || !apparmor || !ipc_ns || !uts_ns || !pid_ns)
        goto out;
    const char *cwd = cfg->working_dir && *cfg->working_dir ? cfg->working_dir : ic->workdir && *ic->workdir ? ic->workdir : "/";
    oci_spec_input in = {
        .args = (const char *const *)args,
        .env = (const char *const *)env,
        .cwd = cwd,
        .terminal = cfg->tty,
        .uid = ui.uid,
        .gid = ui.gid,
        .additional_gids = ui.gids,
        .n_additional_gids = ui.n_gids,
        .rootfs = rootfs,
        .readonly_rootfs = sc && sc->readonly_rootfs,
        .mounts = mounts,
        .n_mounts = nm,
        .net = sb->host_network ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_PATH, sb->netns },
        .ipc = host_ipc ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_PATH, ipc_ns },
        .uts = sb->host_network ? (oci_ns){ OCI_NS_HOST, NULL } : (oci_ns){ OCI_NS_PATH, uts_ns },
        .pid = pid_mode,
        .cgroups_path = c->cgroups_path,
        .privileged = sc && sc->privileged,
        .no_new_privileges = sc ? sc->no_new_privs : false,
        .cap_add = sc && sc->capabilities ? (const char *const *)sc->capabilities->add_capabilities : NULL,
        .cap_drop = sc && sc->capabilities ? (const char *const *)sc->capabilities->drop_capabilities : NULL,
        .seccomp = seccomp,
        .set_oom_score_adj = res && res->oom_score_adj,
        .oom_score_adj = res ? (int)res->oom_score_adj : 0,
        .cpu_shares = res ? res->cpu_shares : 0,
        .cpu_quota = res ? res->cpu_quota : 0,
        .cpu_period = res ? res->cpu_period : 0,
        .memory_limit = res ? res->memory_limit_in_bytes : 0,
        .memory_swap = res ? res->memory_swap_limit_in_bytes : 0,
        .cpuset_cpus = res && res->cpuset_cpus && *res->cpuset_cpus ? res->cpuset_cpus : NULL,
        .cpuset_mems = res && res->cpuset_mems && *res->cpuset_mems ? res->cpuset_mems : NULL,
        .annotations = (const char *const *)annotations,
        .hugepages = hugepages,
        .n_hugepages = res ? res->n_hugepage_limits : 0,
        .unified = (const char *const *)unified,
        .devices = devices,
        .n_devices = cfg->n_devices,
        .apparmor_profile = apparmor,
        .hooks_dir = d->cfg->hooks_dir[0] ? d->cfg->hooks_dir : NULL,
        .masked_paths = (const char *const *)masked,
        .readonly_paths = (const char *const *)ro_paths,
    };
    /* protobuf-c repeated strings are not NULL-terminated: copy them. */
    const Runtime__V1__Capability *caps = sc ? sc->capabilities : NULL;
    char **add = caps ? strv_copy(caps->add_capabilities, caps->n_add_capabilities) : NULL;
    char **drop = caps ? strv_copy(caps->drop_capabilities, caps->n_drop_capabilities) : NULL;
    oom |= caps && (!add || !drop);
    in.cap_add = (const char *const *)add;
    in.cap_drop = (const char *const *)drop;
    if (!oom)
        r = oci_spec_write(&in, bundle, err);
    cr_strvfree(add);
    cr_strvfree(drop);
    if (r < 0)
        cr_err_prefix(err, "container %s", cfg->metadata->name);
out:
    if (oom && r < 0)
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    cr_strvfree(args);
    cr_strvfree(env);
    cr_strvfree(annotations);
    free(mounts);
    free(mountv);
    free(ui.home);
    free(ui.gids);
    return r;
}

static int create_response(const char *id, ProtobufCMessage **resp, cr_err **err)
{
    Runtime__V1__CreateContainerResponse *r = malloc(sizeof(*r));
    if (r) {
        runtime__v1__create_container_response__init(r);
        r->container_id = strdup(id);
    }
    if (!r || !r->container_id) {
        free(r);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    *resp = &r->base;
    return 0;
}

static bool name_in_flight(srv_daemon *d, const char *name)
{
    for (size_t i = 0; d->ctr_reserving && d->ctr_reserving[i]; i++)
        if (!strcmp(d->ctr_reserving[i], name))
            return true;
    return false;
}

static void unreserve(srv_daemon *d, const char *name)
{
    for (size_t i = 0; d->ctr_reserving && d->ctr_reserving[i]; i++)
        if (!strcmp(d->ctr_reserving[i], name)) {
            free(d->ctr_reserving[i]);
            for (size_t k = i; d->ctr_reserving[k]; k++)
                d->ctr_reserving[k] = d->ctr_reserving[k + 1];
            break;
        }
    pthread_cond_broadcast(&d->ctr_cond);
}

static void undo_create(srv_daemon *d, srv_container *c)
{
    oci_runtime rt;
    cr_err *e = NULL;
    if (srv_handler_runtime(d, c->runtime_handler, &rt) && oci_delete(&rt, c->id, true, &e) < 0) {
        cr_log_warn("runtime delete failed", "id", c->id, "error", e->msg, NULL);
        cr_err_free(e);
        e = NULL;
    }
    img_store_unmount(d->images, c->id, true, NULL);
    _cleanup_free_ char *dir = ctr_dir(d, c->id), *run = ctr_rundir(d, c->id), *ex = exit_file(d, c->id);
    if (dir)
        cr_remove_tree(dir, NULL);
    if (run)
        cr_remove_tree(run, NULL);
    if (ex)
        unlink(ex);
}

int srv_create_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__CreateContainerRequest *in = (const Runtime__V1__CreateContainerRequest *)req;
    const Runtime__V1__ContainerConfig *cfg = in->config;
    if (!cfg || !cfg->metadata || !cfg->metadata->name || !*cfg->metadata->name)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "CreateContainer: config.metadata.name is required");
    if (!cfg->image || !cfg->image->image || !*cfg->image->image)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "CreateContainer %s: config.image is required", cfg->metadata->name);
    cr_err *gerr = NULL;
    srv_sandbox *sb = srv_sandbox_get(d, in->pod_sandbox_id, &gerr);
    if (!sb) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
            return -1;
        }
        return cr_err_set(err, CR_NOT_FOUND, "CreateContainer %s: pod sandbox %s not found",
                          cfg->metadata->name, in->pod_sandbox_id);
    }
    int r = -1;
    srv_container *c = NULL;
    img_image *im = NULL;
    image_cfg ic = { 0 };
    _cleanup_free_ char *rootfs = NULL, *dir = NULL, *bundle = NULL;
    const Runtime__V1__PodSandboxMetadata *pm = sb->config->metadata;
    _cleanup_free_ char *name = srv_pathf("k8s_%s_%s_%s_%s_%u", cfg->metadata->name, pm->name, pm->namespace_,
                                          pm->uid, cfg->metadata->attempt);
    bool reserved = false;
    if (!name) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    if (!sb->ready) {
        cr_err_set(err, CR_FAILED_PRECONDITION, "CreateContainer %s: pod sandbox %s is not ready",
                   cfg->metadata->name, sb->id);
        goto out;
    }
    /* Same reservation dance as pods: a retry joins the call in flight. */
    pthread_mutex_lock(&d->ctr_mu);
    for (;;) {
        srv_container *have = NULL;
        for (size_t i = 0; i < d->n_containers && !have; i++)
            if (!strcmp(d->containers[i]->name, name))
                have = d->containers[i];
        if (have && have->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED) {
            /* A retry after the client's own timeout: it never saw the id, so
             * it never started the container; hand the same one back. */
            char id[65];
            memcpy(id, have->id, sizeof(id));
            pthread_mutex_unlock(&d->ctr_mu);
            r = create_response(id, resp, err);
            goto out;
        }
        if (have) {
            cr_err_set(err, CR_ALREADY_EXISTS,
                       "CreateContainer %s: the name is in use by container %s (%s); remove it first",
                       cfg->metadata->name, have->id, srv_container_state_name(have->state));
            pthread_mutex_unlock(&d->ctr_mu);
            goto out;
        }
        if (!name_in_flight(d, name))
            break;
        pthread_cond_wait(&d->ctr_cond, &d->ctr_mu);
    }
    size_t nres = 0;
    while (d->ctr_reserving && d->ctr_reserving[nres])
        nres++;
    if (strv_push(&d->ctr_reserving, &nres, name) < 0) {
        pthread_mutex_unlock(&d->ctr_mu);
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    reserved = true;
    pthread_mutex_unlock(&d->ctr_mu);

    int found = img_store_find(d->images, cfg->image->image, &im, err);
    if (found <= 0) {
        if (found == 0)
            cr_err_set(err, CR_NOT_FOUND, "CreateContainer %s: image %s not found (pull it first)",
                       cfg->metadata->name, cfg->image->image);
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c || cr_random_id(c->id) < 0) {
        free(c);
        c = NULL;
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "cannot allocate a container id");
        goto out;
    }
    pthread_mutex_init(&c->op_mu, NULL);
    memcpy(c->sandbox_id, sb->id, sizeof(c->sandbox_id));
    c->name = strdup(name);
    c->image_id = strdup(im->id);
    c->runtime_handler = strdup(sb->runtime_handler);
    c->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
    c->created_at = srv_now_ns();
    c->reason = strdup("");
    c->message = strdup("");
    size_t len = protobuf_c_message_get_packed_size(&cfg->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        protobuf_c_message_pack(&cfg->base, buf);
        c->config = runtime__v1__container_config__unpack(NULL, len, buf);
        free(buf);
    }
    const char *logdir = sb->config->log_directory;
    if (logdir && *logdir && cfg->log_path && *cfg->log_path)
        c->log_path = srv_pathf("%s/%s", logdir, cfg->log_path);
    else
        c->log_path = srv_pathf("%s/containers/%s/console.log", d->cfg->root, c->id);
    c->cgroups_path = srv_cgroups_path(d, sb->config->linux ? sb->config->linux->cgroup_parent : NULL, c->id);
    if (!c->name || !c->image_id || !c->runtime_handler || !c->reason || !c->message || !c->config ||
        !c->log_path || !c->cgroups_path) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        container_free(c);
        c = NULL;
        goto out;
    }
    image_cfg_load(&ic, im->config_json);
    c->stop_signal = cfg->stop_signal ? signal_from_name(
                         protobuf_c_enum_descriptor_get_value(&runtime__v1__signal__descriptor, cfg->stop_signal)
                             ? protobuf_c_enum_descriptor_get_value(&runtime__v1__signal__descriptor, cfg->stop_signal)->name
                             : "")
                                      : signal_from_name(ic.stop_signal);
    if (!c->stop_signal)
        c->stop_signal = SIGTERM;

    oci_runtime rt;
    srv_handler_runtime(d, c->runtime_handler, &rt);
    dir = ctr_dir(d, c->id);
    bundle = srv_pathf("%s/bundle", dir ? dir : "");
    if (!dir || !bundle || cr_mkdir_p(bundle, 0700, err) < 0 ||
        img_store_mount(d->images, im->id, c->id, &rootfs, err) < 0 ||
        write_spec(d, c, sb, rootfs, &ic, bundle, err) < 0 || ctr_save_config(d, c, err) < 0 ||
        ctr_save(d, c, err) < 0 || run_monitor(d, c, bundle, &rt, err) < 0 || ctr_save(d, c, err) < 0) {
        undo_create(d, c);
        container_free(c);
        c = NULL;
        goto out;
    }
    pthread_mutex_lock(&d->ctr_mu);
    int added = ctr_add_locked(d, c);
    pthread_mutex_unlock(&d->ctr_mu);
    if (added < 0) {
        undo_create(d, c);
        container_free(c);
        c = NULL;
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    cr_log_info("container created", "id", c->id, "name", name, "image", im->id, NULL);
    srv_publish_event(d, c->id, c->sandbox_id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
    r = create_response(c->id, resp, err);
out:
    if (reserved) {
        pthread_mutex_lock(&d->ctr_mu);
        unreserve(d, name);
        pthread_mutex_unlock(&d->ctr_mu);
    }
    yajl_tree_free(ic.root);
    img_image_free(im);
    srv_sandbox_put(d, sb);
    return r;
}

/* ---- Start / Stop / Remove ---- */

static srv_container *get_or_err(srv_daemon *d, const char *id, cr_err **err)
{
    cr_err *gerr = NULL;
    srv_container *c = ctr_get(d, id, &gerr);
    if (!c) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
        } else {
            cr_err_set(err, CR_NOT_FOUND, "container %s not found", id ? id : "");
        }
    }
    return c;
}

int srv_start_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__StartContainerRequest *in = (const Runtime__V1__StartContainerRequest *)req;
    srv_container *c = get_or_err(d, in->container_id, err);
    if (!c)
        return -1;
    pthread_mutex_lock(&c->op_mu);
    int r = 0;
    oci_runtime rt;
    pthread_mutex_lock(&d->ctr_mu);
    Runtime__V1__ContainerState st = c->state;
    pthread_mutex_unlock(&d->ctr_mu);
    if (st != RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED) {
        r = cr_err_set(err, CR_FAILED_PRECONDITION, "container %s is %s, not created", c->id, srv_container_state_name(st));
    } else if (!srv_handler_runtime(d, c->runtime_handler, &rt)) {
        r = cr_err_set(err, CR_FAILED_PRECONDITION, "container %s: runtime handler %s is gone", c->id, c->runtime_handler);
    } else if (oci_start(&rt, c->id, RUNTIME_TIMEOUT_S, err) < 0) {
        srv_metrics_failure(d, "runtime", "start");
        r = -1;
    } else {
        pthread_mutex_lock(&d->ctr_mu);
        int64_t now = srv_now_ns();
        /* The exit watcher may have seen it finish already (a quick exit). */
        bool done = c->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED && c->finished_at;
        c->started_at = done && c->finished_at < now ? c->finished_at : now;
        if (c->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED)
            c->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
        pthread_mutex_unlock(&d->ctr_mu);
        r = ctr_save(d, c, err);
        apply_exit(d, c); /* a container that already finished */
        cr_log_info("container started", "id", c->id, NULL);
        srv_publish_event(d, c->id, c->sandbox_id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
    }
    pthread_mutex_unlock(&c->op_mu);
    ctr_put(d, c);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__start_container_response__descriptor, resp, err);
}

/* Stop signal, up to timeout_s for it to work, then SIGKILL. */
static int stop_locked(srv_daemon *d, srv_container *c, int64_t timeout_s, cr_err **err)
{
    pthread_mutex_lock(&d->ctr_mu);
    Runtime__V1__ContainerState st = c->state;
    pthread_mutex_unlock(&d->ctr_mu);
    if (st == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED)
        return 0;
    if (apply_exit(d, c))
        return 0;
    oci_runtime rt;
    if (!srv_handler_runtime(d, c->runtime_handler, &rt))
        return cr_err_set(err, CR_FAILED_PRECONDITION, "container %s: runtime handler %s is gone", c->id, c->runtime_handler);
    cr_err *e = NULL;
    if (st == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING && timeout_s > 0) {
        if (oci_kill(&rt, c->id, c->stop_signal, false, &e) < 0) {
            cr_err_free(e);
            e = NULL;
        }
        if (wait_exited(d, c, timeout_s * 1000L))
            return 0;
    }
    if (oci_kill(&rt, c->id, SIGKILL, true, &e) < 0) {
        cr_err_free(e);
        e = NULL;
    }
    if (st == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED) {
        /* Never started: its init may never report; delete settles it. */
        if (wait_exited(d, c, 2000))
            return 0;
        oci_delete(&rt, c->id, true, NULL);
        if (wait_exited(d, c, KILL_WAIT_MS))
            return 0;
    } else if (wait_exited(d, c, KILL_WAIT_MS)) {
        return 0;
    }
    return cr_err_set(err, CR_DEADLINE_EXCEEDED, "container %s did not exit after SIGKILL", c->id);
}

int srv_stop_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__StopContainerRequest *in = (const Runtime__V1__StopContainerRequest *)req;
    srv_container *c = get_or_err(d, in->container_id, err);
    if (!c)
        return -1;
    pthread_mutex_lock(&c->op_mu);
    int r = stop_locked(d, c, in->timeout, err);
    pthread_mutex_unlock(&c->op_mu);
    ctr_put(d, c);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__stop_container_response__descriptor, resp, err);
}

static int remove_locked(srv_daemon *d, srv_container *c, cr_err **err)
{
    if (c->gone)
        return 0;
    if (stop_locked(d, c, 0, err) < 0)
        return -1;
    undo_create(d, c);
    pthread_mutex_lock(&d->ctr_mu);
    for (size_t i = 0; i < d->n_containers; i++)
        if (d->containers[i] == c) {
            memmove(&d->containers[i], &d->containers[i + 1], (d->n_containers - i - 1) * sizeof(c));
            d->n_containers--;
            c->gone = true;
            c->refs--;
            break;
        }
    pthread_mutex_unlock(&d->ctr_mu);
    cr_log_info("container removed", "id", c->id, NULL);
    srv_publish_event(d, c->id, c->sandbox_id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
    return 0;
}

int srv_remove_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__RemoveContainerRequest *in = (const Runtime__V1__RemoveContainerRequest *)req;
    cr_err *gerr = NULL;
    srv_container *c = ctr_get(d, in->container_id, &gerr);
    if (!c) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
            return -1;
        }
        return srv_empty_response(&runtime__v1__remove_container_response__descriptor, resp, err);
    }
    pthread_mutex_lock(&c->op_mu);
    int r = remove_locked(d, c, err);
    pthread_mutex_unlock(&c->op_mu);
    ctr_put(d, c);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__remove_container_response__descriptor, resp, err);
}

/* Every container of a pod (with references). */
static srv_container **pod_containers(srv_daemon *d, const char *pod_id, size_t *n)
{
    pthread_mutex_lock(&d->ctr_mu);
    srv_container **v = calloc(d->n_containers + 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; v && i < d->n_containers; i++)
        if (!strcmp(d->containers[i]->sandbox_id, pod_id)) {
            d->containers[i]->refs++;
            v[(*n)++] = d->containers[i];
        }
    pthread_mutex_unlock(&d->ctr_mu);
    return v;
}

int srv_containers_stop_pod(srv_daemon *d, const char *pod_id, cr_err **err)
{
    size_t n = 0;
    srv_container **v = pod_containers(d, pod_id, &n);
    int r = 0;
    for (size_t i = 0; v && i < n; i++) {
        pthread_mutex_lock(&v[i]->op_mu);
        if (stop_locked(d, v[i], 0, r < 0 ? NULL : err) < 0)
            r = -1;
        pthread_mutex_unlock(&v[i]->op_mu);
        ctr_put(d, v[i]);
    }
    free(v);
    return r;
}

int srv_containers_remove_pod(srv_daemon *d, const char *pod_id, cr_err **err)
{
    size_t n = 0;
    srv_container **v = pod_containers(d, pod_id, &n);
    int r = 0;
    for (size_t i = 0; v && i < n; i++) {
        pthread_mutex_lock(&v[i]->op_mu);
        if (remove_locked(d, v[i], r < 0 ? NULL : err) < 0)
            r = -1;
        pthread_mutex_unlock(&v[i]->op_mu);
        ctr_put(d, v[i]);
    }
    free(v);
    return r;
}

/* ---- Status / List ---- */

srv_container **srv_containers_snapshot(srv_daemon *d, size_t *n)
{
    pthread_mutex_lock(&d->ctr_mu);
    srv_container **v = calloc(d->n_containers + 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; v && i < d->n_containers; i++) {
        d->containers[i]->refs++;
        v[(*n)++] = d->containers[i];
    }
    pthread_mutex_unlock(&d->ctr_mu);
    return v;
}

void srv_containers_release(srv_daemon *d, srv_container **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        ctr_put(d, v[i]);
    free(v);
}

static Runtime__V1__ContainerMetadata *copy_md(bool *oom, const Runtime__V1__ContainerMetadata *m)
{
    Runtime__V1__ContainerMetadata *c = malloc(sizeof(*c));
    if (!c) {
        *oom = true;
        return NULL;
    }
    runtime__v1__container_metadata__init(c);
    c->name = strdup(m->name ? m->name : "");
    c->attempt = m->attempt;
    *oom |= !c->name;
    return c;
}

static Runtime__V1__ImageSpec *copy_spec(bool *oom, const char *image)
{
    Runtime__V1__ImageSpec *s = malloc(sizeof(*s));
    if (!s) {
        *oom = true;
        return NULL;
    }
    runtime__v1__image_spec__init(s);
    s->image = strdup(image ? image : "");
    *oom |= !s->image;
    return s;
}

static Runtime__V1__Container *ctr_to_pb(bool *oom, const srv_container *c)
{
    Runtime__V1__Container *p = malloc(sizeof(*p));
    if (!p) {
        *oom = true;
        return NULL;
    }
    runtime__v1__container__init(p);
    const Runtime__V1__ContainerConfig *cfg = c->config;
    p->id = strdup(c->id);
    p->pod_sandbox_id = strdup(c->sandbox_id);
    p->metadata = copy_md(oom, cfg->metadata);
    p->image = copy_spec(oom, cfg->image->image);
    p->image_ref = strdup(c->image_id);
    p->image_id = strdup(c->image_id);
    p->state = c->state;
    p->created_at = c->created_at;
    p->labels = srv_copy_map(oom, cfg->n_labels, (void *const *)cfg->labels,
                             &runtime__v1__container__labels_entry__descriptor, &p->n_labels);
    p->annotations = srv_copy_map(oom, cfg->n_annotations, (void *const *)cfg->annotations,
                                  &runtime__v1__container__annotations_entry__descriptor, &p->n_annotations);
    *oom |= !p->id || !p->pod_sandbox_id || !p->image_ref || !p->image_id;
    return p;
}

static Runtime__V1__ContainerStatus *status_to_pb(bool *oom, const srv_container *c)
{
    Runtime__V1__ContainerStatus *s = malloc(sizeof(*s));
    if (!s) {
        *oom = true;
        return NULL;
    }
    runtime__v1__container_status__init(s);
    const Runtime__V1__ContainerConfig *cfg = c->config;
    s->id = strdup(c->id);
    s->metadata = copy_md(oom, cfg->metadata);
    s->state = c->state;
    s->created_at = c->created_at;
    s->started_at = c->started_at;
    s->finished_at = c->finished_at;
    s->exit_code = c->exit_code;
    s->image = copy_spec(oom, cfg->image->image);
    s->image_ref = strdup(c->image_id);
    s->image_id = strdup(c->image_id);
    s->reason = strdup(c->reason ? c->reason : "");
    s->message = strdup(c->message ? c->message : "");
    s->labels = srv_copy_map(oom, cfg->n_labels, (void *const *)cfg->labels,
                             &runtime__v1__container_status__labels_entry__descriptor, &s->n_labels);
    s->annotations = srv_copy_map(oom, cfg->n_annotations, (void *const *)cfg->annotations,
                                  &runtime__v1__container_status__annotations_entry__descriptor, &s->n_annotations);
    if (cfg->n_mounts) {
        s->mounts = calloc(cfg->n_mounts, sizeof(*s->mounts));
        for (size_t i = 0; s->mounts && i < cfg->n_mounts; i++) {
            Runtime__V1__Mount *m = malloc(sizeof(*m));
            if (!m) {
                *oom = true;
                break;
            }
            runtime__v1__mount__init(m);
            m->container_path = strdup(cfg->mounts[i]->container_path);
            m->host_path = strdup(cfg->mounts[i]->host_path);
            m->readonly = cfg->mounts[i]->readonly;
            m->propagation = cfg->mounts[i]->propagation;
            s->mounts[s->n_mounts++] = m;
        }
    }
    s->log_path = strdup(c->log_path);
    if (cfg->linux && cfg->linux->resources) {
        Runtime__V1__ContainerResources *cr = malloc(sizeof(*cr));
        if (cr) {
            runtime__v1__container_resources__init(cr);
            /* Share nothing with the config: copy by packing. */
            size_t len = protobuf_c_message_get_packed_size(&cfg->linux->resources->base);
            uint8_t *buf = malloc(len ? len : 1);
            if (buf) {
                protobuf_c_message_pack(&cfg->linux->resources->base, buf);
                cr->linux = runtime__v1__linux_container_resources__unpack(NULL, len, buf);
                free(buf);
            }
            s->resources = cr;
        }
    }
    *oom |= !s->id || !s->image_ref || !s->image_id || !s->reason || !s->message || !s->log_path;
    return s;
}

void srv_publish_event(srv_daemon *d, const char *id, const char *pod_id, Runtime__V1__ContainerEventType type)
{
    if (!srv_events_wanted(d->events))
        return;
    bool oom = false;
    Runtime__V1__ContainerEventResponse ev = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
    ev.container_id = (char *)id;
    ev.container_event_type = type;
    ev.created_at = srv_now_ns();
    srv_sandbox *sb = srv_sandbox_get(d, pod_id, NULL);
    if (sb) {
        ev.pod_sandbox_status = srv_sandbox_status_pb(&oom, sb);
        srv_sandbox_put(d, sb);
    }
    pthread_mutex_lock(&d->ctr_mu);
    size_t n = 0;
    for (size_t i = 0; i < d->n_containers; i++)
        n += !strcmp(d->containers[i]->sandbox_id, pod_id);
    ev.containers_statuses = n ? calloc(n, sizeof(*ev.containers_statuses)) : NULL;
    for (size_t i = 0; ev.containers_statuses && i < d->n_containers; i++)
        if (!strcmp(d->containers[i]->sandbox_id, pod_id)) {
            Runtime__V1__ContainerStatus *st = status_to_pb(&oom, d->containers[i]);
            if (st)
                ev.containers_statuses[ev.n_containers_statuses++] = st;
        }
    pthread_mutex_unlock(&d->ctr_mu);
    if (!oom)
        srv_events_publish(d->events, &ev);
    else
        cr_log_warn("event dropped: out of memory", "id", id, NULL);
    for (size_t i = 0; i < ev.n_containers_statuses; i++)
        protobuf_c_message_free_unpacked(&ev.containers_statuses[i]->base, NULL);
    free(ev.containers_statuses);
    if (ev.pod_sandbox_status)
        protobuf_c_message_free_unpacked(&ev.pod_sandbox_status->base, NULL);
}

static char *info_json(srv_daemon *d, const srv_container *c)
{
    _cleanup_free_ char *spec_path = srv_pathf("%s/containers/%s/bundle/config.json", d->cfg->root, c->id);
    _cleanup_free_ char *spec = spec_path ? cr_read_file(spec_path, NULL, NULL) : NULL;
    yajl_val check = spec ? yajl_tree_parse(spec, NULL, 0) : NULL;
    bool spec_ok = check != NULL;
    yajl_tree_free(check);
    return srv_pathf("{\"pid\":%d,\"sandboxId\":\"%s\",\"name\":\"%s\",\"runtimeHandler\":\"%s\",\"cgroupsPath\":\"%s\","
                     "\"bundle\":\"%s/containers/%s/bundle\",\"oomKilled\":%s,\"runtimeSpec\":%s}",
                     c->pid, c->sandbox_id, c->name, c->runtime_handler, c->cgroups_path, d->cfg->root, c->id,
                     c->oom_killed ? "true" : "false", spec_ok ? spec : "null");
}

int srv_container_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ContainerStatusRequest *in = (const Runtime__V1__ContainerStatusRequest *)req;
    srv_container *c = get_or_err(d, in->container_id, err);
    if (!c)
        return -1;
    bool oom = false;
    Runtime__V1__ContainerStatusResponse *r = malloc(sizeof(*r));
    if (r) {
        runtime__v1__container_status_response__init(r);
        *resp = &r->base;
        pthread_mutex_lock(&d->ctr_mu);
        r->status = status_to_pb(&oom, c);
        pthread_mutex_unlock(&d->ctr_mu);
        if (in->verbose) {
            Runtime__V1__ContainerStatusResponse__InfoEntry *e = malloc(sizeof(*e));
            r->info = malloc(sizeof(*r->info));
            if (e && r->info) {
                runtime__v1__container_status_response__info_entry__init(e);
                e->key = strdup("info");
                e->value = info_json(d, c);
                oom = oom || !e->key || !e->value;
                r->info[r->n_info++] = e;
            } else {
                free(e);
                oom = true;
            }
        }
    }
    ctr_put(d, c);
    if (!r || oom)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "container status: out of memory");
    return 0;
}

static bool filter_match(const srv_container *c, const Runtime__V1__ContainerFilter *f)
{
    if (!f)
        return true;
    if (f->id && *f->id && strncmp(c->id, f->id, strlen(f->id)))
        return false;
    if (f->pod_sandbox_id && *f->pod_sandbox_id && strncmp(c->sandbox_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)))
        return false;
    if (f->state && f->state->state != c->state)
        return false;
    for (size_t i = 0; i < f->n_label_selector; i++) {
        const char *v = srv_map_get(c->config->n_labels, (void *const *)c->config->labels, f->label_selector[i]->key);
        if (!v || strcmp(v, f->label_selector[i]->value))
            return false;
    }
    return true;
}

/* Build the matching list under ctr_mu (cheap: the kubelet polls this). */
static Runtime__V1__Container **select_containers(srv_daemon *d, const Runtime__V1__ContainerFilter *f, size_t *n,
                                                  bool *oom)
{
    pthread_mutex_lock(&d->ctr_mu);
    Runtime__V1__Container **v = calloc(d->n_containers + 1, sizeof(*v));
    *n = 0;
    *oom = !v;
    for (size_t i = 0; v && i < d->n_containers && !*oom; i++)
        if (filter_match(d->containers[i], f))
            v[(*n)++] = ctr_to_pb(oom, d->containers[i]);
    pthread_mutex_unlock(&d->ctr_mu);
    return v;
}

int srv_list_containers(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ListContainersRequest *in = (const Runtime__V1__ListContainersRequest *)req;
    bool oom = false;
    size_t n = 0;
    Runtime__V1__Container **v = select_containers(d, in->filter, &n, &oom);
    Runtime__V1__ListContainersResponse *r = malloc(sizeof(*r));
    if (r) {
        runtime__v1__list_containers_response__init(r);
        r->containers = v;
        r->n_containers = n;
        *resp = &r->base;
    } else {
        for (size_t i = 0; i < n; i++)
            if (v[i])
                protobuf_c_message_free_unpacked(&v[i]->base, NULL);
        free(v);
    }
    if (!r || oom)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "list containers: out of memory");
    return 0;
}

int srv_stream_containers(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    const Runtime__V1__StreamContainersRequest *in = (const Runtime__V1__StreamContainersRequest *)req;
    bool oom = false;
    size_t n = 0;
    Runtime__V1__Container **v = select_containers(d, in->filter, &n, &oom);
    int r = oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream containers: out of memory") : 0;
    for (size_t start = 0; r == 0 && start < n; start += STREAM_CHUNK) {
        Runtime__V1__StreamContainersResponse pb = RUNTIME__V1__STREAM_CONTAINERS_RESPONSE__INIT;
        pb.containers = &v[start];
        pb.n_containers = n - start < STREAM_CHUNK ? n - start : STREAM_CHUNK;
        if (srv_stream_send(st, &pb.base) < 0)
            r = -1;
    }
    for (size_t i = 0; v && i < n; i++)
        if (v[i])
            protobuf_c_message_free_unpacked(&v[i]->base, NULL);
    free(v);
    return r;
}

int srv_reopen_container_log(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ReopenContainerLogRequest *in = (const Runtime__V1__ReopenContainerLogRequest *)req;
    srv_container *c = get_or_err(d, in->container_id, err);
    if (!c)
        return -1;
    int r = 0;
    pthread_mutex_lock(&d->ctr_mu);
    bool running = c->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    pthread_mutex_unlock(&d->ctr_mu);
    _cleanup_free_ char *fifo = srv_pathf("%s/containers/%s/" MON_CTL_FIFO, d->cfg->runroot, c->id);
    int fd = running && fifo ? open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC) : -1;
    if (!running)
        r = cr_err_set(err, CR_FAILED_PRECONDITION, "container %s is not running", c->id);
    else if (fd < 0)
        r = cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "container %s: monitor control fifo", c->id);
    else if (write(fd, MON_CTL_REOPEN "\n", sizeof(MON_CTL_REOPEN)) != (ssize_t)sizeof(MON_CTL_REOPEN))
        r = cr_err_errno(err, CR_INTERNAL, errno, "container %s: reopen the log", c->id);
    if (fd >= 0)
        close(fd);
    ctr_put(d, c);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__reopen_container_log_response__descriptor, resp, err);
}

/* ---- restart ---- */

static srv_container *load_one(srv_daemon *d, const char *id, cr_err **err)
{
    _cleanup_free_ char *dir = ctr_dir(d, id);
    _cleanup_free_ char *sp = srv_pathf("%s/state.json", dir ? dir : ""), *cp = srv_pathf("%s/config.pb", dir ? dir : "");
    _cleanup_free_ char *text = sp ? cr_read_file(sp, NULL, err) : NULL;
    size_t clen = 0;
    _cleanup_free_ char *cbuf = cp ? cr_read_file(cp, &clen, err) : NULL;
    if (!text || !cbuf)
        return NULL;
    yajl_val v = yajl_tree_parse(text, NULL, 0);
    srv_container *c = v ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        yajl_tree_free(v);
        cr_err_set(err, CR_DATA_LOSS, "%s: unreadable container record", sp);
        return NULL;
    }
    pthread_mutex_init(&c->op_mu, NULL);
#define JS(key) ({ const char *p_[] = { key, NULL }; yajl_val x_ = yajl_tree_get(v, p_, yajl_t_string); x_ ? YAJL_GET_STRING(x_) : ""; })
#define JI(key) ({ const char *p_[] = { key, NULL }; yajl_val x_ = yajl_tree_get(v, p_, yajl_t_number); x_ && YAJL_IS_INTEGER(x_) ? YAJL_GET_INTEGER(x_) : 0; })
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->sandbox_id, sizeof(c->sandbox_id), "%s", JS("sandboxId"));
    c->name = strdup(JS("name"));
    c->image_id = strdup(JS("imageId"));
    c->runtime_handler = strdup(JS("runtimeHandler"));
    c->log_path = strdup(JS("logPath"));
    c->cgroups_path = strdup(JS("cgroupsPath"));
    c->stop_signal = (int)JI("stopSignal");
    c->state = state_from(JS("state"));
    c->created_at = JI("createdAt");
    c->started_at = JI("startedAt");
    c->finished_at = JI("finishedAt");
    c->exit_code = (int)JI("exitCode");
    c->oom_killed = JI("oomKilled") != 0;
    c->reason = strdup(JS("reason"));
    c->message = strdup(JS("message"));
    c->pid = (int)JI("pid");
    c->pid_start = (uint64_t)JI("pidStart");
#undef JS
#undef JI
    yajl_tree_free(v);
    c->config = runtime__v1__container_config__unpack(NULL, clen, (const uint8_t *)cbuf);
    if (!c->name || !c->image_id || !c->runtime_handler || !c->log_path || !c->cgroups_path || !c->reason ||
        !c->message || !c->config || !c->config->metadata || !c->config->image) {
        container_free(c);
        cr_err_set(err, CR_DATA_LOSS, "%s: incomplete container record", dir);
        return NULL;
    }
    return c;
}

int srv_containers_load(srv_daemon *d, cr_err **err)
{
    _cleanup_free_ char *dir = srv_pathf("%s/containers", d->cfg->root);
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
        srv_container *c = load_one(d, de->d_name, &e);
        if (!c) {
            /* Never completely created: nothing refers to it. */
            cr_log_warn("dropping incomplete container", "id", de->d_name, "error", e ? e->msg : "", NULL);
            cr_err_free(e);
            srv_container tmp = { 0 };
            snprintf(tmp.id, sizeof(tmp.id), "%s", de->d_name);
            tmp.runtime_handler = d->cfg->default_runtime;
            undo_create(d, &tmp);
            continue;
        }
        pthread_mutex_lock(&d->ctr_mu);
        int r = ctr_add_locked(d, c);
        pthread_mutex_unlock(&d->ctr_mu);
        if (r < 0) {
            container_free(c);
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        }
        /* The monitor recorded any exit while crispd was down. */
        if (!apply_exit(d, c) && c->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED &&
            srv_proc_start_time(c->pid) != c->pid_start) {
            pthread_mutex_lock(&d->ctr_mu);
            c->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
            c->exit_code = 255;
            c->finished_at = srv_now_ns();
            set_str(&c->reason, "Unknown");
            set_str(&c->message, "the container ended while crispd was down and its exit code was not recorded");
            pthread_mutex_unlock(&d->ctr_mu);
            ctr_save(d, c, NULL);
        }
    }
    char count[24];
    snprintf(count, sizeof(count), "%zu", d->n_containers);
    cr_log_info("containers loaded", "count", count, NULL);
    return 0;
}

void srv_containers_free(srv_daemon *d)
{
    for (size_t i = 0; i < d->n_containers; i++)
        container_free(d->containers[i]);
    free(d->containers);
    d->containers = NULL;
    d->n_containers = 0;
    cr_strvfree(d->ctr_reserving);
    d->ctr_reserving = NULL;
}

/* ---- for the streaming backend (streaming.c) ---- */

srv_container *srv_container_get(srv_daemon *d, const char *id, cr_err **err) { return get_or_err(d, id, err); }
void srv_container_put(srv_daemon *d, srv_container *c) { ctr_put(d, c); }

Runtime__V1__ContainerState srv_container_state(srv_daemon *d, srv_container *c)
{
    pthread_mutex_lock(&d->ctr_mu);
    Runtime__V1__ContainerState s = c->state;
    pthread_mutex_unlock(&d->ctr_mu);
    return s;
}

char *srv_container_bundle(srv_daemon *d, const char *id) { return srv_pathf("%s/containers/%s/bundle", d->cfg->root, id); }
char *srv_container_rundir(srv_daemon *d, const char *id) { return ctr_rundir(d, id); }

/* ---- ExecSync / UpdateContainerResources ---- */

#define EXEC_OUTPUT_CAP (16u << 20) /* per stream, as the kubelet expects */

int srv_exec_sync(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ExecSyncRequest *in = (const Runtime__V1__ExecSyncRequest *)req;
    if (!in->n_cmd)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "ExecSync %s: cmd is empty", in->container_id);
    srv_container *c = get_or_err(d, in->container_id, err);
    if (!c)
        return -1;
    int r = -1;
    oci_runtime rt;
    _cleanup_strv_ char **args = NULL;
    size_t n = 0;
    bool oom = false;
    for (size_t i = 0; i < in->n_cmd; i++)
        oom |= strv_push(&args, &n, in->cmd[i]) < 0;
    oci_exec_result res = { 0 };
    Runtime__V1__ContainerState state = srv_container_state(d, c);
    if (oom) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    } else if (state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING) {
        cr_err_set(err, CR_FAILED_PRECONDITION, "ExecSync in %s: the container is %s, not running", c->id,
                   srv_container_state_name(state));
    } else if (!srv_handler_runtime(d, c->runtime_handler, &rt)) {
        cr_err_set(err, CR_FAILED_PRECONDITION, "container %s: runtime handler %s is gone", c->id, c->runtime_handler);
    } else if (oci_exec_sync_running(&rt, c->id, (const char *const *)args, (int)in->timeout, EXEC_OUTPUT_CAP,
                                     &res, err) == 0) {
        Runtime__V1__ExecSyncResponse *pb = malloc(sizeof(*pb));
        if (pb) {
            runtime__v1__exec_sync_response__init(pb);
            /* Hand the buffers over: the dispatcher frees them with the message. */
            pb->stdout.data = (uint8_t *)res.out;
            pb->stdout.len = res.out_len;
            pb->stderr.data = (uint8_t *)res.err;
            pb->stderr.len = res.err_len;
            pb->exit_code = res.exit_code;
            res.out = res.err = NULL;
            *resp = &pb->base;
            r = 0;
        } else {
            cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    oci_exec_result_clear(&res);
    ctr_put(d, c);
    return r;
}

int srv_update_container_resources(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                   cr_err **err)
{
    const Runtime__V1__UpdateContainerResourcesRequest *in = (const Runtime__V1__UpdateContainerResourcesRequest *)req;
    srv_container *c = get_or_err(d, in->container_id, err);
    if (!c)
        return -1;
    const Runtime__V1__LinuxContainerResources *res = in->linux;
    int r = 0;
    oci_runtime rt;
    pthread_mutex_lock(&c->op_mu);
    if (!res) {
        r = 0; /* nothing for Linux to change */
    } else if (!srv_handler_runtime(d, c->runtime_handler, &rt)) {
        r = cr_err_set(err, CR_FAILED_PRECONDITION, "container %s: runtime handler %s is gone", c->id, c->runtime_handler);
    } else {
        oci_spec_input in_res = {
            .cpu_shares = res->cpu_shares, .cpu_quota = res->cpu_quota, .cpu_period = res->cpu_period,
            .memory_limit = res->memory_limit_in_bytes, .memory_swap = res->memory_swap_limit_in_bytes,
            .cpuset_cpus = res->cpuset_cpus && *res->cpuset_cpus ? res->cpuset_cpus : NULL,
            .cpuset_mems = res->cpuset_mems && *res->cpuset_mems ? res->cpuset_mems : NULL,
        };
        r = oci_update(&rt, c->id, &in_res, err);
        if (r == 0) {
            /* Reflect the new resources in the record and in ContainerStatus. */
            size_t len = protobuf_c_message_get_packed_size(&res->base);
            uint8_t *buf = malloc(len ? len : 1);
            Runtime__V1__LinuxContainerResources *copy = NULL;
            if (buf) {
                protobuf_c_message_pack(&res->base, buf);
                copy = runtime__v1__linux_container_resources__unpack(NULL, len, buf);
                free(buf);
            }
            if (copy && c->config->linux) {
                pthread_mutex_lock(&d->ctr_mu);
                if (c->config->linux->resources)
                    protobuf_c_message_free_unpacked(&c->config->linux->resources->base, NULL);
                c->config->linux->resources = copy;
                copy = NULL;
                pthread_mutex_unlock(&d->ctr_mu);
                r = ctr_save_config(d, c, err);
            }
            if (copy)
                protobuf_c_message_free_unpacked(&copy->base, NULL);
        }
    }
    pthread_mutex_unlock(&c->op_mu);
    ctr_put(d, c);
    return r < 0 ? -1 : srv_empty_response(&runtime__v1__update_container_resources_response__descriptor, resp, err);
}
