/* crispd configuration: defaults, TOML file + drop-ins, then command-line
 * flags (applied by cmd/crispd).  Every string is heap-owned by the config. */
#ifndef CRISP_LIB_CONFIG_H
#define CRISP_LIB_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>

#include "err.h"

#define CR_DEFAULT_CONFIG "/etc/crisp/crisp.conf"
#define CR_DEFAULT_CONFIG_DIR "/etc/crisp/crisp.conf.d"

/* One [crisp.runtime.runtimes.<name>] table. */
typedef struct cr_runtime_handler {
    char *name;
    char *runtime_path;   /* binary; "" = look the name up in PATH at start */
    char *runtime_root;   /* state dir passed as --root; "" = <runroot>/<name> */
    char *runtime_type;   /* only "oci" today */
} cr_runtime_handler;

typedef struct cr_config {
    /* [crisp]: the daemon */
    char *listen;          /* unix socket path, "/run/crisp/crisp.sock" */
    char *root;            /* "/var/lib/crisp" */
    char *runroot;         /* "/run/crisp" */
    char *log_level;       /* error | warn | info | debug */
    int64_t threads;       /* gRPC handler threads, 1..256, default 8 */
    int64_t shutdown_timeout; /* seconds in-flight calls get on SIGTERM, default 10 */

    /* [crisp.stream]: exec/attach/port-forward server */
    char *stream_address;  /* "127.0.0.1" */
    int64_t stream_port;   /* 0 = chosen at start */
    int64_t stream_token_ttl;    /* seconds a URL from Exec/Attach/PortForward stays valid, 60 */
    int64_t stream_idle_timeout; /* seconds a session may pass without traffic, 14400 */

    /* [crisp.metrics]: crispd's own Prometheus endpoint (GET /metrics) */
    bool metrics_enable;   /* default false: nothing listens */
    char *metrics_address; /* "127.0.0.1" */
    int64_t metrics_port;  /* 9090; 0 = chosen at start */

    /* [crisp.runtime] */
    char *default_runtime; /* name of a handler, "runc" */
    char *cgroup_manager;  /* cgroupfs | systemd */
    char *monitor_path;    /* crisp-monitor binary (conmon-like) */
    char *pause_image;     /* "" = built-in crisp-pause, no pull */
    char *pause_command;   /* built-in pause binary, "/usr/local/libexec/crisp/crisp-pause" */
    char *hooks_dir;       /* OCI hooks folder (oci-hooks(5)); "" = none */
    cr_runtime_handler *runtimes;
    size_t n_runtimes;

    /* [crisp.image] */
    char *registries_conf;      /* "/etc/containers/registries.conf" */
    char *registries_conf_dir;  /* "/etc/containers/registries.conf.d" */
    char *signature_policy;     /* "/etc/containers/policy.json" */
    char *auth_file;            /* "" = none; containers-auth.json format */
    int64_t max_parallel_downloads; /* default 3 */
    int64_t pull_progress_timeout;  /* seconds without progress before a pull fails, default 60 */

    /* [crisp.network] */
    char *cni_config_dir;  /* "/etc/cni/net.d" */
    char **cni_plugin_dirs; /* NULL-terminated; default /opt/cni/bin, /usr/lib/cni */
} cr_config;

/* A config holding every default.  NULL only on out-of-memory. */
cr_config *cr_config_new_default(void);
void cr_config_free(cr_config *c);

/* Apply one TOML file on top of c.  Unknown keys, bad types and bad values are
 * CR_INVALID_ARGUMENT errors whose message starts "<path>:<line>: ".
 * missing_ok: a file that does not exist is not an error. */
int cr_config_load_file(cr_config *c, const char *path, bool missing_ok, cr_err **err);
/* Apply every "*.conf" in dir in name order; a missing dir is not an error. */
int cr_config_load_dir(cr_config *c, const char *dir, cr_err **err);
/* The whole sequence: main file (missing_ok) then drop-in dir. */
int cr_config_load(cr_config *c, const char *path, const char *dir, cr_err **err);

/* Checks that need the whole config (default_runtime names a handler, ...),
 * run after flags are applied.  Fills in derived values (runtime roots). */
int cr_config_validate(cr_config *c, cr_err **err);

/* Look up a handler by name; NULL when unknown. */
const cr_runtime_handler *cr_config_runtime(const cr_config *c, const char *name);
/* Add or replace a handler (used for defaults and by flags). */
int cr_config_set_runtime(cr_config *c, const char *name, const char *path,
                          const char *root, const char *type);

/* Effective config as TOML with a comment line per key (`crispd config`). */
int cr_config_write_toml(const cr_config *c, FILE *out);
/* Effective config as a JSON object (Status verbose info).  Heap string. */
char *cr_config_to_json(const cr_config *c);

/* Replace a string field: free the old value, strdup the new.  0 or -1. */
int cr_config_set_str(char **field, const char *value);

#endif
