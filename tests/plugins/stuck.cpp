// Hostile test plugin: never finishes starting or stopping. Built with
//   -DSTUCK_INIT       init() never returns (a host's start_time must end the jail)
//   -DSTUCK_SHUTDOWN   shutdown() never returns (a host's stop_time must end the jail)
// Method:
//   noop   answers an empty result
#include <unistd.h>

#include "plugjail.h"

namespace {

[[noreturn]] void forever() {
    for (;;) pause();
}

int init(const plugjail_host *) {
#ifdef STUCK_INIT
    forever();
#endif
    return PLUGJAIL_OK;
}

int call(const char *, const uint8_t *, size_t, plugjail_output *) { return PLUGJAIL_OK; }

void shutdown() {
#ifdef STUCK_SHUTDOWN
    forever();
#endif
}

const char *const methods[] = {"noop", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "stuck", "1",
                                methods, init, call, shutdown};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
