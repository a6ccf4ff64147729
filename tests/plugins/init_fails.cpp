// Broken test plugin: its init() logs why and returns 3 (say, a missing licence file).
// The session never starts: the plugin's fault, not the jail's, and init()'s status is in
// the verdict.
#include <cstring>

#include "plugjail.h"

namespace {

int init(const plugjail_host *host) {
    const char *why = "no licence file";
    host->log(PLUGJAIL_LOG_ERROR, why, std::strlen(why));
    return 3;
}

int call(const char *, const uint8_t *, size_t, plugjail_output *) { return 0; }

const char *const methods[] = {"run", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "init_fails",
                                "1", methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
