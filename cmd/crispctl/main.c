/* crispctl: a small crictl-style client for nodes without crictl.  Command
 * names and flags follow crictl where they overlap. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "client.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "logs.h"
#include "pbjson.h"
#include "server/stream/client.h"

typedef struct command {
    const char *name;
    int (*run)(cc_conn *c, int argc, char **argv);
    const char *usage;
} command;

static const command commands[];

static void usage(FILE *f)
{
    fprintf(f, "usage: crispctl [--endpoint ENDPOINT] [--timeout SECONDS] COMMAND [ARGS]\n\ncommands:\n");
    for (const command *c = commands; c->name; c++)
        fprintf(f, "  %-12s %s\n", c->name, c->usage);
    fprintf(f, "\nENDPOINT defaults to $CRI_ENDPOINT, then " CC_DEFAULT_ENDPOINT ".\n");
}

static int fail(const char *what, const cr_err *err)
{
    fprintf(stderr, "crispctl: %s: %s (%s)\n", what, err ? err->msg : "failed",
            cr_code_name(err ? err->code : CR_UNKNOWN));
    return 1;
}

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* Re-emit a parsed JSON value into g (to embed the info maps' JSON values). */
static void gen_value(yajl_gen g, yajl_val v)
{
    if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            gen_str(g, v->u.object.keys[i]);
            gen_value(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_value(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else if (YAJL_IS_STRING(v)) {
        gen_str(g, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_TRUE(v)) {
        yajl_gen_bool(g, 1);
    } else if (YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, 0);
    } else {
        yajl_gen_null(g);
    }
}

/* A verbose info map: each value as JSON when it parses, else a string. */
static void gen_info_entries(yajl_gen g, size_t n, char *const *keys, char *const *values)
{
    for (size_t i = 0; i < n; i++) {
        gen_str(g, keys[i]);
        yajl_val v = yajl_tree_parse(values[i], NULL, 0);
        if (v)
            gen_value(g, v);
        else
            gen_str(g, values[i]);
        yajl_tree_free(v);
    }
}

static yajl_gen new_gen(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    return g;
}

static void print_gen(yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    fwrite(buf, 1, len, stdout);
    yajl_gen_free(g);
}

static void print_json(const ProtobufCMessage *m)
{
    char *s = pbjson_string(m);
    if (s) {
        fputs(s, stdout);
        if (!*s || s[strlen(s) - 1] != '\n')
            putchar('\n');
    }
    free(s);
}

/* Parse a command's own flags; optstring/longopts as for getopt_long. */
#define FOR_EACH_OPT(opt, argc, argv, shortopts, longopts) \
    for (optind = 1; ((opt) = getopt_long((argc), (argv), (shortopts), (longopts), NULL)) != -1;)

static int cmd_version(cc_conn *c, int argc, char **argv)
{
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__VersionResponse *v = cc_version(c, &err);
    if (!v)
        return fail("version", err);
    printf("Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n",
           v->version, v->runtime_name, v->runtime_version, v->runtime_api_version);
    cc_free(v);
    return 0;
}

static int cmd_info(cc_conn *c, int argc, char **argv)
{
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__StatusResponse *s = cc_status(c, 1, &err);
    if (!s)
        return fail("info", err);
    yajl_gen g = new_gen();
    yajl_gen_map_open(g);
    gen_str(g, "status");
    Runtime__V1__RuntimeStatus none = RUNTIME__V1__RUNTIME_STATUS__INIT;
    pbjson_gen(g, s->status ? &s->status->base : &none.base);
    gen_str(g, "runtimeHandlers");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < s->n_runtime_handlers; i++)
        pbjson_gen(g, &s->runtime_handlers[i]->base);
    yajl_gen_array_close(g);
    for (size_t i = 0; i < s->n_info; i++)
        gen_info_entries(g, 1, &s->info[i]->key, &s->info[i]->value);
    yajl_gen_map_close(g);
    print_gen(g);
    cc_free(s);
    return 0;
}

static int cmd_pull(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "creds", required_argument, NULL, 'c' },
        { "auth", required_argument, NULL, 'a' },
        { "username", required_argument, NULL, 'u' },
        { "password", required_argument, NULL, 'p' },
        { 0 },
    };
    Runtime__V1__AuthConfig auth = RUNTIME__V1__AUTH_CONFIG__INIT;
    bool have_auth = false;
    char *creds = NULL;
    int o;
    FOR_EACH_OPT(o, argc, argv, "", opts) {
        switch (o) {
        case 'c': /* USER[:PASS] */
            free(creds);
            creds = strdup(optarg);
            auth.username = creds;
            char *colon = strchr(creds, ':');
            if (colon) {
                *colon = '\0';
                auth.password = colon + 1;
            }
            have_auth = true;
            break;
        case 'a': auth.auth = optarg; have_auth = true; break;
        case 'u': auth.username = optarg; have_auth = true; break;
        case 'p': auth.password = optarg; have_auth = true; break;
        default: free(creds); return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: crispctl pull [--creds USER[:PASS]] [--auth BASE64] IMAGE\n");
        free(creds);
        return 2;
    }
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__PullImageResponse *r = cc_pull_image(c, argv[optind], have_auth ? &auth : NULL, &err);
    free(creds);
    if (!r)
        return fail("pull", err);
    printf("Image is up to date for %s\n", r->image_ref);
    cc_free(r);
    return 0;
}

static void human_size(uint64_t n, char *buf, size_t len)
{
    static const char *units[] = { "B", "kB", "MB", "GB", "TB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.3g%s" : "%.0f%s", v, units[u]);
}

/* "domain/path:tag" -> repo and tag (the last ':' after the last '/'). */
static void split_tag(const char *ref, char *repo, size_t rlen, const char **tag)
{
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(slash ? slash : ref, ':');
    size_t n = colon ? (size_t)(colon - ref) : strlen(ref);
    snprintf(repo, rlen, "%.*s", (int)n, ref);
    *tag = colon ? colon + 1 : "<none>";
}

static int cmd_images(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "digests", no_argument, NULL, 'd' },
        { "no-trunc", no_argument, NULL, 'n' },
        { "output", required_argument, NULL, 'o' },
        { 0 },
    };
    bool quiet = false, digests = false, notrunc = false;
    const char *output = "table";
    int o;
    FOR_EACH_OPT(o, argc, argv, "qo:", opts) {
        switch (o) {
        case 'q': quiet = true; break;
        case 'd': digests = true; break;
        case 'n': notrunc = true; break;
        case 'o': output = optarg; break;
        default: return 2;
        }
    }
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ListImagesResponse *r = cc_list_images(c, optind < argc ? argv[optind] : NULL, &err);
    if (!r)
        return fail("images", err);
    if (!strcmp(output, "json")) {
        print_json(&r->base);
    } else if (quiet) {
        for (size_t i = 0; i < r->n_images; i++)
            printf("%s\n", r->images[i]->id);
    } else {
        printf("%-40s %-16s %s%-15s %s\n", "IMAGE", "TAG", digests ? "DIGEST          " : "",
               "IMAGE ID", "SIZE");
        for (size_t i = 0; i < r->n_images; i++) {
            Runtime__V1__Image *im = r->images[i];
            const char *hex = strncmp(im->id, "sha256:", 7) ? im->id : im->id + 7;
            char size[32], id[80], dig[80] = "";
            human_size(im->size, size, sizeof(size));
            snprintf(id, sizeof(id), "%.*s", notrunc ? 64 : 13, hex);
            if (im->n_repo_digests) {
                const char *at = strchr(im->repo_digests[0], '@');
                const char *dh = at ? at + 1 : "";
                dh = strncmp(dh, "sha256:", 7) ? dh : dh + 7;
                snprintf(dig, sizeof(dig), "%.*s", notrunc ? 64 : 13, dh);
            }
            size_t rows = im->n_repo_tags ? im->n_repo_tags : 1;
            for (size_t t = 0; t < rows; t++) {
                char repo[256];
                const char *tag = "<none>";
                if (im->n_repo_tags)
                    split_tag(im->repo_tags[t], repo, sizeof(repo), &tag);
                else if (im->n_repo_digests)
                    snprintf(repo, sizeof(repo), "%.*s",
                             (int)strcspn(im->repo_digests[0], "@"), im->repo_digests[0]);
                else
                    snprintf(repo, sizeof(repo), "<none>");
                if (digests)
                    printf("%-40s %-16s %-15s %-15s %s\n", repo, tag, dig, id, size);
                else
                    printf("%-40s %-16s %-15s %s\n", repo, tag, id, size);
            }
        }
    }
    cc_free(r);
    return 0;
}

/* inspect* output: {"status": <status>, "info": {<verbose info, parsed>}}.
 * inspect_begin opens it up to the status value; inspect_end writes the
 * info map (entries of any *InfoEntry type: all are { base; key; value })
 * and prints. */
static yajl_gen inspect_begin(void)
{
    yajl_gen g = new_gen();
    yajl_gen_map_open(g);
    gen_str(g, "status");
    return g;
}

static void inspect_end(yajl_gen g, size_t n, void *const *entries)
{
    gen_str(g, "info");
    yajl_gen_map_open(g);
    for (size_t k = 0; k < n; k++) {
        const Runtime__V1__ImageStatusResponse__InfoEntry *e = entries[k];
        gen_info_entries(g, 1, &e->key, &e->value);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    print_gen(g);
}

static int cmd_inspecti(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = { { "output", required_argument, NULL, 'o' }, { 0 } };
    int o;
    FOR_EACH_OPT(o, argc, argv, "o:", opts) {
        if (o != 'o')
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: crispctl inspecti IMAGE...\n");
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        Runtime__V1__ImageStatusResponse *r = cc_image_status(c, argv[i], 1, &err);
        if (!r) {
            rc = fail("inspecti", err);
            continue;
        }
        if (!r->image) {
            fprintf(stderr, "crispctl: inspecti: no such image %s\n", argv[i]);
            rc = 1;
            cc_free(r);
            continue;
        }
        yajl_gen g = inspect_begin();
        pbjson_gen(g, &r->image->base);
        inspect_end(g, r->n_info, (void *const *)r->info);
        cc_free(r);
    }
    return rc;
}

static int cmd_rmi(cc_conn *c, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: crispctl rmi IMAGE...\n");
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        Runtime__V1__ImageStatusResponse *r = cc_image_status(c, argv[i], 0, &err);
        if (!r) {
            rc = fail("rmi", err);
            continue;
        }
        if (!r->image) {
            fprintf(stderr, "crispctl: rmi: no such image %s\n", argv[i]);
            rc = 1;
        } else if (cc_remove_image(c, r->image->id, &err) < 0) {
            rc = fail("rmi", err);
        } else if (r->image->n_repo_tags == 0) {
            printf("Deleted: %s\n", r->image->id);
        } else {
            for (size_t t = 0; t < r->image->n_repo_tags; t++)
                printf("Deleted: %s\n", r->image->repo_tags[t]);
        }
        cc_free(r);
    }
    return rc;
}

static int cmd_imagefsinfo(cc_conn *c, int argc, char **argv)
{
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ImageFsInfoResponse *r = cc_image_fs_info(c, &err);
    if (!r)
        return fail("imagefsinfo", err);
    yajl_gen g = new_gen();
    yajl_gen_map_open(g);
    gen_str(g, "status");
    pbjson_gen(g, &r->base);
    yajl_gen_map_close(g);
    print_gen(g);
    cc_free(r);
    return 0;
}

static int cmd_runp(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = { { "runtime", required_argument, NULL, 'r' }, { 0 } };
    const char *handler = "";
    int o;
    FOR_EACH_OPT(o, argc, argv, "r:", opts) {
        if (o != 'r')
            return 2;
        handler = optarg;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: crispctl runp [--runtime HANDLER] POD-CONFIG.json\n");
        return 2;
    }
    _cleanup_err_ cr_err *err = NULL;
    _cleanup_free_ char *text = cr_read_file(argv[optind], NULL, &err);
    if (!text)
        return fail("runp", err);
    char *msg = NULL;
    ProtobufCMessage *cfg = pbjson_parse(&runtime__v1__pod_sandbox_config__descriptor, text, &msg);
    if (!cfg) {
        fprintf(stderr, "crispctl: runp: %s: %s\n", argv[optind], msg ? msg : "bad config");
        free(msg);
        return 1;
    }
    Runtime__V1__RunPodSandboxResponse *r =
        cc_run_pod_sandbox(c, (Runtime__V1__PodSandboxConfig *)cfg, handler, &err);
    protobuf_c_message_free_unpacked(cfg, NULL);
    if (!r)
        return fail("runp", err);
    printf("%s\n", r->pod_sandbox_id);
    cc_free(r);
    return 0;
}

static const char *pod_state_name(Runtime__V1__PodSandboxState s)
{
    return s == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ? "Ready" : "NotReady";
}

static void age(int64_t created_ns, char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t s = ts.tv_sec - created_ns / 1000000000LL;
    if (s < 60)
        snprintf(buf, len, "%llds ago", (long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm ago", (long long)s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh ago", (long long)s / 3600);
    else
        snprintf(buf, len, "%lldd ago", (long long)s / 86400);
}

static int cmd_pods(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "id", required_argument, NULL, 'i' }, { "name", required_argument, NULL, 'n' },
        { "namespace", required_argument, NULL, 's' }, { "state", required_argument, NULL, 't' },
        { "label", required_argument, NULL, 'l' }, { "quiet", no_argument, NULL, 'q' },
        { "output", required_argument, NULL, 'o' }, { "no-trunc", no_argument, NULL, 'N' }, { 0 },
    };
    Runtime__V1__PodSandboxFilter f = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
    Runtime__V1__PodSandboxStateValue sv = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
    Runtime__V1__PodSandboxFilter__LabelSelectorEntry sel[16];
    Runtime__V1__PodSandboxFilter__LabelSelectorEntry *selp[16];
    const char *name = NULL, *ns = NULL, *output = "table";
    bool quiet = false, notrunc = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "qo:", opts) {
        switch (o) {
        case 'i': f.id = optarg; break;
        case 'n': name = optarg; break;
        case 's': ns = optarg; break;
        case 'q': quiet = true; break;
        case 'o': output = optarg; break;
        case 'N': notrunc = true; break;
        case 't':
            sv.state = !strcasecmp(optarg, "ready") ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                                     : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
            f.state = &sv;
            break;
        case 'l': {
            char *eq = strchr(optarg, '=');
            if (!eq || f.n_label_selector >= 16) {
                fprintf(stderr, "crispctl: pods: --label wants key=value\n");
                return 2;
            }
            *eq = '\0';
            runtime__v1__pod_sandbox_filter__label_selector_entry__init(&sel[f.n_label_selector]);
            sel[f.n_label_selector].key = optarg;
            sel[f.n_label_selector].value = eq + 1;
            selp[f.n_label_selector] = &sel[f.n_label_selector];
            f.n_label_selector++;
            f.label_selector = selp;
            break;
        }
        default: return 2;
        }
    }
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ListPodSandboxResponse *r = cc_list_pod_sandbox(c, &f, &err);
    if (!r)
        return fail("pods", err);
    /* name and namespace filter client-side, as crictl does */
    size_t k = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        Runtime__V1__PodSandbox *p = r->items[i];
        bool keep = (!name || (p->metadata && strstr(p->metadata->name, name))) &&
                    (!ns || (p->metadata && !strcmp(p->metadata->namespace_, ns)));
        if (keep)
            r->items[k++] = p;
        else
            protobuf_c_message_free_unpacked(&p->base, NULL);
    }
    r->n_items = k;
    if (!strcmp(output, "json")) {
        print_json(&r->base);
    } else if (quiet) {
        for (size_t i = 0; i < r->n_items; i++)
            printf("%s\n", r->items[i]->id);
    } else {
        printf("%-13s %-15s %-8s %-30s %-15s %-7s %s\n", "POD ID", "CREATED", "STATE", "NAME",
               "NAMESPACE", "ATTEMPT", "RUNTIME");
        for (size_t i = 0; i < r->n_items; i++) {
            Runtime__V1__PodSandbox *p = r->items[i];
            char created[32];
            age(p->created_at, created, sizeof(created));
            printf("%-13.*s %-15s %-8s %-30s %-15s %-7u %s\n", notrunc ? 64 : 13, p->id, created,
                   pod_state_name(p->state), p->metadata ? p->metadata->name : "",
                   p->metadata ? p->metadata->namespace_ : "", p->metadata ? p->metadata->attempt : 0,
                   *p->runtime_handler ? p->runtime_handler : "(default)");
        }
    }
    cc_free(r);
    return 0;
}

static int cmd_inspectp(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = { { "output", required_argument, NULL, 'o' }, { 0 } };
    int o;
    FOR_EACH_OPT(o, argc, argv, "o:", opts) {
        if (o != 'o')
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: crispctl inspectp POD-ID...\n");
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        Runtime__V1__PodSandboxStatusResponse *r = cc_pod_sandbox_status(c, argv[i], 1, &err);
        if (!r) {
            rc = fail("inspectp", err);
            continue;
        }
        yajl_gen g = inspect_begin();
        Runtime__V1__PodSandboxStatus none = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
        pbjson_gen(g, r->status ? &r->status->base : &none.base);
        inspect_end(g, r->n_info, (void *const *)r->info);
        cc_free(r);
    }
    return rc;
}

static int cmd_stopp(cc_conn *c, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: crispctl stopp POD-ID...\n");
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        if (cc_stop_pod_sandbox(c, argv[i], &err) < 0)
            rc = fail("stopp", err);
        else
            printf("Stopped sandbox %s\n", argv[i]);
    }
    return rc;
}

static int cmd_rmp(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, { 0 } };
    int o;
    FOR_EACH_OPT(o, argc, argv, "f", opts) {
        if (o != 'f')
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: crispctl rmp [-f] POD-ID...\n");
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        if (cc_remove_pod_sandbox(c, argv[i], &err) < 0)
            rc = fail("rmp", err);
        else
            printf("Removed sandbox %s\n", argv[i]);
    }
    return rc;
}

/* ---- containers ---- */

/* A crictl-style JSON config file as a message; NULL after printing why. */
static ProtobufCMessage *load_config(const char *what, const char *path, const ProtobufCMessageDescriptor *desc)
{
    _cleanup_err_ cr_err *err = NULL;
    _cleanup_free_ char *text = cr_read_file(path, NULL, &err);
    if (!text) {
        fail(what, err);
        return NULL;
    }
    char *msg = NULL;
    ProtobufCMessage *m = pbjson_parse(desc, text, &msg);
    if (!m) {
        fprintf(stderr, "crispctl: %s: %s: %s\n", what, path, msg ? msg : "bad config");
        free(msg);
    }
    return m;
}

static bool parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *v = n;
    return true;
}

static int bad_number(const char *cmd, const char *flag, const char *value)
{
    fprintf(stderr, "crispctl: %s: %s %s: not a number\n", cmd, flag, value);
    return 2;
}

/* Create a container from config files; the container id (heap) or NULL. */
static char *create_from_files(cc_conn *c, const char *what, const char *pod_id, const char *ctr_path,
                               const char *pod_path, bool with_pull)
{
    ProtobufCMessage *cm = load_config(what, ctr_path, &runtime__v1__container_config__descriptor);
    if (!cm)
        return NULL;
    ProtobufCMessage *pm = load_config(what, pod_path, &runtime__v1__pod_sandbox_config__descriptor);
    if (!pm) {
        protobuf_c_message_free_unpacked(cm, NULL);
        return NULL;
    }
    Runtime__V1__ContainerConfig *cfg = (Runtime__V1__ContainerConfig *)cm;
    _cleanup_err_ cr_err *err = NULL;
    char *id = NULL;
    /* as crictl: the image as the user wrote it, when the config says nothing */
    char *saved_user_image = NULL;
    bool swapped = false;
    if (cfg->image && (!cfg->image->user_specified_image || !*cfg->image->user_specified_image)) {
        saved_user_image = cfg->image->user_specified_image;
        cfg->image->user_specified_image = cfg->image->image;
        swapped = true;
    }
    if (with_pull && cfg->image && *cfg->image->image) {
        Runtime__V1__PullImageResponse *p = cc_pull_image(c, cfg->image->image, NULL, &err);
        if (!p) {
            fail(what, err);
            goto out;
        }
        cc_free(p);
    }
    Runtime__V1__CreateContainerResponse *r =
        cc_create_container(c, pod_id, cfg, (Runtime__V1__PodSandboxConfig *)pm, &err);
    if (!r) {
        fail(what, err);
        goto out;
    }
    id = strdup(r->container_id);
    cc_free(r);
out:
    if (swapped)
        cfg->image->user_specified_image = saved_user_image; /* free what was allocated */
    protobuf_c_message_free_unpacked(cm, NULL);
    protobuf_c_message_free_unpacked(pm, NULL);
    return id;
}

static int cmd_create(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "no-pull", no_argument, NULL, 'P' }, { "with-pull", no_argument, NULL, 'W' }, { 0 },
    };
    bool with_pull = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "", opts) {
        switch (o) {
        case 'P': with_pull = false; break;
        case 'W': with_pull = true; break;
        default: return 2;
        }
    }
    if (optind + 3 != argc) {
        fprintf(stderr, "usage: crispctl create [--with-pull] POD-ID CONTAINER-CONFIG.json POD-CONFIG.json\n");
        return 2;
    }
    char *id = create_from_files(c, "create", argv[optind], argv[optind + 1], argv[optind + 2], with_pull);
    if (!id)
        return 1;
    printf("%s\n", id);
    free(id);
    return 0;
}

static int cmd_start(cc_conn *c, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: crispctl start CONTAINER-ID...\n");
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        if (cc_start_container(c, argv[i], &err) < 0)
            rc = fail("start", err);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

static int cmd_run(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "runtime", required_argument, NULL, 'r' },
        { "no-pull", no_argument, NULL, 'P' }, { "with-pull", no_argument, NULL, 'W' }, { 0 },
    };
    const char *handler = "";
    bool with_pull = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "r:", opts) {
        switch (o) {
        case 'r': handler = optarg; break;
        case 'P': with_pull = false; break;
        case 'W': with_pull = true; break;
        default: return 2;
        }
    }
    if (optind + 2 != argc) {
        fprintf(stderr, "usage: crispctl run [--runtime HANDLER] [--with-pull] CONTAINER-CONFIG.json POD-CONFIG.json\n");
        return 2;
    }
    ProtobufCMessage *pm = load_config("run", argv[optind + 1], &runtime__v1__pod_sandbox_config__descriptor);
    if (!pm)
        return 1;
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__RunPodSandboxResponse *pod =
        cc_run_pod_sandbox(c, (Runtime__V1__PodSandboxConfig *)pm, handler, &err);
    protobuf_c_message_free_unpacked(pm, NULL);
    if (!pod)
        return fail("run: run pod sandbox", err);
    char *id = create_from_files(c, "run", pod->pod_sandbox_id, argv[optind], argv[optind + 1], with_pull);
    int rc = 0;
    if (!id) {
        fprintf(stderr, "crispctl: run: pod sandbox %s is left in place\n", pod->pod_sandbox_id);
        rc = 1;
    } else if (cc_start_container(c, id, &err) < 0) {
        rc = fail("run: start container", err);
        fprintf(stderr, "crispctl: run: container %s in pod sandbox %s is left in place\n", id,
                pod->pod_sandbox_id);
    } else {
        printf("%s\n", id);
    }
    free(id);
    cc_free(pod);
    return rc;
}

static const char *container_state_name(Runtime__V1__ContainerState s)
{
    switch (s) {
    case RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED: return "Created";
    case RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING: return "Running";
    case RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED: return "Exited";
    default: return "Unknown";
    }
}

static bool parse_container_state(const char *s, Runtime__V1__ContainerState *st)
{
    static const struct { const char *name; Runtime__V1__ContainerState st; } states[] = {
        { "created", RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED },
        { "running", RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING },
        { "exited", RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED },
        { "unknown", RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (!strcasecmp(s, states[i].name)) {
            *st = states[i].st;
            return true;
        }
    return false;
}

static const char *container_label(const Runtime__V1__Container *k, const char *key)
{
    for (size_t i = 0; i < k->n_labels; i++)
        if (!strcmp(k->labels[i]->key, key))
            return k->labels[i]->value;
    return "unknown";
}

static int by_created_desc(const void *a, const void *b)
{
    const Runtime__V1__Container *x = *(Runtime__V1__Container *const *)a;
    const Runtime__V1__Container *y = *(Runtime__V1__Container *const *)b;
    return x->created_at < y->created_at ? 1 : x->created_at > y->created_at ? -1 : 0;
}

/* crictl's table: columns at least 20 wide, 3 spaces of padding. */
typedef struct table {
    size_t ncols, nrows;
    char **cells; /* nrows * ncols heap strings */
} table;

static void table_add(table *t, const char *const *row)
{
    char **cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*cells));
    if (!cells)
        return;
    t->cells = cells;
    for (size_t i = 0; i < t->ncols; i++)
        cells[t->nrows * t->ncols + i] = strdup(row[i] ? row[i] : "");
    t->nrows++;
}

static void table_print(table *t)
{
    size_t width[16] = { 0 };
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols && i < 16; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t n = s ? strlen(s) + 3 : 0;
            if (n > width[i])
                width[i] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            if (i + 1 == t->ncols)
                printf("%s\n", s ? s : "");
            else
                printf("%-*s", (int)(width[i] < 20 ? 20 : width[i]), s ? s : "");
        }
    }
    for (size_t k = 0; k < t->nrows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* crictl shortens ids to 13 characters. */
static void short_id(const char *id, bool notrunc, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s", notrunc ? (int)(len - 1) : 13, id);
}

/* An image shown by name as is; one given as a digest (the kubelet passes
 * the image id) shortened like an id. */
static void short_image(const char *image, bool notrunc, char *buf, size_t len)
{
    if (!notrunc && !strncmp(image, "sha256:", 7) && strlen(image) == 71)
        snprintf(buf, len, "%.13s", image + 7);
    else
        snprintf(buf, len, "%s", image);
}

static int cmd_ps(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "all", no_argument, NULL, 'a' }, { "id", required_argument, NULL, 'i' },
        { "pod", required_argument, NULL, 'p' }, { "state", required_argument, NULL, 's' },
        { "label", required_argument, NULL, 'L' }, { "name", required_argument, NULL, 'R' },
        { "namespace", required_argument, NULL, 'S' }, { "quiet", no_argument, NULL, 'q' },
        { "output", required_argument, NULL, 'o' }, { "no-trunc", no_argument, NULL, 'N' },
        { "latest", no_argument, NULL, 'l' }, { "last", required_argument, NULL, 'n' }, { 0 },
    };
    Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
    Runtime__V1__ContainerStateValue sv = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
    Runtime__V1__ContainerFilter__LabelSelectorEntry sel[16];
    Runtime__V1__ContainerFilter__LabelSelectorEntry *selp[16];
    const char *name = NULL, *ns = NULL, *output = "table", *state = NULL;
    bool all = false, quiet = false, notrunc = false, latest = false;
    int64_t last = 0;
    int o;
    FOR_EACH_OPT(o, argc, argv, "ap:s:qo:ln:", opts) {
        switch (o) {
        case 'a': all = true; break;
        case 'i': f.id = optarg; break;
        case 'p': f.pod_sandbox_id = optarg; break;
        case 's': state = optarg; break;
        case 'R': name = optarg; break;
        case 'S': ns = optarg; break;
        case 'q': quiet = true; break;
        case 'o': output = optarg; break;
        case 'N': notrunc = true; break;
        case 'l': latest = true; break;
        case 'n':
            if (!parse_i64(optarg, &last) || last < 0)
                return bad_number("ps", "--last", optarg);
            break;
        case 'L': {
            char *eq = strchr(optarg, '=');
            if (!eq || f.n_label_selector >= 16) {
                fprintf(stderr, "crispctl: ps: --label wants key=value\n");
                return 2;
            }
            *eq = '\0';
            runtime__v1__container_filter__label_selector_entry__init(&sel[f.n_label_selector]);
            sel[f.n_label_selector].key = optarg;
            sel[f.n_label_selector].value = eq + 1;
            selp[f.n_label_selector] = &sel[f.n_label_selector];
            f.n_label_selector++;
            f.label_selector = selp;
            break;
        }
        default: return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "crispctl: ps: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (strcmp(output, "json") && strcmp(output, "table")) {
        fprintf(stderr, "crispctl: ps: unsupported output format %s (json or table)\n", output);
        return 2;
    }
    if (state) {
        if (!parse_container_state(state, &sv.state)) {
            fprintf(stderr, "crispctl: ps: --state should be one of created, running, exited or unknown\n");
            return 2;
        }
        f.state = &sv;
    } else if (!all) {
        sv.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
        f.state = &sv;
    }
    if (latest || last > 0)
        f.state = NULL; /* as crictl: --latest/--last look at every state */
    regex_t name_re, ns_re;
    if (name && regcomp(&name_re, name, REG_EXTENDED | REG_NOSUB)) {
        fprintf(stderr, "crispctl: ps: --name %s: not a regular expression\n", name);
        return 2;
    }
    if (ns && regcomp(&ns_re, ns, REG_EXTENDED | REG_NOSUB)) {
        fprintf(stderr, "crispctl: ps: --namespace %s: not a regular expression\n", ns);
        if (name)
            regfree(&name_re);
        return 2;
    }
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ListContainersResponse *r = cc_list_containers(c, &f, &err);
    if (!r) {
        if (name)
            regfree(&name_re);
        if (ns)
            regfree(&ns_re);
        return fail("ps", err);
    }
    /* name and namespace filter client-side, as crictl does */
    size_t k = 0;
    for (size_t i = 0; i < r->n_containers; i++) {
        Runtime__V1__Container *ct = r->containers[i];
        bool keep = ct->metadata &&
                    (!name || regexec(&name_re, ct->metadata->name, 0, NULL, 0) == 0) &&
                    (!ns || regexec(&ns_re, container_label(ct, "io.kubernetes.pod.namespace"), 0, NULL, 0) == 0);
        if (keep)
            r->containers[k++] = ct;
        else
            protobuf_c_message_free_unpacked(&ct->base, NULL);
    }
    r->n_containers = k;
    if (name)
        regfree(&name_re);
    if (ns)
        regfree(&ns_re);
    if (r->n_containers > 1)
        qsort(r->containers, r->n_containers, sizeof(*r->containers), by_created_desc);
    size_t limit = latest ? 1 : last > 0 ? (size_t)last : r->n_containers;
    for (size_t i = limit; i < r->n_containers; i++)
        protobuf_c_message_free_unpacked(&r->containers[i]->base, NULL);
    if (limit < r->n_containers)
        r->n_containers = limit;
    if (!strcmp(output, "json")) {
        print_json(&r->base);
    } else if (quiet) {
        for (size_t i = 0; i < r->n_containers; i++)
            printf("%s\n", r->containers[i]->id);
    } else {
        table t = { .ncols = 8 };
        const char *head[] = { "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD" };
        table_add(&t, head);
        for (size_t i = 0; i < r->n_containers; i++) {
            Runtime__V1__Container *ct = r->containers[i];
            char id[80], pod[80], image[512], created[32], attempt[16];
            short_id(ct->id, notrunc, id, sizeof(id));
            short_id(ct->pod_sandbox_id, notrunc, pod, sizeof(pod));
            short_image(ct->image ? ct->image->image : "", notrunc, image, sizeof(image));
            age(ct->created_at, created, sizeof(created));
            snprintf(attempt, sizeof(attempt), "%u", ct->metadata ? ct->metadata->attempt : 0);
            const char *row[] = { id, image, created, container_state_name(ct->state),
                                  ct->metadata ? ct->metadata->name : "", attempt, pod,
                                  container_label(ct, "io.kubernetes.pod.name") };
            table_add(&t, row);
        }
        table_print(&t);
    }
    cc_free(r);
    return 0;
}

/* The ContainerStatus as JSON with its times as RFC 3339 strings, as
 * crictl inspect prints it. */
static void gen_container_status(yajl_gen g, const Runtime__V1__ContainerStatus *st)
{
    static const char zero_time[] = "0001-01-01T00:00:00Z";
    char *json = pbjson_string(&st->base);
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    free(json);
    if (!v || !YAJL_IS_OBJECT(v)) {
        pbjson_gen(g, &st->base);
        yajl_tree_free(v);
        return;
    }
    char created[48], started[48] = "", finished[48] = "";
    logs_format_time(st->created_at, created, sizeof(created));
    if (st->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED)
        logs_format_time(st->started_at, started, sizeof(started));
    if (st->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ||
        (st->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN && st->finished_at > 0))
        logs_format_time(st->finished_at, finished, sizeof(finished));
    static const char *const head[] = { "id", "metadata" };
    yajl_gen_map_open(g);
    for (size_t h = 0; h < 2; h++)
        for (size_t i = 0; i < v->u.object.len; i++)
            if (!strcmp(v->u.object.keys[i], head[h])) {
                gen_str(g, head[h]);
                gen_value(g, v->u.object.values[i]);
            }
    /* state and exitCode even at their zero values (CREATED, 0) */
    const ProtobufCEnumValue *sn =
        protobuf_c_enum_descriptor_get_value(&runtime__v1__container_state__descriptor, st->state);
    gen_str(g, "state");
    gen_str(g, sn ? sn->name : "CONTAINER_UNKNOWN");
    gen_str(g, "createdAt");
    gen_str(g, created);
    gen_str(g, "startedAt");
    gen_str(g, *started ? started : zero_time);
    gen_str(g, "finishedAt");
    gen_str(g, *finished ? finished : zero_time);
    gen_str(g, "exitCode");
    yajl_gen_integer(g, st->exit_code);
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *key = v->u.object.keys[i];
        if (!strcmp(key, "id") || !strcmp(key, "metadata") || !strcmp(key, "state") ||
            !strcmp(key, "createdAt") || !strcmp(key, "startedAt") || !strcmp(key, "finishedAt") ||
            !strcmp(key, "exitCode"))
            continue;
        gen_str(g, key);
        gen_value(g, v->u.object.values[i]);
    }
    yajl_gen_map_close(g);
    yajl_tree_free(v);
}

static int cmd_inspect(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' }, { "quiet", no_argument, NULL, 'q' }, { 0 },
    };
    bool quiet = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "o:q", opts) {
        switch (o) {
        case 'o':
            if (strcmp(optarg, "json")) {
                fprintf(stderr, "crispctl: inspect: unsupported output format %s (json)\n", optarg);
                return 2;
            }
            break;
        case 'q': quiet = true; break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: crispctl inspect [-o json] [-q] CONTAINER-ID...\n");
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        Runtime__V1__ContainerStatusResponse *r = cc_container_status(c, argv[i], !quiet, &err);
        if (!r) {
            rc = fail("inspect", err);
            continue;
        }
        yajl_gen g = inspect_begin();
        Runtime__V1__ContainerStatus none = RUNTIME__V1__CONTAINER_STATUS__INIT;
        gen_container_status(g, r->status ? r->status : &none);
        inspect_end(g, r->n_info, (void *const *)r->info);
        cc_free(r);
    }
    return rc;
}

typedef struct follow_ctx {
    cc_conn *c;
    const char *id;
} follow_ctx;

/* logs -f: is the container still running? */
static int container_running(void *ud)
{
    follow_ctx *f = ud;
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ContainerStatusResponse *r = cc_container_status(f->c, f->id, 0, &err);
    if (!r) {
        if (err && err->code != CR_NOT_FOUND)
            fail("logs: container status", err);
        return 0;
    }
    int running = r->status && r->status->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    cc_free(r);
    return running;
}

static int cmd_logs(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "follow", no_argument, NULL, 'f' }, { "tail", required_argument, NULL, 'T' },
        { "timestamps", no_argument, NULL, 't' }, { "since", required_argument, NULL, 'S' }, { 0 },
    };
    logs_opts lo = { .tail = -1 };
    bool follow = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "ft", opts) {
        switch (o) {
        case 'f': follow = true; break;
        case 't': lo.timestamps = true; break;
        case 'T': {
            int64_t n;
            if (!parse_i64(optarg, &n))
                return bad_number("logs", "--tail", optarg);
            lo.tail = n < 0 ? -1 : (long)n;
            break;
        }
        case 'S': {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            if (logs_parse_since(optarg, (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec, &lo.since_ns) < 0) {
                fprintf(stderr, "crispctl: logs: --since %s: want a duration (42m, 1h30m) or a time "
                                "(2013-01-02T13:23:37Z, or Unix seconds)\n", optarg);
                return 2;
            }
            break;
        }
        default: return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: crispctl logs [-f] [--tail N] [-t] [--since TIME] CONTAINER-ID\n");
        return 2;
    }
    const char *id = argv[optind];
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ContainerStatusResponse *r = cc_container_status(c, id, 0, &err);
    if (!r)
        return fail("logs", err);
    _cleanup_free_ char *path = r->status && *r->status->log_path ? strdup(r->status->log_path) : NULL;
    /* follow by the full id: the status call resolved a prefix */
    _cleanup_free_ char *full_id = strdup(r->status && *r->status->id ? r->status->id : id);
    cc_free(r);
    if (!path || !full_id) {
        fprintf(stderr, "crispctl: logs: container %s has no log path\n", id);
        return 1;
    }
    logs_writer w;
    logs_writer_init(&w, stdout, stderr, &lo);
    follow_ctx fc = { .c = c, .id = full_id };
    int rc = logs_copy(&w, path, follow, container_running, &fc, 100, &err);
    if (w.bad)
        fprintf(stderr, "crispctl: logs: %s: skipped %zu lines that are not CRI log lines\n", path, w.bad);
    logs_writer_free(&w);
    if (rc < 0)
        return fail("logs", err);
    return 0;
}

/* ---- exec, attach, port-forward (streaming) ---- */

static bool parse_transport(const char *cmd, const char *s, st_transport *t)
{
    if (!strcmp(s, "spdy"))
        *t = ST_TRANSPORT_SPDY;
    else if (!strcmp(s, "websocket"))
        *t = ST_TRANSPORT_WEBSOCKET;
    else {
        fprintf(stderr, "crispctl: %s: --transport %s: expected spdy or websocket\n", cmd, s);
        return false;
    }
    return true;
}

/* The local terminal during a -t session.  Signal handlers need it, so it
 * lives here rather than on a stack: raw_fd >= 0 while stdin is in raw mode
 * (saved_termios restores it), winch_wr is the write end of the resize pipe
 * a SIGWINCH handler feeds, size_fd the terminal the size is read from. */
static struct termios saved_termios;
static volatile sig_atomic_t raw_fd = -1;
static volatile sig_atomic_t winch_wr = -1;
static volatile sig_atomic_t size_fd = -1;

static const int fatal_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void restore_terminal(void)
{
    int fd = raw_fd;
    if (fd >= 0) {
        tcsetattr(fd, TCSANOW, &saved_termios);
        raw_fd = -1;
    }
}

/* A signal that ends crispctl while the terminal is raw (in raw mode ^C is
 * sent to the remote; these come from elsewhere): put the terminal back,
 * then die of the signal as if there were no handler. */
static void on_fatal_signal(int sig)
{
    int saved = errno;
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns: the signal is blocked in it */
    errno = saved;
}

static bool terminal_size(int fd, st_winsize *ws)
{
    struct winsize w;
    if (fd < 0 || ioctl(fd, TIOCGWINSZ, &w) < 0 || !w.ws_col || !w.ws_row)
        return false;
    ws->width = w.ws_col;
    ws->height = w.ws_row;
    return true;
}

static void on_winch(int sig)
{
    (void)sig;
    int saved = errno;
    st_winsize ws;
    if (winch_wr >= 0 && terminal_size(size_fd, &ws))
        (void)!write(winch_wr, &ws, sizeof(ws)); /* one atomic record; dropped if the pipe is full */
    errno = saved;
}

/* What a -t session changed locally, undone by tty_session_end. */
typedef struct tty_session {
    int winch_pipe[2];
    bool handlers;
    struct sigaction old_winch, old_fatal[sizeof(fatal_signals) / sizeof(fatal_signals[0])];
} tty_session;

/* Set up the local side of a tty session: the initial size and the resize
 * pipe (when stdout or stdin is a terminal) and, with raw (-i and stdin is
 * a terminal), raw mode on stdin.  Failures leave the session without
 * resizes or raw mode, never fail it. */
static void tty_session_begin(tty_session *t, st_exec_opts *o, bool raw)
{
    memset(t, 0, sizeof(*t));
    t->winch_pipe[0] = t->winch_pipe[1] = -1;
    size_fd = isatty(STDOUT_FILENO) ? STDOUT_FILENO : isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
    struct sigaction sa = { .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    if (size_fd >= 0 && pipe2(t->winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        winch_wr = t->winch_pipe[1];
        sa.sa_handler = on_winch;
        sigaction(SIGWINCH, &sa, &t->old_winch);
        o->resize_fd = t->winch_pipe[0];
    }
    st_winsize ws;
    if (terminal_size(size_fd, &ws)) { /* after the handler: a change from now on is not lost */
        o->width = ws.width;
        o->height = ws.height;
    }
    if (!raw || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
        return;
    t->handlers = true;
    sa.sa_handler = on_fatal_signal;
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
        sigaction(fatal_signals[i], &sa, &t->old_fatal[i]);
    struct termios rawt = saved_termios;
    cfmakeraw(&rawt);
    raw_fd = STDIN_FILENO;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &rawt) < 0)
        raw_fd = -1;
}

static void tty_session_end(tty_session *t)
{
    restore_terminal();
    if (t->handlers) {
        for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
            sigaction(fatal_signals[i], &t->old_fatal[i], NULL);
    }
    if (t->winch_pipe[1] >= 0) {
        sigaction(SIGWINCH, &t->old_winch, NULL);
        winch_wr = -1;
        close(t->winch_pipe[0]);
        close(t->winch_pipe[1]);
    }
    size_fd = -1;
}

/* Run an exec or attach session on url with crispctl's stdio: 0..255 (the
 * remote exit code, as kubectl and crictl exit), or 1 after saying why the
 * session failed. */
static int stream_session(const char *what, const char *url, st_transport transport, bool tty, bool in)
{
    st_exec_opts o;
    st_exec_opts_init(&o);
    o.transport = transport;
    o.tty = tty;
    o.stdin_fd = in ? STDIN_FILENO : -1;
    o.stdout_fd = STDOUT_FILENO;
    o.stderr_fd = tty ? -1 : STDERR_FILENO;
    fflush(stdout);
    tty_session t = { .winch_pipe = { -1, -1 } };
    if (tty)
        tty_session_begin(&t, &o, in);
    /* SIGWINCH is blocked in this thread for the session: st_client_exec's
     * connect and handshake take an interrupted poll() for a timeout.  The
     * handler still runs, on one of gRPC's threads (they exist from
     * cc_connect on and leave it unblocked); a record it writes is read by
     * the session loop here. */
    sigset_t winch, old_mask;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &winch, &old_mask);
    int code = 0;
    cr_err *err = NULL;
    int rc = st_client_exec(url, &o, &code, &err);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (tty)
        tty_session_end(&t);
    if (rc < 0) {
        fail(what, err);
        cr_err_free(err);
        return 1;
    }
    return code >= 0 && code < 256 ? code : 255;
}

static int cmd_exec_stream(cc_conn *c, const char *id, char **cmd, bool tty, bool in, st_transport transport)
{
    _cleanup_err_ cr_err *err = NULL;
    _cleanup_free_ char *url = cc_exec(c, id, (const char *const *)cmd, tty, in, true, !tty, &err);
    if (!url)
        return fail("exec", err);
    return stream_session("exec", url, transport, tty, in);
}

static int cmd_attach(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "interactive", no_argument, NULL, 'i' }, { "tty", no_argument, NULL, 't' },
        { "transport", required_argument, NULL, 'r' }, { 0 },
    };
    bool in = false, tty = false;
    st_transport transport = ST_TRANSPORT_SPDY;
    int o;
    FOR_EACH_OPT(o, argc, argv, "itr:", opts) {
        switch (o) {
        case 'i': in = true; break;
        case 't': tty = true; break;
        case 'r':
            if (!parse_transport("attach", optarg, &transport))
                return 2;
            break;
        default: return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: crispctl attach [-i] [-t] [--transport spdy|websocket] CONTAINER-ID\n");
        return 2;
    }
    _cleanup_err_ cr_err *err = NULL;
    /* As crictl: the container's tty setting is what -t says. */
    _cleanup_free_ char *url = cc_attach(c, argv[optind], tty, in, true, !tty, &err);
    if (!url)
        return fail("attach", err);
    return stream_session("attach", url, transport, tty, in);
}

/* port-forward: one listener per LOCAL:REMOTE pair, one PortForward RPC
 * (its token is good for one session) and one thread per connection. */
typedef struct pf_ctx {
    cc_conn *c;
    const char *pod_id;
    st_transport transport;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int in_rpc; /* threads inside a PortForward RPC: cc_close waits for them */
    int refs;   /* the command and each connection thread: the last one frees */
} pf_ctx;

static void pf_ctx_unref(pf_ctx *x)
{
    pthread_mutex_lock(&x->mu);
    bool last = --x->refs == 0;
    pthread_mutex_unlock(&x->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->idle);
    free(x);
}

typedef struct pf_conn {
    pf_ctx *ctx;
    int fd;
    int32_t port;
} pf_conn;

/* The write end of port-forward's stop pipe, for its signal handler. */
static volatile sig_atomic_t stop_wr = -1;

static void on_stop_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (stop_wr >= 0)
        (void)!write(stop_wr, "x", 1);
    errno = saved;
}

static void *pf_serve(void *arg)
{
    pf_conn *k = arg;
    pf_ctx *x = k->ctx;
    cr_err *err = NULL;
    char *url = cc_port_forward(x->c, x->pod_id, &k->port, 1, &err);
    pthread_mutex_lock(&x->mu);
    if (--x->in_rpc == 0)
        pthread_cond_broadcast(&x->idle);
    pthread_mutex_unlock(&x->mu);
    if (!url || st_client_portforward(url, k->port, k->fd, x->transport, &err) < 0) {
        fprintf(stderr, "crispctl: port-forward: a connection to port %d: %s (%s)\n", k->port,
                err ? err->msg : "failed", cr_code_name(err ? err->code : CR_UNKNOWN));
    }
    close(k->fd);
    free(url);
    cr_err_free(err);
    free(k);
    pf_ctx_unref(x);
    return NULL;
}

/* "[LOCAL:]REMOTE": LOCAL 0 or empty (":REMOTE") picks a free port, no
 * LOCAL is REMOTE. */
static bool parse_port_pair(const char *s, int *local, int32_t *remote)
{
    const char *colon = strchr(s, ':');
    int64_t l = -1, r;
    if (colon) {
        _cleanup_free_ char *ls = strndup(s, (size_t)(colon - s));
        if (!ls || (*ls && !parse_i64(ls, &l)))
            return false;
        if (!*ls)
            l = 0;
    }
    if (!parse_i64(colon ? colon + 1 : s, &r) || r < 1 || r > 65535)
        return false;
    if (!colon)
        l = r;
    if (l < 0 || l > 65535)
        return false;
    *local = (int)l;
    *remote = (int32_t)r;
    return true;
}

/* A listening socket on address:port (port 0: any free one); -1 after
 * saying why. */
static int pf_listen(const char *address, int port, char *shown, size_t shown_len)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int gr = getaddrinfo(address, ps, &hints, &ai);
    if (gr != 0) {
        fprintf(stderr, "crispctl: port-forward: --address %s: %s\n", address, gai_strerror(gr));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        fprintf(stderr, "crispctl: port-forward: listen on %s port %d: %s\n", address, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(shown, shown_len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    return fd;
}

static int cmd_port_forward(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "address", required_argument, NULL, 'a' }, { "transport", required_argument, NULL, 'r' }, { 0 },
    };
    const char *address = "127.0.0.1";
    st_transport transport = ST_TRANSPORT_SPDY;
    int o;
    FOR_EACH_OPT(o, argc, argv, "r:", opts) {
        switch (o) {
        case 'a': address = optarg; break;
        case 'r':
            if (!parse_transport("port-forward", optarg, &transport))
                return 2;
            break;
        default: return 2;
        }
    }
    if (optind + 2 > argc) {
        fprintf(stderr, "usage: crispctl port-forward [--address ADDR] [--transport spdy|websocket] "
                        "POD-ID [LOCAL:]REMOTE...\n");
        return 2;
    }
    const char *pod_id = argv[optind];
    size_t n = (size_t)(argc - optind - 1);
    int local[n];
    int32_t remote[n];
    for (size_t i = 0; i < n; i++) {
        if (!parse_port_pair(argv[optind + 1 + i], &local[i], &remote[i])) {
            fprintf(stderr, "crispctl: port-forward: %s: expected [LOCAL:]REMOTE (ports 1-65535, LOCAL 0: any)\n",
                    argv[optind + 1 + i]);
            return 2;
        }
    }
    /* The pod must exist and support port forwarding before we listen (this
     * token goes unused: each connection gets its own). */
    _cleanup_err_ cr_err *err = NULL;
    _cleanup_free_ char *probe = cc_port_forward(c, pod_id, remote, n, &err);
    if (!probe)
        return fail("port-forward", err);

    /* SIGINT and SIGTERM end it.  gRPC's threads already run with them
     * unblocked, so a handler (process-wide) rather than a signalfd: it
     * wakes the poll below through a pipe. */
    struct pollfd pfd[n + 1];
    int rc = 0, stop_pipe[2] = { -1, -1 };
    struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART }, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "crispctl: port-forward: pipe: %s\n", strerror(errno));
        return 1;
    }
    stop_wr = stop_pipe[1];
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    pfd[0] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
    size_t opened = 0;
    for (size_t i = 0; i < n && rc == 0; i++, opened++) {
        char shown[NI_MAXHOST + NI_MAXSERV + 4];
        pfd[i + 1] = (struct pollfd){ .fd = pf_listen(address, local[i], shown, sizeof(shown)), .events = POLLIN };
        if (pfd[i + 1].fd < 0) {
            rc = 1;
            break;
        }
        printf("Forwarding from %s -> %d\n", shown, remote[i]);
    }
    fflush(stdout);
    pf_ctx *x = calloc(1, sizeof(*x));
    if (!x) {
        fprintf(stderr, "crispctl: port-forward: out of memory\n");
        rc = 1;
    } else {
        *x = (pf_ctx){ .c = c, .pod_id = pod_id, .transport = transport, .refs = 1 };
        pthread_mutex_init(&x->mu, NULL);
        pthread_cond_init(&x->idle, NULL);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (rc == 0) {
        if (poll(pfd, n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "crispctl: port-forward: poll: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pfd[0].revents)
            break; /* SIGINT or SIGTERM */
        for (size_t i = 0; i < n; i++) {
            if (!(pfd[i + 1].revents & POLLIN))
                continue;
            /* non-blocking: a slow local reader must not stall the session loop */
            int fd = accept4(pfd[i + 1].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                    fprintf(stderr, "crispctl: port-forward: accept on port %d: %s\n", local[i], strerror(errno));
                continue;
            }
            printf("Handling connection for %d\n", remote[i]);
            fflush(stdout);
            pf_conn *k = malloc(sizeof(*k));
            pthread_t th;
            if (k) {
                *k = (pf_conn){ .ctx = x, .fd = fd, .port = remote[i] };
                pthread_mutex_lock(&x->mu);
                x->in_rpc++;
                x->refs++;
                pthread_mutex_unlock(&x->mu);
            }
            int e = k ? pthread_create(&th, &attr, pf_serve, k) : ENOMEM;
            if (e) {
                fprintf(stderr, "crispctl: port-forward: a connection to port %d: %s\n", remote[i], strerror(e));
                if (k) {
                    pthread_mutex_lock(&x->mu);
                    x->in_rpc--;
                    x->refs--;
                    pthread_mutex_unlock(&x->mu);
                }
                free(k);
                close(fd);
            }
        }
    }
    for (size_t i = 0; i < opened; i++)
        close(pfd[i + 1].fd);
    /* A second signal, while an RPC in flight is awaited, kills as usual. */
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    stop_wr = -1;
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    /* Sessions still running are cut when crispctl exits; an RPC in flight
     * must end first (the caller closes the gRPC channel). */
    if (x) {
        pthread_mutex_lock(&x->mu);
        while (x->in_rpc > 0)
            pthread_cond_wait(&x->idle, &x->mu);
        pthread_mutex_unlock(&x->mu);
        pf_ctx_unref(x);
    }
    pthread_attr_destroy(&attr);
    return rc;
}

static int cmd_exec(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "sync", no_argument, NULL, 's' }, { "timeout", required_argument, NULL, 'T' },
        { "interactive", no_argument, NULL, 'i' }, { "tty", no_argument, NULL, 't' },
        { "transport", required_argument, NULL, 'r' }, { 0 },
    };
    bool sync = false, in = false, tty = false, have_timeout = false;
    int64_t timeout = 0;
    st_transport transport = ST_TRANSPORT_SPDY;
    int o;
    /* "+": options end at the container id, the command's own go to it */
    FOR_EACH_OPT(o, argc, argv, "+sitr:", opts) {
        switch (o) {
        case 's': sync = true; break;
        case 'i': in = true; break;
        case 't': tty = true; break;
        case 'r':
            if (!parse_transport("exec", optarg, &transport))
                return 2;
            break;
        case 'T':
            if (!parse_i64(optarg, &timeout) || timeout < 0)
                return bad_number("exec", "--timeout", optarg);
            have_timeout = true;
            break;
        default: return 2;
        }
    }
    if (optind + 2 > argc) {
        fprintf(stderr, "usage: crispctl exec [-i] [-t] [--transport spdy|websocket] CONTAINER-ID COMMAND [ARG...]\n"
                        "       crispctl exec -s [--timeout SECONDS] CONTAINER-ID COMMAND [ARG...]\n");
        return 2;
    }
    if (!sync) {
        if (have_timeout) {
            fprintf(stderr, "crispctl: exec: --timeout applies to exec -s only\n");
            return 2;
        }
        return cmd_exec_stream(c, argv[optind], argv + optind + 1, tty, in, transport);
    }
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ExecSyncResponse *r =
        cc_exec_sync(c, argv[optind], (const char *const *)(argv + optind + 1), timeout, &err);
    if (!r)
        return fail("exec", err);
    fwrite(r->stdout.data, 1, r->stdout.len, stdout);
    fflush(stdout);
    fwrite(r->stderr.data, 1, r->stderr.len, stderr);
    int code = r->exit_code;
    cc_free(r);
    return code == 0 ? 0 : code > 0 && code < 256 ? code : 255;
}

/* The ids of the running containers (stop -a) or of all (rm -a); heap
 * array of heap strings, NULL-terminated, or NULL after printing why. */
static char **list_ids(cc_conn *c, const char *what, bool running_only)
{
    Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
    Runtime__V1__ContainerStateValue sv = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
    if (running_only) {
        sv.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
        f.state = &sv;
    }
    _cleanup_err_ cr_err *err = NULL;
    Runtime__V1__ListContainersResponse *r = cc_list_containers(c, &f, &err);
    if (!r) {
        fail(what, err);
        return NULL;
    }
    char **ids = calloc(r->n_containers + 1, sizeof(*ids));
    for (size_t i = 0; ids && i < r->n_containers; i++)
        ids[i] = strdup(r->containers[i]->id);
    cc_free(r);
    return ids;
}

static int cmd_stop(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "timeout", required_argument, NULL, 't' }, { "all", no_argument, NULL, 'a' }, { 0 },
    };
    int64_t timeout = 10;
    bool all = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "t:a", opts) {
        switch (o) {
        case 't':
            if (!parse_i64(optarg, &timeout) || timeout < 0)
                return bad_number("stop", "--timeout", optarg);
            break;
        case 'a': all = true; break;
        default: return 2;
        }
    }
    if (all == (optind < argc)) {
        fprintf(stderr, "usage: crispctl stop [--timeout SECONDS] CONTAINER-ID... | stop -a\n");
        return 2;
    }
    _cleanup_strv_ char **listed = all ? list_ids(c, "stop", true) : NULL;
    if (all && !listed)
        return 1;
    char **ids = all ? listed : argv + optind;
    if (all && !ids[0])
        printf("No running containers found.\n");
    int rc = 0;
    for (size_t i = 0; ids[i]; i++) {
        _cleanup_err_ cr_err *err = NULL;
        if (cc_stop_container(c, ids[i], timeout, &err) < 0)
            rc = fail("stop", err);
        else
            printf("%s\n", ids[i]);
    }
    return rc;
}

static int cmd_rm(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "force", no_argument, NULL, 'f' }, { "all", no_argument, NULL, 'a' }, { 0 },
    };
    bool force = false, all = false;
    int o;
    FOR_EACH_OPT(o, argc, argv, "fa", opts) {
        switch (o) {
        case 'f': force = true; break;
        case 'a': all = true; break;
        default: return 2;
        }
    }
    if (all == (optind < argc)) {
        fprintf(stderr, "usage: crispctl rm [-f] CONTAINER-ID... | rm [-f] -a\n");
        return 2;
    }
    _cleanup_strv_ char **listed = all ? list_ids(c, "rm", false) : NULL;
    if (all && !listed)
        return 1;
    char **ids = all ? listed : argv + optind;
    int rc = 0;
    for (size_t i = 0; ids[i]; i++) {
        _cleanup_err_ cr_err *err = NULL;
        Runtime__V1__ContainerStatusResponse *st = cc_container_status(c, ids[i], 0, &err);
        if (!st) {
            rc = fail("rm", err);
            continue;
        }
        bool running = st->status && st->status->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
        cc_free(st);
        if (running && !force) {
            fprintf(stderr, "crispctl: rm: container %s is running, stop it first or use -f\n", ids[i]);
            rc = 1;
            continue;
        }
        if (running && cc_stop_container(c, ids[i], 0, &err) < 0) {
            rc = fail("rm: stop", err);
            continue;
        }
        if (cc_remove_container(c, ids[i], &err) < 0)
            rc = fail("rm", err);
        else
            printf("%s\n", ids[i]);
    }
    return rc;
}

static int cmd_update(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "cpu-shares", required_argument, NULL, 'S' }, { "cpu-share", required_argument, NULL, 'S' },
        { "cpu-quota", required_argument, NULL, 'Q' }, { "cpu-period", required_argument, NULL, 'P' },
        { "cpuset-cpus", required_argument, NULL, 'C' }, { "cpuset-mems", required_argument, NULL, 'M' },
        { "memory", required_argument, NULL, 'm' }, { "oom-score-adj", required_argument, NULL, 'O' },
        { 0 },
    };
    Runtime__V1__LinuxContainerResources res = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
    int o;
    FOR_EACH_OPT(o, argc, argv, "", opts) {
        int64_t *field = NULL;
        const char *flag = NULL;
        switch (o) {
        case 'S': field = &res.cpu_shares; flag = "--cpu-shares"; break;
        case 'Q': field = &res.cpu_quota; flag = "--cpu-quota"; break;
        case 'P': field = &res.cpu_period; flag = "--cpu-period"; break;
        case 'm': field = &res.memory_limit_in_bytes; flag = "--memory"; break;
        case 'O': field = &res.oom_score_adj; flag = "--oom-score-adj"; break;
        case 'C': res.cpuset_cpus = optarg; break;
        case 'M': res.cpuset_mems = optarg; break;
        default: return 2;
        }
        if (field && !parse_i64(optarg, field))
            return bad_number("update", flag, optarg);
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: crispctl update [--cpu-shares N] [--cpu-quota N] [--cpu-period N] "
                        "[--cpuset-cpus S] [--cpuset-mems S] [--memory BYTES] CONTAINER-ID...\n");
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        _cleanup_err_ cr_err *err = NULL;
        if (cc_update_container_resources(c, argv[i], &res, &err) < 0)
            rc = fail("update", err);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

/* ---- stats, statsp, events ---- */

static uint64_t u64v(const Runtime__V1__UInt64Value *v) { return v ? v->value : 0; }

static void human_bytes(char *out, size_t len, uint64_t b)
{
    static const char *const unit[] = { "B", "kB", "MB", "GB", "TB" };
    double v = (double)b;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(out, len, u ? "%.4g%s" : "%.0f%s", v, unit[u]);
}

/* --label k=v into a filter's label selector (entries of either filter
 * message type share the layout); 0, or 2 for a bad value. */
typedef struct label_sel {
    Runtime__V1__ContainerStatsFilter__LabelSelectorEntry e[16];
    void *p[16];
    size_t n;
} label_sel;

static int add_label(label_sel *ls, const ProtobufCMessageDescriptor *desc, char *arg, const char *cmd)
{
    char *eq = strchr(arg, '=');
    if (!eq || ls->n == 16) {
        fprintf(stderr, "crispctl: %s: --label wants key=value (at most 16)\n", cmd);
        return 2;
    }
    *eq = '\0';
    protobuf_c_message_init(desc, &ls->e[ls->n]);
    ls->e[ls->n].key = arg;
    ls->e[ls->n].value = eq + 1;
    ls->p[ls->n] = &ls->e[ls->n];
    ls->n++;
    return 0;
}

static int cmd_stats(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "id", required_argument, NULL, 'i' }, { "pod", required_argument, NULL, 'p' },
        { "label", required_argument, NULL, 'L' }, { "output", required_argument, NULL, 'o' },
        { "all", no_argument, NULL, 'a' }, { 0 },
    };
    Runtime__V1__ContainerStatsFilter f = RUNTIME__V1__CONTAINER_STATS_FILTER__INIT;
    label_sel ls = { .n = 0 };
    const char *output = "table";
    int opt;
    FOR_EACH_OPT(opt, argc, argv, "i:p:o:a", opts)
    {
        switch (opt) {
        case 'i': f.id = optarg; break;
        case 'p': f.pod_sandbox_id = optarg; break;
        case 'o': output = optarg; break;
        case 'a': break; /* crictl's -a; stats exist for running containers only */
        case 'L':
            if (add_label(&ls, &runtime__v1__container_stats_filter__label_selector_entry__descriptor, optarg,
                          "stats"))
                return 2;
            break;
        default: return 2;
        }
    }
    f.label_selector = (Runtime__V1__ContainerStatsFilter__LabelSelectorEntry **)ls.p;
    f.n_label_selector = ls.n;
    if (optind < argc)
        f.id = argv[optind];
    Runtime__V1__ListContainerStatsRequest req = RUNTIME__V1__LIST_CONTAINER_STATS_REQUEST__INIT;
    req.filter = &f;
    ProtobufCMessage *resp = NULL;
    _cleanup_err_ cr_err *err = NULL;
    if (cc_call(c, CC_RUNTIME "ListContainerStats", &req.base, &runtime__v1__list_container_stats_response__descriptor,
                &resp, &err) < 0)
        return fail("stats", err);
    Runtime__V1__ListContainerStatsResponse *r = (Runtime__V1__ListContainerStatsResponse *)resp;
    if (!strcmp(output, "json")) {
        print_json(resp);
    } else {
        printf("%-15s %-20s %-8s %-10s %-10s %s\n", "CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES");
        for (size_t i = 0; i < r->n_stats; i++) {
            const Runtime__V1__ContainerStats *s = r->stats[i];
            char mem[32], disk[32];
            human_bytes(mem, sizeof(mem), s->memory ? u64v(s->memory->working_set_bytes) : 0);
            human_bytes(disk, sizeof(disk), s->writable_layer ? u64v(s->writable_layer->used_bytes) : 0);
            double cpu = s->cpu && s->cpu->usage_nano_cores ? (double)s->cpu->usage_nano_cores->value / 1e7 : 0;
            printf("%-15.13s %-20s %-8.2f %-10s %-10s %llu\n", s->attributes->id,
                   s->attributes->metadata ? s->attributes->metadata->name : "", cpu, mem, disk,
                   (unsigned long long)(s->writable_layer ? u64v(s->writable_layer->inodes_used) : 0));
        }
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static int cmd_statsp(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "id", required_argument, NULL, 'i' }, { "label", required_argument, NULL, 'L' },
        { "output", required_argument, NULL, 'o' }, { 0 },
    };
    Runtime__V1__PodSandboxStatsFilter f = RUNTIME__V1__POD_SANDBOX_STATS_FILTER__INIT;
    label_sel ls = { .n = 0 };
    const char *output = "table";
    int opt;
    FOR_EACH_OPT(opt, argc, argv, "i:o:", opts)
    {
        switch (opt) {
        case 'i': f.id = optarg; break;
        case 'o': output = optarg; break;
        case 'L':
            if (add_label(&ls, &runtime__v1__pod_sandbox_stats_filter__label_selector_entry__descriptor, optarg,
                          "statsp"))
                return 2;
            break;
        default: return 2;
        }
    }
    f.label_selector = (Runtime__V1__PodSandboxStatsFilter__LabelSelectorEntry **)ls.p;
    f.n_label_selector = ls.n;
    if (optind < argc)
        f.id = argv[optind];
    Runtime__V1__ListPodSandboxStatsRequest req = RUNTIME__V1__LIST_POD_SANDBOX_STATS_REQUEST__INIT;
    req.filter = &f;
    ProtobufCMessage *resp = NULL;
    _cleanup_err_ cr_err *err = NULL;
    if (cc_call(c, CC_RUNTIME "ListPodSandboxStats", &req.base,
                &runtime__v1__list_pod_sandbox_stats_response__descriptor, &resp, &err) < 0)
        return fail("statsp", err);
    Runtime__V1__ListPodSandboxStatsResponse *r = (Runtime__V1__ListPodSandboxStatsResponse *)resp;
    if (!strcmp(output, "json")) {
        print_json(resp);
    } else {
        printf("%-15s %-20s %-8s %-10s %-10s %-10s %s\n", "POD", "NAME", "CPU %", "MEM", "RX", "TX", "PROCS");
        for (size_t i = 0; i < r->n_stats; i++) {
            const Runtime__V1__PodSandboxStats *s = r->stats[i];
            const Runtime__V1__LinuxPodSandboxStats *lx = s->linux;
            char mem[32], rx[32], tx[32];
            human_bytes(mem, sizeof(mem), lx && lx->memory ? u64v(lx->memory->working_set_bytes) : 0);
            const Runtime__V1__NetworkInterfaceUsage *ni = lx && lx->network ? lx->network->default_interface : NULL;
            human_bytes(rx, sizeof(rx), ni ? u64v(ni->rx_bytes) : 0);
            human_bytes(tx, sizeof(tx), ni ? u64v(ni->tx_bytes) : 0);
            double cpu = lx && lx->cpu && lx->cpu->usage_nano_cores ? (double)lx->cpu->usage_nano_cores->value / 1e7
                                                                     : 0;
            printf("%-15.13s %-20s %-8.2f %-10s %-10s %-10s %llu\n", s->attributes->id,
                   s->attributes->metadata ? s->attributes->metadata->name : "", cpu, mem, rx, tx,
                   (unsigned long long)(lx && lx->process ? u64v(lx->process->process_count) : 0));
        }
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static const char *event_name(Runtime__V1__ContainerEventType t)
{
    switch (t) {
    case RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT: return "CONTAINER_CREATED_EVENT";
    case RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT: return "CONTAINER_STARTED_EVENT";
    case RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT: return "CONTAINER_STOPPED_EVENT";
    case RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT: return "CONTAINER_DELETED_EVENT";
    default: return "UNKNOWN";
    }
}

static int print_event(const ProtobufCMessage *msg, void *ud)
{
    const char *output = ud;
    const Runtime__V1__ContainerEventResponse *e = (const Runtime__V1__ContainerEventResponse *)msg;
    if (!strcmp(output, "json")) {
        print_json(msg);
    } else {
        char ts[64];
        time_t sec = (time_t)(e->created_at / 1000000000);
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        printf("%s.%09lldZ %-24s %s pod=%s containers=%zu\n", ts, (long long)(e->created_at % 1000000000),
               event_name(e->container_event_type), e->container_id,
               e->pod_sandbox_status ? e->pod_sandbox_status->id : "", e->n_containers_statuses);
    }
    fflush(stdout);
    return 0;
}

static int cmd_events(cc_conn *c, int argc, char **argv)
{
    static const struct option opts[] = { { "output", required_argument, NULL, 'o' }, { 0 } };
    const char *output = "table";
    int opt;
    FOR_EACH_OPT(opt, argc, argv, "o:", opts)
    {
        switch (opt) {
        case 'o': output = optarg; break;
        default: return 2;
        }
    }
    cc_set_timeout(c, 0); /* follow until interrupted */
    Runtime__V1__GetEventsRequest req = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
    _cleanup_err_ cr_err *err = NULL;
    if (cc_call_stream(c, CC_RUNTIME "GetContainerEvents", &req.base,
                       &runtime__v1__container_event_response__descriptor, print_event, (void *)output, &err) < 0)
        return fail("events", err);
    return 0;
}

static const command commands[] = {
    { "version", cmd_version, "runtime name and versions (CRI Version)" },
    { "info", cmd_info, "runtime conditions, handlers and config (CRI Status, verbose)" },
    { "pull", cmd_pull, "pull an image: pull [--creds USER[:PASS]] [--auth BASE64] IMAGE" },
    { "images", cmd_images, "list images: images [-q] [--digests] [--no-trunc] [-o json|table] [IMAGE]" },
    { "inspecti", cmd_inspecti, "image status with its config, as JSON: inspecti IMAGE..." },
    { "rmi", cmd_rmi, "remove images: rmi IMAGE..." },
    { "imagefsinfo", cmd_imagefsinfo, "image and container filesystem usage, as JSON" },
    { "runp", cmd_runp, "run a pod sandbox: runp [--runtime HANDLER] POD-CONFIG.json" },
    { "pods", cmd_pods, "list pods: pods [--id ID] [--name N] [--namespace NS] [--state ready|notready] [--label k=v] [-q] [-o json]" },
    { "inspectp", cmd_inspectp, "pod sandbox status with its info, as JSON: inspectp POD-ID..." },
    { "stopp", cmd_stopp, "stop pod sandboxes: stopp POD-ID..." },
    { "rmp", cmd_rmp, "remove pod sandboxes: rmp [-f] POD-ID..." },
    { "create", cmd_create, "create a container: create [--with-pull] POD-ID CONTAINER-CONFIG.json POD-CONFIG.json" },
    { "start", cmd_start, "start created containers: start CONTAINER-ID..." },
    { "run", cmd_run, "run a pod and a container in it: run [--runtime HANDLER] [--with-pull] CONTAINER-CONFIG.json POD-CONFIG.json" },
    { "stats", cmd_stats, "container resource usage: stats [--id ID] [--pod POD] [--label k=v]... [-o json|table] [ID]" },
    { "statsp", cmd_statsp, "pod resource usage: statsp [--id ID] [--label k=v]... [-o json|table] [ID]" },
    { "events", cmd_events, "follow container and pod lifecycle events: events [-o json|table]" },
    { "ps", cmd_ps, "list containers: ps [-a] [--id ID] [--pod POD] [--state created|running|exited|unknown] [--label k=v]... [--name REGEX] [--namespace REGEX] [-l|--latest] [-n|--last N] [-q] [-o json|table] [--no-trunc]" },
    { "inspect", cmd_inspect, "container status with its info, as JSON: inspect [-o json] [-q] CONTAINER-ID..." },
    { "logs", cmd_logs, "a container's log: logs [-f] [--tail N] [-t|--timestamps] [--since TIME] CONTAINER-ID" },
    { "exec", cmd_exec, "run a command in a container: exec [-i] [-t] [--transport spdy|websocket] CONTAINER-ID COMMAND [ARG...] | exec -s [--timeout SECONDS] CONTAINER-ID COMMAND [ARG...]" },
    { "attach", cmd_attach, "attach to a running container's stdio: attach [-i] [-t] [--transport spdy|websocket] CONTAINER-ID" },
    { "port-forward", cmd_port_forward, "forward local ports to a pod: port-forward [--address ADDR (127.0.0.1)] [--transport spdy|websocket] POD-ID [LOCAL:]REMOTE..." },
    { "stop", cmd_stop, "stop containers: stop [--timeout SECONDS (10)] CONTAINER-ID... | stop -a" },
    { "rm", cmd_rm, "remove containers: rm [-f] CONTAINER-ID... | rm [-f] -a" },
    { "update", cmd_update, "update resources: update [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus S] [--cpuset-mems S] [--memory BYTES] [--oom-score-adj N] CONTAINER-ID..." },
    { 0 },
};

int main(int argc, char **argv)
{
    const char *endpoint = getenv("CRI_ENDPOINT");
    int timeout_s = 30;
    static const struct option opts[] = {
        { "endpoint", required_argument, NULL, 'r' },
        { "runtime-endpoint", required_argument, NULL, 'r' },
        { "image-endpoint", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "+r:i:t:h", opts, NULL)) != -1) {
        switch (o) {
        case 'r': case 'i': endpoint = optarg; break;
        case 't': timeout_s = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const command *cmd = NULL;
    for (const command *k = commands; k->name && !cmd; k++)
        if (!strcmp(k->name, argv[optind]))
            cmd = k;
    if (!cmd) {
        fprintf(stderr, "crispctl: unknown command %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    _cleanup_err_ cr_err *err = NULL;
    cc_conn *c = cc_connect(endpoint, &err);
    if (!c) {
        fprintf(stderr, "crispctl: %s\n", err->msg);
        return 1;
    }
    cc_set_timeout(c, (timeout_s > 0 ? timeout_s : 30) * 1000);
    int rc = cmd->run(c, argc - optind, argv + optind);
    cc_close(c);
    return rc;
}
