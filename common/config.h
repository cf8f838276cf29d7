/*
 * Configuration: a file of `key = value` lines (`#` comments, blank lines
 * ignored) plus command-line overrides `--set key=value`, later ones winning.
 * Keys a program does not know are rejected by ts_config_check so typos are
 * caught at start.  Values are looked up by typed getters with defaults.
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdint.h>
#include "common/ts_error.h"

typedef struct ts_config ts_config;

ts_config *ts_config_new(void);
void ts_config_free(ts_config *c);
/* Loads a file; TS_ENOENT / TS_EINVAL with "path:line: message". */
int ts_config_load(ts_config *c, const char *path, ts_error *err);
/* Parses one "key=value" (or "key = value") override. */
int ts_config_set_kv(ts_config *c, const char *kv, ts_error *err);
void ts_config_set(ts_config *c, const char *key, const char *value);
/* Fails with TS_EINVAL naming the first key not in the NULL-terminated list. */
int ts_config_check(const ts_config *c, const char *const *known, ts_error *err);

/* Getters: the value (owned by c) or def when absent. */
const char *ts_config_str(const ts_config *c, const char *key, const char *def);
/* Typed getters fail with TS_EINVAL naming the key when the value is malformed. */
int ts_config_int(const ts_config *c, const char *key, int64_t def, int64_t *out, ts_error *err);
int ts_config_size(const ts_config *c, const char *key, uint64_t def, uint64_t *out, ts_error *err);
int ts_config_double(const ts_config *c, const char *key, double def, double *out, ts_error *err);
int ts_config_bool(const ts_config *c, const char *key, int def, int *out, ts_error *err);

#endif
