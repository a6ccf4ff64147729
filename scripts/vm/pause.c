/* pause PLUGJAIL PROFILE PLUGIN [CGROUP]: a minimal plugin host for the VM test
   (guest-tests.sh). Starts `plugjail serve --control-fd` (in the cgroup directory CGROUP if
   given, so that it has a cgroup of its own, as a host would give it), has the spin test plugin (tests/plugins/spin.cpp)
   burn 1500 ms of CPU, pauses the jail for 300 ms while its cgroup's cpu.stat is read,
   resumes it, checks the call's answer, closes the session and prints the verdict.
   Prints one line "pause: held=... latency_us=... paused_cpu_us=... result=..." and exits
   0 iff the jail was held by the v2 freezer, used no CPU while paused (< 2 ms), and
   answered "spun 1500". Static, no dependencies. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static long now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static int read_all(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* The next frame that is not a LOG (5): its kind, payload in buf (NUL-terminated). */
static int next_frame(int fd, char *buf, size_t cap)
{
    for (;;) {
        unsigned char h[16];
        if (read_all(fd, h, sizeof h)) return -1;
        uint32_t len = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
        int kind = h[4] | h[5] << 8;
        if (len >= cap) return -1;
        if (read_all(fd, buf, len)) return -1;
        buf[len] = 0;
        /* LOG (5) and plugjail's SESSION (7, the first frame) carry nothing this host
         * needs: its buffer is far below any frame cap. */
        if (kind != 5 && kind != 7) return kind;
    }
}

static void send_call(int fd, const char *method, const char *input)
{
    unsigned char f[256];
    size_t m = strlen(method), i = strlen(input), len = 1 + m + i;
    memset(f, 0, 16);
    f[0] = (unsigned char)len;
    f[4] = 2; /* CALL */
    f[8] = 1; /* request id 1 */
    f[16] = (unsigned char)m;
    memcpy(f + 17, method, m);
    memcpy(f + 17 + m, input, i);
    if (write(fd, f, 16 + len) != (ssize_t)(16 + len)) die("write CALL");
}

/* Sends a one-byte command; returns the reply's status, its text in text. */
static int command(int ctl, char c, char *text, size_t cap)
{
    unsigned char r[4096];
    if (send(ctl, &c, 1, MSG_NOSIGNAL) != 1) die("send command");
    ssize_t n = recv(ctl, r, sizeof r, 0);
    if (n < 5) die("recv reply");
    size_t t = (size_t)n - 5 < cap - 1 ? (size_t)n - 5 : cap - 1;
    memcpy(text, r + 5, t);
    text[t] = 0;
    return r[0];
}

/* The first child of `parent`, from the parent pids in /proc/PID/stat. */
static int child_of(pid_t parent)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        char path[300], stat[512];
        int pid = atoi(e->d_name), ppid = 0;
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = 0;
        char *rp = strrchr(stat, ')');
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == parent) found = pid;
    }
    if (d) closedir(d);
    return found;
}

/* usage_usec of the jail's cgroup: the cgroup of serve's child (the jail's init). */
static long jail_cpu_us(pid_t serve)
{
    char path[1024], line[512];
    int init = child_of(serve);
    if (!init) die("serve's child");
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/cgroup", init);
    f = fopen(path, "r");
    if (!f) die("the jail's cgroup");
    int v2 = 0;
    while (!v2 && fgets(line, sizeof line, f)) v2 = !strncmp(line, "0::", 3);
    fclose(f);
    if (!v2) die("no cgroup v2 line");
    line[strcspn(line, "\n")] = 0;
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.stat", line + 3);
    f = fopen(path, "r");
    if (!f) die(path);
    long us = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "usage_usec %ld", &us) == 1) break;
    fclose(f);
    return us;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: pause PLUGJAIL PROFILE PLUGIN [CGROUP]\n");
        return 2;
    }
    char procs[1024] = "";
    if (argc == 5) snprintf(procs, sizeof procs, "%s/cgroup.procs", argv[4]);
    int to[2], from[2], st[2], ctl[2];
    if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC) || pipe2(st, O_CLOEXEC) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl))
        die("pipes");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (procs[0]) {
            int fd = open(procs, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, "0", 1) != 1) {
                perror(procs);
                _exit(125);
            }
            close(fd);
        }
        int src[4] = {to[0], from[1], st[1], ctl[1]}, tmp[4];
        for (int i = 0; i < 4; i++)
            if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10)) < 0) _exit(126);
        for (int i = 0; i < 4; i++)
            if (dup2(tmp[i], 3 + i) < 0) _exit(126);
        execl(argv[1], "plugjail", "serve", "--profile", argv[2], "--plugin", argv[3],
              "--fds", "3,4", "--status-fd", "5", "--control-fd", "6", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    close(st[1]);
    close(ctl[1]);
    char buf[65536], held[256], text[256];
    if (next_frame(from[0], buf, sizeof buf) != 1) die("HELLO");
    send_call(to[1], "spin", "1500");
    usleep(300000);
    long t0 = now_us();
    int s = command(ctl[0], 'P', held, sizeof held);
    long latency = now_us() - t0;
    long c0 = jail_cpu_us(pid);
    usleep(300000);
    long c1 = jail_cpu_us(pid);
    int r = command(ctl[0], 'R', text, sizeof text);
    char result[64] = "(none)";
    if (next_frame(from[0], buf, sizeof buf) == 3) snprintf(result, sizeof result, "%.63s", buf);
    printf("pause: status=%d held=%s latency_us=%ld paused_cpu_us=%ld resume=%d result=%s\n",
           s, held, latency, c1 - c0, r, result);
    close(to[1]);
    close(ctl[0]);
    ssize_t n, got = 0;
    while ((n = read(st[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += n;
    buf[got] = 0;
    int status;
    waitpid(pid, &status, 0);
    /* The verdict without white space, for the one check. */
    char *w = buf;
    for (char *p = buf; *p; p++)
        if (*p != ' ' && *p != '\n') *w++ = *p;
    *w = 0;
    printf("pause verdict: %s\n", buf);
    int ok = s == 0 && !strcmp(held, "cgroup_v2") && c1 - c0 < 2000 && r == 0 &&
             !strcmp(result, "spun 1500") && strstr(buf, "\"outcome\":\"ok\"") != NULL;
    return ok ? 0 : 1;
}
