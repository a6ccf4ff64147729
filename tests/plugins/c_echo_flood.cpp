// Test plugin for the C client (tests/c_client.rs, tests/c_client/big.c): a big input
// echoed while LOG frames flood the channel, so a host that stops reading while it writes
// (or writes while it should read) would stall.
//   start_flood  input: ignored   starts a thread that logs 1 KiB lines, paced, for about
//                two seconds: LOG frames arrive while the host writes the next CALL
//   flood_echo   input: anything  output: the same bytes; before answering it logs
//                512 KiB (512 lines of 1 KiB, within the stub's per-call budget) and writes
//                64 KiB to stdout (forwarded as LOG level 4)
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
char line[1024];

int init(const plugjail_host *h) {
    host = h;
    std::memset(line, 'f', sizeof line);
    return PLUGJAIL_OK;
}

void flood() {
    for (int i = 0; i < 2000; i++) {
        host->log(PLUGJAIL_LOG_DEBUG, line, sizeof line);
        if (i % 16 == 15) {
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, nullptr);
        }
    }
}

int call(const char *method, const uint8_t *input, size_t len, plugjail_output *out) {
    if (std::strcmp(method, "start_flood") == 0) {
        std::thread(flood).detach();
        return PLUGJAIL_OK;
    }
    for (int i = 0; i < 512; i++) host->log(PLUGJAIL_LOG_INFO, line, sizeof line);
    for (int i = 0; i < 64; i++) {
        if (write(1, line, sizeof line) < 0) break;
    }
    return host->write(out, input, len) == 0 ? PLUGJAIL_OK : PLUGJAIL_FAILED;
}

const char *const methods[] = {"start_flood", "flood_echo", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "c_echo_flood",
                                "1", methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
