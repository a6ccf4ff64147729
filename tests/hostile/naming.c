// Programs for the seccomp-naming tests in tests/jail_naming.rs: each makes one refused
// syscall in a particular way (main thread, second thread, forked child, CLONE_UNTRACED), or
// uses signals, children and job control heavily to show that the jail's tracer is
// invisible.
//
// A program that survives prints `result: ...` as its last line; a refused syscall must
// end the run before that.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long raw_ptrace(void) {
    // PTRACE_TRACEME: harmless, needs no target.
    return syscall(SYS_ptrace, 0L, 0L, 0L, 0L);
}

static void *thread_ptrace(void *arg) {
    (void)arg;
    raw_ptrace();
    return NULL;
}

static void *thread_yield(void *arg) {
    (void)arg;
    sched_yield();
    return NULL;
}

static volatile sig_atomic_t usr1, rt, chld;

static void on_usr1(int sig) { (void)sig; usr1++; }
static void on_rt(int sig) { (void)sig; rt++; }
static void on_chld(int sig) { (void)sig; chld = 1; }

// SIGUSR1 to itself N times (each handled before kill returns), N queued realtime signals
// delivered on unblock, SIGUSR2 ignored, children reaped with their exit codes, a child
// that stops itself and is continued (job control), SIGCHLD seen. Prints one line.
static int signals(int n) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_rt;
    sigaction(SIGRTMIN, &sa, NULL);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGUSR2, SIG_IGN);
    for (int i = 0; i < n; i++) {
        kill(getpid(), SIGUSR1);
        kill(getpid(), SIGUSR2);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < 8; i++)
        kill(getpid(), SIGRTMIN);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    int sum = 0;
    for (int i = 1; i <= 5; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(i);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        sum += WIFEXITED(status) ? WEXITSTATUS(status) : 100;
    }

    // Job control: the child stops itself; the parent sees it stopped, continues it, sees
    // it continued, and reaps it.
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(7);
    }
    int status, stopped = 0, continued = 0, code = -1;
    while (waitpid(pid, &status, WUNTRACED) < 0 && errno == EINTR) {
    }
    stopped = WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP;
    kill(pid, SIGCONT);
    while (waitpid(pid, &status, WCONTINUED) < 0 && errno == EINTR) {
    }
    continued = WIFCONTINUED(status);
    if (!continued && WIFEXITED(status)) {
        // Continued and exited before we looked: the exit is what we saw.
        code = WEXITSTATUS(status);
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    printf("result: usr1=%d rt=%d sum=%d stopped=%d code=%d chld=%d\n", (int)usr1, (int)rt, sum,
           stopped, code, (int)chld);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "ptrace")) {
        long r = raw_ptrace();
        printf("result: ptrace returned %ld (%s)\n", r, r < 0 ? strerror(errno) : "ok");
    } else if (!strcmp(what, "nr999")) {
        long r = syscall(999);
        printf("result: syscall 999 returned %ld (%s)\n", r, r < 0 ? strerror(errno) : "ok");
    } else if (!strcmp(what, "nr_huge")) {
        // Beyond every table, below the x32 bit.
        long r = syscall(0x3fffffff);
        printf("result: syscall 0x3fffffff returned %ld\n", r);
    } else if (!strcmp(what, "thread_ptrace")) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_ptrace, NULL) != 0) {
            printf("result: pthread_create failed\n");
            return 1;
        }
        pthread_join(t, NULL);
        printf("result: the thread came back\n");
    } else if (!strcmp(what, "fork_ptrace")) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("result: fork failed (%s)\n", strerror(errno));
            return 1;
        }
        if (pid == 0) {
            raw_ptrace();
            _exit(0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        printf("result: the child ended with status %#x\n", status);
    } else if (!strcmp(what, "untraced_clone")) {
        long pid = syscall(SYS_clone, (long)(CLONE_UNTRACED | SIGCHLD), 0L, 0L, 0L, 0L);
        if (pid == 0)
            _exit(0);
        printf("result: clone(CLONE_UNTRACED) returned %ld\n", pid);
    } else if (!strcmp(what, "clone3")) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0)
            _exit(0);
        if (pid < 0) {
            printf("result: denied %s\n", errno == ENOSYS ? "ENOSYS" : strerror(errno));
        } else {
            waitpid((pid_t)pid, NULL, 0);
            printf("result: created\n");
        }
    } else if (!strcmp(what, "threads")) {
        // Threads that come and go: pthread_create falls back from clone3 to clone.
        for (int i = 0; i < 20; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, thread_yield, NULL) != 0) {
                printf("result: pthread_create failed\n");
                return 1;
            }
            pthread_join(t, NULL);
        }
        printf("result: safe 20 threads\n");
    } else if (!strcmp(what, "signals")) {
        return signals(argc > 2 ? atoi(argv[2]) : 1000);
    } else if (!strcmp(what, "abort")) {
        abort();
    } else {
        printf("usage: naming ptrace|nr999|nr_huge|thread_ptrace|fork_ptrace|untraced_clone|"
               "clone3|threads|signals [N]|abort\n");
        return 2;
    }
    return 0;
}
