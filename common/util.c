/*
 * Small helpers shared by every binary (common/util.h): aborting allocation,
 * clocks, full reads and writes, directories and atomic file replacement,
 * host:port and size parsing, randomness, hex, and the growable ts_buf.
 */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* ---- allocation ---------------------------------------------------------- */

void *ts_malloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL)
        ts_die("out of memory allocating %zu bytes", n);
    return p;
}

void *ts_calloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL)
        ts_die("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *ts_realloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL)
        ts_die("out of memory reallocating to %zu bytes", n);
    return q;
}

char *ts_strdup(const char *s)
{
    return ts_strndup(s, strlen(s));
}

char *ts_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = ts_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *ts_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        ts_die("out of memory formatting a string");
    return s;
}

/* ---- clocks -------------------------------------------------------------- */

int64_t ts_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ts_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(cv, &ca) != 0)
        ts_die("cannot initialize a condition variable on the monotonic clock");
    pthread_condattr_destroy(&ca);
}

struct timespec ts_deadline_mono(int64_t ms)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        ts_die("clock_gettime(CLOCK_MONOTONIC) failed");
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000ll;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000ll);
    ts.tv_nsec = (long)(ns % 1000000000ll);
    return ts;
}

int64_t ts_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ts_sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

    if (ms <= 0)
        return;
    /* Sleep the whole interval even when a signal interrupts it. */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- full reads and writes ----------------------------------------------- */

int ts_write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return TS_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

#define TS_PACE_BYTES ((size_t)8 << 20)

int ts_write_full_paced(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    off_t start = lseek(fd, 0, SEEK_CUR);
    for (size_t done = 0; done < n;) {
        size_t piece = TS_MIN(TS_PACE_BYTES, n - done);
        if (ts_write_full(fd, p + done, piece) != 0)
            return TS_EIO;
        if (start >= 0) {
            /* Best effort (some filesystems refuse it): the fsync that
             * follows is what makes the data durable. */
            off_t at = start + (off_t)done;
            (void)sync_file_range(fd, at, (off_t)piece, SYNC_FILE_RANGE_WRITE);
            if (done >= TS_PACE_BYTES)
                (void)sync_file_range(fd, at - (off_t)TS_PACE_BYTES, (off_t)TS_PACE_BYTES,
                                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                      SYNC_FILE_RANGE_WAIT_AFTER);
        }
        done += piece;
    }
    return 0;
}

int ts_pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return TS_EIO;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

ssize_t ts_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, p + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return TS_EIO;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t ts_pread_full(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return TS_EIO;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* ---- directories and files ----------------------------------------------- */

int ts_mkdir_p(const char *path, ts_error *err)
{
    char *p;
    int rc = 0;

    if (path == NULL || path[0] == '\0')
        return ts_fail(err, TS_EINVAL, "mkdir: empty path");
    p = ts_strdup(path);
    /* Create each prefix ending before a '/', then the whole path. */
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            rc = ts_fail(err, TS_EIO, "mkdir %s: %s", p, strerror(errno));
            goto free_path;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        rc = ts_fail(err, TS_EIO, "stat %s: %s", path, strerror(errno));
        goto free_path;
    }
    if (!S_ISDIR(st.st_mode))
        rc = ts_fail(err, TS_EIO, "mkdir %s: exists and is not a directory", path);
free_path:
    free(p);
    return rc;
}

/* Accepts either a directory (fsynced itself) or a file path (its containing
 * directory is fsynced), so callers can pass whichever they have at hand after
 * a create, rename or unlink. */
int ts_fsync_dir(const char *dir, ts_error *err)
{
    char *parent = NULL;
    int rc = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 && (errno == ENOTDIR || errno == ENOENT)) {
        const char *slash = strrchr(dir, '/');
        if (slash == NULL)
            parent = ts_strdup(".");
        else if (slash == dir)
            parent = ts_strdup("/");
        else
            parent = ts_strndup(dir, (size_t)(slash - dir));
        fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = ts_fail(err, TS_EIO, "open directory %s: %s", parent ? parent : dir,
                     strerror(errno));
        goto free_parent;
    }
    if (fsync(fd) != 0)
        rc = ts_fail(err, TS_EIO, "fsync directory %s: %s", parent ? parent : dir,
                     strerror(errno));
    close(fd);
free_parent:
    free(parent);
    return rc;
}

int ts_read_file(const char *path, char **out, size_t *len, ts_error *err)
{
    ts_buf b = {0};
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int code = errno == ENOENT ? TS_ENOENT : TS_EIO;
        return ts_fail(err, code, "open %s: %s", path, strerror(errno));
    }
    for (;;) {
        ts_buf_reserve(&b, 65536);
        ssize_t r = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = ts_fail(err, TS_EIO, "read %s: %s", path, strerror(errno));
            goto close_fd;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
    }
    b.data[b.len] = '\0';
    *out = b.data;
    if (len != NULL)
        *len = b.len;
    b.data = NULL;
close_fd:
    close(fd);
    ts_buf_free(&b);
    return rc;
}

int ts_write_file_atomic(const char *path, const void *data, size_t len, ts_error *err)
{
    uint8_t rnd[6];
    char suffix[13];
    char *tmp;
    int rc = 0;

    ts_random_bytes(rnd, sizeof(rnd));
    ts_hex_encode(rnd, sizeof(rnd), suffix);
    tmp = ts_sprintf("%s.tmp.%s", path, suffix);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ts_fail(err, TS_EIO, "create %s: %s", tmp, strerror(errno));
        goto free_tmp;
    }
    if (ts_write_full_paced(fd, data, len) != 0) {
        rc = ts_fail(err, TS_EIO, "write %s: %s", tmp, strerror(errno));
        goto close_tmp;
    }
    if (fsync(fd) != 0) {
        rc = ts_fail(err, TS_EIO, "fsync %s: %s", tmp, strerror(errno));
        goto close_tmp;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ts_fail(err, TS_EIO, "close %s: %s", tmp, strerror(errno));
        goto unlink_tmp;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = ts_fail(err, TS_EIO, "rename %s to %s: %s", tmp, path, strerror(errno));
        goto unlink_tmp;
    }
    /* The rename is durable only once the directory entry is. */
    rc = ts_fsync_dir(path, err);
    goto free_tmp;

close_tmp:
    close(fd);
unlink_tmp:
    unlink(tmp);
free_tmp:
    free(tmp);
    return rc;
}

/* ---- parsing ------------------------------------------------------------- */

int ts_parse_hostport(const char *s, char **host, int *port, ts_error *err)
{
    const char *h, *colon;
    size_t hlen;

    if (s == NULL)
        return ts_fail(err, TS_EINVAL, "address (null): expected host:port");
    if (s[0] == '[') {
        /* [v6addr]:port */
        const char *close_br = strchr(s, ']');
        if (close_br == NULL || close_br[1] != ':')
            return ts_fail(err, TS_EINVAL, "address '%s': expected [host]:port", s);
        h = s + 1;
        hlen = (size_t)(close_br - h);
        colon = close_br + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return ts_fail(err, TS_EINVAL, "address '%s': expected host:port", s);
        h = s;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0)
        return ts_fail(err, TS_EINVAL, "address '%s': empty host", s);
    const char *p = colon + 1;
    if (*p == '\0')
        return ts_fail(err, TS_EINVAL, "address '%s': missing port", s);
    long v = 0;
    for (; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return ts_fail(err, TS_EINVAL, "address '%s': port is not a number", s);
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return ts_fail(err, TS_EINVAL, "address '%s': port out of range", s);
    }
    *host = ts_strndup(h, hlen);
    *port = (int)v;
    return 0;
}

int ts_parse_size(const char *s, uint64_t *out, ts_error *err)
{
    static const char units[] = "KMGT";
    const char *p = s;
    uint64_t v = 0;
    unsigned shift = 0;

    if (s == NULL)
        return ts_fail(err, TS_EINVAL, "size (null): expected a number");
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return ts_fail(err, TS_EINVAL, "size '%s': expected a number", s);
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ts_fail(err, TS_EINVAL, "size '%s': too large", s);
        v = v * 10 + d;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '\0') {
        const char *u = strchr(units, toupper((unsigned char)*p));
        if (u != NULL) {
            shift = 10 * (unsigned)(u - units + 1);
            p++;
            /* "K", "KB", "KiB" all mean 1024: sizes here are binary. */
            if (*p == 'i' || *p == 'I')
                p++;
            if (*p == 'B' || *p == 'b')
                p++;
        } else if (*p == 'B' || *p == 'b') {
            p++;
        }
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '\0')
            return ts_fail(err, TS_EINVAL, "size '%s': unknown unit (use K, M, G or T)", s);
    }
    if (shift > 0 && v > (UINT64_MAX >> shift))
        return ts_fail(err, TS_EINVAL, "size '%s': too large", s);
    *out = v << shift;
    return 0;
}

char *ts_format_size(uint64_t bytes, char *buf, size_t buflen)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

    if (bytes < 1024) {
        snprintf(buf, buflen, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < TS_ARRAY_LEN(units)) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, buflen, "%.1f %s", v, units[u]);
    return buf;
}

/* ---- randomness and hex -------------------------------------------------- */

void ts_random_bytes(void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            ts_die("getrandom: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
}

void ts_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ts_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    /* Validate everything before writing, so out is untouched on error. */
    for (size_t i = 0; i < 2 * n; i++)
        if (hex[i] == '\0' || hex_value(hex[i]) < 0)
            return TS_EINVAL;
    if (hex[2 * n] != '\0')
        return TS_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return 0;
}

/* ---- base64 ------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ts_base64_encode(const void *in, size_t n)
{
    const uint8_t *p = in;
    char *out = ts_malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* The value of each byte as a base64 digit, -1 for the others. */
static const int8_t b64_values[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

int ts_base64_decode(const char *in, size_t len, uint8_t **out, size_t *n)
{
    const uint8_t *p = (const uint8_t *)in;
    if (len % 4 != 0)
        return TS_EINVAL;
    size_t pad = 0;
    if (len > 0 && p[len - 1] == '=')
        pad = len > 1 && p[len - 2] == '=' ? 2 : 1;
    size_t full = len == 0 ? 0 : len - 4;      /* groups before the last one */
    uint8_t *buf = ts_malloc(len / 4 * 3 + 1), *o = buf;
    for (size_t i = 0; i < full; i += 4) {
        int8_t a = b64_values[p[i]], b = b64_values[p[i + 1]], c = b64_values[p[i + 2]],
               d = b64_values[p[i + 3]];
        if ((a | b | c | d) < 0)            /* some byte is no digit */
            goto bad;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        *o++ = (uint8_t)(v >> 16);
        *o++ = (uint8_t)(v >> 8);
        *o++ = (uint8_t)v;
    }
    if (len > 0) {
        /* The last group: '=' only as its padding. */
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = k >= 4 - (int)pad ? 0 : b64_values[p[full + k]];
            if (v[k] < 0)
                goto bad;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        *o++ = (uint8_t)(w >> 16);
        if (pad < 2)
            *o++ = (uint8_t)(w >> 8);
        if (pad < 1)
            *o++ = (uint8_t)w;
    }
    *out = buf;
    *n = (size_t)(o - buf);
    return 0;
bad:
    free(buf);
    return TS_EINVAL;
}

/* ---- ts_buf -------------------------------------------------------------- */

/* The buffer always keeps one spare byte so data[len] can be NUL, which lets
 * text built with ts_buf_printf be used as a C string directly. */
void ts_buf_reserve(ts_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        ts_die("ts_buf: size overflow");
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap != 0 ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = ts_realloc(b->data, cap);
    b->cap = cap;
}

void ts_buf_append(ts_buf *b, const void *data, size_t n)
{
    ts_buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ts_buf_printf(ts_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        ts_die("ts_buf_printf: bad format");
    if ((size_t)n < sizeof(small)) {
        ts_buf_append(b, small, (size_t)n);
        return;
    }
    ts_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ts_buf_free(ts_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ts_malloc_tune_exec(char **argv)
{
    static const char want[] = "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1";
    const char *off = getenv("TESSERA_MALLOC_TUNE");
    const char *cur = getenv("GLIBC_TUNABLES");
    if ((off && strcmp(off, "0") == 0) || (cur && strstr(cur, want)))
        return;
    char *v = cur && *cur ? ts_sprintf("%s:%s", cur, want) : ts_strdup(want);
    /* By its real path, not /proc/self/exe: the kernel names the process
     * after the file executed, and ps, pgrep and top should show
     * "tessera-meta", not "exe".  A binary replaced since it started reads
     * "... (deleted)": only /proc/self/exe still reaches it. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *path = "/proc/self/exe";
    if (n > 0 && (size_t)n < sizeof(self) - 1) {
        self[n] = '\0';
        if (strstr(self, " (deleted)") == NULL && access(self, X_OK) == 0)
            path = self;
    }
    if (setenv("GLIBC_TUNABLES", v, 1) == 0)
        execv(path, argv);
    /* Not re-executed: run as is, and say so. */
    fprintf(stderr, "%s: note: running with the default allocator (re-exec with %s: %s)\n",
            argv[0], want, strerror(errno));
    free(v);
}
