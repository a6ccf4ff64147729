// Hostile test plugin: after init, tries what the serve phase forbids.
//   shell   execve("/bin/sh")                                → SIGSYS (serve filter)
//   mkdir   mkdir() — allowed in the default load phase only  → SIGSYS (serve filter)
//   fake    nothing; init() first installs a filter that fakes success of every later
//           seccomp() call, so a stub that trusts seccomp's return value would serve
//           without its serve filter (only when PLUGJAIL_TEST_FAKE_SECCOMP is set)
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "plugjail.h"

namespace {

int init(const plugjail_host *) {
    if (!std::getenv("PLUGJAIL_TEST_FAKE_SECCOMP")) return 0;
    sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_seccomp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog = {sizeof f / sizeof f[0], f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0 ? 0 : 1;
}

int call(const char *method, const uint8_t *, size_t, plugjail_output *) {
    if (std::strcmp(method, "shell") == 0) {
        char sh[] = "/bin/sh";
        char *argv[] = {sh, nullptr};
        execve(sh, argv, nullptr);
        return 1;
    }
    if (std::strcmp(method, "mkdir") == 0) {
        mkdir("/tmp/plugjail-escape-test", 0700);
        return 1;
    }
    return 0;
}

const char *const methods[] = {"shell", "mkdir", "fake", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "escape", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
