/*
 * Configuration (common/config.h): `key = value` lines with full-line `#`
 * comments, then `--set key=value` overrides, a later setting of a key
 * replacing the earlier one.  Keys and values are trimmed of surrounding
 * blanks; a `#` inside a value is kept (secrets and paths may contain it).
 * A config holds a few dozen keys, so a flat array searched linearly is the
 * simplest thing that works.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

typedef struct kv {
    char *key;
    char *value;
} kv;

struct ts_config {
    kv *items;
    size_t n, cap;
};

ts_config *ts_config_new(void)
{
    return ts_calloc(1, sizeof(ts_config));
}

void ts_config_free(ts_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].key);
        free(c->items[i].value);
    }
    free(c->items);
    free(c);
}

static kv *find(const ts_config *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].key, key) == 0)
            return &c->items[i];
    return NULL;
}

void ts_config_set(ts_config *c, const char *key, const char *value)
{
    kv *e = find(c, key);
    if (e != NULL) {
        free(e->value);
        e->value = ts_strdup(value);
        return;
    }
    if (c->n == c->cap) {
        c->cap = c->cap != 0 ? c->cap * 2 : 16;
        c->items = ts_realloc(c->items, c->cap * sizeof(c->items[0]));
    }
    c->items[c->n].key = ts_strdup(key);
    c->items[c->n].value = ts_strdup(value);
    c->n++;
}

/* Trims [*s, *e) of blanks in place (pointers only). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* Parses one line [s, e) into a setting.  Blank and comment lines are fine.
 * Returns 0 or TS_EINVAL with a message without location (callers add it). */
static int parse_line(ts_config *c, const char *s, const char *e, ts_error *err)
{
    trim(&s, &e);
    if (s == e || *s == '#')
        return 0;
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (eq == NULL)
        return ts_fail(err, TS_EINVAL, "expected key = value, got '%.*s'", (int)(e - s), s);
    const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ks == ke)
        return ts_fail(err, TS_EINVAL, "empty key in '%.*s'", (int)(e - s), s);
    for (const char *p = ks; p < ke; p++)
        if (isspace((unsigned char)*p))
            return ts_fail(err, TS_EINVAL, "key '%.*s' contains a blank", (int)(ke - ks), ks);
    char *key = ts_strndup(ks, (size_t)(ke - ks));
    char *value = ts_strndup(vs, (size_t)(ve - vs));
    if (strlen(key) != (size_t)(ke - ks) || strlen(value) != (size_t)(ve - vs)) {
        free(key);
        free(value);
        return ts_fail(err, TS_EINVAL, "NUL byte in setting");
    }
    ts_config_set(c, key, value);
    free(key);
    free(value);
    return 0;
}

int ts_config_load(ts_config *c, const char *path, ts_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ts_read_file(path, &text, &len, err);

    if (rc != 0)
        return rc;   /* TS_ENOENT / TS_EIO with "open PATH: …" */
    const char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        rc = parse_line(c, p, le, err);
        if (rc != 0) {
            ts_error_prefix(err, "%s:%d", path, line);
            goto free_text;
        }
        p = nl != NULL ? nl + 1 : end;
    }
free_text:
    free(text);
    return rc;
}

int ts_config_set_kv(ts_config *c, const char *kv_text, ts_error *err)
{
    const char *e = kv_text + strlen(kv_text);
    if (memchr(kv_text, '=', (size_t)(e - kv_text)) == NULL)
        return ts_fail(err, TS_EINVAL, "override '%s': expected key=value", kv_text);
    int rc = parse_line(c, kv_text, e, err);
    if (rc != 0)
        ts_error_prefix(err, "override '%s'", kv_text);
    return rc;
}

int ts_config_check(const ts_config *c, const char *const *known, ts_error *err)
{
    for (size_t i = 0; i < c->n; i++) {
        int ok = 0;
        for (size_t j = 0; known != NULL && known[j] != NULL; j++)
            if (strcmp(known[j], c->items[i].key) == 0) {
                ok = 1;
                break;
            }
        if (!ok)
            return ts_fail(err, TS_EINVAL, "unknown configuration key '%s'", c->items[i].key);
    }
    return 0;
}

const char *ts_config_str(const ts_config *c, const char *key, const char *def)
{
    const kv *e = find(c, key);
    return e != NULL ? e->value : def;
}

int ts_config_int(const ts_config *c, const char *key, int64_t def, int64_t *out, ts_error *err)
{
    const char *v = ts_config_str(c, key, NULL);
    char *end;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0)
        return ts_fail(err, TS_EINVAL, "config key '%s': '%s' is not an integer", key, v);
    *out = x;
    return 0;
}

int ts_config_size(const ts_config *c, const char *key, uint64_t def, uint64_t *out, ts_error *err)
{
    const char *v = ts_config_str(c, key, NULL);
    uint64_t x;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    int rc = ts_parse_size(v, &x, err);
    if (rc != 0)
        return ts_error_prefix(err, "config key '%s'", key);
    *out = x;
    return 0;
}

int ts_config_double(const ts_config *c, const char *key, double def, double *out, ts_error *err)
{
    const char *v = ts_config_str(c, key, NULL);
    char *end;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(x))
        return ts_fail(err, TS_EINVAL, "config key '%s': '%s' is not a number", key, v);
    *out = x;
    return 0;
}

int ts_config_bool(const ts_config *c, const char *key, int def, int *out, ts_error *err)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    const char *v = ts_config_str(c, key, NULL);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    for (size_t i = 0; i < TS_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return ts_fail(err, TS_EINVAL, "config key '%s': '%s' is not a boolean (true/false)", key, v);
}
