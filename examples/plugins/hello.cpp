// hello: the smallest useful plugjail plugin.
//
//   g++ -std=c++17 -O2 -shared -fPIC -I../../include -o hello.so hello.cpp
//
// Methods:
//   greet   input: a name (bytes)    output: "hello, <name>"
//   echo    input: anything          output: the same bytes
//   fail    input: ignored           an ERROR frame with status 7 (to see failures)
#include <cstring>
#include <string>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;

int init(const plugjail_host *h) {
    host = h;
    const char msg[] = "hello plugin ready";
    host->log(PLUGJAIL_LOG_INFO, msg, sizeof msg - 1);
    return PLUGJAIL_OK;
}

int call(const char *method, const uint8_t *input, size_t len, plugjail_output *out) {
    if (std::strcmp(method, "greet") == 0) {
        std::string s = "hello, ";
        s.append(reinterpret_cast<const char *>(input), len);
        return host->write(out, s.data(), s.size()) == 0 ? PLUGJAIL_OK : PLUGJAIL_FAILED;
    }
    if (std::strcmp(method, "echo") == 0) {
        return host->write(out, input, len) == 0 ? PLUGJAIL_OK : PLUGJAIL_FAILED;
    }
    const char why[] = "asked to fail";
    host->fail(out, why, sizeof why - 1);
    return 7;
}

const char *const methods[] = {"greet", "echo", "fail", nullptr};

const plugjail_plugin plugin = {
    sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "hello", "1.0.0", methods,
    init, call, nullptr,
};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
