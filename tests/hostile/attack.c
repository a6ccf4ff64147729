/*
 * attack: a multi-call hostile program for plugjail's jail tests.
 *
 *     attack NAME [ARGS...]
 *
 * Each NAME tries one forbidden thing, with harmless arguments wherever the call itself
 * could do damage if it were allowed (bubblewrap's try-syscall style: bogus pointers, bogus
 * file systems, nonexistent paths, invalid flags), so the program can also be run on the
 * host to prove that the tests notice an attack that works.
 *
 * Every attack ends with exactly one line on stdout:
 *
 *     result: denied ERRNAME     the attempt failed with this errno     (exit 0)
 *     result: safe DETAIL        a check found the jail sound           (exit 0)
 *     result: escaped DETAIL     the attempt worked                     (exit 1)
 *     error: MESSAGE             bad usage or an unexpected failure     (exit 2)
 *
 * A syscall that seccomp forbids kills the program before it prints a result; the tests
 * tell that apart by the signal. stdout is unbuffered so that lines printed before a kill
 * are not lost.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

static const char *errname(int e)
{
    const char *name = strerrorname_np(e);
    return name ? name : "E?";
}

static int denied(const char *what, int e)
{
    printf("%s: %s (%s)\n", what, errname(e), strerror(e));
    printf("result: denied %s\n", errname(e));
    return 0;
}

static int escaped(const char *detail)
{
    printf("result: escaped %s\n", detail);
    return 1;
}

static int safe(const char *detail)
{
    printf("result: safe %s\n", detail);
    return 0;
}

static int usage_error(const char *msg)
{
    printf("error: %s\n", msg);
    return 2;
}

/* The outcome of a raw syscall that must not succeed. */
static int syscall_result(const char *what, long rc)
{
    if (rc == -1)
        return denied(what, errno);
    char detail[128];
    snprintf(detail, sizeof detail, "%s returned %ld", what, rc);
    return escaped(detail);
}

static long parse_long(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end || end == s) {
        printf("error: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

/* ---- syscalls seccomp must refuse (each harmless even if allowed) ---- */

static int a_mount(void)
{
    /* Unknown file system type: with CAP_SYS_ADMIN this fails with ENODEV. */
    return syscall_result("mount", syscall(SYS_mount, "none", "/", "plugjail-bogus-fs", 0UL, NULL));
}

static int a_umount2(void)
{
    /* MNT_EXPIRE|MNT_DETACH is rejected with EINVAL once the capability check passes. */
    return syscall_result("umount2", syscall(SYS_umount2, "/", MNT_EXPIRE | MNT_DETACH));
}

static int a_pivot_root(void)
{
    return syscall_result("pivot_root",
                          syscall(SYS_pivot_root, "/nonexistent-plugjail-new", "/nonexistent-plugjail-old"));
}

static int a_unshare_user(void)
{
    /* Only this process changes namespace; harmless on the host. */
    return syscall_result("unshare(CLONE_NEWUSER)", syscall(SYS_unshare, CLONE_NEWUSER));
}

/* A fork-like clone into a new user namespace: `clone` itself is often allowed for threads. */
static int a_clone_newuser(void)
{
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    return syscall_result("clone(CLONE_NEWUSER)", pid);
}

/* clone3 takes its flags through a pointer, which a seccomp filter cannot inspect. */
static int a_clone3_newuser(void)
{
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    return syscall_result("clone3(CLONE_NEWUSER)", pid);
}

static int a_setns(void)
{
    return syscall_result("setns", syscall(SYS_setns, -1, CLONE_NEWNS));
}

static int a_bpf(void)
{
    return syscall_result("bpf", syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, NULL, 0));
}

static int a_keyctl(void)
{
    /* KEYCTL_GET_KEYRING_ID of the session keyring, without creating it. */
    return syscall_result("keyctl", syscall(SYS_keyctl, 0, -3, 0));
}

static int a_perf_event_open(void)
{
    return syscall_result("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
}

static int a_userfaultfd(void)
{
    long fd = syscall(SYS_userfaultfd, 0);
    if (fd >= 0)
        close((int)fd);
    return syscall_result("userfaultfd", fd);
}

static int a_io_uring_setup(void)
{
    return syscall_result("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL));
}

static int a_kexec_load(void)
{
    /* Invalid flags: rejected with EINVAL once the capability check passes. */
    return syscall_result("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xfff0UL));
}

static int a_init_module(void)
{
    /* An empty image is rejected with ENOEXEC once the capability check passes. */
    return syscall_result("init_module", syscall(SYS_init_module, NULL, 0UL, ""));
}

static int a_sethostname(void)
{
    /* Sets the name it already has: visible as success, changes nothing. */
    struct utsname u;
    if (uname(&u) != 0)
        return usage_error("uname failed");
    return syscall_result("sethostname", syscall(SYS_sethostname, u.nodename, strlen(u.nodename)));
}

static int a_capset(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0xff, sizeof data);
    return syscall_result("capset", syscall(SYS_capset, &hdr, data));
}

static int a_ambient_raise(void)
{
    return syscall_result("prctl(PR_CAP_AMBIENT_RAISE)",
                          prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0));
}

/* ---- other processes ---- */

static int a_ptrace_attach(long pid)
{
    long rc = ptrace(PTRACE_ATTACH, (pid_t)pid, NULL, NULL);
    if (rc == 0) {
        waitpid((pid_t)pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, (pid_t)pid, NULL, NULL);
    }
    return syscall_result("ptrace(PTRACE_ATTACH)", rc);
}

static int a_process_vm_readv(long pid, long addr, long len)
{
    char buf[256];
    if (len <= 0 || len >= (long)sizeof buf)
        return usage_error("length out of range");
    struct iovec local = {buf, (size_t)len};
    struct iovec remote = {(void *)addr, (size_t)len};
    ssize_t n = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return denied("process_vm_readv", errno);
    buf[n] = 0;
    printf("read from pid %ld: %s\n", pid, buf);
    return escaped("process_vm_readv read the host process");
}

static int a_kill_pid(long pid)
{
    return syscall_result("kill(pid, SIGKILL)", kill((pid_t)pid, SIGKILL));
}

/*
 * kill(-1, SIGKILL) reaches every process the caller may signal. Outside a PID namespace
 * that could be the whole machine, so refuse (and count it as an escape) unless the given
 * host process is invisible.
 */
static int a_kill_all(long host_pid)
{
    if (kill((pid_t)host_pid, 0) == 0 || errno != ESRCH)
        return escaped("host pid is visible; refusing to run kill(-1, SIGKILL)");
    int rc = kill(-1, SIGKILL);
    printf("kill(-1, SIGKILL): %s\n", rc == 0 ? "0" : errname(errno));
    return safe("still alive after kill(-1, SIGKILL)");
}

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Lists the pids /proc shows; the host pid given must not be among them. */
static int a_proc_pids(long host_pid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return denied("opendir /proc", errno);
    char detail[1024] = "pids";
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_number(e->d_name))
            continue;
        if (strlen(detail) + strlen(e->d_name) + 2 < sizeof detail) {
            strcat(detail, " ");
            strcat(detail, e->d_name);
        }
        if (parse_long(e->d_name) == host_pid)
            seen = 1;
    }
    closedir(d);
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld", host_pid);
    struct stat st;
    if (stat(path, &st) == 0)
        seen = 1;
    printf("%s\n", detail);
    return seen ? escaped("host pid visible in /proc") : safe(detail);
}

/* ---- network ---- */

static int a_tcp_connect(long port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return denied("socket", errno);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0)
        return denied("connect", errno);
    return escaped("connected to the host listener");
}

static int a_abstract_connect(const char *name)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0)
        return denied("socket", errno);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    if (n + 1 > sizeof sa.sun_path)
        return usage_error("name too long");
    memcpy(sa.sun_path + 1, name, n); /* sun_path[0] == 0: abstract namespace */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    if (connect(s, (struct sockaddr *)&sa, len) != 0)
        return denied("connect", errno);
    return escaped("connected to the host abstract socket");
}

/* ---- terminal ---- */

static int a_tiocsti(void)
{
    char c = 'x';
    return syscall_result("ioctl(0, TIOCSTI)", ioctl(0, TIOCSTI, &c));
}

/* ---- files ---- */

static int a_read(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return denied("open", errno);
    char buf[65];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        return denied("read", errno);
    buf[n] = 0;
    printf("read %zd bytes: %s\n", n, buf);
    return escaped("read the file");
}

static int a_write(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0)
        return denied("open", errno);
    if (write(fd, "written by attack\n", 18) != 18)
        return denied("write", errno);
    return escaped("appended to the file");
}

static int a_create(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return denied("open(O_CREAT)", errno);
    if (write(fd, "written by attack\n", 18) != 18)
        return denied("write", errno);
    return escaped("created the file");
}

static int a_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0)
        return denied("mkdir", errno);
    rmdir(path);
    return escaped("created the directory (removed again)");
}

/* Opening for writing is the attack; nothing is written even when it works. */
static int a_open_write(const char *path)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return denied("open(O_WRONLY)", errno);
    close(fd);
    return escaped("opened for writing");
}

/* Writes a sysctl-like file with the value it already has. */
static int a_rewrite(const char *path)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    fd = open(path, O_WRONLY);
    if (fd < 0)
        return denied("open(O_WRONLY)", errno);
    if (n > 0 && write(fd, buf, (size_t)n) < 0)
        return denied("write", errno);
    return escaped("opened for writing");
}

/* ---- descriptors, capabilities, privileges ---- */

static int a_fd_scan(void)
{
    char detail[512] = "";
    for (int fd = 3; fd < 65536; fd++) {
        if (fcntl(fd, F_GETFD) == -1)
            continue;
        char link[64], target[256] = "?";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 1] = 0;
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, " %d->%s", fd, target);
    }
    if (detail[0]) {
        printf("open fds:%s\n", detail);
        return escaped("descriptors beyond stdio are open");
    }
    return safe("only 0 1 2 open");
}

static int a_proc_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return denied("opendir /proc/self/fd", errno);
    int own = dirfd(d);
    char detail[512] = "fds";
    int extra = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_number(e->d_name))
            continue;
        long fd = parse_long(e->d_name);
        if (fd == own)
            continue;
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, " %ld", fd);
        if (fd > 2)
            extra = 1;
    }
    closedir(d);
    printf("%s\n", detail);
    return extra ? escaped(detail) : safe(detail);
}

static int a_status(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return denied("open /proc/self/status", errno);
    char line[256];
    int caps_held = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) ||
            !strncmp(line, "Seccomp", 7) || !strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3))
            printf("status: %s", line);
        char *colon = strchr(line, ':');
        if (!strncmp(line, "Cap", 3) && colon && strtoull(colon + 1, NULL, 16) != 0)
            caps_held = 1;
    }
    fclose(f);
    int bset = 0;
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
            bset++;
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    printf("bounding set size (prctl): %d\n", bset);
    printf("no_new_privs (prctl): %d\n", nnp);
    if (caps_held || bset)
        return escaped("capabilities held");
    if (nnp != 1)
        return escaped("no_new_privs is not set");
    return safe("no capabilities, no_new_privs set");
}

static int a_mounts(void)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    if (!f)
        return denied("open /proc/self/mounts", errno);
    char line[1024];
    while (fgets(line, sizeof line, f))
        printf("mount: %s", line);
    fclose(f);
    return safe("mounts printed");
}

/* Prints the ids; with an expected euid, an euid above it is an escape. */
static int a_ids(int argc, char **argv)
{
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    printf("ids: ruid=%u euid=%u suid=%u\n", r, e, s);
    if (argc > 2 && (long)e != parse_long(argv[2]))
        return escaped("euid changed across exec");
    return safe("ids printed");
}

/* Execs a (setuid) copy of this program, which compares its euid with ours. */
static int a_exec_setuid(const char *path)
{
    char euid[32];
    snprintf(euid, sizeof euid, "%u", geteuid());
    printf("before exec: euid=%s\n", euid);
    execl(path, path, "ids", euid, (char *)NULL);
    return denied("execve", errno);
}

/* ---- running other programs ---- */

/* execve of a host program; on success it replaces us and its output shows. */
static int a_exec(const char *path)
{
    execl(path, path, "escaped-exec", (char *)NULL);
    return denied("execve", errno);
}

/*
 * execveat of a host program through descriptor N, as plugjail's own exec of the target
 * looks to a seccomp filter (`execveat(N, "", ..., AT_EMPTY_PATH)`).
 */
static int a_exec_fd(long n, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return denied("open", errno);
    if (fd != n && dup2(fd, (int)n) < 0)
        return denied("dup2", errno);
    char *const args[] = {(char *)path, "escaped-exec", NULL};
    syscall(SYS_execveat, (int)n, "", args, environ, AT_EMPTY_PATH);
    return denied("execveat", errno);
}

/* Opens a ptrace-like handle on a file by handle (the "shocker" escape); bogus handle. */
static int a_open_by_handle_at(void)
{
    return syscall_result("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, O_RDONLY));
}

static int a_chroot(void)
{
    return syscall_result("chroot", syscall(SYS_chroot, "/nonexistent-plugjail"));
}

/* ---- a well-behaved program ---- */

static int a_hello(void)
{
    printf("hello from the jail\n");
    return safe("hello");
}

/* Reads IN, writes its bytes reversed plus a line count to OUT, via a scratch file if SCRATCH given. */
static int a_transform(const char *in, const char *out, const char *scratch)
{
    static char buf[1 << 16];
    int fd = open(in, O_RDONLY);
    if (fd < 0)
        return usage_error("cannot open input");
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0)
        return usage_error("cannot read input");
    if (scratch) {
        int s = open(scratch, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (s < 0 || write(s, buf, (size_t)n) != n || close(s) != 0 || unlink(scratch) != 0)
            return usage_error("scratch file failed");
    }
    long lines = 0;
    for (ssize_t i = 0; i < n / 2; i++) {
        char t = buf[i];
        buf[i] = buf[n - 1 - i];
        buf[n - 1 - i] = t;
    }
    for (ssize_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return usage_error("cannot create output");
    char head[64];
    int h = snprintf(head, sizeof head, "lines=%ld\n", lines);
    if (write(fd, head, (size_t)h) != h || write(fd, buf, (size_t)n) != n || close(fd) != 0)
        return usage_error("cannot write output");
    return safe("transformed");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return usage_error("usage: attack NAME [ARGS...]");
    const char *name = argv[1];
    int nargs = argc - 2;
    char **a = argv + 2;
    printf("attack: %s\n", name);

#define NOARG(n, f) if (!strcmp(name, n)) return f()
    NOARG("mount", a_mount);
    NOARG("umount2", a_umount2);
    NOARG("pivot_root", a_pivot_root);
    NOARG("unshare_user", a_unshare_user);
    NOARG("clone_newuser", a_clone_newuser);
    NOARG("clone3_newuser", a_clone3_newuser);
    NOARG("setns", a_setns);
    NOARG("bpf", a_bpf);
    NOARG("keyctl", a_keyctl);
    NOARG("perf_event_open", a_perf_event_open);
    NOARG("userfaultfd", a_userfaultfd);
    NOARG("io_uring_setup", a_io_uring_setup);
    NOARG("kexec_load", a_kexec_load);
    NOARG("init_module", a_init_module);
    NOARG("sethostname", a_sethostname);
    NOARG("capset", a_capset);
    NOARG("ambient_raise", a_ambient_raise);
    NOARG("tiocsti", a_tiocsti);
    NOARG("fd_scan", a_fd_scan);
    NOARG("proc_fd", a_proc_fd);
    NOARG("status", a_status);
    NOARG("mounts", a_mounts);
    NOARG("hello", a_hello);
    NOARG("open_by_handle_at", a_open_by_handle_at);
    NOARG("chroot", a_chroot);
#undef NOARG

#define ONEARG(n, f) if (!strcmp(name, n)) return nargs == 1 ? f(a[0]) : usage_error(n " takes one argument")
    ONEARG("read", a_read);
    ONEARG("write", a_write);
    ONEARG("create", a_create);
    ONEARG("mkdir", a_mkdir);
    ONEARG("open_write", a_open_write);
    ONEARG("rewrite", a_rewrite);
    ONEARG("abstract_connect", a_abstract_connect);
    ONEARG("exec_setuid", a_exec_setuid);
    ONEARG("exec", a_exec);
#undef ONEARG

#define PIDARG(n, f) if (!strcmp(name, n)) return nargs == 1 ? f(parse_long(a[0])) : usage_error(n " takes one number")
    PIDARG("ptrace_attach", a_ptrace_attach);
    PIDARG("kill_pid", a_kill_pid);
    PIDARG("kill_all", a_kill_all);
    PIDARG("proc_pids", a_proc_pids);
    PIDARG("tcp_connect", a_tcp_connect);
#undef PIDARG

    if (!strcmp(name, "process_vm_readv"))
        return nargs == 3 ? a_process_vm_readv(parse_long(a[0]), parse_long(a[1]), parse_long(a[2]))
                          : usage_error("process_vm_readv PID ADDR LEN");
    if (!strcmp(name, "exec_fd"))
        return nargs == 2 ? a_exec_fd(parse_long(a[0]), a[1]) : usage_error("exec_fd N PATH");
    if (!strcmp(name, "ids"))
        return a_ids(argc, argv);
    if (!strcmp(name, "transform"))
        return nargs == 2 || nargs == 3 ? a_transform(a[0], a[1], nargs == 3 ? a[2] : NULL)
                                        : usage_error("transform IN OUT [SCRATCH]");
    return usage_error("unknown attack");
}
