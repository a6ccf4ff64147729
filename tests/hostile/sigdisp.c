/*
 * sigdisp: reports the signal state a program starts with, for plugjail's jail tests.
 *
 *     sigdisp
 *
 * Prints one line per signal 1..64 that does not start in the default state:
 *
 *     sig N: ignored | handler | blocked
 *
 * and then exactly one result line:
 *
 *     result: safe all default        every signal has SIG_DFL and none is blocked  (exit 0)
 *     result: inherited N non-default that many signals (or mask bits) did not      (exit 1)
 *     error: MESSAGE                  a query failed                                (exit 2)
 *
 * An ignored disposition (and the signal mask) survives exec, so whatever started the
 * jail could otherwise leave SIGPIPE, SIGRTMAX... ignored in the jailed program.
 *
 * The kernel is asked directly (raw rt_sigaction and rt_sigprocmask): glibc's wrappers
 * refuse its two reserved realtime signals (32 and 33) with EINVAL, and those must be
 * reported too. Only the handler (the first field of the kernel's struct sigaction on
 * every architecture) is read; the buffer is larger than any layout of the struct.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LAST_SIGNAL 64
#define KERNEL_SIGSET_BYTES 8

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned long long blocked = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &blocked, KERNEL_SIGSET_BYTES) != 0) {
        printf("error: rt_sigprocmask: %s\n", strerror(errno));
        return 2;
    }
    int bad = 0;
    for (int sig = 1; sig <= LAST_SIGNAL; sig++) {
        unsigned long old[8];
        memset(old, 0, sizeof old);
        if (syscall(SYS_rt_sigaction, sig, NULL, old, KERNEL_SIGSET_BYTES) != 0) {
            printf("error: rt_sigaction(%d): %s\n", sig, strerror(errno));
            return 2;
        }
        if (old[0] == (unsigned long)SIG_IGN) {
            printf("sig %d: ignored\n", sig);
            bad++;
        } else if (old[0] != (unsigned long)SIG_DFL) {
            printf("sig %d: handler\n", sig);
            bad++;
        }
        if (blocked & (1ULL << (sig - 1))) {
            printf("sig %d: blocked\n", sig);
            bad++;
        }
    }
    if (bad) {
        printf("result: inherited %d non-default\n", bad);
        return 1;
    }
    printf("result: safe all default\n");
    return 0;
}
