/* ImageService: PullImage, ListImages, StreamImages, ImageStatus,
 * RemoveImage, ImageFsInfo over the image store (image/). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "metrics.h"
#include "lib/cleanup.h"
#include "lib/log.h"

#define STREAM_CHUNK 100 /* images per StreamImagesResponse */

/* Allocation helpers: on failure they set *oom and return NULL/"", so a
 * response is built straight through and checked once at the end. */
static char *dup_or(bool *oom, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *oom = true;
    return d;
}

static char **strv_to_pb(bool *oom, char *const *v, size_t *n)
{
    size_t k = 0;
    while (v && v[k])
        k++;
    *n = 0;
    if (k == 0)
        return NULL;
    char **out = calloc(k, sizeof(char *));
    if (!out) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < k; i++)
        out[i] = dup_or(oom, v[i]);
    *n = k;
    return out;
}

/* config.User: "1000", "1000:1000", "app", "app:grp" -> uid or user name. */
static void set_user(bool *oom, Runtime__V1__Image *pb, const char *user)
{
    if (!user || !*user)
        return;
    size_t len = strcspn(user, ":");
    bool numeric = len > 0;
    for (size_t i = 0; i < len; i++)
        numeric = numeric && user[i] >= '0' && user[i] <= '9';
    if (numeric) {
        Runtime__V1__Int64Value *v = malloc(sizeof(*v));
        if (!v) {
            *oom = true;
            return;
        }
        runtime__v1__int64_value__init(v);
        v->value = strtoll(user, NULL, 10);
        pb->uid = v;
    } else {
        pb->username = strndup(user, len);
        if (!pb->username)
            *oom = true;
    }
}

static Runtime__V1__Image *image_to_pb(bool *oom, const img_image *im)
{
    Runtime__V1__Image *pb = malloc(sizeof(*pb));
    Runtime__V1__ImageSpec *spec = malloc(sizeof(*spec));
    if (!pb || !spec) {
        free(pb);
        free(spec);
        *oom = true;
        return NULL;
    }
    runtime__v1__image__init(pb);
    runtime__v1__image_spec__init(spec);
    pb->id = dup_or(oom, im->id);
    pb->repo_tags = strv_to_pb(oom, im->repo_tags, &pb->n_repo_tags);
    pb->repo_digests = strv_to_pb(oom, im->repo_digests, &pb->n_repo_digests);
    pb->size = im->size;
    set_user(oom, pb, im->user);
    spec->image = dup_or(oom, im->id);
    pb->spec = spec;
    pb->pinned = im->pinned;
    return pb;
}

static const char *spec_name(const Runtime__V1__ImageSpec *spec)
{
    return spec && spec->image ? spec->image : "";
}

static int check_handler(srv_daemon *d, const Runtime__V1__ImageSpec *spec, cr_err **err)
{
    if (!spec || !spec->runtime_handler || !*spec->runtime_handler ||
        cr_config_runtime(d->cfg, spec->runtime_handler))
        return 0;
    return cr_err_set(err, CR_INVALID_ARGUMENT, "image %s: unknown runtime handler %s",
                      spec_name(spec), spec->runtime_handler);
}

int srv_pull_image(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__PullImageRequest *in = (const Runtime__V1__PullImageRequest *)req;
    const char *name = spec_name(in->image);
    if (!*name)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "PullImage: image name is empty");
    if (check_handler(d, in->image, err) < 0)
        return -1;
    img_auth auth = { 0 };
    if (in->auth && img_auth_from_cri(in->auth->username, in->auth->password, in->auth->auth,
                                      in->auth->identity_token, in->auth->registry_token, &auth,
                                      err) < 0)
        return cr_err_prefix(err, "pull %s: credentials", name);
    img_image *im = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = img_store_pull(d->images, name, &auth, &im, err);
    img_auth_clear(&auth);
    /* The store reports no transfer count: a pulled image counts its
     * layers' (unpacked) size. */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    srv_metrics_pull(d, r < 0 ? 0 : im->size,
                     (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, r == 0);
    if (r < 0)
        return -1;
    Runtime__V1__PullImageResponse *pb = malloc(sizeof(*pb));
    if (pb) {
        runtime__v1__pull_image_response__init(pb);
        pb->image_ref = strdup(im->id);
    }
    img_image_free(im);
    if (!pb || !pb->image_ref) {
        free(pb);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "pull %s: out of memory", name);
    }
    *resp = &pb->base;
    return 0;
}

/* The images a ListImages/StreamImages filter selects. */
static int select_images(srv_daemon *d, const Runtime__V1__ImageFilter *f, img_image ***out,
                         size_t *n, cr_err **err)
{
    const char *name = f ? spec_name(f->image) : "";
    if (!*name)
        return img_store_list(d->images, out, n, err);
    img_image *one = NULL;
    int r = img_store_find(d->images, name, &one, err);
    if (r < 0)
        return -1;
    *out = calloc(1, sizeof(img_image *));
    if (!*out) {
        img_image_free(one);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    }
    (*out)[0] = one;
    *n = r == 1 ? 1 : 0;
    return 0;
}

int srv_list_images(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ListImagesRequest *in = (const Runtime__V1__ListImagesRequest *)req;
    img_image **v = NULL;
    size_t n = 0;
    if (select_images(d, in->filter, &v, &n, err) < 0)
        return -1;
    bool oom = false;
    Runtime__V1__ListImagesResponse *pb = malloc(sizeof(*pb));
    if (pb) {
        runtime__v1__list_images_response__init(pb);
        *resp = &pb->base;
        pb->images = n ? calloc(n, sizeof(*pb->images)) : NULL;
        oom = n && !pb->images;
        for (size_t i = 0; !oom && i < n; i++)
            if ((pb->images[pb->n_images] = image_to_pb(&oom, v[i])))
                pb->n_images++;
    }
    img_images_free(v, n);
    if (!pb || oom)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "list images: out of memory");
    return 0;
}

int srv_stream_images(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    const Runtime__V1__StreamImagesRequest *in = (const Runtime__V1__StreamImagesRequest *)req;
    img_image **v = NULL;
    size_t n = 0;
    if (select_images(d, in->filter, &v, &n, err) < 0)
        return -1;
    int r = 0;
    /* Each image goes out exactly once, in chunks of at least one. */
    for (size_t start = 0; start < n && r == 0; start += STREAM_CHUNK) {
        size_t k = n - start < STREAM_CHUNK ? n - start : STREAM_CHUNK;
        bool oom = false;
        Runtime__V1__StreamImagesResponse pb = RUNTIME__V1__STREAM_IMAGES_RESPONSE__INIT;
        Runtime__V1__Image *items[STREAM_CHUNK];
        pb.images = items;
        for (size_t i = 0; i < k; i++)
            if ((items[pb.n_images] = image_to_pb(&oom, v[start + i])))
                pb.n_images++;
        if (oom)
            r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "stream images: out of memory");
        else if (srv_stream_send(st, &pb.base) < 0)
            r = -1;
        for (size_t i = 0; i < pb.n_images; i++)
            protobuf_c_message_free_unpacked(&items[i]->base, NULL);
    }
    img_images_free(v, n);
    return r;
}

/* Verbose info: the image config and what the store knows about it. */
static char *verbose_info(const img_image *im)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "{\"id\":\"%s\",\"manifestDigest\":\"%s\",\"chainIds\":[", im->id, im->manifest_digest);
    for (size_t i = 0; im->layers && im->layers[i]; i++)
        fprintf(f, "%s\"%s\"", i ? "," : "", im->layers[i]);
    fprintf(f, "],\"pulledAt\":%lld,\"imageSpec\":%s}", (long long)im->pulled_at,
            im->config_json && *im->config_json ? im->config_json : "null");
    fclose(f);
    return buf;
}

int srv_image_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ImageStatusRequest *in = (const Runtime__V1__ImageStatusRequest *)req;
    const char *name = spec_name(in->image);
    if (!*name)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "ImageStatus: image name is empty");
    img_image *im = NULL;
    int found = img_store_find(d->images, name, &im, err);
    if (found < 0)
        return -1;
    Runtime__V1__ImageStatusResponse *pb = malloc(sizeof(*pb));
    if (!pb) {
        img_image_free(im);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "image status: out of memory");
    }
    runtime__v1__image_status_response__init(pb);
    *resp = &pb->base;
    if (!found) /* absent: an empty response, not an error */
        return 0;
    bool oom = false;
    pb->image = image_to_pb(&oom, im);
    if (in->verbose) {
        Runtime__V1__ImageStatusResponse__InfoEntry *e = malloc(sizeof(*e));
        pb->info = malloc(sizeof(*pb->info));
        if (e && pb->info) {
            runtime__v1__image_status_response__info_entry__init(e);
            e->key = dup_or(&oom, "info");
            e->value = verbose_info(im);
            oom = oom || !e->value;
            pb->info[pb->n_info++] = e;
        } else {
            free(e);
            oom = true;
        }
    }
    img_image_free(im);
    return oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "image status: out of memory") : 0;
}

int srv_remove_image(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__RemoveImageRequest *in = (const Runtime__V1__RemoveImageRequest *)req;
    const char *name = spec_name(in->image);
    if (!*name)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "RemoveImage: image name is empty");
    if (img_store_remove(d->images, name, err) < 0)
        return -1;
    Runtime__V1__RemoveImageResponse *pb = malloc(sizeof(*pb));
    if (!pb)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "remove image: out of memory");
    runtime__v1__remove_image_response__init(pb);
    *resp = &pb->base;
    return 0;
}

static Runtime__V1__FilesystemUsage *usage_to_pb(bool *oom, const img_fs_usage *u, int64_t now)
{
    Runtime__V1__FilesystemUsage *pb = malloc(sizeof(*pb));
    Runtime__V1__FilesystemIdentifier *id = malloc(sizeof(*id));
    Runtime__V1__UInt64Value *b = malloc(sizeof(*b)), *in = malloc(sizeof(*in));
    if (!pb || !id || !b || !in) {
        free(pb);
        free(id);
        free(b);
        free(in);
        *oom = true;
        return NULL;
    }
    runtime__v1__filesystem_usage__init(pb);
    runtime__v1__filesystem_identifier__init(id);
    runtime__v1__uint64_value__init(b);
    runtime__v1__uint64_value__init(in);
    id->mountpoint = dup_or(oom, u->mountpoint);
    b->value = u->bytes;
    in->value = u->inodes;
    pb->timestamp = now;
    pb->fs_id = id;
    pb->used_bytes = b;
    pb->inodes_used = in;
    return pb;
}

int srv_image_fs_info(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    img_fs_usage images, containers;
    if (img_store_fs_usage(d->images, &images, &containers, err) < 0)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    bool oom = false;
    Runtime__V1__ImageFsInfoResponse *pb = malloc(sizeof(*pb));
    if (pb) {
        runtime__v1__image_fs_info_response__init(pb);
        *resp = &pb->base;
        pb->image_filesystems = malloc(sizeof(*pb->image_filesystems));
        pb->container_filesystems = malloc(sizeof(*pb->container_filesystems));
        if (pb->image_filesystems && (pb->image_filesystems[0] = usage_to_pb(&oom, &images, now)))
            pb->n_image_filesystems = 1;
        if (pb->container_filesystems &&
            (pb->container_filesystems[0] = usage_to_pb(&oom, &containers, now)))
            pb->n_container_filesystems = 1;
        oom = oom || !pb->n_image_filesystems || !pb->n_container_filesystems;
    }
    img_fs_usage_clear(&images);
    img_fs_usage_clear(&containers);
    if (!pb || oom)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "image fs info: out of memory");
    return 0;
}
