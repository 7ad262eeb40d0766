#include "client.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

struct cc_conn {
    grpc_channel *ch;
    int timeout_ms;
    int pull_timeout_ms;
};

#define MAX_MESSAGE (16 * 1024 * 1024)

cc_conn *cc_connect(const char *endpoint, cr_err **err)
{
    if (!endpoint || !*endpoint)
        endpoint = CC_DEFAULT_ENDPOINT;
    char *target = NULL;
    if (strncmp(endpoint, "unix:", 5) == 0)
        target = strdup(endpoint);
    else if (endpoint[0] == '/' && asprintf(&target, "unix:%s", endpoint) < 0)
        target = NULL;
    else if (endpoint[0] != '/') {
        cr_err_set(err, CR_INVALID_ARGUMENT,
                   "endpoint %s: expected unix:///path/to/socket or an absolute path", endpoint);
        return NULL;
    }
    cc_conn *c = calloc(1, sizeof(*c));
    if (!c || !target) {
        free(c);
        free(target);
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    grpc_init();
    grpc_arg args[2] = {
        { .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = MAX_MESSAGE },
        { .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, .value.integer = MAX_MESSAGE },
    };
    grpc_channel_args chargs = { .num_args = 2, .args = args };
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    c->ch = grpc_channel_create(target, creds, &chargs);
    grpc_channel_credentials_release(creds);
    free(target);
    c->timeout_ms = 30000;
    c->pull_timeout_ms = 2 * 3600 * 1000;
    return c;
}

void cc_close(cc_conn *c)
{
    if (!c)
        return;
    grpc_channel_destroy(c->ch);
    free(c);
    grpc_shutdown_blocking();
}

void cc_set_timeout(cc_conn *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
void cc_set_pull_timeout(cc_conn *c, int timeout_ms) { c->pull_timeout_ms = timeout_ms; }

/* A call with its own pluck queue, so calls from many threads never mix. */
typedef struct ccall {
    grpc_call *call;
    grpc_completion_queue *cq;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
} ccall;

static int start(cc_conn *c, ccall *k, const char *method)
{
    memset(k, 0, sizeof(*k));
    k->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice m = grpc_slice_from_copied_string(method);
    gpr_timespec deadline = c->timeout_ms <= 0 ? gpr_inf_future(GPR_CLOCK_REALTIME) /* 0: no deadline */
                                               : gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                                              gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    k->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, k->cq, m, NULL,
                                       deadline, NULL);
    grpc_slice_unref(m);
    grpc_metadata_array_init(&k->md_initial);
    grpc_metadata_array_init(&k->md_trailing);
    k->details = grpc_empty_slice();
    return k->call ? 0 : -1;
}

static bool run(ccall *k, grpc_op *ops, size_t n)
{
    char tag;
    if (grpc_call_start_batch(k->call, ops, n, &tag, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev = grpc_completion_queue_pluck(k->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void finish(ccall *k)
{
    if (k->call)
        grpc_call_unref(k->call);
    grpc_metadata_array_destroy(&k->md_initial);
    grpc_metadata_array_destroy(&k->md_trailing);
    grpc_slice_unref(k->details);
    grpc_completion_queue_shutdown(k->cq);
    grpc_completion_queue_destroy(k->cq);
}

static int status_to_err(ccall *k, const char *method, cr_err **err)
{
    if (k->status == GRPC_STATUS_OK)
        return 0;
    char *d = grpc_slice_to_c_string(k->details);
    cr_err_set(err, (int)k->status, "%s", *d ? d : cr_code_name((int)k->status));
    gpr_free(d);
    (void)method;
    return -1;
}

static grpc_byte_buffer *bytes_to_bb(const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static uint8_t *bb_to_bytes(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out)
        memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return out;
}

int cc_call_raw(cc_conn *c, const char *method, const void *data, size_t len,
                uint8_t **resp, size_t *resp_len, cr_err **err)
{
    ccall k;
    if (start(c, &k, method) < 0) {
        finish(&k);
        return cr_err_set(err, CR_INTERNAL, "%s: cannot create call", method);
    }
    grpc_byte_buffer *req = bytes_to_bb(data, len), *rbb = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k.md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rbb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &k.md_trailing;
    ops[5].data.recv_status_on_client.status = &k.status;
    ops[5].data.recv_status_on_client.status_details = &k.details;
    bool ok = run(&k, ops, 6);
    grpc_byte_buffer_destroy(req);
    int rc = 0;
    if (!ok)
        rc = cr_err_set(err, CR_INTERNAL, "%s: call failed", method);
    else if (status_to_err(&k, method, err) < 0)
        rc = -1;
    else if (!rbb)
        rc = cr_err_set(err, CR_INTERNAL, "%s: server sent no response", method);
    else if (!(*resp = bb_to_bytes(rbb, resp_len)))
        rc = cr_err_set(err, CR_INTERNAL, "%s: cannot read the response", method);
    if (rbb)
        grpc_byte_buffer_destroy(rbb);
    finish(&k);
    return rc;
}

int cc_call(cc_conn *c, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, cr_err **err)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_pack(req, buf);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = cc_call_raw(c, method, buf, len, &out, &out_len, err);
    free(buf);
    if (rc < 0)
        return -1;
    *resp = protobuf_c_message_unpack(resp_desc, NULL, out_len, out);
    free(out);
    if (!*resp)
        return cr_err_set(err, CR_INTERNAL, "%s: cannot decode the response as %s", method,
                          resp_desc->name);
    return 0;
}

int cc_call_stream(cc_conn *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, cc_stream_cb cb, void *ud,
                   cr_err **err)
{
    ccall k;
    if (start(c, &k, method) < 0) {
        finish(&k);
        return cr_err_set(err, CR_INTERNAL, "%s: cannot create call", method);
    }
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        finish(&k);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    protobuf_c_message_pack(req, buf);
    grpc_byte_buffer *rq = bytes_to_bb(buf, len);
    free(buf);
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = rq;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k.md_initial;
    bool ok = run(&k, ops, 4);
    grpc_byte_buffer_destroy(rq);
    bool stopped = false;
    int rc = 0;
    /* Read until the server closes the stream (or the callback stops it). */
    while (ok && !stopped) {
        grpc_byte_buffer *rbb = NULL;
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &rbb;
        if (!run(&k, &op, 1) || !rbb)
            break;
        size_t n = 0;
        uint8_t *bytes = bb_to_bytes(rbb, &n);
        grpc_byte_buffer_destroy(rbb);
        ProtobufCMessage *m = bytes ? protobuf_c_message_unpack(resp_desc, NULL, n, bytes) : NULL;
        free(bytes);
        if (!m) {
            rc = cr_err_set(err, CR_INTERNAL, "%s: cannot decode a stream message", method);
            stopped = true;
            break;
        }
        if (cb(m, ud) != 0)
            stopped = true;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    if (stopped)
        grpc_call_cancel(k.call, NULL);
    grpc_op st;
    memset(&st, 0, sizeof(st));
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &k.md_trailing;
    st.data.recv_status_on_client.status = &k.status;
    st.data.recv_status_on_client.status_details = &k.details;
    bool got = run(&k, &st, 1);
    if (!stopped && rc == 0) {
        if (!got)
            rc = cr_err_set(err, CR_INTERNAL, "%s: stream failed", method);
        else if (status_to_err(&k, method, err) < 0)
            rc = -1;
    }
    finish(&k);
    return rc;
}

Runtime__V1__VersionResponse *cc_version(cc_conn *c, cr_err **err)
{
    Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
    req.version = "0.1.0";
    ProtobufCMessage *resp = NULL;
    if (cc_call(c, CC_RUNTIME "Version", &req.base, &runtime__v1__version_response__descriptor,
                &resp, err) < 0)
        return NULL;
    return (Runtime__V1__VersionResponse *)resp;
}

Runtime__V1__StatusResponse *cc_status(cc_conn *c, int verbose, cr_err **err)
{
    Runtime__V1__StatusRequest req = RUNTIME__V1__STATUS_REQUEST__INIT;
    req.verbose = verbose != 0;
    ProtobufCMessage *resp = NULL;
    if (cc_call(c, CC_RUNTIME "Status", &req.base, &runtime__v1__status_response__descriptor,
                &resp, err) < 0)
        return NULL;
    return (Runtime__V1__StatusResponse *)resp;
}

Runtime__V1__RuntimeConfigResponse *cc_runtime_config(cc_conn *c, cr_err **err)
{
    Runtime__V1__RuntimeConfigRequest req = RUNTIME__V1__RUNTIME_CONFIG_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    if (cc_call(c, CC_RUNTIME "RuntimeConfig", &req.base,
                &runtime__v1__runtime_config_response__descriptor, &resp, err) < 0)
        return NULL;
    return (Runtime__V1__RuntimeConfigResponse *)resp;
}

static ProtobufCMessage *unary(cc_conn *c, const char *method, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *desc, cr_err **err)
{
    ProtobufCMessage *resp = NULL;
    return cc_call(c, method, req, desc, &resp, err) < 0 ? NULL : resp;
}

Runtime__V1__PullImageResponse *cc_pull_image(cc_conn *c, const char *image,
                                              const Runtime__V1__AuthConfig *auth, cr_err **err)
{
    Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
    spec.image = (char *)image;
    Runtime__V1__PullImageRequest req = RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
    req.image = &spec;
    req.auth = (Runtime__V1__AuthConfig *)auth;
    int saved = c->timeout_ms;
    c->timeout_ms = c->pull_timeout_ms;
    ProtobufCMessage *m = unary(c, CC_IMAGE "PullImage", &req.base,
                                &runtime__v1__pull_image_response__descriptor, err);
    c->timeout_ms = saved;
    return (Runtime__V1__PullImageResponse *)m;
}

Runtime__V1__ListImagesResponse *cc_list_images(cc_conn *c, const char *filter, cr_err **err)
{
    Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
    Runtime__V1__ImageFilter f = RUNTIME__V1__IMAGE_FILTER__INIT;
    Runtime__V1__ListImagesRequest req = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
    if (filter && *filter) {
        spec.image = (char *)filter;
        f.image = &spec;
        req.filter = &f;
    }
    return (Runtime__V1__ListImagesResponse *)unary(c, CC_IMAGE "ListImages", &req.base,
                                                    &runtime__v1__list_images_response__descriptor, err);
}

Runtime__V1__ImageStatusResponse *cc_image_status(cc_conn *c, const char *image, int verbose,
                                                  cr_err **err)
{
    Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
    spec.image = (char *)image;
    Runtime__V1__ImageStatusRequest req = RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
    req.image = &spec;
    req.verbose = verbose != 0;
    return (Runtime__V1__ImageStatusResponse *)unary(c, CC_IMAGE "ImageStatus", &req.base,
                                                     &runtime__v1__image_status_response__descriptor, err);
}

int cc_remove_image(cc_conn *c, const char *image, cr_err **err)
{
    Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
    spec.image = (char *)image;
    Runtime__V1__RemoveImageRequest req = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
    req.image = &spec;
    ProtobufCMessage *m = unary(c, CC_IMAGE "RemoveImage", &req.base,
                                &runtime__v1__remove_image_response__descriptor, err);
    if (!m)
        return -1;
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

Runtime__V1__ImageFsInfoResponse *cc_image_fs_info(cc_conn *c, cr_err **err)
{
    Runtime__V1__ImageFsInfoRequest req = RUNTIME__V1__IMAGE_FS_INFO_REQUEST__INIT;
    return (Runtime__V1__ImageFsInfoResponse *)unary(c, CC_IMAGE "ImageFsInfo", &req.base,
                                                     &runtime__v1__image_fs_info_response__descriptor, err);
}

Runtime__V1__RunPodSandboxResponse *cc_run_pod_sandbox(cc_conn *c, const Runtime__V1__PodSandboxConfig *config,
                                                       const char *runtime_handler, cr_err **err)
{
    Runtime__V1__RunPodSandboxRequest req = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
    req.config = (Runtime__V1__PodSandboxConfig *)config;
    req.runtime_handler = (char *)(runtime_handler ? runtime_handler : "");
    return (Runtime__V1__RunPodSandboxResponse *)unary(c, CC_RUNTIME "RunPodSandbox", &req.base,
                                                       &runtime__v1__run_pod_sandbox_response__descriptor, err);
}

int cc_stop_pod_sandbox(cc_conn *c, const char *id, cr_err **err)
{
    Runtime__V1__StopPodSandboxRequest req = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
    req.pod_sandbox_id = (char *)id;
    ProtobufCMessage *m = unary(c, CC_RUNTIME "StopPodSandbox", &req.base,
                                &runtime__v1__stop_pod_sandbox_response__descriptor, err);
    if (!m)
        return -1;
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

int cc_remove_pod_sandbox(cc_conn *c, const char *id, cr_err **err)
{
    Runtime__V1__RemovePodSandboxRequest req = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
    req.pod_sandbox_id = (char *)id;
    ProtobufCMessage *m = unary(c, CC_RUNTIME "RemovePodSandbox", &req.base,
                                &runtime__v1__remove_pod_sandbox_response__descriptor, err);
    if (!m)
        return -1;
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

Runtime__V1__PodSandboxStatusResponse *cc_pod_sandbox_status(cc_conn *c, const char *id, int verbose,
                                                             cr_err **err)
{
    Runtime__V1__PodSandboxStatusRequest req = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
    req.pod_sandbox_id = (char *)id;
    req.verbose = verbose != 0;
    return (Runtime__V1__PodSandboxStatusResponse *)unary(c, CC_RUNTIME "PodSandboxStatus", &req.base,
                                                          &runtime__v1__pod_sandbox_status_response__descriptor, err);
}

Runtime__V1__ListPodSandboxResponse *cc_list_pod_sandbox(cc_conn *c, const Runtime__V1__PodSandboxFilter *filter,
                                                         cr_err **err)
{
    Runtime__V1__ListPodSandboxRequest req = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
    req.filter = (Runtime__V1__PodSandboxFilter *)filter;
    return (Runtime__V1__ListPodSandboxResponse *)unary(c, CC_RUNTIME "ListPodSandbox", &req.base,
                                                        &runtime__v1__list_pod_sandbox_response__descriptor, err);
}

/* A unary call whose response carries nothing: 0 or -1. */
static int unary_empty(cc_conn *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *desc, cr_err **err)
{
    ProtobufCMessage *m = unary(c, method, req, desc, err);
    if (!m)
        return -1;
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

/* The per-call deadline for an RPC that may legitimately run timeout_s
 * seconds on the server: that plus 30 s, never shorter than the usual one. */
static int deadline_after(cc_conn *c, int64_t timeout_s)
{
    int64_t ms = ((timeout_s > 0 ? timeout_s : 0) + 30) * 1000;
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    return ms > c->timeout_ms ? (int)ms : c->timeout_ms;
}

Runtime__V1__CreateContainerResponse *cc_create_container(cc_conn *c, const char *pod_id,
                                                          const Runtime__V1__ContainerConfig *config,
                                                          const Runtime__V1__PodSandboxConfig *sandbox_config,
                                                          cr_err **err)
{
    Runtime__V1__CreateContainerRequest req = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
    req.pod_sandbox_id = (char *)pod_id;
    req.config = (Runtime__V1__ContainerConfig *)config;
    req.sandbox_config = (Runtime__V1__PodSandboxConfig *)sandbox_config;
    return (Runtime__V1__CreateContainerResponse *)unary(c, CC_RUNTIME "CreateContainer", &req.base,
                                                         &runtime__v1__create_container_response__descriptor, err);
}

int cc_start_container(cc_conn *c, const char *id, cr_err **err)
{
    Runtime__V1__StartContainerRequest req = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)id;
    return unary_empty(c, CC_RUNTIME "StartContainer", &req.base,
                       &runtime__v1__start_container_response__descriptor, err);
}

int cc_stop_container(cc_conn *c, const char *id, int64_t timeout_s, cr_err **err)
{
    Runtime__V1__StopContainerRequest req = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)id;
    req.timeout = timeout_s;
    int saved = c->timeout_ms;
    c->timeout_ms = deadline_after(c, timeout_s);
    int rc = unary_empty(c, CC_RUNTIME "StopContainer", &req.base,
                         &runtime__v1__stop_container_response__descriptor, err);
    c->timeout_ms = saved;
    return rc;
}

int cc_remove_container(cc_conn *c, const char *id, cr_err **err)
{
    Runtime__V1__RemoveContainerRequest req = RUNTIME__V1__REMOVE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)id;
    return unary_empty(c, CC_RUNTIME "RemoveContainer", &req.base,
                       &runtime__v1__remove_container_response__descriptor, err);
}

Runtime__V1__ContainerStatusResponse *cc_container_status(cc_conn *c, const char *id, int verbose,
                                                          cr_err **err)
{
    Runtime__V1__ContainerStatusRequest req = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
    req.container_id = (char *)id;
    req.verbose = verbose != 0;
    return (Runtime__V1__ContainerStatusResponse *)unary(c, CC_RUNTIME "ContainerStatus", &req.base,
                                                         &runtime__v1__container_status_response__descriptor, err);
}

Runtime__V1__ListContainersResponse *cc_list_containers(cc_conn *c, const Runtime__V1__ContainerFilter *filter,
                                                        cr_err **err)
{
    Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
    req.filter = (Runtime__V1__ContainerFilter *)filter;
    return (Runtime__V1__ListContainersResponse *)unary(c, CC_RUNTIME "ListContainers", &req.base,
                                                        &runtime__v1__list_containers_response__descriptor, err);
}

Runtime__V1__ExecSyncResponse *cc_exec_sync(cc_conn *c, const char *id, const char *const *cmd,
                                            int64_t timeout_s, cr_err **err)
{
    Runtime__V1__ExecSyncRequest req = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
    req.container_id = (char *)id;
    size_t n = 0;
    while (cmd && cmd[n])
        n++;
    req.n_cmd = n;
    req.cmd = (char **)cmd;
    req.timeout = timeout_s;
    int saved = c->timeout_ms;
    /* timeout 0 is "no limit": as long as a pull may take */
    c->timeout_ms = timeout_s > 0 ? deadline_after(c, timeout_s) : c->pull_timeout_ms;
    ProtobufCMessage *m = unary(c, CC_RUNTIME "ExecSync", &req.base,
                                &runtime__v1__exec_sync_response__descriptor, err);
    c->timeout_ms = saved;
    return (Runtime__V1__ExecSyncResponse *)m;
}

/* The URL of a streaming response (Exec, Attach and PortForward responses
 * all carry just a url), copied; NULL with *err when the server gave none. */
static char *take_url(ProtobufCMessage *m, const char *what, char *url, const char *id, cr_err **err)
{
    if (!m)
        return NULL;
    char *u = NULL;
    if (!url || !*url)
        cr_err_set(err, CR_INTERNAL, "%s %s: the server returned no streaming URL", what, id);
    else if (!(u = strdup(url)))
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_free_unpacked(m, NULL);
    return u;
}

char *cc_exec(cc_conn *c, const char *id, const char *const *cmd, bool tty, bool stdin_, bool stdout_,
              bool stderr_, cr_err **err)
{
    Runtime__V1__ExecRequest req = RUNTIME__V1__EXEC_REQUEST__INIT;
    req.container_id = (char *)id;
    size_t n = 0;
    while (cmd && cmd[n])
        n++;
    req.n_cmd = n;
    req.cmd = (char **)cmd;
    req.tty = tty;
    req.stdin = stdin_;
    req.stdout = stdout_;
    req.stderr = stderr_;
    Runtime__V1__ExecResponse *r = (Runtime__V1__ExecResponse *)unary(
        c, CC_RUNTIME "Exec", &req.base, &runtime__v1__exec_response__descriptor, err);
    return take_url((ProtobufCMessage *)r, "exec in container", r ? r->url : NULL, id, err);
}

char *cc_attach(cc_conn *c, const char *id, bool tty, bool stdin_, bool stdout_, bool stderr_, cr_err **err)
{
    Runtime__V1__AttachRequest req = RUNTIME__V1__ATTACH_REQUEST__INIT;
    req.container_id = (char *)id;
    req.tty = tty;
    req.stdin = stdin_;
    req.stdout = stdout_;
    req.stderr = stderr_;
    Runtime__V1__AttachResponse *r = (Runtime__V1__AttachResponse *)unary(
        c, CC_RUNTIME "Attach", &req.base, &runtime__v1__attach_response__descriptor, err);
    return take_url((ProtobufCMessage *)r, "attach to container", r ? r->url : NULL, id, err);
}

char *cc_port_forward(cc_conn *c, const char *pod_id, const int32_t *ports, size_t n_ports, cr_err **err)
{
    Runtime__V1__PortForwardRequest req = RUNTIME__V1__PORT_FORWARD_REQUEST__INIT;
    req.pod_sandbox_id = (char *)pod_id;
    req.n_port = n_ports;
    req.port = (int32_t *)ports;
    Runtime__V1__PortForwardResponse *r = (Runtime__V1__PortForwardResponse *)unary(
        c, CC_RUNTIME "PortForward", &req.base, &runtime__v1__port_forward_response__descriptor, err);
    return take_url((ProtobufCMessage *)r, "port-forward to pod sandbox", r ? r->url : NULL, pod_id, err);
}

int cc_update_container_resources(cc_conn *c, const char *id,
                                  const Runtime__V1__LinuxContainerResources *resources, cr_err **err)
{
    Runtime__V1__UpdateContainerResourcesRequest req = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_REQUEST__INIT;
    req.container_id = (char *)id;
    req.linux = (Runtime__V1__LinuxContainerResources *)resources;
    return unary_empty(c, CC_RUNTIME "UpdateContainerResources", &req.base,
                       &runtime__v1__update_container_resources_response__descriptor, err);
}

int cc_reopen_container_log(cc_conn *c, const char *id, cr_err **err)
{
    Runtime__V1__ReopenContainerLogRequest req = RUNTIME__V1__REOPEN_CONTAINER_LOG_REQUEST__INIT;
    req.container_id = (char *)id;
    return unary_empty(c, CC_RUNTIME "ReopenContainerLog", &req.base,
                       &runtime__v1__reopen_container_log_response__descriptor, err);
}
