// Hostile test plugin: crashes in the ways a buggy C++ plugin does.
//   segv   writes through a null pointer        → SIGSEGV
//   abort  calls abort()                        → SIGABRT
//   throw  throws an exception nobody catches   → std::terminate → SIGABRT
//   hang   spins forever                        → the host's call deadline
//   noop   answers an empty result (a healthy call between the faults)
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "plugjail.h"

namespace {

int call(const char *method, const uint8_t *, size_t, plugjail_output *) {
    if (std::strcmp(method, "segv") == 0) {
        volatile int *p = nullptr;
        *p = 1;
    } else if (std::strcmp(method, "abort") == 0) {
        std::abort();
    } else if (std::strcmp(method, "throw") == 0) {
        throw std::runtime_error("nobody catches this");
    } else if (std::strcmp(method, "hang") == 0) {
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    return 0;
}

const char *const methods[] = {"segv", "abort", "throw", "hang", "noop", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "crash", "1",
                                methods, nullptr, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
