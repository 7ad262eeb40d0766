/* Containers with real runc and real crun: busybox images from a real
 * registry, pods with the host network (networking is covered by test_pods),
 * crisp-monitor logs and exit codes, stop grace periods, users, security
 * settings, mounts, resources and OOM kills, log reopen, host PID, restart
 * recovery.  Most cases run once per runtime handler (check loop tests).
 *
 * crun 1.8 refuses this VM's hybrid cgroup layout (hugetlb on the v2
 * hierarchy): the crun handler is pointed at a wrapper that runs crun in a
 * private mount namespace with /sys/fs/cgroup/unified/cgroup.controllers
 * hidden under an empty file. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/fs.h"
#include "test/fixtures/registry.h"

static char suite_dir[128];
static tf_registry reg;
static char image[128];
static th_daemon D;
static const char *const handlers[] = { "runc", "crun" };
static const char *handler = "runc"; /* the runtime handler of this test's pods */


/* Loop tests take the handler from their index. */
#define TH_ADD_BOTH(tc, name)                                              \
    do {                                                                   \
        const char *only_ = getenv("CRISP_TEST_ONLY");                     \
        if (!only_ || !*only_ || strcmp(only_, #name) == 0)                \
            tcase_add_loop_test(tc, name, 0, 2);                           \
    } while (0)
#define USE_HANDLER() (handler = handlers[_i])

/* The crun handler's binary: crun itself, or on a hybrid layout a wrapper
 * hiding the v2 controllers list from it (see the top of this file). */
static void suite_setup(void)
{
    strcpy(suite_dir, "/tmp/crisp-ctr-XXXXXX");
    if (!mkdtemp(suite_dir))
        th_setup_die("mkdtemp", NULL);
    char err[512];
    if (tf_registry_start(&reg, NULL, NULL, err, sizeof(err)) < 0)
        th_setup_die("registry", err);
    th_push_image(suite_dir, "busybox", "busybox", &reg, "busybox:latest", false, NULL, NULL);
    snprintf(image, sizeof(image), "%s/busybox:latest", reg.addr);
    th_write_crun_wrapper(suite_dir);
}

static void suite_teardown(void)
{
    tf_registry_stop(&reg);
    cr_remove_tree(suite_dir, NULL);
}

static void start(void)
{
    char extra[512];
    th_prepare(&D, NULL);
    char path[256], regs[256];
    snprintf(path, sizeof(path), "%s/registries.conf", D.dir);
    snprintf(regs, sizeof(regs), "[[registry]]\nlocation = \"%s\"\ninsecure = true\n", reg.addr);
    ck_assert_int_eq(cr_write_file_atomic(path, regs, strlen(regs), 0644, NULL), 0);
    FILE *f = fopen(D.config, "a");
    snprintf(extra, sizeof(extra),
             "[crisp.image]\nregistries_conf = \"%s\"\n"
             "[crisp.runtime.runtimes.crun]\nruntime_path = \"%s/crun-wrap\"\n", path, suite_dir);
    fputs(extra, f);
    fclose(f);
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__PullImageResponse *r = cc_pull_image(c, image, NULL, &err);
    ck_assert_msg(r != NULL, "pull: %s", err ? err->msg : "");
    cc_free(r);
    cc_close(c);
}

static void teardown(void)
{
    if (D.pid > 0) {
        cc_conn *c = th_connect(&D);
        cr_err *err = NULL;
        Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
        for (size_t i = 0; l && i < l->n_items; i++) {
            cr_err *e = NULL;
            if (cc_remove_pod_sandbox(c, l->items[i]->id, &e) < 0) {
                fprintf(stderr, "teardown: rmp: %s\n", e->msg);
                cr_err_free(e);
            }
        }
        if (l)
            cc_free(l);
        cr_err_free(err);
        cc_close(c);
    }
    th_cleanup(&D);
}

static Runtime__V1__NamespaceMode pod_pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;

static Runtime__V1__PodSandboxConfig *pod_config(const char *name)
{
    static Runtime__V1__PodSandboxMetadata md;
    static Runtime__V1__NamespaceOption nso;
    static Runtime__V1__LinuxSandboxSecurityContext sc;
    static Runtime__V1__LinuxPodSandboxConfig lx;
    static Runtime__V1__PodSandboxConfig cfg;
    static char uid[64], logdir[256];
    runtime__v1__pod_sandbox_metadata__init(&md);
    runtime__v1__namespace_option__init(&nso);
    runtime__v1__linux_sandbox_security_context__init(&sc);
    runtime__v1__linux_pod_sandbox_config__init(&lx);
    runtime__v1__pod_sandbox_config__init(&cfg);
    snprintf(uid, sizeof(uid), "uid-%s", name);
    snprintf(logdir, sizeof(logdir), "%s/logs/%s", D.dir, name);
    md.name = (char *)name;
    md.namespace_ = "ctr-test";
    md.uid = uid;
    nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    nso.pid = pod_pid_mode;
    sc.namespace_options = &nso;
    lx.security_context = &sc;
    cfg.metadata = &md;
    cfg.log_directory = logdir;
    cfg.linux = &lx;
    return &cfg;
}

static char *run_pod(cc_conn *c, const char *name)
{
    cr_err *err = NULL;
    Runtime__V1__RunPodSandboxResponse *r = cc_run_pod_sandbox(c, pod_config(name), handler, &err);
    ck_assert_msg(r != NULL, "runp: %s", err ? err->msg : "");
    char *id = strdup(r->pod_sandbox_id);
    cc_free(r);
    return id;
}

typedef struct ctr_opts {
    const char *name;
    const char *script;          /* sh -c script */
    const char *const *env;      /* key, value, ..., NULL */
    int64_t run_as_user;         /* -1: image's */
    const char *workdir;
    bool readonly;
    const char *const *drop_caps;
    const char *const *add_caps;
    bool privileged;
    Runtime__V1__SecurityProfile__ProfileType seccomp; /* RuntimeDefault (0) unless set */
    int64_t memory_limit;
    bool host_pid;
    const char *const *mounts;   /* host path, container path, "ro"|"rw", ..., NULL */
    const char *username;        /* run_as_username */
    int64_t run_as_group;        /* > 0: run_as_group */
} ctr_opts;

static char *create(cc_conn *c, const char *pod, const ctr_opts *o, cr_err **errp)
{
    Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
    md.name = (char *)o->name;
    Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
    spec.image = image;
    Runtime__V1__ContainerConfig cfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
    cfg.metadata = &md;
    cfg.image = &spec;
    char *cmd[] = { "/bin/sh", "-c", (char *)o->script };
    cfg.command = cmd;
    cfg.n_command = 3;
    char logname[128];
    snprintf(logname, sizeof(logname), "%s.log", o->name);
    cfg.log_path = logname;
    cfg.working_dir = (char *)(o->workdir ? o->workdir : "");
    Runtime__V1__KeyValue kv[8], *kvp[8];
    for (int i = 0; o->env && o->env[2 * i]; i++) {
        runtime__v1__key_value__init(&kv[i]);
        kv[i].key = (char *)o->env[2 * i];
        kv[i].value = (char *)o->env[2 * i + 1];
        kvp[i] = &kv[i];
        cfg.n_envs = (size_t)i + 1;
    }
    cfg.envs = kvp;
    Runtime__V1__LinuxContainerSecurityContext sc = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
    Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
    if (o->run_as_user >= 0) {
        uid.value = o->run_as_user;
        sc.run_as_user = &uid;
    }
    sc.readonly_rootfs = o->readonly;
    sc.run_as_username = (char *)(o->username ? o->username : "");
    Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
    if (o->run_as_group > 0) {
        gid.value = o->run_as_group;
        sc.run_as_group = &gid;
    }
    Runtime__V1__Capability caps = RUNTIME__V1__CAPABILITY__INIT;
    for (size_t i = 0; o->drop_caps && o->drop_caps[i]; i++)
        caps.n_drop_capabilities = i + 1;
    caps.drop_capabilities = (char **)o->drop_caps;
    for (size_t i = 0; o->add_caps && o->add_caps[i]; i++)
        caps.n_add_capabilities = i + 1;
    caps.add_capabilities = (char **)o->add_caps;
    sc.capabilities = &caps;
    sc.privileged = o->privileged;
    Runtime__V1__SecurityProfile seccomp = RUNTIME__V1__SECURITY_PROFILE__INIT;
    seccomp.profile_type = o->seccomp;
    sc.seccomp = &seccomp;
    Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    nso.pid = o->host_pid ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    sc.namespace_options = &nso;
    Runtime__V1__LinuxContainerResources res = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
    res.memory_limit_in_bytes = o->memory_limit;
    res.memory_swap_limit_in_bytes = o->memory_limit; /* no swap on top */
    Runtime__V1__LinuxContainerConfig lx = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
    lx.security_context = &sc;
    lx.resources = &res;
    cfg.linux = &lx;
    Runtime__V1__Mount mnt[4], *mntp[4];
    for (size_t i = 0; o->mounts && o->mounts[3 * i] && i < 4; i++) {
        runtime__v1__mount__init(&mnt[i]);
        mnt[i].host_path = (char *)o->mounts[3 * i];
        mnt[i].container_path = (char *)o->mounts[3 * i + 1];
        mnt[i].readonly = !strcmp(o->mounts[3 * i + 2], "ro");
        mntp[i] = &mnt[i];
        cfg.n_mounts = i + 1;
    }
    cfg.mounts = mntp;
    cr_err *err = NULL;
    Runtime__V1__CreateContainerResponse *r = cc_create_container(c, pod, &cfg, pod_config(o->name), &err);
    if (!r) {
        if (errp) {
            *errp = err;
            return NULL;
        }
        ck_abort_msg("create %s: %s", o->name, err ? err->msg : "");
    }
    char *id = strdup(r->container_id);
    cc_free(r);
    return id;
}

static Runtime__V1__ContainerStatus *wait_state(cc_conn *c, const char *id, Runtime__V1__ContainerState want,
                                                Runtime__V1__ContainerStatusResponse **keep)
{
    long until = th_now_ms() + 20000;
    for (;;) {
        cr_err *err = NULL;
        Runtime__V1__ContainerStatusResponse *r = cc_container_status(c, id, 0, &err);
        ck_assert_msg(r != NULL, "status: %s", err ? err->msg : "");
        if (r->status->state == want || th_now_ms() > until) {
            ck_assert_msg(r->status->state == want, "container state %d, want %d", r->status->state, want);
            *keep = r;
            return r->status;
        }
        cc_free(r);
        usleep(20000);
    }
}

static char *log_of(const char *pod, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/logs/%s/%s.log", D.dir, pod, name);
    return cr_read_file(p, NULL, NULL);
}

static char *run_to_exit(cc_conn *c, const char *pod, const char *pod_name, const ctr_opts *o, int *exit_code)
{
    char *id = create(c, pod, o, NULL);
    cr_err *err = NULL;
    ck_assert_msg(cc_start_container(c, id, &err) == 0, "start: %s", err ? err->msg : "");
    Runtime__V1__ContainerStatusResponse *keep;
    Runtime__V1__ContainerStatus *st = wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED, &keep);
    *exit_code = st->exit_code;
    cc_free(keep);
    free(id);
    return log_of(pod_name, o->name);
}

START_TEST(logs_and_exit_codes)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "echo");
    ctr_opts o = { .name = "echo", .script = "echo hello; echo oops >&2; exit 3", .run_as_user = -1 };
    char *id = create(c, pod, &o, NULL);
    cr_err *err = NULL;
    Runtime__V1__ContainerStatusResponse *keep;
    Runtime__V1__ContainerStatus *st = wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED, &keep);
    ck_assert_int_gt(st->created_at, 0);
    cc_free(keep);
    ck_assert_msg(cc_start_container(c, id, &err) == 0, "start: %s", err ? err->msg : "");
    st = wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED, &keep);
    ck_assert_int_eq(st->exit_code, 3);
    ck_assert_str_eq(st->reason, "Error");
    ck_assert_int_ge(st->finished_at, st->started_at);
    ck_assert_ptr_nonnull(strstr(st->image_ref, "sha256:"));
    cc_free(keep);
    char *log = log_of("echo", "echo");
    ck_assert_msg(log && strstr(log, " stdout F hello\n") && strstr(log, " stderr F oops\n"), "log: %s", log);
    free(log);
    ctr_opts ok = { .name = "ok", .script = "exit 0", .run_as_user = -1 };
    int code = -1;
    free(run_to_exit(c, pod, "echo", &ok, &code));
    ck_assert_int_eq(code, 0);
    free(id);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(stop_kills_after_the_grace_period)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "stubborn");
    ctr_opts o = { .name = "stubborn", .script = "trap '' TERM; while true; do sleep 0.1; done", .run_as_user = -1 };
    char *id = create(c, pod, &o, NULL);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_start_container(c, id, &err), 0);
    Runtime__V1__ContainerStatusResponse *keep;
    wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING, &keep);
    cc_free(keep);
    ck_assert_msg(cc_stop_container(c, id, 1, &err) == 0, "stop: %s", err ? err->msg : "");
    Runtime__V1__ContainerStatus *st = wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED, &keep);
    ck_assert_int_eq(st->exit_code, 137);
    cc_free(keep);
    ck_assert_int_eq(cc_stop_container(c, id, 1, &err), 0); /* idempotent */
    free(id);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(env_user_workdir_readonly_caps)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "who");
    const char *env[] = { "FOO", "bar", NULL };
    ctr_opts o = { .name = "who", .script = "id -u; id -g; pwd; echo $FOO; grep CapEff /proc/self/status",
                   .env = env, .run_as_user = 1000, .workdir = "/tmp" };
    int code = -1;
    char *log = run_to_exit(c, pod, "who", &o, &code);
    ck_assert_int_eq(code, 0);
    ck_assert_msg(log && strstr(log, "F 1000\n") && strstr(log, "F /tmp\n") && strstr(log, "F bar\n"), "log: %s", log);
    free(log);
    /* By name: uid, primary group and the image's supplemental groups from
     * its /etc/passwd and /etc/group (app = 1000, also in extra = 2000). */
    ctr_opts byname = { .name = "byname", .script = "id -u; id -G; echo home=$HOME", .run_as_user = -1,
                        .username = "app" };
    log = run_to_exit(c, pod, "who", &byname, &code);
    ck_assert_msg(code == 0 && log && strstr(log, "F 1000\n") && strstr(log, "F 1000 2000\n") &&
                  strstr(log, "F home=/home/app\n"), "exit %d, log: %s", code, log);
    free(log);
    ctr_opts group = { .name = "group", .script = "id -u; id -g", .run_as_user = 1000, .run_as_group = 65534 };
    log = run_to_exit(c, pod, "who", &group, &code);
    ck_assert_msg(code == 0 && log && strstr(log, "F 1000\n") && strstr(log, "F 65534\n"), "log: %s", log);
    free(log);
    ctr_opts nouser = { .name = "nouser", .script = "true", .run_as_user = -1, .username = "nosuchuser" };
    cr_err *err = NULL;
    ck_assert_ptr_null(create(c, pod, &nouser, &err));
    ck_assert_msg(err->code == CR_INVALID_ARGUMENT || err->code == CR_NOT_FOUND, "%s", err->msg);
    ck_assert_msg(strstr(err->msg, "nosuchuser"), "%s", err->msg);
    cr_err_free(err);
    const char *all[] = { "ALL", NULL };
    ctr_opts ro = { .name = "ro", .script = "grep CapEff /proc/self/status; touch /x", .run_as_user = -1,
                    .readonly = true, .drop_caps = all };
    log = run_to_exit(c, pod, "who", &ro, &code);
    ck_assert_int_ne(code, 0); /* read-only rootfs */
    ck_assert_msg(log && strstr(log, "CapEff:\t0000000000000000"), "log: %s", log);
    free(log);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(list_status_remove)
{
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "lister");
    ctr_opts a = { .name = "a", .script = "sleep 1000", .run_as_user = -1 };
    ctr_opts b = { .name = "b", .script = "sleep 1000", .run_as_user = -1 };
    char *ida = create(c, pod, &a, NULL), *idb = create(c, pod, &b, NULL);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_start_container(c, ida, &err), 0);
    Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
    Runtime__V1__ContainerStateValue sv = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
    sv.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    f.state = &sv;
    Runtime__V1__ListContainersResponse *l = cc_list_containers(c, &f, &err);
    ck_assert_int_eq(l->n_containers, 1);
    ck_assert_str_eq(l->containers[0]->id, ida);
    ck_assert_str_eq(l->containers[0]->pod_sandbox_id, pod);
    cc_free(l);
    Runtime__V1__ContainerFilter all = RUNTIME__V1__CONTAINER_FILTER__INIT;
    all.pod_sandbox_id = pod;
    l = cc_list_containers(c, &all, &err);
    ck_assert_int_eq(l->n_containers, 2);
    cc_free(l);
    /* Same name again: a retry of a create gets the same container; a name
     * whose container has started is taken. */
    char *again = create(c, pod, &b, NULL);
    ck_assert_str_eq(again, idb);
    free(again);
    ck_assert_ptr_null(create(c, pod, &a, &err));
    ck_assert_int_eq(err->code, CR_ALREADY_EXISTS);
    ck_assert_msg(strstr(err->msg, ida) && strstr(err->msg, "running"), "%s", err->msg);
    cr_err_free(err);
    err = NULL;
    /* The image is in use. */
    ck_assert_int_lt(cc_remove_image(c, image, &err), 0);
    ck_assert_int_eq(err->code, CR_FAILED_PRECONDITION);
    cr_err_free(err);
    err = NULL;
    ck_assert_int_eq(cc_remove_container(c, ida, &err), 0); /* running: killed and removed */
    ck_assert_int_eq(cc_remove_container(c, ida, &err), 0);
    ck_assert_ptr_null(cc_container_status(c, ida, 0, &err));
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    cr_err_free(err);
    err = NULL;
    char *mounts = cr_read_file("/proc/self/mountinfo", NULL, NULL);
    ck_assert_msg(!strstr(mounts, ida), "the overlay of a removed container is still mounted");
    free(mounts);
    /* Removing the pod removes its remaining container. */
    ck_assert_int_eq(cc_remove_pod_sandbox(c, pod, &err), 0);
    ck_assert_ptr_null(cc_container_status(c, idb, 0, &err));
    cr_err_free(err);
    err = NULL;
    ck_assert_int_eq(cc_remove_image(c, image, &err), 0);
    free(ida);
    free(idb);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(survives_crispd_kill)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "ticker");
    ctr_opts o = { .name = "ticker", .script = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
                   .run_as_user = -1 };
    char *id = create(c, pod, &o, NULL);
    ctr_opts q = { .name = "quitter", .script = "read x; exit 7", .run_as_user = -1 };
    char *idq = create(c, pod, &q, NULL);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_start_container(c, id, &err), 0);
    ck_assert_msg(cc_start_container(c, idq, &err) == 0, "start quitter: %s", err ? err->msg : "");
    cc_close(c);
    kill(D.pid, SIGKILL);
    waitpid(D.pid, NULL, 0);
    D.pid = -1;
    /* While crispd is down: the ticker keeps logging, the quitter ends. */
    char *before = log_of("ticker", "ticker");
    size_t n0 = before ? strlen(before) : 0;
    free(before);
    char path[512];
    snprintf(path, sizeof(path), "%s/run/containers/%s/" "ctl", D.dir, idq);
    long until = th_now_ms() + 5000;
    bool grew = false;
    while (!grew && th_now_ms() < until) {
        char *now = log_of("ticker", "ticker");
        grew = now && strlen(now) > n0;
        free(now);
        usleep(50000);
    }
    ck_assert_msg(grew, "the log stopped growing when crispd died");
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
    c = th_connect(&D);
    Runtime__V1__ContainerStatusResponse *keep;
    wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING, &keep);
    cc_free(keep);
    ck_assert_msg(cc_stop_container(c, id, 2, &err) == 0, "stop after restart: %s", err ? err->msg : "");
    wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED, &keep);
    cc_free(keep);
    free(id);
    free(idq);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(create_errors_are_clear)
{
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "errs");
    cr_err *err = NULL;
    ctr_opts o = { .name = "x", .script = "true", .run_as_user = -1 };
    ck_assert_ptr_null(create(c, "0000000000000000000000000000000000000000000000000000000000000000", &o, &err));
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    cr_err_free(err);
    err = NULL;
    char *saved = strdup(image);
    snprintf(image, sizeof(image), "%s/not-pulled:1", reg.addr);
    ck_assert_ptr_null(create(c, pod, &o, &err));
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    ck_assert_msg(strstr(err->msg, "not-pulled"), "%s", err->msg);
    cr_err_free(err);
    snprintf(image, sizeof(image), "%s", saved);
    free(saved);
    char p[512];
    snprintf(p, sizeof(p), "%s/root/containers", D.dir);
    DIR *dd = opendir(p);
    int n = 0;
    struct dirent *de;
    while (dd && (de = readdir(dd)))
        n += de->d_name[0] != '.';
    if (dd)
        closedir(dd);
    ck_assert_int_eq(n, 0);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(exec_sync_and_update)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "execer");
    ctr_opts o = { .name = "execer", .script = "sleep 1000", .run_as_user = -1 };
    char *id = create(c, pod, &o, NULL);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_start_container(c, id, &err), 0);
    const char *cmd[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    Runtime__V1__ExecSyncResponse *r = cc_exec_sync(c, id, cmd, 10, &err);
    ck_assert_msg(r != NULL, "exec: %s", err ? err->msg : "");
    ck_assert_int_eq(r->exit_code, 3);
    ck_assert_int_eq(r->stdout.len, 4);
    ck_assert_int_eq(memcmp(r->stdout.data, "out\n", 4), 0);
    ck_assert_int_eq(memcmp(r->stderr.data, "err\n", 4), 0);
    cc_free(r);
    const char *slow[] = { "/bin/sleep", "100", NULL };
    ck_assert_ptr_null(cc_exec_sync(c, id, slow, 1, &err));
    ck_assert_int_eq(err->code, CR_DEADLINE_EXCEEDED);
    cr_err_free(err);
    err = NULL;
    /* Update: the new memory limit shows in the container's cgroup. */
    Runtime__V1__LinuxContainerResources res = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
    res.memory_limit_in_bytes = 64 * 1024 * 1024;
    ck_assert_msg(cc_update_container_resources(c, id, &res, &err) == 0, "update: %s", err ? err->msg : "");
    const char *lim[] = { "/bin/sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max", NULL };
    r = cc_exec_sync(c, id, lim, 10, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->stdout.len >= 8 && !memcmp(r->stdout.data, "67108864", 8), "limit %.*s",
                  (int)r->stdout.len, (char *)r->stdout.data);
    cc_free(r);
    Runtime__V1__ContainerStatusResponse *st = cc_container_status(c, id, 0, &err);
    ck_assert(st && st->status->resources && st->status->resources->linux &&
              st->status->resources->linux->memory_limit_in_bytes == 64 * 1024 * 1024);
    cc_free(st);
    free(id);
    free(pod);
    cc_close(c);
}
END_TEST

/* The host's capability bounding set, as /proc/self/status prints it. */
static void own_cap_bounding(char *out, size_t len)
{
    char *st = cr_read_file("/proc/self/status", NULL, NULL);
    char *p = st ? strstr(st, "CapBnd:\t") : NULL;
    ck_assert_ptr_nonnull(p);
    snprintf(out, len, "%.16s", p + 8);
    free(st);
}

START_TEST(seccomp_caps_privileged)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "sec");
    int code = -1;
    /* Creating a user namespace needs no capability, but RuntimeDefault only
     * allows unshare with CAP_SYS_ADMIN; Unconfined leaves it to the kernel. */
    ctr_opts deflt = { .name = "deflt", .script = "unshare -U true && echo unshared; grep CapEff /proc/self/status",
                       .run_as_user = -1 };
    char *log = run_to_exit(c, pod, "sec", &deflt, &code);
    ck_assert_msg(log && !strstr(log, "unshared") && strstr(log, "CapEff:\t00000000000005fb"), "log: %s", log);
    free(log);
    ctr_opts unconf = { .name = "unconf", .script = "unshare -U true && echo unshared", .run_as_user = -1,
                        .seccomp = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined };
    log = run_to_exit(c, pod, "sec", &unconf, &code);
    ck_assert_msg(code == 0 && log && strstr(log, "F unshared\n"), "exit %d, log: %s", code, log);
    free(log);
    /* add NET_ADMIN (bit 12) and drop KILL (bit 5) from the default set */
    const char *add[] = { "NET_ADMIN", NULL }, *drop[] = { "CAP_KILL", NULL };
    ctr_opts capped = { .name = "capped", .script = "grep CapEff /proc/self/status", .run_as_user = -1,
                        .add_caps = add, .drop_caps = drop };
    log = run_to_exit(c, pod, "sec", &capped, &code);
    ck_assert_msg(log && strstr(log, "CapEff:\t00000000000015db"), "log: %s", log);
    free(log);
    /* privileged: every capability the host can give, host devices, nothing masked */
    char bnd[32], want[64];
    own_cap_bounding(bnd, sizeof(bnd));
    snprintf(want, sizeof(want), "CapEff:\t%s", bnd);
    ctr_opts priv = { .name = "priv", .run_as_user = -1, .privileged = true,
                      .script = "grep CapEff /proc/self/status; test -e /dev/kmsg && echo devices; "
                                "[ $(head -c 1 /proc/timer_list | wc -c) = 1 ] && echo unmasked" };
    log = run_to_exit(c, pod, "sec", &priv, &code);
    ck_assert_msg(log && strstr(log, want) && strstr(log, "F devices\n") && strstr(log, "F unmasked\n"),
                  "want %s, log: %s", want, log);
    free(log);
    ctr_opts plain = { .name = "plain", .run_as_user = -1,
                       .script = "test -e /dev/kmsg && echo devices; [ $(head -c 1 /proc/timer_list | wc -c) = 1 ] && echo unmasked; true" };
    log = run_to_exit(c, pod, "sec", &plain, &code);
    ck_assert_msg(log && !strstr(log, "devices") && !strstr(log, "unmasked"), "log: %s", log);
    free(log);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(mounts_readonly_and_missing)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "vols");
    char vol[256], file[300];
    snprintf(vol, sizeof(vol), "%s/vol", D.dir);
    ck_assert_int_eq(mkdir(vol, 0755), 0);
    snprintf(file, sizeof(file), "%s/hostfile", vol);
    ck_assert_int_eq(cr_write_file_atomic(file, "from host\n", 10, 0644, NULL), 0);
    const char *mounts[] = { vol, "/ro", "ro", vol, "/rw", "rw", NULL };
    ctr_opts o = { .name = "vols", .run_as_user = -1, .mounts = mounts,
                   .script = "cat /ro/hostfile; touch /ro/x && echo ro-writable; echo written > /rw/y" };
    int code = -1;
    char *log = run_to_exit(c, pod, "vols", &o, &code);
    ck_assert_msg(code == 0 && log && strstr(log, "F from host\n") && !strstr(log, "ro-writable"),
                  "exit %d, log: %s", code, log);
    free(log);
    snprintf(file, sizeof(file), "%s/y", vol);
    char *y = cr_read_file(file, NULL, NULL);
    ck_assert_msg(y && !strcmp(y, "written\n"), "the rw mount did not reach the host");
    free(y);
    snprintf(file, sizeof(file), "%s/x", vol);
    ck_assert_int_ne(access(file, F_OK), 0);
    /* A missing host path is a clear INVALID_ARGUMENT naming it. */
    const char *missing[] = { "/nonexistent/crisp-vol", "/m", "rw", NULL };
    ctr_opts bad = { .name = "bad", .run_as_user = -1, .mounts = missing, .script = "true" };
    cr_err *err = NULL;
    ck_assert_ptr_null(create(c, pod, &bad, &err));
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err->msg, "/nonexistent/crisp-vol"), "%s", err->msg);
    cr_err_free(err);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(memory_limit_and_oom_kill)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "oom");
    ctr_opts lim = { .name = "lim", .run_as_user = -1, .memory_limit = 32 << 20,
                     .script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max" };
    int code = -1;
    char *log = run_to_exit(c, pod, "oom", &lim, &code);
    ck_assert_msg(log && strstr(log, "F 33554432\n"), "log: %s", log);
    free(log);
    /* dd's 64 MiB buffer does not fit in 16 MiB: the kernel kills it. */
    ctr_opts hog = { .name = "hog", .run_as_user = -1, .memory_limit = 16 << 20,
                     .script = "exec dd if=/dev/zero of=/dev/null bs=64M count=4" };
    char *id = create(c, pod, &hog, NULL);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_start_container(c, id, &err), 0);
    Runtime__V1__ContainerStatusResponse *keep;
    Runtime__V1__ContainerStatus *st = wait_state(c, id, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED, &keep);
    ck_assert_int_eq(st->exit_code, 137);
    ck_assert_str_eq(st->reason, "OOMKilled");
    cc_free(keep);
    free(id);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(log_reopen_after_rename)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "rot");
    ctr_opts o = { .name = "rot", .run_as_user = -1,
                   .script = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done" };
    char *id = create(c, pod, &o, NULL);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_start_container(c, id, &err), 0);
    char path[512], rotated[520];
    snprintf(path, sizeof(path), "%s/logs/rot/rot.log", D.dir);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    long until = th_now_ms() + 10000;
    struct stat sb;
    while ((stat(path, &sb) < 0 || sb.st_size == 0) && th_now_ms() < until)
        usleep(20000);
    ck_assert_int_eq(rename(path, rotated), 0);
    ck_assert_msg(cc_reopen_container_log(c, id, &err) == 0, "reopen: %s", err ? err->msg : "");
    /* The monitor writes to a new file at the old path, whole lines only. */
    bool ok = false;
    while (!ok && th_now_ms() < until + 10000) {
        char *now = cr_read_file(path, NULL, NULL);
        ok = now && strstr(now, " stdout F line ");
        free(now);
        if (!ok)
            usleep(20000);
    }
    ck_assert_msg(ok, "no new log at %s after ReopenContainerLog", path);
    char *old = cr_read_file(rotated, NULL, NULL);
    ck_assert_msg(old && strstr(old, " stdout F line 0\n"), "rotated log: %s", old);
    free(old);
    ck_assert_int_eq(cc_stop_container(c, id, 0, &err), 0);
    /* Reopen on a stopped container is refused clearly. */
    ck_assert_int_lt(cc_reopen_container_log(c, id, &err), 0);
    ck_assert_int_eq(err->code, CR_FAILED_PRECONDITION);
    cr_err_free(err);
    free(id);
    free(pod);
    cc_close(c);
}
END_TEST

START_TEST(host_pid_pod_sees_host_processes)
{
    USE_HANDLER();
    start();
    cc_conn *c = th_connect(&D);
    char script[128];
    snprintf(script, sizeof(script), "test -e /proc/%d/status && echo sees-crispd; true", (int)D.pid);
    pod_pid_mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
    char *hpod = run_pod(c, "hostpid");
    pod_pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    ctr_opts o = { .name = "hostpid", .run_as_user = -1, .host_pid = true, .script = script };
    int code = -1;
    char *log = run_to_exit(c, hpod, "hostpid", &o, &code);
    ck_assert_msg(log && strstr(log, "F sees-crispd\n"), "log: %s", log);
    free(log);
    char *pod = run_pod(c, "ownpid");
    ctr_opts own = { .name = "ownpid", .run_as_user = -1, .script = script };
    log = run_to_exit(c, pod, "ownpid", &own, &code);
    ck_assert_msg(log && !strstr(log, "sees-crispd"), "log: %s", log);
    free(log);
    free(pod);
    free(hpod);
    cc_close(c);
}
END_TEST

/* ---- stats and events ---- */


static Runtime__V1__ListContainerStatsResponse *list_stats(cc_conn *c, const char *pod)
{
    Runtime__V1__ContainerStatsFilter f = RUNTIME__V1__CONTAINER_STATS_FILTER__INIT;
    f.pod_sandbox_id = (char *)pod;
    Runtime__V1__ListContainerStatsRequest req = RUNTIME__V1__LIST_CONTAINER_STATS_REQUEST__INIT;
    req.filter = &f;
    ProtobufCMessage *resp = NULL;
    cr_err *err = NULL;
    ck_assert_msg(cc_call(c, CC_RUNTIME "ListContainerStats", &req.base,
                          &runtime__v1__list_container_stats_response__descriptor, &resp, &err) == 0,
                  "ListContainerStats: %s", err ? err->msg : "");
    return (Runtime__V1__ListContainerStatsResponse *)resp;
}

static const Runtime__V1__ContainerStats *stats_of(const Runtime__V1__ListContainerStatsResponse *r, const char *id)
{
    for (size_t i = 0; i < r->n_stats; i++)
        if (!strcmp(r->stats[i]->attributes->id, id))
            return r->stats[i];
    return NULL;
}

static Runtime__V1__PodSandboxStats *pod_stats(cc_conn *c, const char *pod, ProtobufCMessage **keep)
{
    Runtime__V1__PodSandboxStatsRequest req = RUNTIME__V1__POD_SANDBOX_STATS_REQUEST__INIT;
    req.pod_sandbox_id = (char *)pod;
    cr_err *err = NULL;
    ck_assert_msg(cc_call(c, CC_RUNTIME "PodSandboxStats", &req.base,
                          &runtime__v1__pod_sandbox_stats_response__descriptor, keep, &err) == 0,
                  "PodSandboxStats: %s", err ? err->msg : "");
    return ((Runtime__V1__PodSandboxStatsResponse *)*keep)->stats;
}

static char *start_ctr(cc_conn *c, const char *pod, const ctr_opts *o)
{
    char *id = create(c, pod, o, NULL);
    cr_err *err = NULL;
    ck_assert_msg(cc_start_container(c, id, &err) == 0, "start %s: %s", o->name, err ? err->msg : "");
    return id;
}

START_TEST(stats_memory_cpu_disk)
{
    start();
    cc_conn *c = th_connect(&D);
    char *pod = run_pod(c, "stats");
    /* 60 MiB in the pod's /dev/shm (tmpfs pages are charged to the writer
     * and are not file cache); a busy loop; 10 MiB in the writable layer. */
    ctr_opts mem = { .name = "mem", .run_as_user = -1,
                     .script = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=60 2>/dev/null; sleep 1000" };
    ctr_opts busy = { .name = "busy", .run_as_user = -1, .script = "while :; do :; done" };
    ctr_opts disk = { .name = "disk", .run_as_user = -1,
                      .script = "dd if=/dev/zero of=/big bs=1M count=10 2>/dev/null; sync; sleep 1000" };
    char *idm = start_ctr(c, pod, &mem), *idb = start_ctr(c, pod, &busy), *idd = start_ctr(c, pod, &disk);
    long until = th_now_ms() + 30000;
    bool mem_ok = false, disk_ok = false;
    uint64_t ws = 0, used = 0;
    while (!(mem_ok && disk_ok) && th_now_ms() < until) {
        Runtime__V1__ListContainerStatsResponse *r = list_stats(c, pod);
        const Runtime__V1__ContainerStats *sm = stats_of(r, idm), *sd = stats_of(r, idd);
        ws = sm && sm->memory && sm->memory->working_set_bytes ? sm->memory->working_set_bytes->value : 0;
        used = sd && sd->writable_layer && sd->writable_layer->used_bytes ? sd->writable_layer->used_bytes->value : 0;
        mem_ok = ws >= 50u << 20;
        disk_ok = used >= 10u << 20;
        ck_assert_int_eq(r->n_stats, 3);
        cc_free(r);
        if (!(mem_ok && disk_ok))
            usleep(50000);
    }
    ck_assert_msg(mem_ok, "working set %llu, want >= 50 MiB", (unsigned long long)ws);
    ck_assert_msg(disk_ok, "writable layer %llu bytes, want >= 10 MiB", (unsigned long long)used);
    /* CPU: the cumulative figure rises between two samples, and the second
     * sample carries a rate. */
    Runtime__V1__ListContainerStatsResponse *r1 = list_stats(c, pod);
    const Runtime__V1__ContainerStats *b1 = stats_of(r1, idb);
    ck_assert_ptr_nonnull(b1);
    uint64_t cpu1 = b1->cpu->usage_core_nano_seconds->value;
    uint64_t cpu2 = cpu1, rate = 0;
    until = th_now_ms() + 10000;
    while ((cpu2 <= cpu1 + 10000000 || !rate) && th_now_ms() < until) {
        usleep(100000);
        Runtime__V1__ListContainerStatsResponse *r2 = list_stats(c, pod);
        const Runtime__V1__ContainerStats *b2 = stats_of(r2, idb);
        cpu2 = b2 ? b2->cpu->usage_core_nano_seconds->value : 0;
        rate = b2 && b2->cpu->usage_nano_cores ? b2->cpu->usage_nano_cores->value : 0;
        cc_free(r2);
    }
    cc_free(r1);
    ck_assert_msg(cpu2 > cpu1 + 10000000, "cpu %llu -> %llu ns", (unsigned long long)cpu1, (unsigned long long)cpu2);
    ck_assert_msg(rate > 100000000, "busy loop at %llu nano cores", (unsigned long long)rate); /* > 0.1 core */
    /* The pod adds its containers up. */
    ProtobufCMessage *keep = NULL;
    Runtime__V1__PodSandboxStats *ps = pod_stats(c, pod, &keep);
    ck_assert_int_eq(ps->linux->n_containers, 3);
    ck_assert(ps->linux->memory && ps->linux->memory->working_set_bytes->value >= 50u << 20);
    ck_assert_str_eq(ps->attributes->metadata->name, "stats");
    protobuf_c_message_free_unpacked(keep, NULL);
    /* Single-container stats, and a clear error for an exited one. */
    Runtime__V1__ContainerStatsRequest one = RUNTIME__V1__CONTAINER_STATS_REQUEST__INIT;
    one.container_id = idd;
    cr_err *err = NULL;
    ck_assert_int_eq(cc_call(c, CC_RUNTIME "ContainerStats", &one.base,
                             &runtime__v1__container_stats_response__descriptor, &keep, &err), 0);
    protobuf_c_message_free_unpacked(keep, NULL);
    ck_assert_int_eq(cc_stop_container(c, idd, 0, &err), 0);
    ck_assert_int_lt(cc_call(c, CC_RUNTIME "ContainerStats", &one.base,
                             &runtime__v1__container_stats_response__descriptor, &keep, &err), 0);
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    cr_err_free(err);
    err = NULL;
    one.container_id = "nonexistent";
    ck_assert_int_lt(cc_call(c, CC_RUNTIME "ContainerStats", &one.base,
                             &runtime__v1__container_stats_response__descriptor, &keep, &err), 0);
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    cr_err_free(err);
    /* Metrics: descriptors, and the pod's container metrics. */
    Runtime__V1__ListMetricDescriptorsRequest mdr = RUNTIME__V1__LIST_METRIC_DESCRIPTORS_REQUEST__INIT;
    err = NULL;
    ck_assert_int_eq(cc_call(c, CC_RUNTIME "ListMetricDescriptors", &mdr.base,
                             &runtime__v1__list_metric_descriptors_response__descriptor, &keep, &err), 0);
    Runtime__V1__ListMetricDescriptorsResponse *md = (Runtime__V1__ListMetricDescriptorsResponse *)keep;
    bool have_ws = false;
    for (size_t i = 0; i < md->n_descriptors; i++)
        have_ws |= !strcmp(md->descriptors[i]->name, "container_memory_working_set_bytes");
    ck_assert(have_ws);
    protobuf_c_message_free_unpacked(keep, NULL);
    Runtime__V1__ListPodSandboxMetricsRequest pmr = RUNTIME__V1__LIST_POD_SANDBOX_METRICS_REQUEST__INIT;
    ck_assert_int_eq(cc_call(c, CC_RUNTIME "ListPodSandboxMetrics", &pmr.base,
                             &runtime__v1__list_pod_sandbox_metrics_response__descriptor, &keep, &err), 0);
    Runtime__V1__ListPodSandboxMetricsResponse *pm = (Runtime__V1__ListPodSandboxMetricsResponse *)keep;
    ck_assert_int_eq(pm->n_pod_metrics, 1);
    ck_assert_int_eq(pm->pod_metrics[0]->n_container_metrics, 2); /* mem and busy still run */
    protobuf_c_message_free_unpacked(keep, NULL);
    free(idm);
    free(idb);
    free(idd);
    free(pod);
    cc_close(c);
}
END_TEST

typedef struct ev_log {
    th_daemon *d;
    pthread_mutex_t mu;
    int types[64];
    char ids[64][65];
    char pods[64][65];
    int n;
    int block_fd; /* >= 0: the callback blocks reading it (a stuck subscriber) */
    bool ready;
} ev_log;

static int ev_cb(const ProtobufCMessage *msg, void *ud)
{
    ev_log *l = ud;
    const Runtime__V1__ContainerEventResponse *e = (const Runtime__V1__ContainerEventResponse *)msg;
    if (l->block_fd >= 0) {
        char b;
        while (read(l->block_fd, &b, 1) < 0 && errno == EINTR)
            ;
        return 1;
    }
    pthread_mutex_lock(&l->mu);
    if (l->n < 64) {
        l->types[l->n] = e->container_event_type;
        snprintf(l->ids[l->n], 65, "%s", e->container_id);
        snprintf(l->pods[l->n], 65, "%s", e->pod_sandbox_status ? e->pod_sandbox_status->id : "");
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

static void *ev_thread(void *arg)
{
    ev_log *l = arg;
    cr_err *err = NULL;
    cc_conn *c = cc_connect(l->d->endpoint, &err);
    if (!c)
        return NULL;
    cc_set_timeout(c, 0);
    Runtime__V1__GetEventsRequest req = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
    cc_call_stream(c, CC_RUNTIME "GetContainerEvents", &req.base, &runtime__v1__container_event_response__descriptor,
                   ev_cb, l, &err);
    cr_err_free(err);
    cc_close(c);
    return NULL;
}

START_TEST(events_in_order_and_stuck_subscriber)
{
    start();
    ev_log l = { .d = &D, .mu = PTHREAD_MUTEX_INITIALIZER, .block_fd = -1 };
    int block[2];
    ck_assert_int_eq(pipe(block), 0);
    ev_log stuck = { .d = &D, .mu = PTHREAD_MUTEX_INITIALIZER, .block_fd = block[0] };
    pthread_t t, ts;
    ck_assert_int_eq(pthread_create(&t, NULL, ev_thread, &l), 0);
    ck_assert_int_eq(pthread_create(&ts, NULL, ev_thread, &stuck), 0);
    ck_assert(th_log_contains(&D, "stream opened", 10000));
    cc_conn *c = th_connect(&D);
    long t0 = th_now_ms();
    char *pod = run_pod(c, "evts");
    long run_ms = th_now_ms() - t0;
    ctr_opts o = { .name = "ev", .run_as_user = -1, .script = "sleep 1000" };
    char *id = start_ctr(c, pod, &o);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_stop_container(c, id, 0, &err), 0);
    ck_assert_int_eq(cc_remove_container(c, id, &err), 0);
    ck_assert_int_eq(cc_remove_pod_sandbox(c, pod, &err), 0);
    /* A second pod while the stuck subscriber still holds its stream. */
    t0 = th_now_ms();
    char *pod2 = run_pod(c, "evts2");
    long run2_ms = th_now_ms() - t0;
    printf("RunPodSandbox with a subscriber that never reads: %ld ms, %ld ms\n", run_ms, run2_ms);
    int want[] = { RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT };
    int got[8], ng = 0, pod_events = 0;
    long until = th_now_ms() + 10000;
    for (;;) {
        ng = 0;
        pod_events = 0;
        pthread_mutex_lock(&l.mu);
        for (int i = 0; i < l.n; i++) {
            if (!strcmp(l.ids[i], id) && ng < 8) {
                ck_assert_str_eq(l.pods[i], pod);
                got[ng++] = l.types[i];
            }
            pod_events += !strcmp(l.ids[i], pod);
        }
        pthread_mutex_unlock(&l.mu);
        if ((ng >= 4 && pod_events >= 3) || th_now_ms() > until)
            break;
        usleep(20000);
    }
    ck_assert_msg(ng == 4, "%d events for the container", ng);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(got[i], want[i]);
    ck_assert_msg(pod_events >= 3, "%d sandbox events (created, started, deleted)", pod_events);
    cc_close(c);
    /* Ending crispd ends both streams (the stuck one once it reads again). */
    ck_assert_int_eq(write(block[1], "x", 1), 1);
    close(block[1]);
    teardown();
    D.pid = -1;
    pthread_join(t, NULL);
    pthread_join(ts, NULL);
    close(block[0]);
    free(id);
    free(pod);
    free(pod2);
}
END_TEST

int main(void)
{
    suite_setup();
    Suite *s = suite_create("containers");
    TCase *tc = tcase_create("containers");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_unchecked_fixture(tc, NULL, th_collect_leftovers);
    tcase_set_timeout(tc, 180);
    TH_ADD_BOTH(tc, logs_and_exit_codes);
    TH_ADD_BOTH(tc, stop_kills_after_the_grace_period);
    TH_ADD_BOTH(tc, env_user_workdir_readonly_caps);
    TH_ADD(tc, list_status_remove);
    TH_ADD_BOTH(tc, survives_crispd_kill);
    TH_ADD(tc, create_errors_are_clear);
    TH_ADD_BOTH(tc, exec_sync_and_update);
    TH_ADD_BOTH(tc, seccomp_caps_privileged);
    TH_ADD_BOTH(tc, mounts_readonly_and_missing);
    TH_ADD_BOTH(tc, memory_limit_and_oom_kill);
    TH_ADD_BOTH(tc, log_reopen_after_rename);
    TH_ADD_BOTH(tc, host_pid_pod_sees_host_processes);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("stats");
    tcase_add_checked_fixture(st, NULL, teardown);
    tcase_add_unchecked_fixture(st, NULL, th_collect_leftovers);
    tcase_set_timeout(st, 180);
    TH_ADD(st, stats_memory_cpu_disk);
    TH_ADD(st, events_in_order_and_stuck_subscriber);
    suite_add_tcase(s, st);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    suite_teardown();
    return failed ? 1 : 0;
}
