/* hog: one resource-hungry behaviour per invocation, for the VM's `plugjail exec` checks.
 *
 *   hog memory MIB        allocate and touch MIB MiB (expects an OOM kill under a limit)
 *   hog forkbomb N        fork up to N sleeping children; prints how many forks worked
 *   hog spin SECONDS      busy-loop for SECONDS of wall time; prints the CPU share used
 *   hog write PATH MIB    O_DIRECT write of MIB MiB to PATH; prints the MiB/s achieved
 *
 * Prints one "hog: ..." line and exits 0, or 2 on a usage or setup error. Static, so it
 * runs in a jail whose root holds nothing but what the profile binds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int memory(long mib)
{
    size_t size = (size_t)mib << 20;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("hog: mmap %ld MiB failed: %s\n", mib, strerror(errno));
        return 0;
    }
    for (size_t off = 0; off < size; off += 4096)
        p[off] = 1;
    printf("hog: touched %ld MiB and survived\n", mib);
    return 0;
}

static int forkbomb(long n)
{
    pid_t kids[4096];
    long made = 0;
    int err = 0;
    if (n > 4096)
        n = 4096;
    while (made < n) {
        pid_t c = fork();
        if (c < 0) {
            err = errno;
            break;
        }
        if (c == 0) {
            pause();
            _exit(0);
        }
        kids[made++] = c;
    }
    printf("hog: %ld forks, then %s\n", made, err ? strerror(err) : "stopped");
    for (long i = 0; i < made; i++)
        kill(kids[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    return 0;
}

static int spin(double secs)
{
    double t0 = now();
    volatile unsigned long x = 0;
    while (now() - t0 < secs)
        x++;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    printf("hog: %.2fs cpu in %.2fs wall (%.0f%%)\n", cpu, now() - t0, 100 * cpu / (now() - t0));
    return 0;
}

static int writer(const char *path, long mib)
{
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20))
        return 2;
    memset(buf, 0x5a, 1 << 20);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    if (fd < 0) {
        printf("hog: open %s: %s\n", path, strerror(errno));
        return 2;
    }
    double t0 = now();
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, 1 << 20) != 1 << 20) {
            printf("hog: write: %s\n", strerror(errno));
            return 2;
        }
    fsync(fd);
    double t = now() - t0;
    printf("hog: wrote %ld MiB in %.2fs (%.2f MiB/s)\n", mib, t, mib / t);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && !strcmp(argv[1], "memory"))
        return memory(atol(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "forkbomb"))
        return forkbomb(atol(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "spin"))
        return spin(atof(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "write"))
        return writer(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: hog memory MIB | forkbomb N | spin SECONDS | write PATH MIB\n");
    return 2;
}
