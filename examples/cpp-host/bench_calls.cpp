// bench_calls: the round trip of small calls through plugjail/host.hpp, against a raw pipe.
//
//   bench_calls [--cpu N] [-n CALLS] [--size BYTES] [--ignore-sigpipe] PROFILE HELLO_SO
//
// Pins itself (and the jail, `plugjail serve --cpus N`) to one CPU, as the Rust benchmark's
// `same_cpu` placement does (docs/performance.md), makes CALLS `echo` calls of BYTES bytes
// (default 10000 of 16) after 1000 to warm up, and prints median, p99 and min in
// microseconds. Then the same through a raw pipe: /bin/cat, pinned to the same CPU,
// echoing the same bytes with one write and one read per message (no framing, no poll),
// and the ratio. With --ignore-sigpipe the program ignores SIGPIPE first, as most servers
// do, which spares the client's SIGPIPE mask around each write (include/plugjail/host.hpp).
// plugjail is found as the client finds it ($PLUGJAIL, then PATH).
#include <sched.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <plugjail/host.hpp>

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
    double median, p99, min;
};

Stats stats(std::vector<double> us) {
    std::sort(us.begin(), us.end());
    const std::size_t n = us.size();
    const std::size_t p99 = n >= 100 ? (n * 99 + 99) / 100 - 1 : n - 1;  // nearest rank
    return {us[n / 2], us[p99], us[0]};
}

double since(Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

/// The same echo through /bin/cat: write the message, read it back.
std::vector<double> raw_pipe(int calls, int warmup, const std::string &msg) {
    auto to = plugjail::detail::make_pipe();
    auto from = plugjail::detail::make_pipe();
    const pid_t pid = plugjail::detail::spawn_process("/bin/cat", {"cat"}, {{to[0], 0}, {from[1], 1}}, true);
    ::close(to[0]);
    ::close(from[1]);
    std::vector<double> us;
    std::string buf(msg.size(), '\0');
    for (int i = 0; i < warmup + calls; i++) {
        const auto t = Clock::now();
        if (::write(to[1], msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) std::abort();
        std::size_t got = 0;
        while (got < msg.size()) {
            const ssize_t r = ::read(from[0], &buf[got], msg.size() - got);
            if (r <= 0) std::abort();
            got += static_cast<std::size_t>(r);
        }
        if (i >= warmup) us.push_back(since(t));
    }
    ::close(to[1]);
    ::close(from[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return us;
}

}  // namespace

int main(int argc, char **argv) {
    int cpu = 0, calls = 10000, size = 16;
    bool ignore_sigpipe = false;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (std::strcmp(argv[i], "--ignore-sigpipe") == 0) {
            ignore_sigpipe = true;
            i--;
        } else if (std::strcmp(argv[i], "--cpu") == 0) cpu = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "-n") == 0) calls = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--size") == 0) size = std::atoi(argv[i + 1]);
        else break;
    }
    if (argc - i != 2 || calls < 1 || size < 0) {
        std::fprintf(stderr,
                     "usage: bench_calls [--cpu N] [-n CALLS] [--size BYTES] [--ignore-sigpipe] PROFILE HELLO_SO\n");
        return 64;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
        std::perror("sched_setaffinity");
        return 1;
    }
    if (ignore_sigpipe) std::signal(SIGPIPE, SIG_IGN);
    const int warmup = 1000;
    const std::string msg(static_cast<std::size_t>(size), 'b');

    plugjail::SessionOptions o;
    o.profile = argv[i];
    o.plugin = argv[i + 1];
    o.cpus = std::to_string(cpu);
    plugjail::Session s = plugjail::Session::spawn(o);
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(calls));
    for (int k = 0; k < warmup + calls; k++) {
        const auto t = Clock::now();
        plugjail::CallResult r = s.call("echo", msg);
        const double d = since(t);
        if (!r || r.output().size() != msg.size()) {
            std::fprintf(stderr, "call %d failed: %s\n", k, r.error().describe().c_str());
            return 1;
        }
        if (k >= warmup) us.push_back(d);
    }
    const plugjail::Verdict v = s.close();
    const Stats c = stats(us);
    const Stats raw = stats(raw_pipe(calls, warmup, msg));
    std::printf("%d-byte call round trip, host and server on cpu %d (us)   median       p99       min      n\n",
                size, cpu);
    std::printf("  raw_pipe (/bin/cat)            %9.2f %9.2f %9.2f %6d\n", raw.median, raw.p99, raw.min, calls);
    std::printf("  %-30s %9.2f %9.2f %9.2f %6d\n",
                ignore_sigpipe ? "host.hpp call, SIGPIPE ignored" : "host.hpp Session::call", c.median, c.p99,
                c.min, calls);
    std::printf("  host.hpp/raw_pipe              %8.2fx %8.2fx %8.2fx\n", c.median / raw.median, c.p99 / raw.p99,
                c.min / raw.min);
    std::printf("verdict: %s\n", v.summary().c_str());
    return v.ok() ? 0 : 1;
}
