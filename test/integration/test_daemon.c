/* crispd foundation: the gRPC surface, socket handling, signals, config,
 * against a real crispd started on a temporary socket and root. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "harness.h"
#include "lib/fs.h"

static th_daemon D;

static void teardown(void) { th_cleanup(&D); }

START_TEST(version_answers)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__VersionResponse *v = cc_version(c, &err);
    ck_assert_msg(v != NULL, "Version: %s", err ? err->msg : "");
    ck_assert_str_eq(v->runtime_name, "crisp");
    ck_assert_str_eq(v->runtime_api_version, "v1");
    ck_assert_str_eq(v->version, "0.1.0");
    ck_assert_int_gt(strlen(v->runtime_version), 0);
    cc_free(v);
    cc_close(c);
}
END_TEST

static const Runtime__V1__RuntimeCondition *find_cond(const Runtime__V1__StatusResponse *s,
                                                      const char *type)
{
    for (size_t i = 0; s->status && i < s->status->n_conditions; i++)
        if (strcmp(s->status->conditions[i]->type, type) == 0)
            return s->status->conditions[i];
    return NULL;
}

START_TEST(status_conditions_follow_cni_dir)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__StatusResponse *s = cc_status(c, 0, &err);
    ck_assert_msg(s != NULL, "Status: %s", err ? err->msg : "");
    const Runtime__V1__RuntimeCondition *rt = find_cond(s, "RuntimeReady");
    const Runtime__V1__RuntimeCondition *net = find_cond(s, "NetworkReady");
    ck_assert_ptr_nonnull(rt);
    ck_assert_ptr_nonnull(net);
    ck_assert_msg(rt->status, "RuntimeReady false: %s %s", rt->reason, rt->message);
    ck_assert(!net->status);
    ck_assert_str_eq(net->reason, "NetworkPluginNotReady");
    ck_assert_msg(strstr(net->message, "/cni") != NULL, "message names the dir: %s", net->message);
    ck_assert_int_eq(s->n_info, 0); /* only verbose carries info */
    bool has_default = false, has_runc = false;
    for (size_t i = 0; i < s->n_runtime_handlers; i++) {
        has_default |= strcmp(s->runtime_handlers[i]->name, "") == 0;
        has_runc |= strcmp(s->runtime_handlers[i]->name, "runc") == 0;
    }
    ck_assert(has_default && has_runc);
    cc_free(s);

    /* A network config appears: NetworkReady turns true without a restart. */
    char path[256];
    snprintf(path, sizeof(path), "%s/cni/10-test.conflist", D.dir);
    const char *conf = "{\"cniVersion\":\"1.0.0\",\"name\":\"t\",\"plugins\":[{\"type\":\"loopback\"}]}";
    ck_assert_int_eq(cr_write_file_atomic(path, conf, strlen(conf), 0644, NULL), 0);
    s = cc_status(c, 0, &err);
    ck_assert_ptr_nonnull(s);
    net = find_cond(s, "NetworkReady");
    ck_assert_msg(net && net->status, "NetworkReady still false: %s", net ? net->message : "");
    cc_free(s);
    cc_close(c);
}
END_TEST

START_TEST(status_verbose_has_config_json)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__StatusResponse *s = cc_status(c, 1, &err);
    ck_assert_msg(s != NULL, "Status: %s", err ? err->msg : "");
    const char *json = NULL;
    for (size_t i = 0; i < s->n_info; i++)
        if (strcmp(s->info[i]->key, "config") == 0)
            json = s->info[i]->value;
    ck_assert_ptr_nonnull(json);
    char ebuf[256];
    yajl_val root = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    ck_assert_msg(root != NULL, "config is not JSON: %s", ebuf);
    const char *p_listen[] = { "crisp", "listen", NULL };
    yajl_val listen = yajl_tree_get(root, p_listen, yajl_t_string);
    ck_assert_ptr_nonnull(listen);
    ck_assert_str_eq(YAJL_GET_STRING(listen), D.sock);
    yajl_tree_free(root);
    cc_free(s);
    cc_close(c);
}
END_TEST

START_TEST(runtime_config_reports_cgroup_driver)
{
    th_start(&D, "[crisp.runtime]\ncgroup_manager = \"systemd\"\n");
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__RuntimeConfigResponse *r = cc_runtime_config(c, &err);
    ck_assert_msg(r != NULL, "RuntimeConfig: %s", err ? err->msg : "");
    ck_assert_ptr_nonnull(r->linux);
    ck_assert_int_eq(r->linux->cgroup_driver, RUNTIME__V1__CGROUP_DRIVER__SYSTEMD);
    cc_free(r);
    cc_close(c);
}
END_TEST

START_TEST(update_runtime_config_accepts_pod_cidr)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    Runtime__V1__NetworkConfig nc = RUNTIME__V1__NETWORK_CONFIG__INIT;
    nc.pod_cidr = "10.88.0.0/16";
    Runtime__V1__RuntimeConfig rc = RUNTIME__V1__RUNTIME_CONFIG__INIT;
    rc.network_config = &nc;
    Runtime__V1__UpdateRuntimeConfigRequest req = RUNTIME__V1__UPDATE_RUNTIME_CONFIG_REQUEST__INIT;
    req.runtime_config = &rc;
    ProtobufCMessage *resp = NULL;
    cr_err *err = NULL;
    ck_assert_msg(cc_call(c, CC_RUNTIME "UpdateRuntimeConfig", &req.base,
                          &runtime__v1__update_runtime_config_response__descriptor, &resp, &err) == 0,
                  "UpdateRuntimeConfig: %s", err ? err->msg : "");
    protobuf_c_message_free_unpacked(resp, NULL);
    ck_assert(th_log_contains(&D, "cidr=10.88.0.0/16", 5000));
    cc_close(c);
}
END_TEST

START_TEST(unimplemented_rpcs_name_themselves)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__CheckpointContainerRequest req = RUNTIME__V1__CHECKPOINT_CONTAINER_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    ck_assert_int_lt(cc_call(c, CC_RUNTIME "CheckpointContainer", &req.base,
                             &runtime__v1__checkpoint_container_response__descriptor, &resp, &err), 0);
    ck_assert_int_eq(err->code, CR_UNIMPLEMENTED);
    ck_assert_msg(strstr(err->msg, "CheckpointContainer"), "message: %s", err->msg);
    cr_err_free(err);
    err = NULL;

    /* A method that is not in the API at all. */
    ck_assert_int_lt(cc_call(c, CC_RUNTIME "NoSuchMethod", &req.base,
                             &runtime__v1__checkpoint_container_response__descriptor, &resp, &err), 0);
    ck_assert_int_eq(err->code, CR_UNIMPLEMENTED);
    ck_assert_msg(strstr(err->msg, "NoSuchMethod"), "message: %s", err->msg);
    cr_err_free(err);
    err = NULL;

    /* The daemon is still healthy afterwards. */
    Runtime__V1__VersionResponse *v = cc_version(c, &err);
    ck_assert_ptr_nonnull(v);
    cc_free(v);
    cc_close(c);
}
END_TEST

static int count_cb(const ProtobufCMessage *m, void *ud)
{
    (void)m;
    (*(int *)ud)++;
    return 0;
}

START_TEST(stream_errors_end_with_status)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    /* A stream with nothing to send ends OK with no messages... */
    Runtime__V1__StreamPodSandboxMetricsRequest req = RUNTIME__V1__STREAM_POD_SANDBOX_METRICS_REQUEST__INIT;
    int n = 0;
    ck_assert_int_eq(cc_call_stream(c, CC_RUNTIME "StreamPodSandboxMetrics", &req.base,
                                    &runtime__v1__stream_pod_sandbox_metrics_response__descriptor, count_cb, &n,
                                    &err), 0);
    ck_assert_int_eq(n, 0);
    /* ...and a stream call to a method the API does not have ends with
     * UNIMPLEMENTED naming it, not with a hang. */
    ck_assert_int_lt(cc_call_stream(c, CC_RUNTIME "StreamNoSuchThings", &req.base,
                                    &runtime__v1__stream_pod_sandbox_metrics_response__descriptor, count_cb, &n,
                                    &err), 0);
    ck_assert_int_eq(err->code, CR_UNIMPLEMENTED);
    ck_assert_msg(strstr(err->msg, "StreamNoSuchThings"), "message: %s", err->msg);
    ck_assert_int_eq(n, 0);
    cr_err_free(err);
    cc_close(c);
}
END_TEST

START_TEST(garbage_requests_get_invalid_argument)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    srand(12345);
    int sent = 0;
    for (int tries = 0; sent < 50 && tries < 100000; tries++) {
        uint8_t buf[64];
        size_t len = 1 + (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand();
        /* Only bytes protobuf itself rejects: valid-looking junk (unknown
         * fields) is legitimately accepted by any protobuf server. */
        ProtobufCMessage *m = protobuf_c_message_unpack(&runtime__v1__status_request__descriptor,
                                                        NULL, len, buf);
        if (m) {
            protobuf_c_message_free_unpacked(m, NULL);
            continue;
        }
        cr_err *err = NULL;
        uint8_t *out = NULL;
        size_t out_len = 0;
        ck_assert_int_lt(cc_call_raw(c, CC_RUNTIME "Status", buf, len, &out, &out_len, &err), 0);
        ck_assert_msg(err->code == CR_INVALID_ARGUMENT, "got %s: %s", cr_code_name(err->code), err->msg);
        ck_assert_msg(strstr(err->msg, "StatusRequest"), "message names the type: %s", err->msg);
        cr_err_free(err);
        sent++;
    }
    ck_assert_int_eq(sent, 50);
    cr_err *err = NULL;
    Runtime__V1__VersionResponse *v = cc_version(c, &err);
    ck_assert_msg(v != NULL, "Version after garbage: %s", err ? err->msg : "");
    cc_free(v);
    ck_assert_int_eq(kill(D.pid, 0), 0);
    cc_close(c);
}
END_TEST

typedef struct {
    cc_conn *c;
    pthread_barrier_t *barrier;
    int ok;
} vthread;

static void *version_thread(void *arg)
{
    vthread *t = arg;
    pthread_barrier_wait(t->barrier);
    cr_err *err = NULL;
    Runtime__V1__VersionResponse *v = cc_version(t->c, &err);
    t->ok = v && strcmp(v->runtime_name, "crisp") == 0;
    if (v)
        cc_free(v);
    cr_err_free(err);
    return NULL;
}

START_TEST(concurrent_version_calls)
{
    th_start(&D, NULL);
    enum { N = 200 };
    cc_conn *c = th_connect(&D);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    static vthread ts[N];
    pthread_t tids[N];
    for (int i = 0; i < N; i++) {
        ts[i] = (vthread){ .c = c, .barrier = &barrier };
        ck_assert_int_eq(pthread_create(&tids[i], NULL, version_thread, &ts[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(tids[i], NULL);
        ok += ts[i].ok;
    }
    pthread_barrier_destroy(&barrier);
    ck_assert_int_eq(ok, N);
    cc_close(c);
}
END_TEST

START_TEST(sigterm_exits_zero_and_removes_socket)
{
    th_start(&D, NULL);
    struct stat st;
    ck_assert_int_eq(stat(D.sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 07777, 0660);
    ck_assert_int_eq(st.st_uid, 0);
    int ws = th_signal_wait(&D, SIGTERM, 15000);
    ck_assert_msg(ws != -1, "crispd did not exit after SIGTERM");
    ck_assert(WIFEXITED(ws));
    ck_assert_int_eq(WEXITSTATUS(ws), 0);
    ck_assert_int_eq(access(D.sock, F_OK), -1);
}
END_TEST

START_TEST(sigint_exits_zero)
{
    th_start(&D, NULL);
    int ws = th_signal_wait(&D, SIGINT, 15000);
    ck_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    ck_assert_int_eq(access(D.sock, F_OK), -1);
}
END_TEST

typedef struct {
    th_daemon *d;
    int code;
    char msg[256];
} stream_result;

static void *events_thread(void *arg)
{
    stream_result *r = arg;
    cc_conn *c = th_connect(r->d);
    Runtime__V1__GetEventsRequest req = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
    cr_err *err = NULL;
    int n = 0;
    int rc = cc_call_stream(c, CC_RUNTIME "GetContainerEvents", &req.base,
                            &runtime__v1__container_event_response__descriptor, count_cb, &n, &err);
    r->code = rc == 0 ? 0 : err->code;
    snprintf(r->msg, sizeof(r->msg), "%s", err ? err->msg : "");
    cr_err_free(err);
    cc_close(c);
    return NULL;
}

START_TEST(sigterm_ends_open_streams)
{
    th_start(&D, NULL);
    stream_result r = { .d = &D, .code = -1 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, events_thread, &r), 0);
    ck_assert(th_log_contains(&D, "stream opened", 10000));
    /* An open stream does not hold up unary calls. */
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__VersionResponse *v = cc_version(c, &err);
    ck_assert_ptr_nonnull(v);
    cc_free(v);
    cc_close(c);

    int ws = th_signal_wait(&D, SIGTERM, 15000);
    pthread_join(t, NULL);
    ck_assert_msg(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "exit status %d", ws);
    ck_assert_msg(r.code == CR_UNAVAILABLE, "stream ended with %s: %s", cr_code_name(r.code), r.msg);
    ck_assert_msg(strstr(r.msg, "shutting down"), "message: %s", r.msg);
}
END_TEST

START_TEST(cancelled_stream_is_released)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    cc_set_timeout(c, 300); /* the client gives up on the stream */
    Runtime__V1__GetEventsRequest req = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
    cr_err *err = NULL;
    int n = 0;
    ck_assert_int_lt(cc_call_stream(c, CC_RUNTIME "GetContainerEvents", &req.base,
                                    &runtime__v1__container_event_response__descriptor, count_cb,
                                    &n, &err), 0);
    ck_assert_int_eq(err->code, CR_DEADLINE_EXCEEDED);
    cr_err_free(err);
    cc_close(c);
    /* The server noticed and freed the stream: shutdown finds nothing busy. */
    int ws = th_signal_wait(&D, SIGTERM, 15000);
    ck_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    char *log = cr_read_file(D.log, NULL, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(!strstr(log, "still busy") && !strstr(log, "did not finish in time"),
                  "log: %s", log);
    free(log);
}
END_TEST

START_TEST(second_daemon_is_refused)
{
    th_start(&D, NULL);
    char *out = NULL;
    const char *argv[] = { th_bin("crispd"), "--config", D.config, "--config-dir", D.config_dir, NULL };
    int ws = th_run(argv, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    ck_assert_msg(strstr(out, "another crispd") && strstr(out, D.sock), "output: %s", out);
    free(out);
    /* The first one still serves, and its socket is intact. */
    ck_assert(th_wait_ready(&D, 5000));
}
END_TEST

START_TEST(stale_socket_is_replaced)
{
    th_prepare(&D, NULL);
    char run[192];
    snprintf(run, sizeof(run), "%s/run", D.dir);
    ck_assert_int_eq(mkdir(run, 0755), 0);
    /* A socket file nobody listens on, as a crash leaves behind. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, D.sock);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    ck_assert_int_eq(access(D.sock, F_OK), 0);
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
}
END_TEST

START_TEST(foreign_listener_is_refused)
{
    th_prepare(&D, NULL);
    char run[192];
    snprintf(run, sizeof(run), "%s/run", D.dir);
    ck_assert_int_eq(mkdir(run, 0755), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, D.sock);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    char *out = NULL;
    const char *argv[] = { th_bin("crispd"), "--config", D.config, "--config-dir", D.config_dir, NULL };
    int ws = th_run(argv, &out);
    close(fd);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) != 0, "status %d: %s", ws, out);
    ck_assert_msg(strstr(out, "another process"), "output: %s", out);
    free(out);
}
END_TEST

START_TEST(bad_config_names_file_and_line)
{
    th_prepare(&D, "[crisp.runtime]\nno_such_key = 1\n");
    char *out = NULL;
    const char *argv[] = { th_bin("crispd"), "--config", D.config, "--config-dir", D.config_dir, NULL };
    int ws = th_run(argv, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    /* Line of no_such_key: 9 lines of harness config come before it. */
    char *conf = cr_read_file(D.config, NULL, NULL);
    int line = 1;
    for (char *p = conf; p && *p && strncmp(p, "no_such_key", 11) != 0; p++)
        if (*p == '\n')
            line++;
    free(conf);
    char want[256];
    snprintf(want, sizeof(want), "%s:%d:", D.config, line);
    ck_assert_msg(strstr(out, want) && strstr(out, "no_such_key"), "want %s in: %s", want, out);
    free(out);
}
END_TEST

START_TEST(bad_drop_in_names_file_and_line)
{
    th_prepare(&D, NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/50-bad.conf", D.config_dir);
    const char *bad = "[crisp]\nthreads = \"many\"\n";
    ck_assert_int_eq(cr_write_file_atomic(path, bad, strlen(bad), 0644, NULL), 0);
    char *out = NULL;
    const char *argv[] = { th_bin("crispd"), "--config", D.config, "--config-dir", D.config_dir, NULL };
    int ws = th_run(argv, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    char want[300];
    snprintf(want, sizeof(want), "%s:2:", path);
    ck_assert_msg(strstr(out, want), "want %s in: %s", want, out);
    free(out);
}
END_TEST

START_TEST(flags_override_config)
{
    th_prepare(&D, NULL);
    char sock2[150];
    snprintf(sock2, sizeof(sock2), "%s/other.sock", D.dir);
    char *out = NULL;
    const char *argv[] = { th_bin("crispd"), "--config", D.config, "--config-dir", D.config_dir,
                           "--listen", sock2, "--threads", "3", "--cni-plugin-dir", "/x/cni",
                           "config", NULL };
    int ws = th_run(argv, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    char want[256];
    snprintf(want, sizeof(want), "listen = \"%s\"", sock2);
    ck_assert_msg(strstr(out, want), "want %s in: %s", want, out);
    ck_assert_msg(strstr(out, "threads = 3"), "output: %s", out);
    ck_assert_msg(strstr(out, "\"/x/cni\""), "output: %s", out);
    ck_assert_msg(!strstr(out, "/opt/cni/bin"), "first --cni-plugin-dir replaces the list: %s", out);
    free(out);

    /* And the daemon really listens where the flag says. */
    const char *args[] = { "--listen", sock2, NULL };
    D.pid = th_spawn(&D, args);
    snprintf(D.endpoint, sizeof(D.endpoint), "unix://%s", sock2);
    ck_assert(th_wait_ready(&D, 20000));
}
END_TEST

START_TEST(bad_flag_value_is_refused)
{
    th_prepare(&D, NULL);
    char *out = NULL;
    const char *argv[] = { th_bin("crispd"), "--config", D.config, "--stream-port", "70000", NULL };
    int ws = th_run(argv, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    ck_assert_msg(strstr(out, "--stream-port"), "output: %s", out);
    free(out);
    const char *argv2[] = { th_bin("crispd"), "--config", D.config, "--default-runtime", "nope", "config", NULL };
    ws = th_run(argv2, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    ck_assert_msg(strstr(out, "nope") && strstr(out, "runc"), "names the known handlers: %s", out);
    free(out);
}
END_TEST

START_TEST(starts_without_config_file)
{
    /* Only flags: no --config (the default path may be absent) and an empty drop-in dir. */
    th_prepare(&D, NULL);
    char root[200], runroot[200];
    snprintf(root, sizeof(root), "%s/root", D.dir);
    snprintf(runroot, sizeof(runroot), "%s/run", D.dir);
    const char *argv[] = { th_bin("crispd"), "--config-dir", D.config_dir, "--listen", D.sock,
                           "--root", root, "--runroot", runroot, NULL };
    D.pid = th_spawn_argv(&D, argv);
    ck_assert(th_wait_ready(&D, 20000));
}
END_TEST

START_TEST(crispctl_version_and_info)
{
    th_start(&D, NULL);
    char *out = NULL;
    const char *argv[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "version", NULL };
    int ws = th_run(argv, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "crispctl version: %s", out);
    ck_assert_msg(strstr(out, "RuntimeName:  crisp") && strstr(out, "RuntimeApiVersion:  v1"),
                  "output: %s", out);
    free(out);

    /* CRI_ENDPOINT is honoured when --endpoint is absent. */
    setenv("CRI_ENDPOINT", D.endpoint, 1);
    const char *argv2[] = { th_bin("crispctl"), "info", NULL };
    ws = th_run(argv2, &out);
    unsetenv("CRI_ENDPOINT");
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "crispctl info: %s", out);
    char ebuf[256];
    yajl_val root = yajl_tree_parse(out, ebuf, sizeof(ebuf));
    ck_assert_msg(root != NULL, "info is not JSON (%s): %s", ebuf, out);
    const char *p_cond[] = { "status", "conditions", NULL };
    yajl_val conds = yajl_tree_get(root, p_cond, yajl_t_array);
    ck_assert_ptr_nonnull(conds);
    ck_assert_int_eq(YAJL_GET_ARRAY(conds)->len, 2);
    const char *p_listen[] = { "config", "crisp", "listen", NULL };
    yajl_val listen = yajl_tree_get(root, p_listen, yajl_t_string);
    ck_assert_ptr_nonnull(listen);
    ck_assert_str_eq(YAJL_GET_STRING(listen), D.sock);
    yajl_tree_free(root);
    free(out);

    /* A dead endpoint: a clear error, non-zero exit. */
    const char *argv3[] = { th_bin("crispctl"), "--endpoint", "unix:///nonexistent/x.sock",
                            "--timeout", "2", "version", NULL };
    ws = th_run(argv3, &out);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    ck_assert_msg(strstr(out, "UNAVAILABLE"), "output: %s", out);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_unchecked_fixture(tc, NULL, th_collect_leftovers);
    tcase_set_timeout(tc, 90);
    TH_ADD(tc, version_answers);
    TH_ADD(tc, status_conditions_follow_cni_dir);
    TH_ADD(tc, status_verbose_has_config_json);
    TH_ADD(tc, runtime_config_reports_cgroup_driver);
    TH_ADD(tc, update_runtime_config_accepts_pod_cidr);
    TH_ADD(tc, unimplemented_rpcs_name_themselves);
    TH_ADD(tc, stream_errors_end_with_status);
    TH_ADD(tc, garbage_requests_get_invalid_argument);
    TH_ADD(tc, concurrent_version_calls);
    TH_ADD(tc, sigterm_exits_zero_and_removes_socket);
    TH_ADD(tc, sigint_exits_zero);
    TH_ADD(tc, sigterm_ends_open_streams);
    TH_ADD(tc, cancelled_stream_is_released);
    TH_ADD(tc, second_daemon_is_refused);
    TH_ADD(tc, stale_socket_is_replaced);
    TH_ADD(tc, foreign_listener_is_refused);
    TH_ADD(tc, bad_config_names_file_and_line);
    TH_ADD(tc, bad_drop_in_names_file_and_line);
    TH_ADD(tc, flags_override_config);
    TH_ADD(tc, bad_flag_value_is_refused);
    TH_ADD(tc, starts_without_config_file);
    TH_ADD(tc, crispctl_version_and_info);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
