// plugjail/host_multi.hpp against `plugjail host`: calls multiplexed by id, a plugin's
// ERROR, a crash, cancel by id, controls, events, SHUTDOWN; the socket front end; and an
// invalid configuration reported as such.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <plugjail/host_multi.hpp>

#include "check.hpp"

namespace {

/// A YAML double-quoted scalar (JSON's string syntax is a subset of YAML's).
std::string quote(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string write_config(const std::string &dir) {
    const std::string profile = quote(check::env("PLUGJAIL_TEST_PROFILE"));
    const std::string path = dir + "/host.yaml";
    std::ofstream f(path);
    f << "version: 1\nplugins:\n"
      << "  - id: hello\n    plugin: " << quote(check::env("PLUGJAIL_TEST_HELLO")) << "\n    profile: " << profile
      << "\n    pool: {warm: 1, max: 2}\n"
      << "  - id: crash\n    plugin: " << quote(check::env("PLUGJAIL_TEST_CRASH")) << "\n    profile: " << profile
      << "\n    pool: {warm: 1, max: 1}\n    call_time: 20s\n";
    return path;
}

}  // namespace

int main() {
    char tmpl[] = "/tmp/plugjail-host-multi-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    const std::string config = write_config(dir);

    std::mutex mu;
    std::vector<plugjail::HostEvent> events;
    plugjail::HostOptions o;
    o.config = config;
    o.on_event = [&](const plugjail::HostEvent &e) {
        std::lock_guard<std::mutex> lock(mu);
        events.push_back(e);
    };
    {
        plugjail::HostClient host = plugjail::HostClient::spawn(o);
        CHECK(host.pid() > 0);
        CHECK(host.hello().get_uint64("protocol") == std::uint64_t{1});
        const std::vector<std::string> ids = host.plugin_ids();
        CHECK(ids.size() == 2 && ids[0] == "hello" && ids[1] == "crash");

        // Many calls in flight on one connection, answered by id.
        std::vector<plugjail::HostCall> calls;
        std::set<std::uint64_t> seen;
        for (int i = 0; i < 24; i++) calls.push_back(host.call("hello", "greet", "n" + std::to_string(i)));
        for (int i = 0; i < 24; i++) {
            seen.insert(calls[i].id);
            plugjail::HostReply r = calls[i].result.get();
            CHECK(r.ok());
            CHECK_EQ(r.output(), "hello, n" + std::to_string(i));
        }
        CHECK_EQ(seen.size(), std::size_t{24});

        // The plugin's ERROR: typed, its message untrusted.
        plugjail::HostReply r = host.call("hello", "fail").result.get();
        std::cout << "fail: " << r.error().describe() << "\n";
        CHECK(!r.ok());
        CHECK_EQ(r.error().kind, std::string("plugin_error"));
        CHECK_EQ(r.error().plugin_kind, std::string("plugin"));
        CHECK(r.error().status == 7);
        CHECK(r.error().plugin_message && r.error().plugin_message->raw() == "asked to fail");
        bool threw = false;
        try {
            (void)r.value();
        } catch (const plugjail::HostException &e) {
            threw = e.error().kind == "plugin_error";
        }
        CHECK(threw);

        r = host.call("nobody", "greet").result.get();
        CHECK(!r.ok() && r.error().kind == "unknown_plugin");

        // A crash ends that call's jail; the host restarts it.
        r = host.call("crash", "segv").result.get();
        std::cout << "segv: " << r.error().describe() << "\n";
        CHECK(!r.ok() && r.error().kind == "jail_ended");
        CHECK_EQ(r.error().outcome, std::string("signaled"));

        // Cancel by id: the hanging call answers `cancelled`, the others are untouched.
        plugjail::HostCall hang = host.call("crash", "hang");
        plugjail::HostCall greet = host.call("hello", "greet", "during");
        CHECK(greet.result.get().value() == "hello, during");
        CHECK(hang.result.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
        host.cancel(hang.id);
        CHECK(hang.result.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
        r = hang.result.get();
        std::cout << "hang: " << r.error().describe() << "\n";
        CHECK(!r.ok() && r.error().kind == "cancelled");
        host.cancel(999999);  // not in flight: ignored

        // Controls.
        r = host.status().get();
        CHECK(r.ok() && r.done().get_string("op") && *r.done().get_string("op") == "status");
        CHECK(r.done().get("plugins") && r.done().get("plugins")->items().size() == 2);
        r = host.resume("hello").get();
        CHECK(!r.ok() && r.error().kind == "invalid_transition");
        r = host.pause("hello").get();
        CHECK(r.ok());
        r = host.resume("hello").get();
        CHECK(r.ok());
        CHECK(host.call("hello", "greet", "again").result.get().value() == "hello, again");

        const int st = host.shutdown();
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        r = host.call("hello", "greet").result.get();
        CHECK(!r.ok() && r.error().kind == "disconnected");
    }
    {
        std::lock_guard<std::mutex> lock(mu);
        std::set<std::string> kinds;
        std::uint64_t last = 0;
        bool increasing = true;
        for (const auto &e : events) {
            kinds.insert(e.event);
            if (e.seq <= last && last != 0) increasing = false;
            last = e.seq;
        }
        std::cout << events.size() << " events\n";
        CHECK(kinds.count("jail_ready") == 1);
        CHECK(kinds.count("jail_ended") == 1);
        CHECK(increasing);
    }

    // The socket front end: a server the test starts, a client that connects.
    {
        const std::string sock = dir + "/host.sock";
        const std::string exe = plugjail::detail::find_plugjail("", "the test");  // as the client finds it
        const pid_t server =
            plugjail::detail::spawn_process(exe, {"plugjail", "host", "--config", config, "--listen", sock}, {}, true);
        std::optional<plugjail::HostClient> client;
        for (int i = 0; i < 300 && !client; i++) {
            try {
                client.emplace(plugjail::HostClient::connect(sock));
            } catch (const std::system_error &) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
        CHECK(client.has_value());
        if (client) {
            CHECK(client->pid() == -1);
            CHECK(client->call("hello", "greet", "socket").result.get().value() == "hello, socket");
            client->close();
            CHECK(!client->call("hello", "greet").result.get().ok());
        }
        ::kill(server, SIGTERM);
        int st = 0;
        ::waitpid(server, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }

    // An invalid configuration: plugjail host exits 2 before its HELLO.
    {
        const std::string bad = dir + "/bad.yaml";
        std::ofstream(bad) << "version: 1\nplugins: 5\n";
        plugjail::HostOptions b;
        b.config = bad;
        try {
            plugjail::HostClient h = plugjail::HostClient::spawn(b);
            CHECK(!"spawn succeeded");
        } catch (const plugjail::HostConnectError &e) {
            std::cout << "bad config: " << e.what() << "\n";
            CHECK(std::string(e.what()).find("exited with status 2") != std::string::npos);
        }
        ::unlink(bad.c_str());
    }
    ::unlink(config.c_str());
    ::rmdir(dir.c_str());
    return check::result();
}
