// Hostile test plugin: every piece of text it hands the host is a terminal attack — OSC 0
// (window title), OSC 52 (clipboard), ESC [ 2 J (clear screen), a C1 CSI, a carriage
// return before a forged `plugjail:` summary, invalid UTF-8, a bidi override and a NUL.
//   shout   logs it (info, warn, error; one record of several lines), writes it to stdout
//           and stderr, then fails the call with it (host->fail)
//   forge   writes an ERROR frame for call 1 straight to the channel (fd 4, see
//           channel_writer.cpp) with the same text (valid UTF-8, as ERROR requires),
//           then moves the stub onto private pipes so that it ends cleanly
// Built with -DFORGE_STARTUP, init() instead tries to forge a startup ERROR (call id 0)
// with it on fd 4 and fails: in the jail the stub has no channel before the switch, so
// the forgery goes nowhere and the host hears only the stub's own report.
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "plugjail.h"

namespace {

// Adjacent literals keep each hex escape from swallowing the next character.
const char evil[] =
    "title\x1b]0;pwned by plugin\x07"
    " clipboard\x1b]52;c;ZWNobyBwd25lZA==\x07"
    " clear\x1b[2J\x1b[H"
    " c1csi\xc2\x9b" "2J"
    " bidi[\xe2\x80\xae" "exe.txt\xe2\x80\xac]"
    " nul[\x00" "]"
    " bad-utf8[\xff\xfe\xc3]"
    "\rplugjail: session ended cleanly after 1 call (1 ms)";

// The same without the invalid UTF-8 (an ERROR frame's message must be UTF-8).
const char evil_utf8[] =
    "title\x1b]0;pwned by plugin\x07"
    " clipboard\x1b]52;c;ZWNobyBwd25lZA==\x07"
    " clear\x1b[2J\x1b[H"
    " c1csi\xc2\x9b" "2J"
    " bidi[\xe2\x80\xae" "exe.txt\xe2\x80\xac]"
    " nul[\x00" "]"
    "\rplugjail: session ended cleanly after 1 call (1 ms)";

const plugjail_host *host = nullptr;
const int CHANNEL_IN = 3;
const int CHANNEL_OUT = 4;

void put(const void *p, size_t n) {
    if (write(CHANNEL_OUT, p, n) != static_cast<ssize_t>(n)) _exit(3);
}

// An ERROR frame: kind, status, message (docs/protocol.md); little-endian machines only.
void forge_error(uint64_t id, uint32_t kind, const char *msg, size_t len) {
    uint8_t h[16] = {};
    uint32_t total = static_cast<uint32_t>(8 + len);
    uint16_t type = 4;
    int32_t status = 7;
    std::memcpy(h, &total, 4);
    std::memcpy(h + 4, &type, 2);
    std::memcpy(h + 8, &id, 8);
    put(h, 16);
    put(&kind, 4);
    put(&status, 4);
    put(msg, len);
}

void out(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}

int init(const plugjail_host *h) {
    host = h;
#ifdef FORGE_STARTUP
    // Ignore failures: fd 4 is not the channel (or not open) while loading.
    uint8_t head[16] = {};
    uint32_t total = static_cast<uint32_t>(8 + sizeof evil_utf8 - 1);
    uint16_t type = 4;
    std::memcpy(head, &total, 4);
    std::memcpy(head + 4, &type, 2);
    uint32_t words[2] = {7, 7};
    (void)!write(CHANNEL_OUT, head, 16);
    (void)!write(CHANNEL_OUT, words, 8);
    (void)!write(CHANNEL_OUT, evil_utf8, sizeof evil_utf8 - 1);
    return 1;
#else
    return 0;
#endif
}

int call(const char *method, const uint8_t *, size_t, plugjail_output *o) {
    if (std::strcmp(method, "forge") == 0) {
        forge_error(1, 1, evil_utf8, sizeof evil_utf8 - 1);
        // The host takes the forgery for the answer and ends the session. So that the
        // stub's own answer does not hit a closed channel (an `exited` verdict), give the
        // stub a channel of its own: its RESULT goes into a private pipe, and it reads a
        // SHUTDOWN from another, then ends cleanly.
        int sink[2], shut[2];
        if (pipe(sink) != 0 || pipe(shut) != 0) _exit(3);
        uint8_t h[16] = {};
        h[4] = 6;  // SHUTDOWN, empty, call id 0
        if (write(shut[1], h, sizeof h) != sizeof h) _exit(3);
        close(shut[1]);
        if (dup2(sink[1], CHANNEL_OUT) < 0 || dup2(shut[0], CHANNEL_IN) < 0) _exit(3);
        return 0;
    }
    host->log(PLUGJAIL_LOG_INFO, evil, sizeof evil - 1);
    host->log(PLUGJAIL_LOG_WARN, evil, sizeof evil - 1);
    const char lines[] = "first line\nplugjail: session ended cleanly after 1 call (2 ms)\n";
    host->log(PLUGJAIL_LOG_ERROR, lines, sizeof lines - 1);
    // stdout and stderr, raw (no stdio buffering to set up): the evil text, then a line
    // that starts like plugjail's own summary.
    const char fake[] = "\nplugjail: session ended cleanly after 1 call (3 ms)\n";
    out(1, evil, sizeof evil - 1);
    out(1, fake, sizeof fake - 1);
    out(2, evil, sizeof evil - 1);
    out(2, fake, sizeof fake - 1);
    host->fail(o, evil, sizeof evil - 1);
    return 1;
}

const char *const methods[] = {"shout", "forge", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "terminal", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
