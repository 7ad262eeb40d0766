/* Unit tests for lib/config.c: defaults, loading (main file and drop-ins),
 * strictness with file:line errors, validation, TOML/JSON output, and the
 * shipped contrib/crisp.conf. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "lib/config.h"
#include "lib/err.h"
#include "lib/toml.h"

#ifndef CRISP_LIBEXECDIR
#define CRISP_LIBEXECDIR "/usr/local/libexec/crisp"
#endif

/* ---- temporary directory, shared by a test case, removed afterwards ---- */

static char tmpdir[64];

static void tmp_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/crisp-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void tmp_teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write content to tmpdir/name; returns a static path (valid until next call). */
static const char *write_file(const char *name, const char *content)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(content, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static const char *make_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    ck_assert_msg(mkdir(path, 0755) == 0, "%s: %s", path, strerror(errno));
    return path;
}

/* ---- comparing configs ---- */

static bool str_eq(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

/* NULL when equal, else a static description of the first difference. */
static const char *config_diff(const cr_config *a, const cr_config *b)
{
    static char why[512];
#define S(f) if (!str_eq(a->f, b->f)) { snprintf(why, sizeof(why), #f ": \"%s\" vs \"%s\"", a->f, b->f); return why; }
#define I(f) if (a->f != b->f) { snprintf(why, sizeof(why), #f ": %lld vs %lld", (long long)a->f, (long long)b->f); return why; }
    S(listen) S(root) S(runroot) S(log_level) I(threads) I(shutdown_timeout)
    S(stream_address) I(stream_port) I(stream_token_ttl) I(stream_idle_timeout)
    I(metrics_enable) S(metrics_address) I(metrics_port)
    S(default_runtime) S(cgroup_manager) S(monitor_path) S(pause_image) S(pause_command)
    S(registries_conf) S(registries_conf_dir) S(signature_policy) S(auth_file)
    I(max_parallel_downloads) I(pull_progress_timeout)
    S(cni_config_dir)
#undef S
#undef I
    size_t i = 0;
    for (; a->cni_plugin_dirs[i] && b->cni_plugin_dirs[i]; i++)
        if (strcmp(a->cni_plugin_dirs[i], b->cni_plugin_dirs[i]) != 0)
            break;
    if (a->cni_plugin_dirs[i] || b->cni_plugin_dirs[i]) {
        snprintf(why, sizeof(why), "cni_plugin_dirs[%zu] differs", i);
        return why;
    }
    if (a->n_runtimes != b->n_runtimes) {
        snprintf(why, sizeof(why), "n_runtimes: %zu vs %zu", a->n_runtimes, b->n_runtimes);
        return why;
    }
    for (size_t j = 0; j < a->n_runtimes; j++) {
        const cr_runtime_handler *x = &a->runtimes[j];
        const cr_runtime_handler *y = cr_config_runtime(b, x->name);
        if (!y || !str_eq(x->runtime_path, y->runtime_path) || !str_eq(x->runtime_root, y->runtime_root) ||
            !str_eq(x->runtime_type, y->runtime_type)) {
            snprintf(why, sizeof(why), "runtime handler %s differs", x->name);
            return why;
        }
    }
    return NULL;
}

#define ASSERT_SAME(a, b)                                         \
    do {                                                          \
        const char *d_ = config_diff((a), (b));                   \
        ck_assert_msg(d_ == NULL, "configs differ: %s", d_);      \
    } while (0)

/* Load text as tmpdir/name into c; must fail with a message starting
 * "<path>:<line>: " and containing phrase.  c must be left unchanged. */
static void expect_load_error(const char *name, const char *text, int line, const char *phrase)
{
    cr_config *c = cr_config_new_default();
    cr_config *ref = cr_config_new_default();
    const char *path = write_file(name, text);
    cr_err *e = NULL;
    ck_assert_int_eq(cr_config_load_file(c, path, false, &e), -1);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    ck_assert_msg(strncmp(e->msg, prefix, strlen(prefix)) == 0, "<<%s>> lacks prefix <<%s>>", e->msg, prefix);
    ck_assert_msg(strstr(e->msg, phrase) != NULL, "<<%s>> lacks <<%s>>", e->msg, phrase);
    ASSERT_SAME(c, ref);
    cr_err_free(e);
    cr_config_free(c);
    cr_config_free(ref);
}

static const char *crun_binary(void)
{
    static const char *const paths[] = { "/usr/bin/crun", "/usr/sbin/crun", "/usr/local/bin/crun",
                                         "/usr/local/sbin/crun" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A file setting every key to a non-default value. */
static const char full_config[] =
    "# every key\n"
    "[crisp]\n"
    "listen = \"/tmp/x/crisp.sock\"\n"
    "root = \"/srv/crisp\"\n"
    "runroot = \"/run/crisp2\"\n"
    "log_level = \"debug\"\n"
    "threads = 32\n"
    "shutdown_timeout = 30\n"
    "\n"
    "[crisp.stream]\n"
    "address = \"::1\"\n"
    "port = 10010\n"
    "token_ttl = 30\n"
    "idle_timeout = 600\n"
    "\n"
    "[crisp.metrics]\n"
    "enable = true\n"
    "address = \"::1\"\n"
    "port = 9191\n"
    "\n"
    "[crisp.runtime]\n"
    "default_runtime = \"kata\"\n"
    "cgroup_manager = \"systemd\"\n"
    "monitor_path = \"/opt/crisp/crisp-monitor\"\n"
    "pause_image = \"registry.k8s.io/pause:3.10\"\n"
    "pause_command = \"/opt/crisp/crisp-pause\"\n"
    "\n"
    "[crisp.runtime.runtimes.runc]\n"
    "runtime_path = \"/usr/sbin/runc\"\n"
    "runtime_root = \"/run/runc-state\"\n"
    "runtime_type = \"oci\"\n"
    "\n"
    "[crisp.runtime.runtimes.kata]\n"
    "runtime_path = \"/opt/kata/bin/kata-runtime\"\n"
    "\n"
    "[crisp.image]\n"
    "registries_conf = \"/etc/crisp/registries.conf\"\n"
    "registries_conf_dir = \"/etc/crisp/registries.d\"\n"
    "signature_policy = \"/etc/crisp/policy.json\"\n"
    "auth_file = \"/etc/crisp/auth.json\"\n"
    "max_parallel_downloads = 6\n"
    "pull_progress_timeout = 120\n"
    "\n"
    "[crisp.network]\n"
    "cni_config_dir = \"/etc/crisp/net.d\"\n"
    "cni_plugin_dirs = [\n"
    "  \"/usr/libexec/cni\", # distro plugins\n"
    "]\n";

/* ---- tests ---- */

START_TEST(test_defaults)
{
    cr_config *c = cr_config_new_default();
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->listen, "/run/crisp/crisp.sock");
    ck_assert_str_eq(c->root, "/var/lib/crisp");
    ck_assert_str_eq(c->runroot, "/run/crisp");
    ck_assert_str_eq(c->log_level, "info");
    ck_assert_int_eq(c->threads, 8);
    ck_assert_int_eq(c->shutdown_timeout, 10);
    ck_assert_str_eq(c->stream_address, "127.0.0.1");
    ck_assert_int_eq(c->stream_port, 0);
    ck_assert_int_eq(c->stream_token_ttl, 60);
    ck_assert_int_eq(c->stream_idle_timeout, 14400);
    ck_assert(!c->metrics_enable);
    ck_assert_str_eq(c->metrics_address, "127.0.0.1");
    ck_assert_int_eq(c->metrics_port, 9090);
    ck_assert_str_eq(c->default_runtime, "runc");
    ck_assert_str_eq(c->cgroup_manager, "cgroupfs");
    ck_assert_str_eq(c->monitor_path, CRISP_LIBEXECDIR "/crisp-monitor");
    ck_assert_str_eq(c->pause_image, "");
    ck_assert_str_eq(c->pause_command, CRISP_LIBEXECDIR "/crisp-pause");
    ck_assert_str_eq(c->registries_conf, "/etc/containers/registries.conf");
    ck_assert_str_eq(c->registries_conf_dir, "/etc/containers/registries.conf.d");
    ck_assert_str_eq(c->signature_policy, "/etc/containers/policy.json");
    ck_assert_str_eq(c->auth_file, "");
    ck_assert_int_eq(c->max_parallel_downloads, 3);
    ck_assert_int_eq(c->pull_progress_timeout, 60);
    ck_assert_str_eq(c->cni_config_dir, "/etc/cni/net.d");
    ck_assert_str_eq(c->cni_plugin_dirs[0], "/opt/cni/bin");
    ck_assert_str_eq(c->cni_plugin_dirs[1], "/usr/lib/cni");
    ck_assert_ptr_null(c->cni_plugin_dirs[2]);

    const cr_runtime_handler *runc = cr_config_runtime(c, "runc");
    ck_assert_ptr_nonnull(runc);
    ck_assert_str_eq(runc->runtime_path, "");
    ck_assert_str_eq(runc->runtime_root, "");
    ck_assert_str_eq(runc->runtime_type, "oci");
    const char *crun_bin = crun_binary();
    const cr_runtime_handler *crun = cr_config_runtime(c, "crun");
    if (crun_bin) {
        ck_assert_ptr_nonnull(crun);
        ck_assert_str_eq(crun->runtime_path, crun_bin);
        ck_assert_str_eq(crun->runtime_type, "oci");
        ck_assert_uint_eq(c->n_runtimes, 2);
    } else {
        ck_assert_ptr_null(crun);
        ck_assert_uint_eq(c->n_runtimes, 1);
    }
    ck_assert_ptr_null(cr_config_runtime(c, "kata"));

    /* defaults pass validation, which fills the runtime roots */
    cr_err *e = NULL;
    ck_assert_int_eq(cr_config_validate(c, &e), 0);
    ck_assert_str_eq(cr_config_runtime(c, "runc")->runtime_root, "/run/crisp/runc");
    cr_config_free(c);
    cr_config_free(NULL);
}
END_TEST

START_TEST(test_full_file)
{
    cr_config *c = cr_config_new_default();
    size_t n_default = c->n_runtimes;
    cr_err *e = NULL;
    const char *path = write_file("full.conf", full_config);
    ck_assert_msg(cr_config_load_file(c, path, false, &e) == 0, "%s", e ? e->msg : "");
    ck_assert_str_eq(c->listen, "/tmp/x/crisp.sock");
    ck_assert_str_eq(c->root, "/srv/crisp");
    ck_assert_str_eq(c->runroot, "/run/crisp2");
    ck_assert_str_eq(c->log_level, "debug");
    ck_assert_int_eq(c->threads, 32);
    ck_assert_int_eq(c->shutdown_timeout, 30);
    ck_assert_str_eq(c->stream_address, "::1");
    ck_assert_int_eq(c->stream_port, 10010);
    ck_assert_int_eq(c->stream_token_ttl, 30);
    ck_assert_int_eq(c->stream_idle_timeout, 600);
    ck_assert(c->metrics_enable);
    ck_assert_str_eq(c->metrics_address, "::1");
    ck_assert_int_eq(c->metrics_port, 9191);
    ck_assert_str_eq(c->default_runtime, "kata");
    ck_assert_str_eq(c->cgroup_manager, "systemd");
    ck_assert_str_eq(c->monitor_path, "/opt/crisp/crisp-monitor");
    ck_assert_str_eq(c->pause_image, "registry.k8s.io/pause:3.10");
    ck_assert_str_eq(c->pause_command, "/opt/crisp/crisp-pause");
    ck_assert_str_eq(c->registries_conf, "/etc/crisp/registries.conf");
    ck_assert_str_eq(c->registries_conf_dir, "/etc/crisp/registries.d");
    ck_assert_str_eq(c->signature_policy, "/etc/crisp/policy.json");
    ck_assert_str_eq(c->auth_file, "/etc/crisp/auth.json");
    ck_assert_int_eq(c->max_parallel_downloads, 6);
    ck_assert_int_eq(c->pull_progress_timeout, 120);
    ck_assert_str_eq(c->cni_config_dir, "/etc/crisp/net.d");
    ck_assert_str_eq(c->cni_plugin_dirs[0], "/usr/libexec/cni");
    ck_assert_ptr_null(c->cni_plugin_dirs[1]);

    ck_assert_uint_eq(c->n_runtimes, n_default + 1);
    const cr_runtime_handler *runc = cr_config_runtime(c, "runc");
    ck_assert_str_eq(runc->runtime_path, "/usr/sbin/runc");
    ck_assert_str_eq(runc->runtime_root, "/run/runc-state");
    const cr_runtime_handler *kata = cr_config_runtime(c, "kata");
    ck_assert_ptr_nonnull(kata);
    ck_assert_str_eq(kata->runtime_path, "/opt/kata/bin/kata-runtime");
    ck_assert_str_eq(kata->runtime_root, "");
    ck_assert_str_eq(kata->runtime_type, "oci");

    ck_assert_int_eq(cr_config_validate(c, &e), 0);
    ck_assert_str_eq(cr_config_runtime(c, "kata")->runtime_root, "/run/crisp2/kata");
    ck_assert_str_eq(cr_config_runtime(c, "runc")->runtime_root, "/run/runc-state");
    cr_config_free(c);
}
END_TEST

START_TEST(test_dropins_in_name_order)
{
    char main_conf[512];
    snprintf(main_conf, sizeof(main_conf), "%s", write_file("main.conf", "[crisp]\nthreads = 4\nlog_level = \"warn\"\n"));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", make_dir("conf.d"));
    /* written out of order on purpose: applied 10-, 20-, 30- */
    write_file("conf.d/30-last.conf", "[crisp]\nthreads = 16\n"
                                      "[crisp.runtime.runtimes.kata]\nruntime_root = \"/run/kata\"\n");
    write_file("conf.d/10-first.conf", "[crisp]\nthreads = 12\nshutdown_timeout = 5\n"
                                       "[crisp.runtime]\ndefault_runtime = \"kata\"\n"
                                       "[crisp.runtime.runtimes.kata]\n"
                                       "runtime_path = \"/opt/kata/kata-runtime\"\n"
                                       "runtime_root = \"/run/kata-first\"\n");
    write_file("conf.d/20-middle.conf", "crisp.threads = 14\ncrisp.image.auth_file = \"/etc/auth.json\"\n");
    /* ignored: not *.conf, hidden, and a directory named like a drop-in */
    write_file("conf.d/99-ignored.conf.bak", "this is not toml\n");
    write_file("conf.d/.hidden.conf", "this is not toml\n");
    write_file("conf.d/README", "this is not toml\n");
    make_dir("conf.d/50-dir.conf");

    cr_config *c = cr_config_new_default();
    cr_err *e = NULL;
    ck_assert_msg(cr_config_load(c, main_conf, dir, &e) == 0, "%s", e ? e->msg : "");
    ck_assert_int_eq(c->threads, 16);
    ck_assert_str_eq(c->log_level, "warn");
    ck_assert_int_eq(c->shutdown_timeout, 5);
    ck_assert_str_eq(c->auth_file, "/etc/auth.json");
    ck_assert_str_eq(c->default_runtime, "kata");
    const cr_runtime_handler *kata = cr_config_runtime(c, "kata");
    ck_assert_ptr_nonnull(kata);
    ck_assert_str_eq(kata->runtime_path, "/opt/kata/kata-runtime"); /* kept from 10- */
    ck_assert_str_eq(kata->runtime_root, "/run/kata");              /* overridden by 30- */
    ck_assert_ptr_nonnull(cr_config_runtime(c, "runc"));
    ck_assert_int_eq(cr_config_validate(c, &e), 0);
    cr_config_free(c);

    /* a bad drop-in names itself */
    write_file("conf.d/40-bad.conf", "[crisp]\n\nthreads = 0\n");
    c = cr_config_new_default();
    ck_assert_int_eq(cr_config_load(c, main_conf, dir, &e), -1);
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s/40-bad.conf:3: crisp.threads: 0 is out of range", dir);
    ck_assert_msg(strncmp(e->msg, prefix, strlen(prefix)) == 0, "%s", e->msg);
    cr_err_freep(&e);
    cr_config_free(c);
}
END_TEST

START_TEST(test_missing_files)
{
    cr_config *c = cr_config_new_default();
    cr_config *ref = cr_config_new_default();
    cr_err *e = NULL;
    char missing[512], missing_dir[512];
    snprintf(missing, sizeof(missing), "%s/nope.conf", tmpdir);
    snprintf(missing_dir, sizeof(missing_dir), "%s/nope.d", tmpdir);

    ck_assert_int_eq(cr_config_load_file(c, missing, true, &e), 0);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(cr_config_load_dir(c, missing_dir, &e), 0);
    ck_assert_int_eq(cr_config_load(c, missing, missing_dir, &e), 0);
    ck_assert_ptr_null(e);
    ASSERT_SAME(c, ref);

    /* a required file that is missing is an error naming it */
    ck_assert_int_eq(cr_config_load_file(c, missing, false, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    ck_assert_msg(strstr(e->msg, missing) != NULL, "%s", e->msg);
    cr_err_freep(&e);

    /* a "directory" that is a file is not silently skipped */
    const char *file = write_file("not-a-dir", "");
    ck_assert_int_eq(cr_config_load_dir(c, file, &e), -1);
    ck_assert_msg(strstr(e->msg, file) != NULL, "%s", e->msg);
    cr_err_freep(&e);

    /* an unreadable drop-in directory is an error (root reads anything) */
    if (geteuid() != 0) {
        const char *locked = make_dir("locked.d");
        ck_assert_int_eq(chmod(locked, 0), 0);
        ck_assert_int_eq(cr_config_load_dir(c, locked, &e), -1);
        ck_assert_int_eq(e->code, CR_PERMISSION_DENIED);
        cr_err_freep(&e);
        chmod(locked, 0755);
    }
    cr_config_free(c);
    cr_config_free(ref);
}
END_TEST

START_TEST(test_unknown_keys)
{
    expect_load_error("u1.conf", "[crisp.runtime]\nfoo = 1\n", 2, "unknown key \"crisp.runtime.foo\"");
    expect_load_error("u2.conf", "[crisp]\nthreads = 2\n\n[crisp.bogus]\n", 4, "unknown key \"crisp.bogus\"");
    expect_load_error("u3.conf", "# top\n[other]\nx = 1\n", 2, "unknown key \"other\"");
    expect_load_error("u4.conf", "[crisp.runtime.runtimes.runc]\nruntime_path = \"\"\nengine = \"x\"\n", 3,
                      "unknown key \"crisp.runtime.runtimes.runc.engine\"");
    expect_load_error("u5.conf", "[crisp]\n\"log level\" = \"info\"\n", 2, "unknown key \"crisp.'log level'\"");
    expect_load_error("u6.conf", "crisp.network.cni_plugin_dir = []\n", 1,
                      "unknown key \"crisp.network.cni_plugin_dir\"");
    expect_load_error("u7.conf", "[crisp.stream]\nport = 1\n[crisp.stream.tls]\n", 3, "unknown key \"crisp.stream.tls\"");
}
END_TEST

START_TEST(test_wrong_types)
{
    expect_load_error("t1.conf", "[crisp]\nthreads = \"8\"\n", 2, "crisp.threads: expected an integer, got a string");
    expect_load_error("t2.conf", "[crisp]\nlisten = 1\n", 2, "crisp.listen: expected a string, got an integer");
    expect_load_error("t3.conf", "crisp.stream = 5\n", 1, "crisp.stream: expected a table, got an integer");
    expect_load_error("t4.conf", "[crisp.network]\ncni_plugin_dirs = \"/opt/cni/bin\"\n", 2,
                      "crisp.network.cni_plugin_dirs: expected an array of strings, got a string");
    expect_load_error("t5.conf", "[crisp.network]\ncni_plugin_dirs = [\n  \"/a\",\n  2,\n]\n", 4,
                      "crisp.network.cni_plugin_dirs[1]: expected a string, got an integer");
    expect_load_error("t6.conf", "[[crisp.runtime.runtimes.x]]\n", 1,
                      "crisp.runtime.runtimes.x: expected a table, got an array");
    expect_load_error("t7.conf", "crisp = true\n", 1, "crisp: expected a table, got a boolean");
    expect_load_error("t8.conf", "[crisp.image]\nmax_parallel_downloads = true\n", 2,
                      "expected an integer, got a boolean");
    expect_load_error("t9.conf", "[crisp.runtime]\nruntimes = []\n", 2,
                      "crisp.runtime.runtimes: expected a table, got an array");
}
END_TEST

START_TEST(test_bad_values)
{
    expect_load_error("v1.conf", "[crisp]\nlog_level = \"loud\"\n", 2,
                      "crisp.log_level: \"loud\" is not one of error, warn, info, debug");
    expect_load_error("v2.conf", "[crisp]\nthreads = 0\n", 2, "crisp.threads: 0 is out of range (1..256)");
    expect_load_error("v3.conf", "[crisp]\nthreads = 257\n", 2, "out of range");
    expect_load_error("v4.conf", "[crisp]\nshutdown_timeout = -1\n", 2, "crisp.shutdown_timeout: -1 is out of range");
    expect_load_error("v5.conf", "[crisp.runtime]\ncgroup_manager = \"cgroupv2\"\n", 2,
                      "crisp.runtime.cgroup_manager: \"cgroupv2\" is not one of cgroupfs, systemd");
    expect_load_error("v6.conf", "[crisp.stream]\nport = 65536\n", 2, "crisp.stream.port: 65536 is out of range");
    expect_load_error("v7.conf", "[crisp.stream]\nport = -1\n", 2, "crisp.stream.port: -1 is out of range");
    expect_load_error("v8.conf", "[crisp.stream]\naddress = \"localhost\"\n", 2,
                      "crisp.stream.address: \"localhost\" is not an IP address");
    expect_load_error("v9.conf", "[crisp.image]\nmax_parallel_downloads = 0\n", 2, "out of range");
    expect_load_error("v10.conf", "[crisp.image]\npull_progress_timeout = 0\n", 2, "out of range");
    expect_load_error("v11.conf", "[crisp]\nlisten = \"crisp.sock\"\n", 2,
                      "crisp.listen: \"crisp.sock\" is not an absolute path");
    expect_load_error("v12.conf", "[crisp]\nroot = \"\"\n", 2, "crisp.root: \"\" is not an absolute path");
    expect_load_error("v13.conf", "[crisp]\nrunroot = \"run/crisp\"\n", 2, "is not an absolute path");
    expect_load_error("v14.conf", "[crisp.runtime]\nmonitor_path = \"crisp-monitor\"\n", 2, "is not an absolute path");
    expect_load_error("v15.conf", "[crisp.runtime]\npause_command = \"\"\n", 2, "is not an absolute path");
    expect_load_error("v16.conf", "[crisp.image]\nregistries_conf = \"registries.conf\"\n", 2, "absolute");
    expect_load_error("v17.conf", "[crisp.image]\nregistries_conf_dir = \"x\"\n", 2, "absolute");
    expect_load_error("v18.conf", "[crisp.image]\nsignature_policy = \"policy.json\"\n", 2, "absolute");
    expect_load_error("v19.conf", "[crisp.image]\nauth_file = \"auth.json\"\n", 2,
                      "crisp.image.auth_file: \"auth.json\" is not an absolute path (or empty)");
    expect_load_error("v20.conf", "[crisp.network]\ncni_config_dir = \"net.d\"\n", 2, "absolute");
    expect_load_error("v21.conf", "[crisp.network]\ncni_plugin_dirs = [\"/opt/cni/bin\", \"bin\"]\n", 2,
                      "crisp.network.cni_plugin_dirs[1]: \"bin\" is not an absolute path");
    expect_load_error("v22.conf", "[crisp.network]\ncni_plugin_dirs = []\n", 2, "at least one");
    expect_load_error("v23.conf", "[crisp.runtime.runtimes.runc]\nruntime_type = \"vm\"\n", 2,
                      "crisp.runtime.runtimes.runc.runtime_type: \"vm\" is not a supported runtime type");
    expect_load_error("v24.conf", "[crisp.runtime.runtimes.runc]\nruntime_path = \"runc\"\n", 2,
                      "crisp.runtime.runtimes.runc.runtime_path: \"runc\" is not an absolute path");
    expect_load_error("v25.conf", "[crisp.runtime.runtimes.kata]\nruntime_root = \"kata\"\n", 2,
                      "runtime_root: \"kata\" is not an absolute path");
    expect_load_error("v26.conf", "\n[crisp.runtime.runtimes.\"my runtime\"]\n", 2,
                      "\"my runtime\" is not a valid runtime handler name");
    expect_load_error("v27.conf", "[crisp.runtime.runtimes.\"a.b\"]\n", 1, "is not a valid runtime handler name");
    expect_load_error("v28.conf", "[crisp.runtime]\ndefault_runtime = \"my runtime\"\n", 2,
                      "is not a valid runtime handler name");
    /* a TOML syntax error comes through with its line */
    expect_load_error("v29.conf", "[crisp]\nthreads = 8\nthreads = 9\n", 3, "duplicate key \"crisp.threads\"");
    expect_load_error("v30.conf", "[crisp]\nthreads = 1.5\n", 2, "unsupported value");
    expect_load_error("v31.conf", "[crisp.metrics]\nenable = \"yes\"\n", 2,
                      "crisp.metrics.enable: expected a boolean, got a string");
    expect_load_error("v32.conf", "[crisp.metrics]\nenable = 1\n", 2, "expected a boolean");
    expect_load_error("v33.conf", "[crisp.metrics]\naddress = \"localhost\"\n", 2,
                      "crisp.metrics.address: \"localhost\" is not an IP address");
    expect_load_error("v34.conf", "[crisp.metrics]\nport = 65536\n", 2, "crisp.metrics.port: 65536 is out of range");
}
END_TEST

START_TEST(test_validate)
{
    cr_config *c = cr_config_new_default();
    cr_err *e = NULL;
    ck_assert_int_eq(cr_config_set_str(&c->default_runtime, "kata"), 0);
    ck_assert_int_eq(cr_config_validate(c, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(e->msg, "\"kata\" is not a configured runtime handler") != NULL, "%s", e->msg);
    ck_assert_msg(strstr(e->msg, crun_binary() ? "known: crun, runc" : "known: runc") != NULL, "%s", e->msg);
    /* nothing was filled in on failure */
    ck_assert_str_eq(cr_config_runtime(c, "runc")->runtime_root, "");
    cr_err_freep(&e);

    ck_assert_int_eq(cr_config_set_runtime(c, "kata", "/opt/kata/kata-runtime", NULL, NULL), 0);
    ck_assert_int_eq(cr_config_set_str(&c->runroot, "/run/x/"), 0);
    ck_assert_int_eq(cr_config_validate(c, &e), 0);
    ck_assert_str_eq(cr_config_runtime(c, "kata")->runtime_root, "/run/x/kata");
    ck_assert_str_eq(cr_config_runtime(c, "kata")->runtime_type, "oci");
    ck_assert_str_eq(cr_config_runtime(c, "runc")->runtime_root, "/run/x/runc");

    /* idempotent */
    cr_config *before = cr_config_new_default();
    ck_assert_int_eq(cr_config_set_runtime(before, "kata", "", "", "oci"), 0);
    for (size_t i = 0; i < c->n_runtimes; i++) {
        const cr_runtime_handler *h = &c->runtimes[i];
        ck_assert_int_eq(cr_config_set_runtime(before, h->name, h->runtime_path, h->runtime_root, h->runtime_type), 0);
    }
    ck_assert_int_eq(cr_config_validate(c, &e), 0);
    for (size_t i = 0; i < c->n_runtimes; i++)
        ck_assert_str_eq(c->runtimes[i].runtime_root, cr_config_runtime(before, c->runtimes[i].name)->runtime_root);
    cr_config_free(before);

    /* values set directly (by flags) get the same checks as the file */
    ck_assert_int_eq(cr_config_set_str(&c->log_level, "loud"), 0);
    ck_assert_int_eq(cr_config_validate(c, &e), -1);
    ck_assert_str_eq(e->msg, "crisp.log_level: \"loud\" is not one of error, warn, info, debug");
    cr_err_freep(&e);
    ck_assert_int_eq(cr_config_set_str(&c->log_level, "error"), 0);
    c->threads = 0;
    ck_assert_int_eq(cr_config_validate(c, &e), -1);
    ck_assert_str_eq(e->msg, "crisp.threads: 0 is out of range (1..256)");
    cr_err_freep(&e);
    c->threads = 1;
    ck_assert_int_eq(cr_config_set_str(&c->listen, "rel/sock"), 0);
    ck_assert_int_eq(cr_config_validate(c, &e), -1);
    ck_assert_msg(strstr(e->msg, "crisp.listen") != NULL, "%s", e->msg);
    cr_err_freep(&e);
    ck_assert_int_eq(cr_config_set_str(&c->listen, "/run/s.sock"), 0);
    ck_assert_int_eq(cr_config_set_runtime(c, "bad name", "", "", "oci"), 0);
    ck_assert_int_eq(cr_config_validate(c, &e), -1);
    ck_assert_msg(strstr(e->msg, "not a valid runtime handler name") != NULL, "%s", e->msg);
    cr_err_freep(&e);
    cr_config_free(c);
}
END_TEST

START_TEST(test_set_helpers)
{
    cr_config *c = cr_config_new_default();
    size_t n = c->n_runtimes;
    ck_assert_int_eq(cr_config_set_str(&c->root, "/data/crisp"), 0);
    ck_assert_str_eq(c->root, "/data/crisp");
    ck_assert_int_eq(cr_config_set_str(&c->pause_image, NULL), 0);
    ck_assert_str_eq(c->pause_image, "");
    /* setting a field to (a copy of) itself is safe */
    ck_assert_int_eq(cr_config_set_str(&c->root, c->root), 0);
    ck_assert_str_eq(c->root, "/data/crisp");

    ck_assert_int_eq(cr_config_set_runtime(c, "youki", "/usr/bin/youki", "/run/youki", "oci"), 0);
    ck_assert_uint_eq(c->n_runtimes, n + 1);
    ck_assert_int_eq(cr_config_set_runtime(c, "youki", "/usr/local/bin/youki", NULL, NULL), 0);
    ck_assert_uint_eq(c->n_runtimes, n + 1);
    const cr_runtime_handler *h = cr_config_runtime(c, "youki");
    ck_assert_str_eq(h->name, "youki");
    ck_assert_str_eq(h->runtime_path, "/usr/local/bin/youki");
    ck_assert_str_eq(h->runtime_root, "");
    ck_assert_str_eq(h->runtime_type, "oci");
    ck_assert_ptr_null(cr_config_runtime(c, "nope"));
    ck_assert_ptr_null(cr_config_runtime(c, NULL));
    ck_assert_int_eq(cr_config_set_runtime(c, NULL, "", "", "oci"), -1);
    cr_config_free(c);
}
END_TEST

/* Every "key = value" line of the output has a comment line right above it. */
static void assert_commented(const char *text)
{
    const char *prev = NULL, *line = text;
    int keys = 0;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len && line[0] != '#' && line[0] != '[') {
            ck_assert_msg(strstr(line, " = ") && strstr(line, " = ") < line + len, "odd line: %.*s", (int)len, line);
            ck_assert_msg(prev && prev[0] == '#' && prev[1] == ' ', "no comment above: %.*s", (int)len, line);
            keys++;
        }
        prev = line;
        line = nl ? nl + 1 : line + len;
    }
    ck_assert_int_ge(keys, 22);
}

static char *write_toml_string(const cr_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cr_config_write_toml(c, f), 0);
    fclose(f);
    return buf;
}

START_TEST(test_write_toml_round_trip)
{
    cr_err *e = NULL;
    /* the defaults, then a config with every value changed and awkward strings */
    for (int round = 0; round < 3; round++) {
        cr_config *c = cr_config_new_default();
        if (round >= 1) {
            const char *path = write_file("rt-full.conf", full_config);
            ck_assert_msg(cr_config_load_file(c, path, false, &e) == 0, "%s", e ? e->msg : "");
            ck_assert_int_eq(cr_config_set_str(&c->pause_image, "quote\" backslash\\ tab\t nl\n del\x7f é €"), 0);
            ck_assert_int_eq(cr_config_set_str(&c->auth_file, "/path with 'quotes' and # hash"), 0);
            ck_assert_int_eq(cr_config_set_runtime(c, "a-handler_2", "/x", "", "oci"), 0);
        }
        if (round == 2)
            ck_assert_int_eq(cr_config_validate(c, &e), 0);
        char *text = write_toml_string(c);
        assert_commented(text);
        /* sections in order, handlers sorted by name */
        const char *order[] = { "[crisp]\n", "[crisp.stream]\n", "[crisp.runtime]\n",
                                round ? "[crisp.runtime.runtimes.a-handler_2]\n" : "[crisp.runtime.runtimes.",
                                "[crisp.runtime.runtimes.runc]\n", "[crisp.image]\n", "[crisp.network]\n" };
        const char *at = text;
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
            const char *p = strstr(at, order[i]);
            ck_assert_msg(p != NULL, "%s missing or out of order in:\n%s", order[i], text);
            at = p;
        }

        /* parse back into a fresh default config: identical */
        const char *path = write_file("rt-out.conf", text);
        cr_config *back = cr_config_new_default();
        ck_assert_msg(cr_config_load_file(back, path, false, &e) == 0, "%s\n%s", e ? e->msg : "", text);
        ASSERT_SAME(c, back);
        if (round)
            ck_assert_str_eq(back->pause_image, "quote\" backslash\\ tab\t nl\n del\x7f é €");
        free(text);
        cr_config_free(back);
        cr_config_free(c);
    }
}
END_TEST

START_TEST(test_to_json)
{
    cr_config *c = cr_config_new_default();
    cr_err *e = NULL;
    const char *path = write_file("json.conf", full_config);
    ck_assert_msg(cr_config_load_file(c, path, false, &e) == 0, "%s", e ? e->msg : "");
    ck_assert_int_eq(cr_config_set_str(&c->pause_image, "q\"uote \xC3\xA9"), 0);
    char *json = cr_config_to_json(c);
    ck_assert_ptr_nonnull(json);
    char errbuf[256];
    yajl_val root = yajl_tree_parse(json, errbuf, sizeof(errbuf));
    ck_assert_msg(root != NULL, "%s: %s", errbuf, json);

    const char *p_listen[] = { "crisp", "listen", NULL };
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(root, p_listen, yajl_t_string)), "/tmp/x/crisp.sock");
    const char *p_threads[] = { "crisp", "threads", NULL };
    ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(root, p_threads, yajl_t_number)), 32);
    const char *p_port[] = { "crisp", "stream", "port", NULL };
    ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(root, p_port, yajl_t_number)), 10010);
    const char *p_menable[] = { "crisp", "metrics", "enable", NULL };
    ck_assert(YAJL_IS_TRUE(yajl_tree_get(root, p_menable, yajl_t_true)));
    const char *p_mport[] = { "crisp", "metrics", "port", NULL };
    ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(root, p_mport, yajl_t_number)), 9191);
    const char *p_pause[] = { "crisp", "runtime", "pause_image", NULL };
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(root, p_pause, yajl_t_string)), "q\"uote \xC3\xA9");
    const char *p_kata[] = { "crisp", "runtime", "runtimes", "kata", "runtime_path", NULL };
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(root, p_kata, yajl_t_string)), "/opt/kata/bin/kata-runtime");
    const char *p_type[] = { "crisp", "runtime", "runtimes", "runc", "runtime_type", NULL };
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(root, p_type, yajl_t_string)), "oci");
    const char *p_auth[] = { "crisp", "image", "auth_file", NULL };
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(root, p_auth, yajl_t_string)), "/etc/crisp/auth.json");
    const char *p_dirs[] = { "crisp", "network", "cni_plugin_dirs", NULL };
    yajl_val dirs = yajl_tree_get(root, p_dirs, yajl_t_array);
    ck_assert_ptr_nonnull(dirs);
    ck_assert_uint_eq(YAJL_GET_ARRAY(dirs)->len, 1);
    ck_assert_str_eq(YAJL_GET_STRING(YAJL_GET_ARRAY(dirs)->values[0]), "/usr/libexec/cni");
    const char *p_handlers[] = { "crisp", "runtime", "runtimes", NULL };
    yajl_val handlers = yajl_tree_get(root, p_handlers, yajl_t_object);
    ck_assert_uint_eq(YAJL_GET_OBJECT(handlers)->len, c->n_runtimes);
    /* top level is exactly {"crisp": {...}} */
    ck_assert_uint_eq(YAJL_GET_OBJECT(root)->len, 1);
    yajl_tree_free(root);
    free(json);
    cr_config_free(c);
}
END_TEST

/* contrib/crisp.conf documents every key with its default. */
START_TEST(test_contrib_conf)
{
    const char *contrib = "contrib/crisp.conf";
    cr_config *c = cr_config_new_default();
    cr_config *ref = cr_config_new_default();
    cr_err *e = NULL;
    ck_assert_msg(cr_config_load_file(c, contrib, false, &e) == 0, "%s", e ? e->msg : "");
    ASSERT_SAME(c, ref);

    /* uncomment every "# key = value" line: still loads, still the defaults,
     * and every key of the effective config is documented there */
    FILE *in = fopen(contrib, "r");
    ck_assert_ptr_nonnull(in);
    char *orig = NULL;
    size_t orig_len = 0;
    FILE *orig_f = open_memstream(&orig, &orig_len);
    char *out_buf = NULL;
    size_t out_len = 0;
    FILE *out = open_memstream(&out_buf, &out_len);
    char line[1024];
    int uncommented = 0;
    while (fgets(line, sizeof(line), in)) {
        fputs(line, orig_f);
        const char *p = line + 2;
        bool is_key = strncmp(line, "# ", 2) == 0 && *p >= 'a' && *p <= 'z';
        while (is_key && ((*p >= 'a' && *p <= 'z') || *p == '_'))
            p++;
        if (is_key && strncmp(p, " = ", 3) == 0) {
            fputs(line + 2, out);
            uncommented++;
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    fclose(out);
    fclose(orig_f);
    const char *path = write_file("contrib-uncommented.conf", out_buf);
    cr_config *all = cr_config_new_default();
    ck_assert_msg(cr_config_load_file(all, path, false, &e) == 0, "%s", e ? e->msg : "");
    /* monitor/pause paths follow the build's libexec dir, the file shows the stock one */
    if (strcmp(CRISP_LIBEXECDIR, "/usr/local/libexec/crisp") == 0)
        ASSERT_SAME(all, ref);
    ck_assert_int_eq(uncommented, 30); /* 27 daemon keys + 3 handler keys */

    char *effective = write_toml_string(ref);
    for (char *l = strtok(effective, "\n"); l; l = strtok(NULL, "\n")) {
        if (l[0] == '#' || l[0] == '[')
            continue;
        char key[128];
        ck_assert_int_eq(sscanf(l, "%127[a-z_] = ", key), 1);
        char needle[160];
        snprintf(needle, sizeof(needle), "\n# %s = ", key);
        ck_assert_msg(strstr(orig, needle) != NULL, "key %s not documented in %s", key, contrib);
    }
    free(effective);
    free(orig);
    free(out_buf);
    cr_config_free(all);
    cr_config_free(c);
    cr_config_free(ref);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_dropins_in_name_order);
    tcase_add_test(tc, test_missing_files);
    tcase_add_test(tc, test_unknown_keys);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_set_helpers);
    tcase_add_test(tc, test_write_toml_round_trip);
    tcase_add_test(tc, test_to_json);
    tcase_add_test(tc, test_contrib_conf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
