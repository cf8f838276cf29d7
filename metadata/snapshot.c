/*
 * Snapshot files of the namespace: write atomically, find and validate the
 * newest, prune old ones.  The image itself comes from ns_encode/ns_decode.
 */
#include "metadata/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/checksum.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"

#define SNAP_MAGIC 0x4e535354u   /* "TSSN" */
#define SNAP_VERSION 1

int snapshot_write(const char *dir, uint64_t index, const ns_state *ns, ts_error *err)
{
    ts_buf b = {0};
    int rc = 0;
    char *tmp = ts_sprintf("%s/snap-%020" PRIu64 ".tmp", dir, index);
    char *path = ts_sprintf("%s/snap-%020" PRIu64 ".snap", dir, index);

    ts_enc_u32(&b, SNAP_MAGIC);
    ts_enc_u8(&b, SNAP_VERSION);
    ts_enc_u64(&b, index);
    size_t len_at = b.len;
    ts_enc_u32(&b, 0);                  /* image length, patched below */
    ns_encode(ns, &b);
    uint32_t image_len = (uint32_t)(b.len - len_at - 4);
    if (b.len - len_at - 4 > UINT32_MAX) {
        rc = ts_fail(err, TS_EIO, "snapshot %s: image of %zu bytes too large", path,
                     b.len - len_at - 4);
        goto free_buf;
    }
    for (int i = 0; i < 4; i++)
        b.data[len_at + i] = (char)(image_len >> (8 * i));
    ts_enc_u32(&b, ts_crc32c(0, b.data, b.len));

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ts_fail(err, TS_EIO, "snapshot %s: create: %s", tmp, strerror(errno));
        goto free_buf;
    }
    if (ts_write_full_paced(fd, b.data, b.len) != 0 || fsync(fd) != 0) {
        rc = ts_fail(err, TS_EIO, "snapshot %s: write: %s", tmp, strerror(errno));
        close(fd);
        goto unlink_tmp;
    }
    if (close(fd) != 0) {
        rc = ts_fail(err, TS_EIO, "snapshot %s: close: %s", tmp, strerror(errno));
        goto unlink_tmp;
    }
    if (rename(tmp, path) != 0) {
        rc = ts_fail(err, TS_EIO, "snapshot: rename %s to %s: %s", tmp, path, strerror(errno));
        goto unlink_tmp;
    }
    rc = ts_fsync_dir(dir, err);
    goto free_buf;
unlink_tmp:
    unlink(tmp);
free_buf:
    ts_buf_free(&b);
    free(tmp);
    free(path);
    return rc;
}

int snapshot_load_file(const char *path, ns_state **ns, uint64_t *index, ts_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = ts_read_file(path, &data, &len, err);
    if (rc)
        return rc;
    ts_dec d;
    ts_dec_init(&d, data, len);
    uint32_t magic = ts_dec_u32(&d);
    uint8_t version = ts_dec_u8(&d);
    uint64_t idx = ts_dec_u64(&d);
    size_t image_len = 0;
    const void *image = ts_dec_bytes(&d, &image_len);
    size_t crc_at = d.pos;
    uint32_t crc = ts_dec_u32(&d);
    if (!ts_dec_done(&d) || magic != SNAP_MAGIC) {
        rc = ts_fail(err, TS_ECORRUPT, "snapshot %s: truncated or not a snapshot", path);
        goto free_data;
    }
    if (version != SNAP_VERSION) {
        rc = ts_fail(err, TS_ECORRUPT, "snapshot %s: unknown version %u", path, version);
        goto free_data;
    }
    if (ts_crc32c(0, data, crc_at) != crc) {
        rc = ts_fail(err, TS_ECORRUPT, "snapshot %s: checksum mismatch", path);
        goto free_data;
    }
    if ((rc = ns_decode(image, image_len, ns, err)) != 0) {
        ts_error_prefix(err, "snapshot %s", path);
        rc = TS_ECORRUPT;
        goto free_data;
    }
    *index = idx;
free_data:
    free(data);
    return rc;
}

/* Snapshot indexes in dir, newest first; caller frees. */
static int list_snapshots(const char *dir, uint64_t **out, size_t *n, ts_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ts_fail(err, TS_EIO, "snapshot dir %s: %s", dir, strerror(errno));
    uint64_t *v = NULL;
    size_t cnt = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long idx;
        char tail[8];
        if (strlen(de->d_name) != 5 + 20 + 5 ||
            sscanf(de->d_name, "snap-%20llu%7s", &idx, tail) != 2 || strcmp(tail, ".snap") != 0)
            continue;
        v = ts_realloc(v, (cnt + 1) * sizeof(uint64_t));
        v[cnt++] = idx;
    }
    closedir(d);
    /* newest first (insertion sort: few files) */
    for (size_t i = 1; i < cnt; i++)
        for (size_t j = i; j > 0 && v[j - 1] < v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    *n = cnt;
    return 0;
}

int snapshot_load_latest(const char *dir, ns_state **ns, uint64_t *index, ts_error *err)
{
    uint64_t *idx = NULL;
    size_t n = 0;
    int rc = list_snapshots(dir, &idx, &n, err);
    *ns = NULL;
    *index = 0;
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char *path = ts_sprintf("%s/snap-%020" PRIu64 ".snap", dir, idx[i]);
        ts_error e = {0};
        rc = snapshot_load_file(path, ns, index, &e);
        free(path);
        if (rc == 0)
            break;
        if (rc != TS_ECORRUPT) {
            if (err)
                *err = e;
            break;
        }
        TS_WARN("%s; trying an older snapshot", e.msg);
        if (i + 1 == n) {
            if (err)
                *err = e;
            break;      /* every snapshot is bad: refuse rather than start empty */
        }
    }
    free(idx);
    return rc;
}

int snapshot_prune(const char *dir, uint64_t keep_index, ts_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ts_fail(err, TS_EIO, "snapshot dir %s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long idx;
        char tail[8];
        if (strlen(de->d_name) != 5 + 20 + 4 + (strstr(de->d_name, ".snap") ? 1 : 0))
            continue;
        if (sscanf(de->d_name, "snap-%20llu%7s", &idx, tail) != 2)
            continue;
        int is_tmp = strcmp(tail, ".tmp") == 0;
        if (!is_tmp && (strcmp(tail, ".snap") != 0 || idx >= keep_index))
            continue;
        if (is_tmp && idx >= keep_index)
            continue;   /* possibly being written right now */
        char *path = ts_sprintf("%s/%s", dir, de->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = ts_fail(err, TS_EIO, "snapshot: unlink %s: %s", path, strerror(errno));
        free(path);
    }
    closedir(d);
    if (rc == 0)
        rc = ts_fsync_dir(dir, err);
    return rc;
}
