/*
 * Leveled logging for daemons and tools.  Lines go to stderr by default or to
 * a file chosen with ts_log_open(); each line carries a UTC timestamp, level
 * and the program name.  Thread-safe.  Daemons log to files, the CLI to stderr.
 */
#ifndef TS_LOG_H
#define TS_LOG_H

enum ts_log_level { TS_LOG_DEBUG = 0, TS_LOG_INFO, TS_LOG_WARN, TS_LOG_ERROR };

/* Sets the program name shown on each line and the minimum level. */
void ts_log_init(const char *program, enum ts_log_level level);
/* Appends to path (created 0644).  Returns 0 or TS_EIO. NULL means stderr. */
int ts_log_open(const char *path);
/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int ts_log_level_parse(const char *name);
void ts_log(enum ts_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Logs at ERROR and aborts; for out-of-memory and broken invariants in daemons. */
void ts_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define TS_DEBUG(...) ts_log(TS_LOG_DEBUG, __VA_ARGS__)
#define TS_INFO(...) ts_log(TS_LOG_INFO, __VA_ARGS__)
#define TS_WARN(...) ts_log(TS_LOG_WARN, __VA_ARGS__)
#define TS_ERROR(...) ts_log(TS_LOG_ERROR, __VA_ARGS__)

#endif
