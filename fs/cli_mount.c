/*
 * The mount of a local cluster (`tessera local up|down|status`): DIR/mnt,
 * served by tessera-mount with its log in DIR/mount.log and its PID in
 * DIR/mount.pid.  Also the `mount -t fuse.tessera` entry: mount.fuse3 runs
 * `tessera CONF MOUNTPOINT -o OPTS`, which cli_main hands to
 * cli_mount_helper.
 *
 * Whether DIR/mnt is mounted comes from /proc/self/mountinfo (type
 * fuse.tessera), never from the PID file alone: a mount whose daemon died
 * stays in the table ("stale") until it is unmounted, and must be.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "fs/cli.h"

#define UNMOUNT_WAIT_MS 15000

/* Unescapes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int cli_mount_state(const char *mountpoint)
{
    char *text = NULL, *save = NULL;
    size_t len;
    ts_error e;
    int found = 0;

    if (ts_read_file("/proc/self/mountinfo", &text, &len, &e) != 0)
        return 0;
    for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        /* id parent dev root MOUNTPOINT opts [optional...] - TYPE source super */
        char *f[5], *sep = strstr(line, " - "), *p = line, *type;
        int k;
        for (k = 0; k < 5; k++) {
            f[k] = strsep(&p, " ");
            if (!f[k])
                break;
        }
        if (k < 5 || !sep)
            continue;
        type = sep + 3;
        unescape(f[4]);
        if (strcmp(f[4], mountpoint) == 0 && strncmp(type, "fuse.tessera ", 13) == 0)
            found = 1;
    }
    free(text);
    if (!found)
        return 0;
    /* A mount whose daemon is gone answers ENOTCONN. */
    struct stat st;
    return stat(mountpoint, &st) == 0 ? 1 : 2;
}

/* Runs argv[0] (a path) with argv, waits; its exit status, -1 when it
 * could not run. */
static int run(char *const argv[], int quiet)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) {
                dup2(null, 1);
                dup2(null, 2);
            }
        }
        /* A daemon started from here must not keep a test harness's pipes
         * (bats waits for its fd 3) or our other descriptors. */
        closefrom(3);
        execvp(argv[0], argv);
        dprintf(2, "tessera: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int unmount_now(const char *mountpoint, int lazy)
{
    char *argv[] = {"fusermount3", lazy ? "-uz" : "-u", (char *)mountpoint, NULL};

    return run(argv, 0);
}

static pid_t mount_pid(const char *dir);

int cli_local_mount(const char *dir, const char *conf)
{
    char *mnt = ts_sprintf("%s/mnt", dir), *log = ts_sprintf("%s/mount.log", dir);
    char *pidf = ts_sprintf("%s/mount.pid", dir), *bin = NULL, *opts = NULL;
    ts_error e;
    int rc = -1, state;

    state = cli_mount_state(mnt);
    if (state == 1) {
        printf("  mount    %s (already mounted)\n", mnt);
        rc = 0;
        goto free_paths;
    }
    if (state == 2) {
        /* Its daemon died: clear the dead mount before mounting again. */
        fprintf(stderr, "tessera: local up: %s was a dead mount; unmounting it\n", mnt);
        if (unmount_now(mnt, 1) != 0) {
            cli_error("local up: cannot unmount the dead mount at %s", mnt);
            goto free_paths;
        }
    }
    if (ts_mkdir_p(mnt, &e) != 0) {
        cli_error("local up: %s", e.msg);
        goto free_paths;
    }
    if (!(bin = cli_find_binary("tessera-mount"))) {
        cli_error("local up: cannot find tessera-mount next to this program or in PATH "
                  "(or use --no-mount)");
        goto free_paths;
    }
    opts = ts_sprintf("log=%s,pid_file=%s", log, pidf);
    {
        char *argv[] = {bin, "-o", opts, (char *)conf, mnt, NULL};
        int st = run(argv, 0);
        if (st != 0) {
            cli_error("local up: tessera-mount failed (exit %d); see %s", st, log);
            goto free_paths;
        }
    }
    /* The daemon writes its PID file just after its parent (which run()
     * waited for) has exited: wait for it, so that `local down` and
     * `local status` find the daemon as soon as this returns. */
    int64_t deadline = ts_mono_ms() + 10000;
    while (mount_pid(dir) == 0 && ts_mono_ms() < deadline)
        ts_sleep_ms(10);
    if (mount_pid(dir) == 0)
        fprintf(stderr, "tessera: local up: %s is mounted but its daemon wrote no PID file to "
                "%s yet\n", mnt, pidf);
    printf("  mount    %s\n", mnt);
    rc = 0;
free_paths:
    free(opts);
    free(bin);
    free(pidf);
    free(log);
    free(mnt);
    return rc;
}

/* The PID in DIR/mount.pid when it is a live tessera-mount; else 0. */
static pid_t mount_pid(const char *dir)
{
    char *path = ts_sprintf("%s/mount.pid", dir), *text = NULL, *cmd = NULL;
    size_t len;
    ts_error e;
    pid_t pid = 0;

    if (ts_read_file(path, &text, &len, &e) == 0) {
        long v = strtol(text, NULL, 10);
        char *cpath = ts_sprintf("/proc/%ld/cmdline", v);
        size_t clen;
        if (v > 0 && ts_read_file(cpath, &cmd, &clen, &e) == 0 && clen > 0 &&
            memmem(cmd, clen, "tessera-mount", 13) && memmem(cmd, clen, dir, strlen(dir)))
            pid = (pid_t)v;
        free(cpath);
    }
    free(cmd);
    free(text);
    free(path);
    return pid;
}

int cli_local_unmount(const char *dir)
{
    char *mnt = ts_sprintf("%s/mnt", dir);
    pid_t pid = mount_pid(dir);
    int rc = 0, state = cli_mount_state(mnt);

    if (state != 0) {
        if (unmount_now(mnt, 0) != 0) {
            /* Busy (a shell inside it, an open file): detach it anyway so
             * the daemons can stop; the kernel ends it when released. */
            fprintf(stderr, "tessera: local down: %s is busy; detaching it (lazy unmount)\n",
                    mnt);
            if (unmount_now(mnt, 1) != 0) {
                cli_error("local down: cannot unmount %s", mnt);
                rc = -1;
            }
        }
        if (rc == 0)
            printf("unmounted %s\n", mnt);
    }
    /* The daemon exits once the kernel ends the session; it commits what
     * is left first, so wait for it before the cluster goes away. */
    if (pid > 0) {
        int64_t deadline = ts_mono_ms() + UNMOUNT_WAIT_MS;
        while (kill(pid, 0) == 0 && mount_pid(dir) == pid && ts_mono_ms() < deadline)
            ts_sleep_ms(50);
        if (kill(pid, 0) == 0 && mount_pid(dir) == pid) {
            cli_error("local down: tessera-mount (pid %d) did not exit; stopping it", (int)pid);
            kill(pid, SIGTERM);
        }
    }
    free(mnt);
    return rc;
}

void cli_local_mount_status(const char *dir)
{
    char *mnt = ts_sprintf("%s/mnt", dir), pid[16];
    pid_t p = mount_pid(dir);
    int state = cli_mount_state(mnt);

    snprintf(pid, sizeof(pid), p ? "%d" : "-", (int)p);
    printf("%-8s %-6s %-8s %s %s\n", "mount", "fuse", pid, mnt,
           state == 1 ? "mounted" : state == 2 ? "dead (run `tessera local up` again)" : "not mounted");
    free(mnt);
}

int cli_mount_helper(int argc, char **argv)
{
    char *bin = cli_find_binary("tessera-mount");

    if (!bin) {
        cli_error("cannot find tessera-mount next to this program or in PATH");
        return 1;
    }
    argv[0] = bin;
    (void)argc;
    execv(bin, argv);
    cli_error("exec %s: %s", bin, strerror(errno));
    free(bin);
    return 1;
}
