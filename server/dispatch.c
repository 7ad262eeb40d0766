/* The dispatch table: every RPC of runtime.v1 RuntimeService and ImageService,
 * in api.proto order.  rpc.c checks at start that this table and the generated
 * service descriptors agree, so a new RPC in api.proto cannot go unregistered.
 * An entry without a handler answers UNIMPLEMENTED naming the RPC. */
#include "internal.h"

#define U(svc, name, fn) { svc, name, false, fn, NULL }
#define S(svc, name, fn) { svc, name, true, NULL, fn }
#define R "RuntimeService"
#define I "ImageService"

const srv_rpc srv_rpcs[] = {
    U(R, "Version", srv_version),
    U(R, "RunPodSandbox", srv_run_pod_sandbox),
    U(R, "StopPodSandbox", srv_stop_pod_sandbox),
    U(R, "RemovePodSandbox", srv_remove_pod_sandbox),
    U(R, "PodSandboxStatus", srv_pod_sandbox_status),
    U(R, "ListPodSandbox", srv_list_pod_sandbox),
    S(R, "StreamPodSandboxes", srv_stream_pod_sandboxes),
    U(R, "CreateContainer", srv_create_container),
    U(R, "StartContainer", srv_start_container),
    U(R, "StopContainer", srv_stop_container),
    U(R, "RemoveContainer", srv_remove_container),
    U(R, "ListContainers", srv_list_containers),
    S(R, "StreamContainers", srv_stream_containers),
    U(R, "ContainerStatus", srv_container_status),
    U(R, "UpdateContainerResources", srv_update_container_resources),
    U(R, "ReopenContainerLog", srv_reopen_container_log),
    U(R, "ExecSync", srv_exec_sync),
    U(R, "Exec", srv_exec),
    U(R, "Attach", srv_attach),
    U(R, "PortForward", srv_port_forward),
    U(R, "ContainerStats", srv_container_stats),
    U(R, "ListContainerStats", srv_list_container_stats),
    S(R, "StreamContainerStats", srv_stream_container_stats),
    U(R, "PodSandboxStats", srv_pod_sandbox_stats),
    U(R, "ListPodSandboxStats", srv_list_pod_sandbox_stats),
    S(R, "StreamPodSandboxStats", srv_stream_pod_sandbox_stats),
    U(R, "UpdateRuntimeConfig", srv_update_runtime_config),
    U(R, "Status", srv_status),
    U(R, "CheckpointContainer", NULL),
    S(R, "GetContainerEvents", srv_get_container_events),
    U(R, "ListMetricDescriptors", srv_list_metric_descriptors),
    U(R, "ListPodSandboxMetrics", srv_list_pod_sandbox_metrics),
    S(R, "StreamPodSandboxMetrics", srv_stream_pod_sandbox_metrics),
    U(R, "RuntimeConfig", srv_runtime_config),
    U(R, "UpdatePodSandboxResources", NULL),

    U(I, "ListImages", srv_list_images),
    S(I, "StreamImages", srv_stream_images),
    U(I, "ImageStatus", srv_image_status),
    U(I, "PullImage", srv_pull_image),
    U(I, "RemoveImage", srv_remove_image),
    U(I, "ImageFsInfo", srv_image_fs_info),
};

const size_t srv_n_rpcs = sizeof(srv_rpcs) / sizeof(srv_rpcs[0]);
