// Hostile test plugin: after init, tries what the serve phase forbids.
//   shell   execve("/bin/sh")                                → SIGSYS (serve filter)
//   mkdir   mkdir() — allowed in the default load phase only  → SIGSYS (serve filter)
//   fionbio ioctl(FIONBIO) — allowed in neither phase (only TCGETS and FIONREAD are)
//   noop    answers an empty result (a healthy call)
//   (tests/plugins/serve_attack.cpp attacks the serve phase itself from init())
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "plugjail.h"

namespace {

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
    if (std::strcmp(method, "fionbio") == 0) {
        int on = 1;
        ioctl(0, FIONBIO, &on);
        return 1;
    }
    return 0;
}

const char *const methods[] = {"shell", "mkdir", "fionbio", "noop", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "escape", "1",
                                methods, nullptr, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
