// flaky: a misbehaving plugin, for seeing what a plugin host does about one
// (examples/plugin_host.rs).
//
//   g++ -std=c++17 -O2 -shared -fPIC -I../../include -o flaky.so flaky.cpp
//
// Methods:
//   work    input: ignored   output: "done N" for the Nth call of this jail; every third
//                            call crashes (SIGSEGV) instead: a transient fault
//   escape  input: ignored   tries to run /bin/sh, which no profile's serve phase allows:
//                            a violation, and the host quarantines the plugin
#include <unistd.h>

#include <cstring>
#include <string>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
unsigned calls = 0;

int init(const plugjail_host *h) {
    host = h;
    return PLUGJAIL_OK;
}

int call(const char *method, const uint8_t *, size_t, plugjail_output *out) {
    if (std::strcmp(method, "work") == 0) {
        if (++calls % 3 == 0) {
            volatile int *nowhere = nullptr;
            *nowhere = 1;
        }
        std::string s = "done " + std::to_string(calls);
        return host->write(out, s.data(), s.size()) == 0 ? PLUGJAIL_OK : PLUGJAIL_FAILED;
    }
    if (std::strcmp(method, "escape") == 0) {
        char sh[] = "/bin/sh";
        char *argv[] = {sh, nullptr};
        execve(sh, argv, nullptr);
    }
    return PLUGJAIL_FAILED;
}

const char *const methods[] = {"work", "escape", nullptr};

const plugjail_plugin plugin = {
    sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "flaky", "0.1.0", methods,
    init, call, nullptr,
};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
