// The shared-memory section's plugin (benches/suite/shm.rs), loaded both in the jail and
// in the bench process itself (the in-process floor):
//   echo  → the input
//   gain  input: interleaved stereo float frames → the same frames at half the level
#include <cstring>
#include <vector>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
std::vector<float> buf;

int init(const plugjail_host *h) {
    host = h;
    buf.reserve(4096);
    return 0;
}

int call(const char *method, const uint8_t *in, size_t len, plugjail_output *out) {
    if (std::strcmp(method, "echo") == 0) return host->write(out, in, len);
    if (std::strcmp(method, "gain") == 0) {
        size_t n = len / sizeof(float);
        buf.resize(n);
        std::memcpy(buf.data(), in, n * sizeof(float));
        for (float &s : buf) s *= 0.5f;
        return host->write(out, buf.data(), n * sizeof(float));
    }
    return 1;
}

const char *const methods[] = {"echo", "gain", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "gain", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
