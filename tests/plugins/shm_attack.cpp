// Hostile test plugin for shared-memory calls (docs/protocol.md, "Shared-memory calls").
// It finds the region in its own address space (/proc/self/maps, which the test profile
// lets it read; a real plugin could find it by scanning its mappings) and attacks the host
// through it. The stub's answer is always written after call() returns, so every forgery
// below is published first and the call then waits, to be sure the host sees the forgery.
//   echo          → the input (normal path)
//   log           → logs "line N" for N in 0..input[0] (info), then echoes the input
//   fail          → ERROR plugin, status 7, message "refused"
//   big           input: decimal N → N bytes of 'b'
//   peek          → the request area's bytes from the end of this CALL to 64 bytes past it
//                   (what earlier calls left there)
//   found         → "yes" when the region was found at init, else "no"
//   rewrite_layout  overwrites the region's layout header (offsets, sizes) with garbage,
//                   then echoes: the host never rereads it, so the answer is right
//   forge_length  publishes a RESULT header claiming 4 GiB - 16 bytes, for this call's id
//   forge_id      publishes a RESULT for call id + 1000
//   forge_type    publishes a header of an unknown frame type with flags set
//   futex_spin    never answers; threads flip resp_seq, clear host_waiting and hammer
//                 FUTEX_WAKE on it until the jail ends
//   never         never answers (sleeps)
//   keep_writing  answers "answer", and leaves a thread that scribbles over the response
//                 area (header and payload) for 2 s from the host's next request on
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
uint8_t *base = nullptr;

uint64_t u64_at(size_t off) {
    uint64_t v;
    std::memcpy(&v, base + off, 8);
    return v;
}

// The layout as the region said it at init (the attacks below may overwrite the header).
size_t req_off, resp_off, resp_len;

std::atomic<uint32_t> *word(size_t off) { return reinterpret_cast<std::atomic<uint32_t> *>(base + off); }

int init(const plugjail_host *h) {
    host = h;
    FILE *maps = std::fopen("/proc/self/maps", "r");
    if (!maps) return 0;
    char line[512];
    while (std::fgets(line, sizeof line, maps)) {
        if (std::strstr(line, "memfd:plugjail-shm")) {
            unsigned long start = std::strtoul(line, nullptr, 16);
            base = reinterpret_cast<uint8_t *>(start);
        }
    }
    std::fclose(maps);
    if (base) {
        req_off = u64_at(24);
        resp_off = u64_at(40);
        resp_len = u64_at(48);
    }
    return 0;
}

uint64_t current_id() {
    uint64_t id;
    std::memcpy(&id, base + req_off + 8, 8);
    return id;
}

// Writes a 16-byte frame header into the response area and announces it as the answer to
// the request in progress.
void publish(uint32_t len, uint16_t type, uint16_t flags, uint64_t id) {
    uint8_t h[16];
    std::memcpy(h, &len, 4);
    std::memcpy(h + 4, &type, 2);
    std::memcpy(h + 6, &flags, 2);
    std::memcpy(h + 8, &id, 8);
    std::memcpy(base + resp_off, h, 16);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint32_t seq = word(64)->load();
    word(128)->store(seq);
    syscall(SYS_futex, base + 128, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

void sleep_forever() {
    for (;;) sleep(1);
}

int reply(plugjail_output *out, const void *p, size_t n) { return host->write(out, p, n); }

int call(const char *method, const uint8_t *in, size_t len, plugjail_output *out) {
    std::string m(method);
    if (m == "echo") return reply(out, in, len);
    if (m == "found") return reply(out, base ? "yes" : "no", base ? 3 : 2);
    if (m == "log") {
        int n = len > 0 ? in[0] : 0;
        for (int i = 0; i < n; i++) {
            std::string l = "line " + std::to_string(i);
            host->log(PLUGJAIL_LOG_INFO, l.data(), l.size());
        }
        return reply(out, in, len);
    }
    if (m == "fail") {
        host->fail(out, "refused", 7);
        return 7;
    }
    if (m == "big") {
        std::string s(reinterpret_cast<const char *>(in), len);
        size_t n = std::strtoul(s.c_str(), nullptr, 10);
        std::string b(n, 'b');
        return reply(out, b.data(), b.size());
    }
    if (!base) {
        host->fail(out, "no region", 9);
        return 9;
    }
    if (m == "peek") {
        // This CALL: header, length byte, "peek", no input.
        size_t end = req_off + 16 + 1 + 4;
        return reply(out, base + end, 64);
    }
    if (m == "rewrite_layout") {
        for (size_t i = 0; i < 64; i++) base[i] = static_cast<uint8_t>(0xA5 ^ i);
        std::memset(base + 16, 0xFF, 48);
        return reply(out, in, len);
    }
    if (m == "forge_length") {
        publish(0xFFFFFFF0u, 3, 0, current_id());
        sleep_forever();
    }
    if (m == "forge_id") {
        publish(0, 3, 0, current_id() + 1000);
        sleep_forever();
    }
    if (m == "forge_type") {
        publish(0, 0x7777, 0x0101, current_id());
        sleep_forever();
    }
    if (m == "futex_spin") {
        for (int t = 0; t < 2; t++) {
            std::thread([] {
                for (uint32_t i = 0;; i++) {
                    word(128)->store(word(64)->load() + 1 + (i & 7));
                    word(132)->store(0);
                    syscall(SYS_futex, base + 128, FUTEX_WAKE, 1000, nullptr, nullptr, 0);
                }
            }).detach();
        }
        sleep_forever();
    }
    if (m == "never") sleep_forever();
    if (m == "keep_writing") {
        uint32_t seq = word(64)->load();
        std::thread([seq] {
            // Once the host has taken the answer (its next request is in), write over the
            // response area for two seconds: over the next answers, as they come.
            while (word(64)->load() == seq) {
            }
            timespec t0{};
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (uint32_t i = 0;; i++) {
                std::memset(base + resp_off, static_cast<int>(i & 0xFF), 64);
                timespec t{};
                clock_gettime(CLOCK_MONOTONIC, &t);
                if (t.tv_sec - t0.tv_sec >= 2) break;
            }
        }).detach();
        return reply(out, "answer", 6);
    }
    host->fail(out, "unknown", 7);
    return 1;
}

const char *const methods[] = {"echo",      "log",          "fail",     "big",
                               "peek",      "found",        "rewrite_layout",
                               "forge_length", "forge_id",  "forge_type",
                               "futex_spin", "never",       "keep_writing", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "shm_attack", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
