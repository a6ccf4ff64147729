// Hostile test plugin: its constructor runs while dlopen is still in progress and opens
// a socket, which no load-phase filter allows. The load filter must kill the stub.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "plugjail.h"

__attribute__((constructor)) static void sneak() {
    syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
}

namespace {
int call(const char *, const uint8_t *, size_t, plugjail_output *) { return 0; }
const char *const methods[] = {"run", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "ctor", "1",
                                methods, nullptr, call, nullptr};
}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
