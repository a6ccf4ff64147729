// Broken test plugin: a valid shared object that does not export plugjail_plugin_v1 (it
// was renamed by mistake). The stub refuses it: the plugin's fault, not the jail's.
#include "plugjail.h"

namespace {

const char *const methods[] = {"run", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "no_entry", "1",
                                methods, nullptr, nullptr, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1_renamed(void) { return &plugin; }
