// Test plugin: echoes its input while flooding the host with log text, and keeps a thread
// logging from init() on, so LOG frames arrive while the host is still writing a call.
//   echo   input: anything   output: the same bytes; on the way 2 MiB of log lines (the
//          stub forwards 1 MiB per call and reports the rest dropped) and 256 KiB of
//          stdout (64 KiB forwarded)
//   ticks  input: ignored    output: how many lines the background thread has logged
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
char line[1024];
std::atomic<unsigned long> ticks{0};

void background() {
    const timespec pause = {0, 200 * 1000};  // 0.2 ms
    for (;;) {
        char msg[64];
        const int n = std::snprintf(msg, sizeof msg, "tick %lu", ticks.fetch_add(1) + 1);
        host->log(PLUGJAIL_LOG_DEBUG, msg, static_cast<size_t>(n));
        nanosleep(&pause, nullptr);
    }
}

int init(const plugjail_host *h) {
    host = h;
    std::memset(line, 'x', sizeof line);
    std::thread(background).detach();
    return PLUGJAIL_OK;
}

int call(const char *method, const uint8_t *input, size_t len, plugjail_output *out) {
    if (std::strcmp(method, "ticks") == 0) {
        const std::string s = std::to_string(ticks.load());
        return host->write(out, s.data(), s.size());
    }
    for (int i = 0; i < 2048; i++) host->log(PLUGJAIL_LOG_INFO, line, sizeof line);
    for (int i = 0; i < 256; i++) {
        ssize_t w = write(1, line, sizeof line);
        (void)w;
    }
    return host->write(out, input, len) == 0 ? PLUGJAIL_OK : PLUGJAIL_FAILED;
}

const char *const methods[] = {"echo", "ticks", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "echo_noisy", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
