// `plugjail` not found: a SpawnError that lists every place looked at, and an explicit
// path or $PLUGJAIL that does not work is never silently replaced by another binary.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "check.hpp"

namespace {

plugjail::SpawnError spawn_error(const plugjail::SessionOptions &o) {
    try {
        plugjail::Session s = plugjail::Session::spawn(o);
    } catch (const plugjail::SpawnError &e) {
        return e;
    }
    return plugjail::SpawnError(plugjail::SpawnErrc::spawn_failed, "no error");
}

bool mentions(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

}  // namespace

int main() {
    plugjail::SessionOptions o;
    o.profile = "profile.yaml";
    o.plugin = "plugin.so";

    char tmpl[] = "/tmp/plugjail-not-found-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    const std::string a = dir + "/a", b = dir + "/b";
    ::mkdir(a.c_str(), 0755);
    ::mkdir(b.c_str(), 0755);
    ::mkdir((b + "/plugjail").c_str(), 0755);  // a directory is no executable
    const std::string not_exec = a + "/not-exec";
    std::ofstream(not_exec) << "#!/bin/sh\n";

    // Nothing anywhere: PLUGJAIL unset, PATH without plugjail.
    ::unsetenv("PLUGJAIL");
    ::setenv("PATH", (a + ":" + b).c_str(), 1);
    plugjail::SpawnError e = spawn_error(o);
    std::cout << "PATH only: " << e.what() << "\n";
    CHECK(e.code() == plugjail::SpawnErrc::not_found);
    CHECK_EQ(e.looked().size(), std::size_t{4});
    CHECK(mentions(e.what(), "SessionOptions::plugjail (not set)"));
    CHECK(mentions(e.what(), "$PLUGJAIL (not set)"));
    CHECK(mentions(e.what(), a + "/plugjail (does not exist)"));
    CHECK(mentions(e.what(), b + "/plugjail (not a regular file)"));

    ::unsetenv("PATH");
    e = spawn_error(o);
    CHECK(e.code() == plugjail::SpawnErrc::not_found && mentions(e.what(), "$PATH (not set)"));

    // $PLUGJAIL names something unusable: an error, not a fallback to PATH.
    ::setenv("PATH", "/usr/bin:/bin", 1);
    ::setenv("PLUGJAIL", (dir + "/missing").c_str(), 1);
    e = spawn_error(o);
    std::cout << "$PLUGJAIL: " << e.what() << "\n";
    CHECK(e.code() == plugjail::SpawnErrc::not_found);
    CHECK(mentions(e.what(), "$PLUGJAIL " + dir + "/missing (does not exist)"));
    CHECK(!mentions(e.what(), "/usr/bin/plugjail"));

    // The explicit option wins over $PLUGJAIL, and is reported as such.
    o.plugjail = not_exec;
    e = spawn_error(o);
    std::cout << "explicit: " << e.what() << "\n";
    CHECK(e.code() == plugjail::SpawnErrc::not_found);
    CHECK_EQ(e.looked().size(), std::size_t{1});
    CHECK(mentions(e.what(), "SessionOptions::plugjail " + not_exec + " (not executable)"));

    // Missing options are refused before anything is looked up.
    plugjail::SessionOptions empty;
    e = spawn_error(empty);
    CHECK(e.code() == plugjail::SpawnErrc::bad_options);

    ::unlink(not_exec.c_str());
    ::rmdir((b + "/plugjail").c_str());
    ::rmdir(a.c_str());
    ::rmdir(b.c_str());
    ::rmdir(dir.c_str());
    return check::result();
}
