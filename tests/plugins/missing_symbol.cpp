// Broken test plugin: calls a function no library defines. The stub dlopens with
// RTLD_NOW, so loading fails ("undefined symbol: ...") before any of its code runs: the
// plugin's fault, not the jail's. The symbol's name is plugin-chosen text in the
// verdict; it must stay out of the summary line.
#include <cstring>

#include "plugjail.h"

extern "C" int plugjail_test_symbol_nobody_defines(void);

namespace {

int call(const char *method, const uint8_t *, size_t, plugjail_output *) {
    return std::strcmp(method, "run") == 0 ? plugjail_test_symbol_nobody_defines() : 1;
}

const char *const methods[] = {"run", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION,
                                "missing_symbol", "1", methods, nullptr, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
