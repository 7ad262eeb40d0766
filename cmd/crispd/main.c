/* crispd: the crisp CRI daemon.  Flags override the config file, which
 * overrides the built-in defaults. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/log.h"
#include "server/server.h"

enum {
    OPT_CONFIG = 1000, OPT_CONFIG_DIR, OPT_LISTEN, OPT_ROOT, OPT_RUNROOT, OPT_LOG_LEVEL,
    OPT_CNI_CONFIG_DIR, OPT_CNI_PLUGIN_DIR, OPT_REGISTRIES_CONF, OPT_SIGNATURE_POLICY,
    OPT_PAUSE_IMAGE, OPT_DEFAULT_RUNTIME, OPT_STREAM_ADDRESS, OPT_STREAM_PORT, OPT_THREADS,
    OPT_ENABLE_METRICS, OPT_METRICS_PORT,
    OPT_HELP, OPT_VERSION,
};

static const struct option options[] = {
    { "config", required_argument, NULL, OPT_CONFIG },
    { "config-dir", required_argument, NULL, OPT_CONFIG_DIR },
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "root", required_argument, NULL, OPT_ROOT },
    { "runroot", required_argument, NULL, OPT_RUNROOT },
    { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
    { "cni-config-dir", required_argument, NULL, OPT_CNI_CONFIG_DIR },
    { "cni-plugin-dir", required_argument, NULL, OPT_CNI_PLUGIN_DIR },
    { "registries-conf", required_argument, NULL, OPT_REGISTRIES_CONF },
    { "signature-policy", required_argument, NULL, OPT_SIGNATURE_POLICY },
    { "pause-image", required_argument, NULL, OPT_PAUSE_IMAGE },
    { "default-runtime", required_argument, NULL, OPT_DEFAULT_RUNTIME },
    { "stream-address", required_argument, NULL, OPT_STREAM_ADDRESS },
    { "stream-port", required_argument, NULL, OPT_STREAM_PORT },
    { "threads", required_argument, NULL, OPT_THREADS },
    { "enable-metrics", no_argument, NULL, OPT_ENABLE_METRICS },
    { "metrics-port", required_argument, NULL, OPT_METRICS_PORT },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { 0 },
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: crispd [flags]            serve the CRI on a unix socket\n"
        "       crispd [flags] config     print the effective config as TOML\n"
        "\n"
        "flags (each overrides the config file):\n"
        "  --config PATH            config file (default " CR_DEFAULT_CONFIG ")\n"
        "  --config-dir DIR         drop-in folder, *.conf in name order (default " CR_DEFAULT_CONFIG_DIR ")\n"
        "  --listen PATH            CRI socket (default /run/crisp/crisp.sock)\n"
        "  --root DIR               persistent state (default /var/lib/crisp)\n"
        "  --runroot DIR            runtime state (default /run/crisp)\n"
        "  --log-level LEVEL        error, warn, info or debug (default info)\n"
        "  --threads N              gRPC handler threads (default 8)\n"
        "  --cni-config-dir DIR     CNI network configs (default /etc/cni/net.d)\n"
        "  --cni-plugin-dir DIR     CNI plugin folder; repeat for several\n"
        "  --registries-conf PATH   containers-registries.conf file\n"
        "  --signature-policy PATH  containers-policy.json file\n"
        "  --pause-image REF        infra image (default: built-in crisp-pause, no pull)\n"
        "  --default-runtime NAME   runtime handler used when a pod names none\n"
        "  --stream-address ADDR    exec/attach/port-forward server address\n"
        "  --stream-port PORT       exec/attach/port-forward server port (0: any)\n"
        "  --enable-metrics         serve Prometheus metrics at http://ADDR:PORT/metrics\n"
        "  --metrics-port PORT      metrics endpoint port (default 9090; 0: any)\n"
        "  --version                print the version and exit\n");
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi) {
        fprintf(stderr, "crispd: --%s: %s is not an integer in %ld..%ld\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int need_abs(const char *flag, const char *s)
{
    if (s[0] != '/') {
        fprintf(stderr, "crispd: --%s: %s is not an absolute path\n", flag, s);
        return -1;
    }
    return 0;
}

/* Apply one flag on top of the loaded config.  0, or -1 after printing why. */
static int apply_flag(cr_config *c, int opt, const char *v, int *n_plugin_dirs)
{
    const char *name = NULL;
    for (const struct option *o = options; o->name; o++)
        if (o->val == opt)
            name = o->name;
    switch (opt) {
    case OPT_LISTEN: return need_abs(name, v) ?: cr_config_set_str(&c->listen, v);
    case OPT_ROOT: return need_abs(name, v) ?: cr_config_set_str(&c->root, v);
    case OPT_RUNROOT: return need_abs(name, v) ?: cr_config_set_str(&c->runroot, v);
    case OPT_CNI_CONFIG_DIR: return need_abs(name, v) ?: cr_config_set_str(&c->cni_config_dir, v);
    case OPT_REGISTRIES_CONF: return need_abs(name, v) ?: cr_config_set_str(&c->registries_conf, v);
    case OPT_SIGNATURE_POLICY: return need_abs(name, v) ?: cr_config_set_str(&c->signature_policy, v);
    case OPT_PAUSE_IMAGE: return cr_config_set_str(&c->pause_image, v);
    case OPT_DEFAULT_RUNTIME: return cr_config_set_str(&c->default_runtime, v);
    case OPT_STREAM_ADDRESS: return cr_config_set_str(&c->stream_address, v);
    case OPT_STREAM_PORT: return parse_int(name, v, 0, 65535, &c->stream_port);
    case OPT_THREADS: return parse_int(name, v, 1, 256, &c->threads);
    case OPT_ENABLE_METRICS: c->metrics_enable = true; return 0;
    case OPT_METRICS_PORT: return parse_int(name, v, 0, 65535, &c->metrics_port);
    case OPT_LOG_LEVEL:
        if (cr_log_set_level_name(v) < 0) {
            fprintf(stderr, "crispd: --log-level: %s is not one of error, warn, info, debug\n", v);
            return -1;
        }
        return cr_config_set_str(&c->log_level, v);
    case OPT_CNI_PLUGIN_DIR: {
        if (need_abs(name, v) < 0)
            return -1;
        /* The first --cni-plugin-dir replaces the configured list. */
        if (*n_plugin_dirs == 0) {
            for (char **p = c->cni_plugin_dirs; p && *p; p++)
                free(*p);
            free(c->cni_plugin_dirs);
            c->cni_plugin_dirs = NULL;
        }
        char **nv = realloc(c->cni_plugin_dirs, sizeof(char *) * (size_t)(*n_plugin_dirs + 2));
        if (!nv || !(nv[*n_plugin_dirs] = strdup(v)))
            return -1;
        nv[++*n_plugin_dirs] = NULL;
        c->cni_plugin_dirs = nv;
        return 0;
    }
    }
    return -1;
}

int main(int argc, char **argv)
{
    const char *config_path = CR_DEFAULT_CONFIG, *config_dir = CR_DEFAULT_CONFIG_DIR;
    bool explicit_config = false;
    /* Flags are collected first and applied after the files are loaded. */
    _cleanup_free_ int *opts = calloc((size_t)argc + 1, sizeof(int));
    _cleanup_free_ char **vals = calloc((size_t)argc + 1, sizeof(char *));
    int n_opts = 0;
    if (!opts || !vals) {
        fprintf(stderr, "crispd: out of memory\n");
        return 1;
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: usage(stdout); return 0;
        case OPT_VERSION: printf("crispd %s\n", CRISP_VERSION); return 0;
        case OPT_CONFIG: config_path = optarg; explicit_config = true; break;
        case OPT_CONFIG_DIR: config_dir = optarg; break;
        case '?': usage(stderr); return 2;
        default: opts[n_opts] = opt; vals[n_opts++] = optarg; break;
        }
    }
    bool print_config = false;
    if (optind < argc) {
        if (strcmp(argv[optind], "config") == 0 && optind + 1 == argc) {
            print_config = true;
        } else {
            fprintf(stderr, "crispd: unexpected argument %s\n", argv[optind]);
            usage(stderr);
            return 2;
        }
    }

    cr_config *cfg = cr_config_new_default();
    _cleanup_err_ cr_err *err = NULL;
    if (!cfg) {
        fprintf(stderr, "crispd: out of memory\n");
        return 1;
    }
    if (cr_config_load_file(cfg, config_path, !explicit_config, &err) < 0 ||
        cr_config_load_dir(cfg, config_dir, &err) < 0) {
        fprintf(stderr, "crispd: %s\n", err->msg);
        cr_config_free(cfg);
        return 1;
    }
    int n_plugin_dirs = 0;
    for (int i = 0; i < n_opts; i++)
        if (apply_flag(cfg, opts[i], vals[i], &n_plugin_dirs) < 0) {
            cr_config_free(cfg);
            return 2;
        }
    if (cr_config_validate(cfg, &err) < 0) {
        fprintf(stderr, "crispd: %s\n", err->msg);
        cr_config_free(cfg);
        return 1;
    }
    cr_log_set_level_name(cfg->log_level);

    if (print_config) {
        int rc = cr_config_write_toml(cfg, stdout) < 0 ? 1 : 0;
        cr_config_free(cfg);
        return rc;
    }

    /* Every thread inherits this mask; the main thread takes the signals with
     * sigwait, so shutdown runs in ordinary code, not in a signal handler. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char threads[24];
    snprintf(threads, sizeof(threads), "%lld", (long long)cfg->threads);
    char *listen = strdup(cfg->listen);
    srv_daemon *d = srv_start(cfg, &err);
    if (!d) {
        fprintf(stderr, "crispd: %s\n", err->msg);
        cr_log_error("cannot start", "error", err->msg, NULL);
        free(listen);
        return 1;
    }
    cr_log_info("crispd serving", "version", CRISP_VERSION, "listen", listen, "threads", threads, NULL);
    free(listen);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            cr_log_info("SIGHUP ignored: restart crispd to apply config changes", NULL);
            continue;
        }
        cr_log_info("signal received", "signal", strsignal(sig), NULL);
        break;
    }
    srv_stop(d);
    cr_log_info("crispd stopped", NULL);
    return 0;
}
