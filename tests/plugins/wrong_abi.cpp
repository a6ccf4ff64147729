// Hostile test plugin: claims ABI version 999. The stub must refuse it before init() or
// call(); both would leave a marker file (path in PLUGJAIL_TEST_MARKER) if they ran.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "plugjail.h"

namespace {

void mark() {
    const char *path = std::getenv("PLUGJAIL_TEST_MARKER");
    if (path) close(open(path, O_CREAT | O_WRONLY, 0600));
}

int init(const plugjail_host *) {
    mark();
    return 0;
}

int call(const char *, const uint8_t *, size_t, plugjail_output *) {
    mark();
    return 0;
}

const char *const methods[] = {"run", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), 999, "future", "9", methods,
                                init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
