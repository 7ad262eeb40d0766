/* crisp client library: plain C calls over gRPC core and the generated
 * protobuf-c messages.  crispctl, the integration tests and the benchmarks
 * use it; it talks to any CRI endpoint (crispd, containerd, CRI-O). */
#ifndef CRISP_CLIENT_H
#define CRISP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "proto/api.pb-c.h"
#include "lib/err.h"

typedef struct cc_conn cc_conn;

#define CC_RUNTIME "/runtime.v1.RuntimeService/"
#define CC_IMAGE "/runtime.v1.ImageService/"
#define CC_DEFAULT_ENDPOINT "unix:///run/crisp/crisp.sock"

/* endpoint: "unix:///path", "unix:/path" or a bare absolute path.  The
 * connection is lazy: errors show on the first call. */
cc_conn *cc_connect(const char *endpoint, cr_err **err);
void cc_close(cc_conn *c);
/* Per-call deadline in milliseconds (default 30000). */
/* Deadline of each call in ms (default 30 s); 0: none (a stream to follow). */
void cc_set_timeout(cc_conn *c, int timeout_ms);

/* One unary call.  method is the full path ("/runtime.v1.RuntimeService/Version").
 * On success *resp is a message to free with protobuf_c_message_free_unpacked.
 * A non-OK status becomes *err with the server's code and message. */
int cc_call(cc_conn *c, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, cr_err **err);

/* A unary call with raw request bytes (to test servers with broken input). */
int cc_call_raw(cc_conn *c, const char *method, const void *data, size_t len,
                uint8_t **resp, size_t *resp_len, cr_err **err);

/* A server-streaming call: cb is called for each response (return non-zero to
 * cancel the stream; cc_call_stream then returns 0 with *err unset). */
typedef int (*cc_stream_cb)(const ProtobufCMessage *msg, void *ud);
int cc_call_stream(cc_conn *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, cc_stream_cb cb, void *ud,
                   cr_err **err);

/* Typed helpers. */
Runtime__V1__VersionResponse *cc_version(cc_conn *c, cr_err **err);
Runtime__V1__StatusResponse *cc_status(cc_conn *c, int verbose, cr_err **err);
Runtime__V1__RuntimeConfigResponse *cc_runtime_config(cc_conn *c, cr_err **err);

/* ImageService.  A pull uses the pull timeout (cc_set_pull_timeout; default
 * two hours), not the per-call one: pulls legitimately take long. */
void cc_set_pull_timeout(cc_conn *c, int timeout_ms);
Runtime__V1__PullImageResponse *cc_pull_image(cc_conn *c, const char *image,
                                              const Runtime__V1__AuthConfig *auth, cr_err **err);
/* filter may be NULL (all images). */
Runtime__V1__ListImagesResponse *cc_list_images(cc_conn *c, const char *filter, cr_err **err);
Runtime__V1__ImageStatusResponse *cc_image_status(cc_conn *c, const char *image, int verbose,
                                                  cr_err **err);
int cc_remove_image(cc_conn *c, const char *image, cr_err **err);
Runtime__V1__ImageFsInfoResponse *cc_image_fs_info(cc_conn *c, cr_err **err);

/* Pod sandboxes. */
Runtime__V1__RunPodSandboxResponse *cc_run_pod_sandbox(cc_conn *c, const Runtime__V1__PodSandboxConfig *config,
                                                       const char *runtime_handler, cr_err **err);
int cc_stop_pod_sandbox(cc_conn *c, const char *id, cr_err **err);
int cc_remove_pod_sandbox(cc_conn *c, const char *id, cr_err **err);
Runtime__V1__PodSandboxStatusResponse *cc_pod_sandbox_status(cc_conn *c, const char *id, int verbose,
                                                             cr_err **err);
/* filter may be NULL. */
Runtime__V1__ListPodSandboxResponse *cc_list_pod_sandbox(cc_conn *c, const Runtime__V1__PodSandboxFilter *filter,
                                                         cr_err **err);

/* Containers. */
/* sandbox_config may be NULL. */
Runtime__V1__CreateContainerResponse *cc_create_container(cc_conn *c, const char *pod_id,
                                                          const Runtime__V1__ContainerConfig *config,
                                                          const Runtime__V1__PodSandboxConfig *sandbox_config,
                                                          cr_err **err);
int cc_start_container(cc_conn *c, const char *id, cr_err **err);
/* timeout_s: grace period before SIGKILL (0: kill at once).  The call's
 * deadline is timeout_s plus 30 s, so a long grace period is not cut short. */
int cc_stop_container(cc_conn *c, const char *id, int64_t timeout_s, cr_err **err);
int cc_remove_container(cc_conn *c, const char *id, cr_err **err);
Runtime__V1__ContainerStatusResponse *cc_container_status(cc_conn *c, const char *id, int verbose,
                                                          cr_err **err);
/* filter may be NULL (all containers). */
Runtime__V1__ListContainersResponse *cc_list_containers(cc_conn *c, const Runtime__V1__ContainerFilter *filter,
                                                        cr_err **err);
/* cmd: NULL-terminated argv.  timeout_s: 0 for none.  The call's deadline is
 * timeout_s plus 30 s, or the pull timeout when timeout_s is 0.  A command
 * that ran returns its response whatever its exit code. */
Runtime__V1__ExecSyncResponse *cc_exec_sync(cc_conn *c, const char *id, const char *const *cmd,
                                            int64_t timeout_s, cr_err **err);
/* Streaming: each returns the URL (heap string, free()) the server's
 * streaming endpoint answers on, for st_client_exec / st_client_portforward
 * (server/stream/client.h); the URL's token is good for one session.
 * cmd: NULL-terminated argv. */
char *cc_exec(cc_conn *c, const char *id, const char *const *cmd, bool tty, bool stdin_, bool stdout_,
              bool stderr_, cr_err **err);
char *cc_attach(cc_conn *c, const char *id, bool tty, bool stdin_, bool stdout_, bool stderr_, cr_err **err);
char *cc_port_forward(cc_conn *c, const char *pod_id, const int32_t *ports, size_t n_ports, cr_err **err);
int cc_update_container_resources(cc_conn *c, const char *id,
                                  const Runtime__V1__LinuxContainerResources *resources, cr_err **err);
int cc_reopen_container_log(cc_conn *c, const char *id, cr_err **err);

#define cc_free(m) protobuf_c_message_free_unpacked(&(m)->base, NULL)

#endif
