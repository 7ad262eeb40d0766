/* ImageService against real registries: docker-registry processes on
 * loopback holding images built from busybox-static by test/images, pulled
 * through a real crispd. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "harness.h"
#include "lib/fs.h"
#include "test/fixtures/registry.h"

/* ---- suite fixture: registries and pushed images (made once) ---- */

static char suite_dir[128];
static tf_registry reg, mirror, authreg;
static char busybox_digest[80], multi_digest[80], share_a_digest[80], share_b_digest[80];
static char mirror_only_digest[80];
static th_daemon D;

static void suite_setup(void)
{
    strcpy(suite_dir, "/tmp/crisp-img-XXXXXX");
    if (!mkdtemp(suite_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    char err[512];
    if (tf_registry_start(&reg, NULL, NULL, err, sizeof(err)) < 0 ||
        tf_registry_start(&mirror, NULL, NULL, err, sizeof(err)) < 0 ||
        tf_registry_start(&authreg, "tester", "s3cret", err, sizeof(err)) < 0) {
        fprintf(stderr, "suite setup: registry: %s\n", err);
        exit(1);
    }
    th_push_image(suite_dir, "busybox", "busybox", &reg, "busybox:latest", false, NULL, busybox_digest);
    const char *zstd[] = { "--compression", "zstd", NULL }, *plain[] = { "--compression", "none", NULL };
    th_push_image(suite_dir, "busybox", "busybox-zstd", &reg, "busybox:zstd", false, zstd, NULL);
    th_push_image(suite_dir, "busybox", "busybox-plain", &reg, "busybox:plain", false, plain, NULL);
    th_push_image(suite_dir, "multiarch", "multiarch", &reg, "multiarch:latest", true, NULL, multi_digest);
    th_push_image(suite_dir, "whiteouts", "whiteouts", &reg, "whiteouts:latest", false, NULL, NULL);
    th_push_image(suite_dir, "manylayers", "manylayers", &reg, "manylayers:latest", false, NULL, NULL);
    static const char *variants[] = { "dotdot", "abs", "symlink", "hardlink" };
    for (int i = 0; i < 4; i++) {
        char name[64], rt[64];
        snprintf(name, sizeof(name), "evil-%s", variants[i]);
        snprintf(rt, sizeof(rt), "evil:%s", variants[i]);
        const char *v[] = { "--variant", variants[i], NULL };
        th_push_image(suite_dir, "malicious", name, &reg, rt, false, v, NULL);
    }
    const char *one[] = { "--extra-layers", "1", NULL }, *two[] = { "--extra-layers", "2", NULL };
    th_push_image(suite_dir, "busybox", "share-a", &reg, "share:a", false, one, share_a_digest);
    th_push_image(suite_dir, "busybox", "share-b", &reg, "share:b", false, two, share_b_digest);
    const char *small[] = { "--size-mb", "2", "--seed", "7", NULL };
    th_push_image(suite_dir, "big", "corrupt", &reg, "corrupt:latest", false, small, NULL);
    const char *big[] = { "--size-mb", "96", "--seed", "3", NULL };
    th_push_image(suite_dir, "big", "big", &reg, "big:latest", false, big, NULL);
    const char *lbl[] = { "--label", "from=mirror", NULL };
    th_push_image(suite_dir, "busybox", "mirror-only", &mirror, "busybox:latest", false, lbl, mirror_only_digest);
    th_push_image(suite_dir, "busybox", "busybox", &authreg, "busybox:latest", false, NULL, NULL);
    const char *pause[] = { "--entrypoint", "/bin/busybox,sleep,100000", "--cmd", "", NULL };
    th_push_image(suite_dir, "busybox", "pause", &reg, "pause:latest", false, pause, NULL);
}

static void suite_teardown(void)
{
    tf_registry_stop(&reg);
    tf_registry_stop(&mirror);
    tf_registry_stop(&authreg);
    if (suite_dir[0])
        cr_remove_tree(suite_dir, NULL);
}

/* ---- per test ---- */

static void default_registries(char *buf, size_t len)
{
    snprintf(buf, len,
             "[[registry]]\nlocation = \"%s\"\ninsecure = true\n\n"
             "[[registry]]\nlocation = \"%s\"\ninsecure = true\n\n"
             "[[registry]]\nlocation = \"%s\"\ninsecure = true\n",
             reg.addr, mirror.addr, authreg.addr);
}

/* Start crispd with this registries.conf (NULL: the default one) and extra
 * [crisp.image] keys. */
static void start(const char *registries, const char *image_extra)
{
    char regs[2048];
    if (!registries) {
        default_registries(regs, sizeof(regs));
        registries = regs;
    }
    char extra[1024];
    th_prepare(&D, NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/registries.conf", D.dir);
    ck_assert_int_eq(cr_write_file_atomic(path, registries, strlen(registries), 0644, NULL), 0);
    FILE *f = fopen(D.config, "a");
    ck_assert_ptr_nonnull(f);
    snprintf(extra, sizeof(extra), "[crisp.image]\nregistries_conf = \"%s\"\nregistries_conf_dir = \"%s/registries.d\"\n%s\n",
             path, D.dir, image_extra ? image_extra : "");
    fputs(extra, f);
    fclose(f);
    D.pid = th_spawn(&D, NULL);
    ck_assert_msg(th_wait_ready(&D, 20000), "crispd did not come up");
}

static void teardown(void) { th_cleanup(&D); }

static char *storage_path(const char *sub)
{
    char *p = NULL;
    ck_assert_int_ge(asprintf(&p, "%s/root/storage/%s", D.dir, sub), 0);
    return p;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static Runtime__V1__PullImageResponse *pull(cc_conn *c, const char *name, cr_err **err)
{
    return cc_pull_image(c, name, NULL, err);
}

static char *must_pull(cc_conn *c, const char *name)
{
    cr_err *err = NULL;
    Runtime__V1__PullImageResponse *r = pull(c, name, &err);
    ck_assert_msg(r != NULL, "pull %s: %s", name, err ? err->msg : "");
    char *ref = strdup(r->image_ref);
    cc_free(r);
    return ref;
}

static Runtime__V1__Image *status_of(cc_conn *c, const char *name, Runtime__V1__ImageStatusResponse **keep)
{
    cr_err *err = NULL;
    Runtime__V1__ImageStatusResponse *r = cc_image_status(c, name, 0, &err);
    ck_assert_msg(r != NULL, "status %s: %s", name, err ? err->msg : "");
    *keep = r;
    return r->image;
}

START_TEST(pull_list_status_by_every_name)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/busybox:latest", reg.addr);
    char *id = must_pull(c, name);
    ck_assert_msg(strncmp(id, "sha256:", 7) == 0 && strlen(id) == 71, "image_ref %s", id);

    cr_err *err = NULL;
    Runtime__V1__ListImagesResponse *l = cc_list_images(c, NULL, &err);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->n_images, 1);
    Runtime__V1__Image *im = l->images[0];
    ck_assert_str_eq(im->id, id);
    ck_assert_int_eq(im->n_repo_tags, 1);
    ck_assert_str_eq(im->repo_tags[0], name);
    char rd[256];
    snprintf(rd, sizeof(rd), "%s/busybox@%s", reg.addr, busybox_digest);
    ck_assert_int_eq(im->n_repo_digests, 1);
    ck_assert_str_eq(im->repo_digests[0], rd);
    ck_assert_int_gt(im->size, 500000); /* busybox-static is ~1-2 MB */
    cc_free(l);

    /* Untagged means :latest; id, hex, prefix and repo digest all find it. */
    char untagged[128], prefix[16];
    snprintf(untagged, sizeof(untagged), "%s/busybox", reg.addr);
    snprintf(prefix, sizeof(prefix), "%.12s", id + 7);
    const char *names[] = { name, untagged, id, id + 7, prefix, rd };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        Runtime__V1__ImageStatusResponse *keep;
        Runtime__V1__Image *s = status_of(c, names[i], &keep);
        ck_assert_msg(s != NULL, "ImageStatus(%s) found nothing", names[i]);
        ck_assert_str_eq(s->id, id);
        cc_free(keep);
    }
    /* Filtered list by name. */
    l = cc_list_images(c, untagged, &err);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->n_images, 1);
    cc_free(l);
    /* The layer is on disk, unpacked, with busybox executable. */
    char *layers = storage_path("layers");
    ck_assert_int_eq(count_dir(layers), 1);
    free(layers);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(missing_image_status_is_empty_not_error)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    Runtime__V1__ImageStatusResponse *keep;
    ck_assert_ptr_null(status_of(c, "docker.io/library/nothing-here:1", &keep));
    cc_free(keep);
    ck_assert_ptr_null(status_of(c, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &keep));
    cc_free(keep);
    cr_err *err = NULL;
    Runtime__V1__ListImagesResponse *l = cc_list_images(c, "nothing-here", &err);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->n_images, 0);
    cc_free(l);
    /* Removing what is not there is fine (idempotent). */
    ck_assert_int_eq(cc_remove_image(c, "nothing-here", &err), 0);
    cc_close(c);
}
END_TEST

START_TEST(bad_names_are_invalid_argument)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    const char *bad[] = { "UPPER/Case:1", "busybox:bad tag", "busybox@sha256:short", "", "a//b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_err *err = NULL;
        ck_assert_ptr_null(pull(c, bad[i], &err));
        ck_assert_msg(err && err->code == CR_INVALID_ARGUMENT, "pull '%s': %s %s", bad[i],
                      err ? cr_code_name(err->code) : "", err ? err->msg : "");
        cr_err_free(err);
    }
    cc_close(c);
}
END_TEST

START_TEST(unknown_tag_is_not_found)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/busybox:nope", reg.addr);
    cr_err *err = NULL;
    ck_assert_ptr_null(pull(c, name, &err));
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    ck_assert_msg(strstr(err->msg, "busybox") && strstr(err->msg, "nope") && strstr(err->msg, "404"),
                  "message: %s", err->msg);
    cr_err_free(err);
    cc_close(c);
}
END_TEST

START_TEST(digest_pull_has_digest_no_tag)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[200];
    snprintf(name, sizeof(name), "%s/busybox@%s", reg.addr, busybox_digest);
    char *id = must_pull(c, name);
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, name, &keep);
    ck_assert_ptr_nonnull(im);
    ck_assert_str_eq(im->id, id);
    ck_assert_int_eq(im->n_repo_tags, 0);
    ck_assert_int_eq(im->n_repo_digests, 1);
    ck_assert_str_eq(im->repo_digests[0], name);
    cc_free(keep);
    free(id);
    cc_close(c);
}
END_TEST

static char *read_layer_file(const char *rel)
{
    /* Find rel in any unpacked layer. */
    char *layers = storage_path("layers");
    DIR *d = opendir(layers);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    char *found = NULL;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s/diff/%s", layers, de->d_name, rel);
        found = cr_read_file(p, NULL, NULL);
    }
    closedir(d);
    free(layers);
    return found;
}

START_TEST(multiarch_index_picks_this_platform)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/multiarch:latest", reg.addr);
    char *id = must_pull(c, name);
    char *arch = read_layer_file("arch");
    ck_assert_ptr_nonnull(arch);
#if defined(__x86_64__)
    ck_assert_msg(strncmp(arch, "amd64", 5) == 0, "unpacked the %s variant", arch);
#elif defined(__aarch64__)
    ck_assert_msg(strncmp(arch, "arm64", 5) == 0, "unpacked the %s variant", arch);
#endif
    free(arch);
    /* RepoDigests carry the digest the name points at: the index. */
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, name, &keep);
    char rd[256];
    snprintf(rd, sizeof(rd), "%s/multiarch@%s", reg.addr, multi_digest);
    ck_assert_int_eq(im->n_repo_digests, 1);
    ck_assert_str_eq(im->repo_digests[0], rd);
    cc_free(keep);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(gzip_zstd_plain_give_the_same_image)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    const char *tags[] = { "latest", "zstd", "plain" };
    char *ids[3];
    for (int i = 0; i < 3; i++) {
        char name[128];
        snprintf(name, sizeof(name), "%s/busybox:%s", reg.addr, tags[i]);
        ids[i] = must_pull(c, name);
    }
    /* The config names uncompressed diff ids, so one image, three tags, one layer. */
    ck_assert_str_eq(ids[0], ids[1]);
    ck_assert_str_eq(ids[0], ids[2]);
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, ids[0], &keep);
    ck_assert_int_eq(im->n_repo_tags, 3);
    cc_free(keep);
    char *layers = storage_path("layers");
    ck_assert_int_eq(count_dir(layers), 1);
    free(layers);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    cc_close(c);
}
END_TEST

START_TEST(whiteouts_become_overlay_whiteouts)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/whiteouts:latest", reg.addr);
    free(must_pull(c, name));
    char *layers = storage_path("layers");
    DIR *d = opendir(layers);
    struct dirent *de;
    bool saw_whiteout = false, saw_opaque = false;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s/diff/a/x", layers, de->d_name);
        if (lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
            saw_whiteout = true;
        snprintf(p, sizeof(p), "%s/%s/diff/b", layers, de->d_name);
        char v[8] = "";
        if (lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y')
            saw_opaque = true;
        snprintf(p, sizeof(p), "%s/%s/diff/a/.wh.x", layers, de->d_name);
        ck_assert_msg(lstat(p, &st) < 0, "OCI whiteout file left as is in %s", de->d_name);
    }
    closedir(d);
    free(layers);
    ck_assert(saw_whiteout);
    ck_assert(saw_opaque);
    cc_close(c);
}
END_TEST

START_TEST(sixty_five_layers)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/manylayers:latest", reg.addr);
    free(must_pull(c, name));
    cr_err *err = NULL;
    Runtime__V1__ImageStatusResponse *r = cc_image_status(c, name, 1, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(r->image);
    ck_assert_int_eq(r->n_info, 1);
    yajl_val v = yajl_tree_parse(r->info[0]->value, NULL, 0);
    ck_assert_ptr_nonnull(v);
    const char *p_c[] = { "chainIds", NULL };
    yajl_val chains = yajl_tree_get(v, p_c, yajl_t_array);
    ck_assert_ptr_nonnull(chains);
    ck_assert_int_ge(YAJL_GET_ARRAY(chains)->len, 65);
    const char *p_cmd[] = { "imageSpec", "config", "Cmd", NULL };
    ck_assert_ptr_nonnull(yajl_tree_get(v, p_cmd, yajl_t_array));
    yajl_tree_free(v);
    cc_free(r);
    char *layers = storage_path("layers");
    ck_assert_int_ge(count_dir(layers), 65);
    free(layers);
    cc_close(c);
}
END_TEST

START_TEST(malicious_layers_are_refused)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    /* What the evil layers aim at must not exist before or after. */
    cr_remove_tree("/tmp/crisp-malicious-target", NULL);
    static const char *variants[] = { "dotdot", "abs", "symlink", "hardlink" };
    for (int i = 0; i < 4; i++) {
        char name[128];
        snprintf(name, sizeof(name), "%s/evil:%s", reg.addr, variants[i]);
        cr_err *err = NULL;
        ck_assert_ptr_null(pull(c, name, &err));
        ck_assert_msg(err->code == CR_INVALID_ARGUMENT, "%s: %s %s", variants[i],
                      cr_code_name(err->code), err->msg);
        cr_err_free(err);
    }
    struct stat st;
    ck_assert_int_lt(stat("/tmp/crisp-malicious-target/pwned", &st), 0);
    ck_assert_int_lt(stat("/escape-abs", &st), 0);
    char p[300];
    snprintf(p, sizeof(p), "%s/root/storage/escape-dotdot", D.dir);
    ck_assert_int_lt(stat(p, &st), 0);
    snprintf(p, sizeof(p), "%s/root/escape-dotdot", D.dir);
    ck_assert_int_lt(stat(p, &st), 0);
    /* Nothing half-made is visible. */
    char *layers = storage_path("layers"), *tmp = storage_path("tmp"), *images = storage_path("images");
    ck_assert_int_eq(count_dir(layers), 0);
    ck_assert_int_eq(count_dir(tmp), 0);
    ck_assert_int_eq(count_dir(images), 0);
    free(layers);
    free(tmp);
    free(images);
    cc_close(c);
}
END_TEST

START_TEST(corrupted_blob_is_refused)
{
    /* Overwrite the unique layer blob of corrupt:latest on the registry's disk. */
    char layout[256];
    snprintf(layout, sizeof(layout), "%s/layouts/corrupt/index.json", suite_dir);
    char *index = cr_read_file(layout, NULL, NULL);
    ck_assert_ptr_nonnull(index);
    free(index);
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/corrupt:latest", reg.addr);
    /* Which blobs does it have?  Ask the registry via a pull's manifest: the
     * layout's blobs folder lists them; corrupt every large one. */
    char blobs[256];
    snprintf(blobs, sizeof(blobs), "%s/layouts/corrupt/blobs/sha256", suite_dir);
    DIR *d = opendir(blobs);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int corrupted = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char src[512], dst[512], digest[300];
        struct stat st;
        snprintf(src, sizeof(src), "%s/%s", blobs, de->d_name);
        if (stat(src, &st) < 0 || st.st_size < 100000)
            continue; /* manifests and configs stay intact */
        snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
        ck_assert_int_eq(tf_registry_blob_path(&reg, digest, dst, sizeof(dst)), 0);
        FILE *f = fopen(dst, "r+");
        ck_assert_ptr_nonnull(f);
        fseek(f, st.st_size / 2, SEEK_SET);
        fputs("CORRUPTED", f);
        fclose(f);
        corrupted++;
    }
    closedir(d);
    ck_assert_int_gt(corrupted, 0);
    cr_err *err = NULL;
    ck_assert_ptr_null(pull(c, name, &err));
    ck_assert_msg(err->code == CR_DATA_LOSS, "%s %s", cr_code_name(err->code), err->msg);
    ck_assert_msg(strstr(err->msg, "sha256:"), "names the blob: %s", err->msg);
    cr_err_free(err);
    char *layers = storage_path("layers"), *tmp = storage_path("tmp");
    ck_assert_int_eq(count_dir(layers), 0);
    ck_assert_int_eq(count_dir(tmp), 0);
    free(layers);
    free(tmp);
    cc_close(c);
}
END_TEST

START_TEST(mirror_first_then_location)
{
    char regs[2048];
    snprintf(regs, sizeof(regs),
             "[[registry]]\nprefix = \"mirrored.test\"\nlocation = \"%s\"\ninsecure = true\n"
             "[[registry.mirror]]\nlocation = \"%s\"\ninsecure = true\n",
             reg.addr, mirror.addr);
    start(regs, NULL);
    cc_conn *c = th_connect(&D);
    /* The mirror has busybox (its own, labelled) -> it wins. */
    char *id = must_pull(c, "mirrored.test/busybox:latest");
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, "mirrored.test/busybox", &keep);
    ck_assert_ptr_nonnull(im);
    ck_assert_str_eq(im->repo_tags[0], "mirrored.test/busybox:latest"); /* never the mirror's name */
    char rd[256];
    snprintf(rd, sizeof(rd), "mirrored.test/busybox@%s", mirror_only_digest);
    ck_assert_str_eq(im->repo_digests[0], rd);
    cc_free(keep);
    free(id);
    /* The mirror lacks multiarch -> the location serves it. */
    id = must_pull(c, "mirrored.test/multiarch:latest");
    im = status_of(c, "mirrored.test/multiarch:latest", &keep);
    ck_assert_ptr_nonnull(im);
    cc_free(keep);
    free(id);
    cc_close(c);
}
END_TEST

START_TEST(short_names_alias_and_search)
{
    char regs[2048];
    snprintf(regs, sizeof(regs),
             "unqualified-search-registries = [\"%s\"]\n\n"
             "[aliases]\n\"nick\" = \"%s/busybox\"\n\n"
             "[[registry]]\nlocation = \"%s\"\ninsecure = true\n",
             reg.addr, reg.addr, reg.addr);
    start(regs, NULL);
    cc_conn *c = th_connect(&D);
    char *id = must_pull(c, "busybox");
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, "busybox", &keep);
    ck_assert_ptr_nonnull(im);
    char want[128];
    snprintf(want, sizeof(want), "%s/busybox:latest", reg.addr);
    ck_assert_str_eq(im->repo_tags[0], want);
    cc_free(keep);
    char *id2 = must_pull(c, "nick:zstd");
    ck_assert_str_eq(id, id2);
    free(id);
    free(id2);
    cc_close(c);
}
END_TEST

START_TEST(blocked_registry_is_permission_denied)
{
    char regs[2048];
    snprintf(regs, sizeof(regs), "[[registry]]\nlocation = \"%s\"\ninsecure = true\nblocked = true\n", reg.addr);
    start(regs, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/busybox:latest", reg.addr);
    cr_err *err = NULL;
    ck_assert_ptr_null(pull(c, name, &err));
    ck_assert_int_eq(err->code, CR_PERMISSION_DENIED);
    ck_assert_msg(strstr(err->msg, reg.addr), "names the registry: %s", err->msg);
    cr_err_free(err);
    cc_close(c);
}
END_TEST

START_TEST(auth_from_request_and_auth_json)
{
    char authjson[512];
    /* "tester:s3cret" in base64 */
    snprintf(authjson, sizeof(authjson), "{\"auths\":{\"%s\":{\"auth\":\"dGVzdGVyOnMzY3JldA==\"}}}", authreg.addr);
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/busybox:latest", authreg.addr);
    cr_err *err = NULL;
    ck_assert_ptr_null(pull(c, name, &err));
    ck_assert_msg(err->code == CR_UNAUTHENTICATED, "%s %s", cr_code_name(err->code), err->msg);
    cr_err_free(err);
    err = NULL;
    Runtime__V1__AuthConfig bad = RUNTIME__V1__AUTH_CONFIG__INIT;
    bad.username = "tester";
    bad.password = "wrong";
    ck_assert_ptr_null(cc_pull_image(c, name, &bad, &err));
    ck_assert_int_eq(err->code, CR_UNAUTHENTICATED);
    cr_err_free(err);
    err = NULL;
    Runtime__V1__AuthConfig good = RUNTIME__V1__AUTH_CONFIG__INIT;
    good.username = "tester";
    good.password = "s3cret";
    Runtime__V1__PullImageResponse *r = cc_pull_image(c, name, &good, &err);
    ck_assert_msg(r != NULL, "pull with creds: %s", err ? err->msg : "");
    cc_free(r);
    ck_assert_int_eq(cc_remove_image(c, name, &err), 0);
    cc_close(c);
    th_cleanup(&D);

    /* Same through an auth.json file named in the config. */
    char extra[1024];
    th_prepare(&D, NULL);
    char apath[256], rpath[256], regs[2048];
    snprintf(apath, sizeof(apath), "%s/auth.json", D.dir);
    ck_assert_int_eq(cr_write_file_atomic(apath, authjson, strlen(authjson), 0600, NULL), 0);
    snprintf(rpath, sizeof(rpath), "%s/registries.conf", D.dir);
    default_registries(regs, sizeof(regs));
    ck_assert_int_eq(cr_write_file_atomic(rpath, regs, strlen(regs), 0644, NULL), 0);
    FILE *f = fopen(D.config, "a");
    snprintf(extra, sizeof(extra), "[crisp.image]\nregistries_conf = \"%s\"\nauth_file = \"%s\"\n", rpath, apath);
    fputs(extra, f);
    fclose(f);
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
    c = th_connect(&D);
    r = cc_pull_image(c, name, NULL, &err);
    ck_assert_msg(r != NULL, "pull with auth.json: %s", err ? err->msg : "");
    cc_free(r);
    cc_close(c);
}
END_TEST

typedef struct {
    th_daemon *d;
    const char *name;
    char id[80];
    char msg[512];
} pull_job;

static void *pull_thread(void *arg)
{
    pull_job *j = arg;
    cc_conn *c = th_connect(j->d);
    cr_err *err = NULL;
    Runtime__V1__PullImageResponse *r = cc_pull_image(c, j->name, NULL, &err);
    if (r) {
        snprintf(j->id, sizeof(j->id), "%s", r->image_ref);
        cc_free(r);
    } else {
        snprintf(j->msg, sizeof(j->msg), "%s", err ? err->msg : "?");
        cr_err_free(err);
    }
    cc_close(c);
    return NULL;
}

START_TEST(parallel_pulls_share_layers)
{
    start(NULL, "max_parallel_downloads = 4");
    char a[128], b[128];
    snprintf(a, sizeof(a), "%s/share:a", reg.addr);
    snprintf(b, sizeof(b), "%s/share:b", reg.addr);
    pull_job ja = { .d = &D, .name = a }, jb = { .d = &D, .name = b };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, pull_thread, &ja);
    pthread_create(&tb, NULL, pull_thread, &jb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(ja.id[0], "pull a: %s", ja.msg);
    ck_assert_msg(jb.id[0], "pull b: %s", jb.msg);
    ck_assert_str_ne(ja.id, jb.id);
    /* a = base + 1 layer, b = base + 2 layers, the first two shared: 3 layers stored. */
    char *layers = storage_path("layers"), *links = storage_path("l");
    ck_assert_int_eq(count_dir(layers), 3);
    ck_assert_int_eq(count_dir(links), 3);

    /* Removing a keeps the layers b uses; removing b frees everything. */
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    ck_assert_int_eq(cc_remove_image(c, a, &err), 0);
    ck_assert_int_eq(count_dir(layers), 3);
    ck_assert_int_eq(cc_remove_image(c, jb.id, &err), 0);
    ck_assert_int_eq(count_dir(layers), 0);
    ck_assert_int_eq(count_dir(links), 0);
    ck_assert_int_eq(cc_remove_image(c, jb.id, &err), 0); /* idempotent */
    free(layers);
    free(links);
    cc_close(c);
}
END_TEST

START_TEST(store_survives_restart)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    snprintf(name, sizeof(name), "%s/busybox:latest", reg.addr);
    char *id = must_pull(c, name);
    cc_close(c);
    int ws = th_signal_wait(&D, SIGTERM, 15000);
    ck_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
    c = th_connect(&D);
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, name, &keep);
    ck_assert_ptr_nonnull(im);
    ck_assert_str_eq(im->id, id);
    cc_free(keep);
    free(id);
    cc_close(c);
}
END_TEST

static bool tmp_has_partial_blob(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return false;
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > 5 && !strcmp(de->d_name + n - 5, ".blob")) {
            char p[512];
            struct stat st;
            snprintf(p, sizeof(p), "%s/%s", tmp, de->d_name);
            found = stat(p, &st) == 0 && st.st_size > 1000000;
        }
    }
    closedir(d);
    return found;
}

START_TEST(kill_during_pull_then_clean_repull)
{
    start(NULL, "max_parallel_downloads = 1");
    char name[128];
    snprintf(name, sizeof(name), "%s/big:latest", reg.addr);
    pull_job j = { .d = &D, .name = name };
    pthread_t t;
    pthread_create(&t, NULL, pull_thread, &j);
    char *tmp = storage_path("tmp"), *layers = storage_path("layers"), *images = storage_path("images");
    long until = th_now_ms() + 30000;
    while (!tmp_has_partial_blob(tmp) && th_now_ms() < until)
        usleep(2000);
    ck_assert_msg(tmp_has_partial_blob(tmp), "the pull never got under way");
    kill(D.pid, SIGKILL);
    waitpid(D.pid, NULL, 0);
    D.pid = -1;
    pthread_join(t, NULL);
    ck_assert_msg(j.id[0] == '\0', "the pull cannot have finished");

    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
    /* Nothing from the interrupted pull is visible; junk is gone. */
    ck_assert_int_eq(count_dir(tmp), 0);
    ck_assert_int_eq(count_dir(images), 0);
    ck_assert_int_eq(count_dir(layers), 0);
    cc_conn *c = th_connect(&D);
    cr_err *err = NULL;
    Runtime__V1__ListImagesResponse *l = cc_list_images(c, NULL, &err);
    ck_assert_int_eq(l->n_images, 0);
    cc_free(l);
    char *id = must_pull(c, name);
    ck_assert_int_eq(count_dir(layers), 5);
    free(id);
    free(tmp);
    free(layers);
    free(images);
    cc_close(c);
}
END_TEST

static int collect_stream(const ProtobufCMessage *m, void *ud)
{
    const Runtime__V1__StreamImagesResponse *r = (const Runtime__V1__StreamImagesResponse *)m;
    int *n = ud;
    if (r->n_images == 0)
        *n = -1000; /* each message carries at least one image */
    else
        *n += (int)r->n_images;
    return 0;
}

START_TEST(stream_images_and_fs_info)
{
    start(NULL, NULL);
    cc_conn *c = th_connect(&D);
    char name[128];
    cr_err *err = NULL;
    /* Empty node: the stream closes cleanly with no message. */
    Runtime__V1__StreamImagesRequest req = RUNTIME__V1__STREAM_IMAGES_REQUEST__INIT;
    int n = 0;
    ck_assert_int_eq(cc_call_stream(c, CC_IMAGE "StreamImages", &req.base,
                                    &runtime__v1__stream_images_response__descriptor, collect_stream,
                                    &n, &err), 0);
    ck_assert_int_eq(n, 0);
    snprintf(name, sizeof(name), "%s/busybox:latest", reg.addr);
    free(must_pull(c, name));
    snprintf(name, sizeof(name), "%s/share:a", reg.addr);
    free(must_pull(c, name));
    ck_assert_int_eq(cc_call_stream(c, CC_IMAGE "StreamImages", &req.base,
                                    &runtime__v1__stream_images_response__descriptor, collect_stream,
                                    &n, &err), 0);
    ck_assert_int_eq(n, 2);

    Runtime__V1__ImageFsInfoResponse *fs = cc_image_fs_info(c, &err);
    ck_assert_ptr_nonnull(fs);
    ck_assert_int_eq(fs->n_image_filesystems, 1);
    ck_assert_int_eq(fs->n_container_filesystems, 1);
    ck_assert_int_gt(fs->image_filesystems[0]->used_bytes->value, 1000000);
    ck_assert_int_gt(fs->image_filesystems[0]->inodes_used->value, 3);
    ck_assert_ptr_nonnull(strstr(fs->image_filesystems[0]->fs_id->mountpoint, D.dir));
    ck_assert_int_gt(fs->image_filesystems[0]->timestamp, 0);
    cc_free(fs);
    cc_close(c);
}
END_TEST

START_TEST(crispctl_image_commands)
{
    start(NULL, NULL);
    char name[128];
    snprintf(name, sizeof(name), "%s/busybox:latest", reg.addr);
    char *out = NULL;
    const char *pullv[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "pull", name, NULL };
    int ws = th_run(pullv, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "pull: %s", out);
    ck_assert_msg(strstr(out, "Image is up to date for sha256:"), "%s", out);
    free(out);
    const char *imagesv[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "images", NULL };
    ws = th_run(imagesv, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "images: %s", out);
    char repo[128];
    snprintf(repo, sizeof(repo), "%s/busybox", reg.addr);
    ck_assert_msg(strstr(out, "IMAGE ID") && strstr(out, repo) && strstr(out, "latest"), "%s", out);
    free(out);
    const char *inspectv[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "inspecti", name, NULL };
    ws = th_run(inspectv, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "inspecti: %s", out);
    yajl_val v = yajl_tree_parse(out, NULL, 0);
    ck_assert_msg(v != NULL, "inspecti is not JSON: %s", out);
    const char *p_tags[] = { "status", "repoTags", NULL }, *p_spec[] = { "info", "info", "imageSpec", NULL };
    ck_assert_ptr_nonnull(yajl_tree_get(v, p_tags, yajl_t_array));
    ck_assert_ptr_nonnull(yajl_tree_get(v, p_spec, yajl_t_object));
    yajl_tree_free(v);
    free(out);
    const char *fsv[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "imagefsinfo", NULL };
    ws = th_run(fsv, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && strstr(out, "usedBytes"), "imagefsinfo: %s", out);
    free(out);
    const char *rmiv[] = { th_bin("crispctl"), "--endpoint", D.endpoint, "rmi", name, NULL };
    ws = th_run(rmiv, &out);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && strstr(out, "Deleted: "), "rmi: %s", out);
    free(out);
    ws = th_run(rmiv, &out); /* gone now: crictl says no such image */
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) != 0 && strstr(out, "no such image"), "rmi again: %s", out);
    free(out);
}
END_TEST

/* crispd with [crisp.runtime] pause_image = <reg>/<repo_tag> and the default registries. */
static void start_with_pause_image(const char *repo_tag)
{
    char extra[256];
    snprintf(extra, sizeof(extra), "[crisp.runtime]\npause_image = \"%s/%s\"\n", reg.addr, repo_tag);
    th_prepare(&D, extra);
    char path[256], regs[2048];
    snprintf(path, sizeof(path), "%s/registries.conf", D.dir);
    default_registries(regs, sizeof(regs));
    ck_assert_int_eq(cr_write_file_atomic(path, regs, strlen(regs), 0644, NULL), 0);
    FILE *f = fopen(D.config, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[crisp.image]\nregistries_conf = \"%s\"\n", path);
    fclose(f);
    D.pid = th_spawn(&D, NULL);
    ck_assert(th_wait_ready(&D, 20000));
}

START_TEST(pause_image_is_pinned)
{
    start_with_pause_image("busybox:latest");
    cc_conn *c = th_connect(&D);
    char name[128], other[128];
    snprintf(name, sizeof(name), "%s/busybox:latest", reg.addr);
    snprintf(other, sizeof(other), "%s/share:a", reg.addr);
    free(must_pull(c, name));
    free(must_pull(c, other));
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, name, &keep);
    ck_assert(im->pinned);
    cc_free(keep);
    im = status_of(c, other, &keep);
    ck_assert(!im->pinned);
    cc_free(keep);
    cc_close(c);
}
END_TEST

START_TEST(pod_with_a_pause_image)
{
    start_with_pause_image("pause:latest");
    cc_conn *c = th_connect(&D);
    /* Host network: this suite has no CNI network. */
    Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    md.name = "paused";
    md.namespace_ = "t";
    md.uid = "u-paused";
    Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    sc.namespace_options = &nso;
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    lx.security_context = &sc;
    Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    cfg.metadata = &md;
    cfg.linux = &lx;
    cr_err *err = NULL;
    Runtime__V1__RunPodSandboxResponse *r = cc_run_pod_sandbox(c, &cfg, NULL, &err);
    ck_assert_msg(r != NULL, "runp with pause image: %s", err ? err->msg : "");
    char id[80];
    snprintf(id, sizeof(id), "%s", r->pod_sandbox_id);
    cc_free(r);
    /* The image was pulled and pinned, and it runs as the infra process. */
    char name[128];
    snprintf(name, sizeof(name), "%s/pause:latest", reg.addr);
    Runtime__V1__ImageStatusResponse *keep;
    Runtime__V1__Image *im = status_of(c, name, &keep);
    ck_assert_ptr_nonnull(im);
    ck_assert(im->pinned);
    cc_free(keep);
    Runtime__V1__PodSandboxStatusResponse *st = cc_pod_sandbox_status(c, id, 1, &err);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->status->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY);
    yajl_val v = yajl_tree_parse(st->info[0]->value, NULL, 0);
    const char *p_pid[] = { "pid", NULL };
    int pid = (int)YAJL_GET_INTEGER(yajl_tree_get(v, p_pid, yajl_t_number));
    yajl_tree_free(v);
    cc_free(st);
    char cl[64];
    snprintf(cl, sizeof(cl), "/proc/%d/cmdline", pid);
    size_t n = 0;
    char *cmdline = cr_read_file(cl, &n, NULL);
    ck_assert_ptr_nonnull(cmdline);
    ck_assert_msg(n > 8 && memmem(cmdline, n, "sleep", 5), "infra runs %s", cmdline);
    free(cmdline);
    /* In use by the pod: the image cannot go, and the error names the pod. */
    ck_assert_int_lt(cc_remove_image(c, name, &err), 0);
    ck_assert_int_eq(err->code, CR_FAILED_PRECONDITION);
    ck_assert_msg(strstr(err->msg, id), "%s", err->msg);
    cr_err_free(err);
    err = NULL;
    ck_assert_int_eq(cc_remove_pod_sandbox(c, id, &err), 0);
    ck_assert_int_eq(cc_remove_image(c, name, &err), 0);
    cc_close(c);
}
END_TEST

int main(void)
{
    suite_setup();
    Suite *s = suite_create("images");
    TCase *tc = tcase_create("images");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_unchecked_fixture(tc, NULL, th_collect_leftovers);
    tcase_set_timeout(tc, 180);
    TH_ADD(tc, pull_list_status_by_every_name);
    TH_ADD(tc, missing_image_status_is_empty_not_error);
    TH_ADD(tc, bad_names_are_invalid_argument);
    TH_ADD(tc, unknown_tag_is_not_found);
    TH_ADD(tc, digest_pull_has_digest_no_tag);
    TH_ADD(tc, multiarch_index_picks_this_platform);
    TH_ADD(tc, gzip_zstd_plain_give_the_same_image);
    TH_ADD(tc, whiteouts_become_overlay_whiteouts);
    TH_ADD(tc, sixty_five_layers);
    TH_ADD(tc, malicious_layers_are_refused);
    TH_ADD(tc, corrupted_blob_is_refused);
    TH_ADD(tc, mirror_first_then_location);
    TH_ADD(tc, short_names_alias_and_search);
    TH_ADD(tc, blocked_registry_is_permission_denied);
    TH_ADD(tc, auth_from_request_and_auth_json);
    TH_ADD(tc, parallel_pulls_share_layers);
    TH_ADD(tc, store_survives_restart);
    TH_ADD(tc, kill_during_pull_then_clean_repull);
    TH_ADD(tc, stream_images_and_fs_info);
    TH_ADD(tc, crispctl_image_commands);
    TH_ADD(tc, pause_image_is_pinned);
    TH_ADD(tc, pod_with_a_pause_image);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    suite_teardown();
    return failed ? 1 : 0;
}
