/*
 * Leveled logging (common/log.h).  One line per call:
 *   2026-11-22T01:02:03.456Z tessera-meta INFO message
 * The line is formatted on the caller's stack and written under a mutex with
 * a single fwrite, so lines from concurrent threads never interleave.
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/ts_error.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_program[64] = "tessera";
static enum ts_log_level log_min = TS_LOG_INFO;
static FILE *log_file;          /* NULL means stderr */

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void ts_log_init(const char *program, enum ts_log_level level)
{
    pthread_mutex_lock(&log_lock);
    if (program != NULL)
        snprintf(log_program, sizeof(log_program), "%s", program);
    log_min = level;
    pthread_mutex_unlock(&log_lock);
}

int ts_log_open(const char *path)
{
    FILE *f = NULL;

    if (path != NULL) {
        /* open(2) rather than fopen so the mode is 0644 and the fd does not
         * leak into MapReduce task processes. */
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return TS_EIO;
        f = fdopen(fd, "a");
        if (f == NULL) {
            close(fd);
            return TS_EIO;
        }
    }
    pthread_mutex_lock(&log_lock);
    FILE *old = log_file;
    log_file = f;
    pthread_mutex_unlock(&log_lock);
    if (old != NULL)
        fclose(old);
    return 0;
}

int ts_log_level_parse(const char *name)
{
    static const char *const lower[] = { "debug", "info", "warn", "error" };
    if (name == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, lower[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return TS_LOG_WARN;
    return -1;
}

static void log_line(enum ts_log_level level, const char *fmt, va_list ap)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int lvl = (level >= TS_LOG_DEBUG && level <= TS_LOG_ERROR) ? (int)level : TS_LOG_ERROR;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    /* The program name is read without the lock: it is set once at start. */
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s ",
                          ts.tv_nsec / 1000000, log_program, level_names[lvl]);
    if (n < sizeof(line)) {
        int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (m > 0)
            n += (size_t)m;
    }
    /* Truncated lines still end with a newline. */
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';

    pthread_mutex_lock(&log_lock);
    FILE *out = log_file != NULL ? log_file : stderr;
    fwrite(line, 1, n, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void ts_log(enum ts_log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    log_line(level, fmt, ap);
    va_end(ap);
}

void ts_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(TS_LOG_ERROR, fmt, ap);
    va_end(ap);
    abort();
}
