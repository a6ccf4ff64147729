// Hostile test plugin: writes straight to the channel's write end, which the tests place
// at fd 4 (a real plugin can find it the same way: it shares the stub's descriptors).
//   garbage       bytes that are no frame at all
//   huge_length   a RESULT header claiming a 4 GiB payload
//   half_frame    a header for 100 bytes, 10 bytes of them, then exit
//   second_hello  a well-formed HELLO in the middle of a call
//   wrong_id      a RESULT for a call that was never made
//   forge_session a SESSION frame (plugjail's own, before the jail) claiming a 4 GiB cap
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "plugjail.h"

namespace {

const int CHANNEL_OUT = 4;

void header(uint8_t *h, uint32_t len, uint16_t type, uint64_t id) {
    std::memset(h, 0, 16);
    std::memcpy(h, &len, 4);  // little-endian machines only, like the protocol
    std::memcpy(h + 4, &type, 2);
    std::memcpy(h + 8, &id, 8);
}

void put(const void *p, size_t n) {
    if (write(CHANNEL_OUT, p, n) != static_cast<ssize_t>(n)) _exit(3);
}

int call(const char *method, const uint8_t *, size_t, plugjail_output *) {
    uint8_t h[16];
    if (std::strcmp(method, "garbage") == 0) {
        const char junk[] = "this is not a frame, just a plugin being rude to its host";
        put(junk, sizeof junk);
    } else if (std::strcmp(method, "huge_length") == 0) {
        header(h, 0xffffffffu, 3, 1);
        put(h, 16);
        put("AAAAAAAAAAAAAAAA", 16);
    } else if (std::strcmp(method, "half_frame") == 0) {
        header(h, 100, 3, 1);
        put(h, 16);
        put("0123456789", 10);
        _exit(0);
    } else if (std::strcmp(method, "second_hello") == 0) {
        const uint8_t body[] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 'x', 1, '1', 0, 0};
        header(h, sizeof body, 1, 0);
        put(h, 16);
        put(body, sizeof body);
    } else if (std::strcmp(method, "forge_session") == 0) {
        uint8_t body[24] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
        header(h, sizeof body, 7, 0);
        put(h, 16);
        put(body, sizeof body);
    } else if (std::strcmp(method, "wrong_id") == 0) {
        header(h, 2, 3, 999);
        put(h, 16);
        put("hi", 2);
    }
    return 0;
}

const char *const methods[] = {"garbage", "huge_length", "half_frame", "second_hello",
                               "wrong_id", "forge_session", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "rude", "1",
                                methods, nullptr, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
