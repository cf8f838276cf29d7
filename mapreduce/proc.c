/*
 * Streaming processes (see proc.h).  The child is started with fork + exec
 * of /bin/sh; between the two it only calls async-signal-safe functions,
 * since the parent (a chunkserver) is multithreaded.
 */
#include "mapreduce/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

#define PUMP_READ (64u * 1024)

extern char **environ;

int mr_proc_spawn(const char *cmd, const char *cwd, char *const *env, int stderr_fd,
                  mr_proc *p, ts_error *err)
{
    int in[2], out[2];
    size_t nenv = 0, nextra = 0;
    char **envp;

    p->pid = -1;
    p->in_fd = p->out_fd = -1;
    while (environ[nenv])
        nenv++;
    while (env && env[nextra])
        nextra++;
    /* Built before fork: the child must not allocate. */
    envp = ts_calloc(nenv + nextra + 1, sizeof(*envp));
    memcpy(envp, environ, nenv * sizeof(*envp));
    if (nextra)
        memcpy(envp + nenv, env, nextra * sizeof(*envp));
    if (pipe2(in, O_CLOEXEC) != 0) {
        free(envp);
        return ts_fail(err, TS_EIO, "pipe: %s", strerror(errno));
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        ts_fail(err, TS_EIO, "pipe: %s", strerror(errno));
        goto close_in;
    }
    pid_t pid = fork();
    if (pid < 0) {
        ts_fail(err, TS_EIO, "fork: %s", strerror(errno));
        goto close_out;
    }
    if (pid == 0) {
        /* Child: own process group, pipes as stdin/stdout, default signals. */
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 ||
            (stderr_fd >= 0 && dup2(stderr_fd, 2) < 0) || (cwd && chdir(cwd) != 0))
            _exit(126);
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
        execve("/bin/sh", argv, envp);
        _exit(127);
    }
    /* Also from the parent, so a kill right after spawn reaches the group. */
    setpgid(pid, pid);
    free(envp);
    close(in[0]);
    close(out[1]);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    if (fcntl(p->in_fd, F_SETFL, O_NONBLOCK) != 0) {
        mr_proc_kill(p);
        return ts_fail(err, TS_EIO, "fcntl: %s", strerror(errno));
    }
    return 0;

close_out:
    close(out[0]);
    close(out[1]);
close_in:
    close(in[0]);
    close(in[1]);
    free(envp);
    return TS_EIO;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int mr_proc_pump(mr_proc *p, mr_produce_fn produce, void *pctx, mr_consume_fn consume,
                 void *cctx, const volatile int *cancel, ts_error *err)
{
    const char *data = NULL;
    size_t len = 0, off = 0;
    int input_done = produce == NULL, rc = 0;
    char *buf = ts_malloc(PUMP_READ);

    if (input_done)
        close_fd(&p->in_fd);
    while (p->out_fd >= 0) {
        struct pollfd fds[2];
        nfds_t n = 0;

        if (cancel && *cancel) {
            mr_proc_kill(p);
            rc = ts_fail(err, TS_EBUSY, "killed");
            goto free_buf;
        }
        /* Refill the input before polling for it. */
        if (p->in_fd >= 0 && off == len && !input_done) {
            if ((rc = produce(pctx, &data, &len, err)) != 0)
                goto free_buf;
            off = 0;
            if (len == 0) {
                input_done = 1;
                close_fd(&p->in_fd);
            }
        }
        fds[n++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
        if (p->in_fd >= 0)
            fds[n++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
        int k = poll(fds, n, 200);
        if (k < 0 && errno != EINTR) {
            rc = ts_fail(err, TS_EIO, "poll: %s", strerror(errno));
            goto free_buf;
        }
        if (k <= 0)
            continue;
        if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(p->in_fd, data + off, len - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                /* EPIPE: the command stopped reading; it gets no more. */
                input_done = 1;
                close_fd(&p->in_fd);
            }
        }
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t r = read(p->out_fd, buf, PUMP_READ);
            if (r > 0) {
                if ((rc = consume(cctx, buf, (size_t)r, err)) != 0)
                    goto free_buf;
            } else if (r == 0) {
                close_fd(&p->out_fd);
            } else if (errno != EINTR && errno != EAGAIN) {
                rc = ts_fail(err, TS_EIO, "read command output: %s", strerror(errno));
                goto free_buf;
            }
        }
    }
    /* Output closed while input remains: the command will not read it. */
    close_fd(&p->in_fd);
free_buf:
    free(buf);
    return rc;
}

int mr_proc_wait(mr_proc *p, ts_error *err)
{
    int status;

    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    if (p->pid <= 0)
        return ts_fail(err, TS_EIO, "command was not running");
    while (waitpid(p->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            p->pid = -1;
            return ts_fail(err, TS_EIO, "waitpid: %s", strerror(errno));
        }
    }
    p->pid = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return ts_fail(err, TS_EIO, "exited with status %d", WEXITSTATUS(status));
    return ts_fail(err, TS_EIO, "killed by signal %d (%s)", WTERMSIG(status),
                   strsignal(WTERMSIG(status)));
}

void mr_proc_kill(mr_proc *p)
{
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    if (p->pid <= 0)
        return;
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    p->pid = -1;
}
