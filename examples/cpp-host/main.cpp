// cpp-host: one plugin call through plugjail/host.hpp, the way a C++ application makes it.
//
//   cpp-host [--plugjail PATH] [--deadline MS] PROFILE PLUGIN METHOD [INPUT]
//
// The result goes to stdout as bytes; the plugin's log lines and the verdict go to stderr,
// escaped (plugin text is untrusted). Exit status: 0 answered, 1 the plugin answered with
// an error, 2 the session failed, 64 bad usage, 127 plugjail not found.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <plugjail/host.hpp>

int main(int argc, char **argv) {
    plugjail::SessionOptions opts;
    std::optional<plugjail::Millis> deadline;
    int i = 1;
    for (; i + 1 < argc && std::strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (std::strcmp(argv[i], "--plugjail") == 0) {
            opts.plugjail = argv[i + 1];
        } else if (std::strcmp(argv[i], "--deadline") == 0) {
            deadline = plugjail::Millis(std::atoll(argv[i + 1]));
        } else {
            break;
        }
    }
    if (argc - i < 3 || argc - i > 4) {
        std::cerr << "usage: cpp-host [--plugjail PATH] [--deadline MS] PROFILE PLUGIN METHOD [INPUT]\n";
        return 64;
    }
    opts.profile = argv[i];
    opts.plugin = argv[i + 1];
    const std::string method = argv[i + 2];
    const std::string input = argc - i == 4 ? argv[i + 3] : "";
    opts.on_log = [](plugjail::LogLevel level, const plugjail::Untrusted &text) {
        std::cerr << plugjail::record(plugjail::to_string(level), text);
    };

    try {
        plugjail::Session session = plugjail::Session::spawn(opts);
        plugjail::CallResult r = deadline ? session.call(method, input, *deadline) : session.call(method, input);
        int status = 0;
        if (r) {
            std::fwrite(r.output().data(), 1, r.output().size(), stdout);
            std::fputc('\n', stdout);
        } else {
            std::cerr << "cpp-host: " << r.error().describe() << "\n";
            status = r.error().code == plugjail::CallErrc::plugin_error ? 1 : 2;
        }
        const plugjail::Verdict v = session.close();
        std::cerr << "cpp-host: verdict: " << v.summary() << "\n";
        return status;
    } catch (const plugjail::SpawnError &e) {
        std::cerr << "cpp-host: " << e.what() << "\n";
        return e.code() == plugjail::SpawnErrc::not_found ? 127 : 2;
    }
}
