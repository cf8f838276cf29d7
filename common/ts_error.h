/*
 * Tessera's one error convention.  Internal functions return 0 on success or
 * a negative TS_E* code and, when given a ts_error, fill it with a message
 * carrying context ("chunk 3fa2…: replica 127.0.0.1:7402: checksum mismatch
 * at block 17").  errno values appear only at the FUSE boundary
 * (ts_err_to_errno), HTTP status codes only at the HTTP boundary
 * (ts_err_http_status / ts_err_from_http_status), and the wire carries the
 * symbolic name (ts_err_name / ts_err_from_name).
 */
#ifndef TS_ERROR_H
#define TS_ERROR_H

#include <stddef.h>

enum ts_err {
    TS_OK = 0,
    TS_EINVAL = -1,       /* malformed request or argument */
    TS_ENOENT = -2,       /* no such file, directory, chunk or server */
    TS_EEXIST = -3,
    TS_ENOTDIR = -4,
    TS_EISDIR = -5,
    TS_ENOTEMPTY = -6,
    TS_EPERM = -7,
    TS_EACCES = -8,
    TS_ENOSPC = -9,       /* disk full, or not enough servers to place replicas */
    TS_EIO = -10,         /* local I/O failure */
    TS_ECORRUPT = -11,    /* checksum mismatch, corrupted record */
    TS_EUNAVAIL = -12,    /* peer unreachable or answered 5xx */
    TS_ENAMETOOLONG = -13,
    TS_EBUSY = -14,
    TS_ENOMEM = -15,
    TS_ETIMEDOUT = -16,
    TS_EPROTO = -17,      /* peer answered something we cannot parse */
    TS_ENOTLEADER = -18,
    TS_ELOOP = -19,
    TS_EFBIG = -20,
    TS_ERANGE = -21,
    TS_EXDEV = -22,
    TS_ENODATA = -23,     /* no such xattr */
    TS_ENOTSUP = -24,
    TS_ERR_MIN_ = -25
};

/* An error code plus a human message with context.  Embedded by value; never
 * allocated.  The message is always NUL-terminated. */
typedef struct ts_error {
    int code;
    char msg[512];
} ts_error;

/* Sets e (if non-NULL) to code and a formatted message; returns code, so
 * callers write `return ts_fail(e, TS_EIO, "write %s: %s", path, strerror(errno));` */
int ts_fail(ts_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context to an existing message: "ctx: old message".  Returns e->code. */
int ts_error_prefix(ts_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void ts_error_clear(ts_error *e);

/* "ENOENT", "ECORRUPT", … ; "EUNKNOWN" for codes outside the enum. */
const char *ts_err_name(int code);
/* Inverse of ts_err_name; TS_EPROTO for an unknown name. */
int ts_err_from_name(const char *name);
/* Positive errno for the FUSE boundary (ECORRUPT -> EIO, EUNAVAIL -> EIO, …). */
int ts_err_to_errno(int code);
/* Negative TS code for a positive errno (used when a syscall fails). */
int ts_err_from_errno(int err);
/* HTTP status for the HTTP boundary: ENOENT 404, EEXIST 409, EINVAL 400, … */
int ts_err_http_status(int code);

#endif
