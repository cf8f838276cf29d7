/*
 * Remote path handling for tools built on libtessera: lexical normalization
 * (the metadata server resolves absolute, clean paths and does not follow
 * symlinks, so ".." is resolved here, lexically, as `realpath -s` does) and
 * splitting a path into its parent directory and last name.
 */
#include <string.h>

#include "fs/tessera.h"

int tess_path_normalize(const char *in, char *out, ts_error *err)
{
    size_t o = 0;
    const char *p = in;

    if (!in || !*in)
        return ts_fail(err, TS_EINVAL, "empty path");
    out[o++] = '/';
    while (*p) {
        const char *seg;
        size_t len;

        while (*p == '/')
            p++;
        seg = p;
        while (*p && *p != '/')
            p++;
        len = (size_t)(p - seg);
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            /* Drop the last component; ".." of the root is the root. */
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            continue;
        }
        if (len > TS_NAME_MAX)
            return ts_fail(err, TS_ENAMETOOLONG, "%.40s…: a name is longer than %d bytes", in,
                           TS_NAME_MAX);
        if (o + (o > 1) + len > TS_PATH_MAX)
            return ts_fail(err, TS_ENAMETOOLONG, "%.40s…: path longer than %d bytes", in,
                           TS_PATH_MAX);
        if (o > 1)
            out[o++] = '/';
        memcpy(out + o, seg, len);
        o += len;
    }
    out[o] = '\0';
    return 0;
}

int tess_path_split(char *buf, const char **parent, const char **name, ts_error *err)
{
    char *slash = strrchr(buf, '/');

    if (!slash || slash[1] == '\0')
        return ts_fail(err, TS_EINVAL, "'%s' has no last component", buf);
    *name = slash + 1;
    if (slash == buf) {
        *parent = "/";
    } else {
        *slash = '\0';
        *parent = buf;
    }
    return 0;
}

void tess_path_basename(const char *path, char *out, size_t outlen)
{
    size_t end = strlen(path), start;

    while (end > 1 && path[end - 1] == '/')
        end--;
    start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    if (end - start >= outlen)
        end = start + outlen - 1;
    memcpy(out, path + start, end - start);
    out[end - start] = '\0';
}
