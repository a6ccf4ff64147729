// Test plugin for hosts with pools: one method that never returns, one that answers.
//   hang   spins forever          → only a deadline or a cancel ends it
//   echo   returns its input      → shows another jail of the pool still serves
#include <cstring>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;

int init(const plugjail_host *h) {
    host = h;
    return PLUGJAIL_OK;
}

int call(const char *method, const uint8_t *input, size_t len, plugjail_output *out) {
    if (std::strcmp(method, "hang") == 0) {
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    return host->write(out, input, len) == 0 ? PLUGJAIL_OK : PLUGJAIL_FAILED;
}

const char *const methods[] = {"hang", "echo", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "slow", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
