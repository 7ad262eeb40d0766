/* Integration harness: a real crispd on a temporary socket and root. */
#ifndef CRISP_TEST_HARNESS_H
#define CRISP_TEST_HARNESS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cmd/crispctl/client.h"

typedef struct th_daemon {
    char dir[128];        /* temp folder holding everything below */
    char sock[192];
    char endpoint[200];   /* unix://... */
    char config[192];
    char config_dir[192];
    char log[192];        /* crispd's stderr */
    pid_t pid;
} th_daemon;

/* Path of a built binary (CRISP_BIN_DIR, default ./build). */
const char *th_bin(const char *name);

/* Make the temp folder and config (extra_toml appended to the config file),
 * without starting anything. */
void th_prepare(th_daemon *d, const char *extra_toml);
/* Spawn crispd with the prepared config plus extra args (NULL-terminated
 * list, may be NULL).  Does not wait. */
pid_t th_spawn(th_daemon *d, const char *const *extra_args);
/* The runner's unchecked teardown: after a test that failed before its own
 * teardown, remove what its crispd left (pods, containers, mounts, folder). */
void th_collect_leftovers(void);
/* Spawn any argv with stdout and stderr going to d->log. */
pid_t th_spawn_argv(th_daemon *d, const char *const *argv);
/* prepare + spawn + wait (deadline) until Version answers. */
void th_start(th_daemon *d, const char *extra_toml);
/* Poll until Version answers on d->endpoint or the deadline passes. */
bool th_wait_ready(th_daemon *d, int timeout_ms);
/* Send sig and wait for the exit; returns the wait status, or -1 on timeout. */
int th_signal_wait(th_daemon *d, int sig, int timeout_ms);
/* Unmount every mount at or below dir (lazy), deepest first. */
void th_unmount_under(const char *dir);
/* Fail the test when text holds an ASan/UBSan/LSan report. */
void th_assert_no_sanitizer_report(const char *what, const char *text);
/* Stop crispd with SIGTERM (SIGKILL after 20 s), remove the temp folder, and
 * fail unless it exited 0 with no sanitizer report in its log. */
void th_cleanup(th_daemon *d);
cc_conn *th_connect(th_daemon *d);
/* Whether crispd's log contains the text (polls until timeout_ms). */
bool th_log_contains(th_daemon *d, const char *text, int timeout_ms);
/* Run a command, capture stdout+stderr into a heap string; returns exit status. */
int th_run(const char *const *argv, char **output);
/* Monotonic milliseconds. */
long th_now_ms(void);

struct tf_registry;
/* Suite setup helpers, for use outside tests (they exit(1) on failure). */
void th_setup_die(const char *what, const char *out);
/* Run argv with output captured (2>&1); the wait status. */
int th_setup_run(const char *const *argv, char **out);
/* Build an image with build/mkimage (kind, options) into dir/layouts/name and
 * push it to r as repo_tag (all platforms when all); digest_out (80 bytes, may
 * be NULL) gets the pushed digest. */
void th_push_image(const char *dir, const char *kind, const char *name, struct tf_registry *r,
                   const char *repo_tag, bool all, const char *const *opts, char *digest_out);

/* dir/crun-wrap, the crun handler's binary for tests: crun itself, or on a
 * cgroup v1 hybrid layout (crun 1.8 refuses one whose v2 hierarchy lists
 * controllers) crun in a private mount namespace with
 * /sys/fs/cgroup/unified/cgroup.controllers hidden under dir/empty.
 * Exits on failure (suite setup). */
void th_write_crun_wrapper(const char *dir);

/* Add a test unless CRISP_TEST_ONLY names another one (to run a single test). */
#define TH_ADD(tc, name)                                                   \
    do {                                                                   \
        const char *only_ = getenv("CRISP_TEST_ONLY");                     \
        if (!only_ || !*only_ || strcmp(only_, #name) == 0)                \
            tcase_add_test(tc, name);                                      \
    } while (0)

#endif
