/*
 * The error convention of common/ts_error.h: formatting messages with
 * context, and the three translations at the boundaries (symbolic name on
 * the wire, errno at FUSE, HTTP status at HTTP).  The table below is the one
 * place that lists every code, so adding a code means adding one row.
 */
#include "common/ts_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_row {
    int code;
    const char *name;
    int errnum;     /* what the FUSE boundary reports */
    int http;       /* what the HTTP boundary answers */
};

/* Codes that have no exact POSIX twin map to the errno an application can act
 * on: corruption and unreachable replicas are I/O errors to the caller, and
 * "not leader" or "cannot parse the peer" never reach a mount except as EIO. */
static const struct err_row rows[] = {
    { TS_OK, "OK", 0, 200 },
    { TS_EINVAL, "EINVAL", EINVAL, 400 },
    { TS_ENOENT, "ENOENT", ENOENT, 404 },
    { TS_EEXIST, "EEXIST", EEXIST, 409 },
    { TS_ENOTDIR, "ENOTDIR", ENOTDIR, 409 },
    { TS_EISDIR, "EISDIR", EISDIR, 409 },
    { TS_ENOTEMPTY, "ENOTEMPTY", ENOTEMPTY, 409 },
    { TS_EPERM, "EPERM", EPERM, 403 },
    { TS_EACCES, "EACCES", EACCES, 403 },
    { TS_ENOSPC, "ENOSPC", ENOSPC, 507 },
    { TS_EIO, "EIO", EIO, 500 },
    { TS_ECORRUPT, "ECORRUPT", EIO, 500 },
    { TS_EUNAVAIL, "EUNAVAIL", EIO, 502 },
    { TS_ENAMETOOLONG, "ENAMETOOLONG", ENAMETOOLONG, 414 },
    { TS_EBUSY, "EBUSY", EBUSY, 409 },
    { TS_ENOMEM, "ENOMEM", ENOMEM, 500 },
    { TS_ETIMEDOUT, "ETIMEDOUT", ETIMEDOUT, 504 },
    { TS_EPROTO, "EPROTO", EIO, 500 },
    { TS_ENOTLEADER, "ENOTLEADER", EIO, 421 },
    { TS_ELOOP, "ELOOP", ELOOP, 500 },
    { TS_EFBIG, "EFBIG", EFBIG, 413 },
    { TS_ERANGE, "ERANGE", ERANGE, 416 },
    { TS_EXDEV, "EXDEV", EXDEV, 500 },
    { TS_ENODATA, "ENODATA", ENODATA, 500 },
    { TS_ENOTSUP, "ENOTSUP", ENOTSUP, 501 },
};

static const struct err_row *find_row(int code)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].code == code)
            return &rows[i];
    return NULL;
}

int ts_fail(ts_error *e, int code, const char *fmt, ...)
{
    if (e != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

/* Appends src to dst[0..*n), never past cap bytes of text. */
static void append_truncated(char *dst, size_t *n, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len > cap - *n)
        len = cap - *n;
    memcpy(dst + *n, src, len);
    *n += len;
}

int ts_error_prefix(ts_error *e, const char *fmt, ...)
{
    char ctx[sizeof(e->msg)];
    char old[sizeof(e->msg)];
    size_t n = 0, cap = sizeof(e->msg) - 1;
    va_list ap;

    if (e == NULL)
        return TS_EIO;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    /* Copy first: the old message is also the destination. */
    memcpy(old, e->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    append_truncated(e->msg, &n, cap, ctx);
    if (old[0] != '\0') {
        append_truncated(e->msg, &n, cap, ": ");
        append_truncated(e->msg, &n, cap, old);
    }
    e->msg[n] = '\0';
    return e->code;
}

void ts_error_clear(ts_error *e)
{
    if (e == NULL)
        return;
    e->code = TS_OK;
    e->msg[0] = '\0';
}

const char *ts_err_name(int code)
{
    const struct err_row *r = find_row(code);
    return r != NULL ? r->name : "EUNKNOWN";
}

int ts_err_from_name(const char *name)
{
    if (name == NULL)
        return TS_EPROTO;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (strcmp(rows[i].name, name) == 0)
            return rows[i].code;
    return TS_EPROTO;
}

int ts_err_to_errno(int code)
{
    const struct err_row *r = find_row(code);
    return r != NULL ? r->errnum : EIO;
}

int ts_err_from_errno(int err)
{
    switch (err) {
    case 0: return TS_OK;
    case EINVAL: return TS_EINVAL;
    case ENOENT: return TS_ENOENT;
    case EEXIST: return TS_EEXIST;
    case ENOTDIR: return TS_ENOTDIR;
    case EISDIR: return TS_EISDIR;
    case ENOTEMPTY: return TS_ENOTEMPTY;
    case EPERM: return TS_EPERM;
    case EACCES: case EROFS: return TS_EACCES;
    case ENOSPC: case EDQUOT: return TS_ENOSPC;
    case ENAMETOOLONG: return TS_ENAMETOOLONG;
    case EBUSY: case EAGAIN: return TS_EBUSY;
    case ENOMEM: return TS_ENOMEM;
    case ETIMEDOUT: return TS_ETIMEDOUT;
    case ECONNREFUSED: case ECONNRESET: case EHOSTUNREACH: case ENETUNREACH:
        return TS_EUNAVAIL;
    case EPROTO: return TS_EPROTO;
    case ELOOP: return TS_ELOOP;
    case EFBIG: return TS_EFBIG;
    case ERANGE: return TS_ERANGE;
    case EXDEV: return TS_EXDEV;
    case ENODATA: return TS_ENODATA;
    case ENOTSUP: return TS_ENOTSUP;   /* == EOPNOTSUPP on Linux */
    case EBADMSG: return TS_ECORRUPT;
    default: return TS_EIO;
    }
}

int ts_err_http_status(int code)
{
    const struct err_row *r = find_row(code);
    return r != NULL ? r->http : 500;
}
