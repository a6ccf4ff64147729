// Test plugin for pausing and pinning: burns CPU, counts, and says where it runs.
//   spin   input: "MS" or "MS THREADS"   burns MS ms of the calling thread's CPU time
//                                        (paused time does not count), with THREADS more
//                                        threads spinning meanwhile → "spun MS"
//   fork   input: ignored                forks a child that spins until the jail ends
//                                        → the child's pid in the jail
//   count  input: ignored                → 1, 2, 3, ... (one counter per session)
//   cpus   input: ignored                → "CPU;LIST": sched_getcpu() and the CPUs of the
//                                        affinity mask, e.g. "0;0" or "1;0,1"
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
unsigned long counter = 0;

int init(const plugjail_host *h) {
    host = h;
    return 0;
}

long thread_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int reply(plugjail_output *out, const std::string &s) { return host->write(out, s.data(), s.size()); }

int call(const char *method, const uint8_t *in, size_t len, plugjail_output *out) {
    std::string input(reinterpret_cast<const char *>(in), len);
    if (std::strcmp(method, "spin") == 0) {
        long ms = 0, threads = 0;
        std::sscanf(input.c_str(), "%ld %ld", &ms, &threads);
        std::atomic<bool> done{false};
        std::vector<std::thread> helpers;
        for (long i = 0; i < threads; i++) {
            helpers.emplace_back([&done] {
                while (!done.load(std::memory_order_relaxed)) {
                }
            });
        }
        long start = thread_cpu_ms();
        volatile unsigned long sink = 0;
        while (thread_cpu_ms() - start < ms) {
            for (int i = 0; i < 100000; i++) sink = sink + i;
        }
        done = true;
        for (auto &t : helpers) t.join();
        return reply(out, "spun " + std::to_string(ms));
    }
    if (std::strcmp(method, "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            for (volatile unsigned long i = 0;; i++) {
            }
        }
        return reply(out, std::to_string(pid));
    }
    if (std::strcmp(method, "count") == 0) {
        return reply(out, std::to_string(++counter));
    }
    if (std::strcmp(method, "cpus") == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) != 0) {
            host->fail(out, "sched_getaffinity failed", 24);
            return 1;
        }
        std::string list;
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (CPU_ISSET(c, &set)) list += (list.empty() ? "" : ",") + std::to_string(c);
        }
        return reply(out, std::to_string(sched_getcpu()) + ";" + list);
    }
    return 1;
}

const char *const methods[] = {"spin", "fork", "count", "cpus", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "spin", "1",
                                methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
