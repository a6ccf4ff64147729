// Hostile test plugin: floods stdout, stderr and the host log, then answers correctly.
//   flood  input: ignored   output: "done"
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
char line[1024];

int init(const plugjail_host *h) {
    host = h;
    std::memset(line, 'x', sizeof line);
    // Decide stdio buffering now, while fstat is still allowed.
    std::fputs("noisy plugin starting\n", stdout);
    std::fflush(stdout);
    return 0;
}

int call(const char *, const uint8_t *, size_t, plugjail_output *out) {
    for (int i = 0; i < 4096; i++) {  // 4 MiB each way
        std::fwrite(line, 1, sizeof line, stdout);
        std::fwrite(line, 1, sizeof line, stderr);
        ssize_t r = write(2, line, sizeof line);
        (void)r;
    }
    std::fflush(stdout);
    for (int i = 0; i < 10240; i++) host->log(PLUGJAIL_LOG_DEBUG, line, sizeof line);  // 10 MiB
    return host->write(out, "done", 4);
}

const char *const methods[] = {"flood", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "noisy", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
