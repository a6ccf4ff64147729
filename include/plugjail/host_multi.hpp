// plugjail/host_multi.hpp — a C++17 client of `plugjail host`, the multi-plugin host
// (docs/host-protocol.md): warm pools of jails, calls multiplexed by id, events, cancel by
// id, pause/resume/release/status/upgrade. Header-only, standard library only; see
// docs/clients.md ("C++").
//
//   plugjail::HostOptions o;
//   o.config = "host.yaml";
//   o.on_event = [](const plugjail::HostEvent &e) { ... };       // on the reader thread
//   plugjail::HostClient host = plugjail::HostClient::spawn(o);  // waits for HELLO
//   plugjail::HostCall c = host.call("hello", "greet", "world");
//   plugjail::HostReply r = c.result.get();                      // or host.cancel(c.id)
//   host.shutdown();                                             // every call answered
//
// One reader thread per client reads the server's frames and fulfils the futures; any
// thread may call, cancel or send controls (writes are serialised). Text from the plugin
// side (ERROR `plugin_message`, event fields such as `version`, `verdict`, `reason`,
// `cause`) is untrusted: HostError::plugin_message is an Untrusted, and event bodies are
// raw JSON whose strings must be escaped (plugjail::escape) before they are shown.
#ifndef PLUGJAIL_HOST_MULTI_HPP
#define PLUGJAIL_HOST_MULTI_HPP

#include <sys/socket.h>
#include <sys/un.h>

#include <condition_variable>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "host.hpp"

namespace plugjail {

/// The protocol version of `plugjail host` this client speaks.
inline constexpr std::uint32_t host_protocol_version = 1;
/// The cap on every frame's payload of `plugjail host` (16 MiB + 64 KiB), both ways.
inline constexpr std::uint32_t host_max_frame = (16u << 20) + (64u << 10);

/// A request that failed: the server's ERROR body, typed, or the client's own finding.
struct HostError {
    /// The server's kind (docs/host-protocol.md: plugin_error, timeout, cancelled,
    /// jail_ended, unknown_plugin, not_serving, queue_full, input_too_large, busy,
    /// shutting_down, …; accept unknown ones), or the client's own: `disconnected` (the
    /// connection ended before the answer), `protocol_violation` (the server's stream is
    /// out of step), `input_too_large` (above host_max_frame, nothing sent), `invalid`
    /// (a name longer than 65535 bytes, nothing sent).
    std::string kind;
    /// plugjail's (or the client's) own words, for logs. Never plugin text.
    std::string message;
    /// `plugin_message`: text from inside the jail (the plugin's error, or a reason that
    /// may quote it).
    std::optional<Untrusted> plugin_message;
    std::string plugin;       // `plugin`, when present
    std::string plugin_kind;  // plugin_error: the plugin protocol's ERROR kind name
    std::optional<std::int64_t> status;
    std::string outcome;      // jail_ended: the jail's verdict outcome
    std::string state;        // not_serving, invalid_transition
    /// The whole ERROR body (null for the client's own errors).
    json::Value body;

    /// One line for people, plugin text escaped and quoted.
    std::string describe() const {
        std::string s = kind + ": " + escape(message);
        if (!plugin.empty()) s += " (plugin " + escape(plugin) + ")";
        if (status) s += " (status " + std::to_string(*status) + ")";
        if (plugin_message) s += ": " + plugin_message->quoted();
        return s;
    }
};

/// HostReply::value()'s exception.
class HostException : public std::runtime_error {
public:
    explicit HostException(HostError e) : std::runtime_error(e.describe()), error_(std::move(e)) {}
    const HostError &error() const noexcept { return error_; }

private:
    HostError error_;
};

/// The answer to a CALL (RESULT: the output) or a CONTROL (DONE: its JSON body), or the
/// error.
class HostReply {
public:
    static HostReply result(std::string output) {
        HostReply r;
        r.ok_ = true;
        r.output_ = std::move(output);
        return r;
    }
    static HostReply done(json::Value body) {
        HostReply r;
        r.ok_ = true;
        r.done_ = std::move(body);
        return r;
    }
    static HostReply failure(HostError e) {
        HostReply r;
        r.error_ = std::move(e);
        return r;
    }

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    /// A call's output (the plugin's bytes); empty otherwise.
    const std::string &output() const noexcept { return output_; }
    /// A control's DONE body; null otherwise.
    const json::Value &done() const noexcept { return done_; }
    /// The failure; meaningless when ok().
    const HostError &error() const noexcept { return error_; }
    /// The output, or throws HostException.
    const std::string &value() const {
        if (!ok_) throw HostException(error_);
        return output_;
    }

private:
    bool ok_ = false;
    std::string output_;
    json::Value done_;
    HostError error_;
};

/// One event of the host (docs/host.md): the JSON body and its common fields. Strings in
/// `body` from the plugin side (`version`, `verdict`, `reason`, `cause`) are untrusted.
struct HostEvent {
    std::uint64_t seq = 0;
    std::uint64_t time_ms = 0;
    std::string plugin;
    /// state, jail_ready, jail_ended, restart, cancelled, activated, rolled_back, or one
    /// this client does not know (ignore it).
    std::string event;
    /// Events this connection lost just before this one (it did not read fast enough).
    std::uint64_t dropped_before = 0;
    json::Value body;

    /// A string field of the body as untrusted text (empty when absent).
    Untrusted text(std::string_view key) const {
        const std::string *s = body.get_string(key);
        return Untrusted(s ? *s : std::string());
    }
};

/// A call in flight: its id (for cancel()) and its answer.
struct HostCall {
    std::uint64_t id = 0;
    std::future<HostReply> result;
};

/// CONTROL operations.
enum class HostOp : std::uint8_t { pause = 1, resume = 2, release = 3, status = 4, upgrade = 5 };

/// Connecting failed after the process or socket was there: the server ended before its
/// HELLO, refused this client (kind forbidden, busy, shutting_down), or spoke another
/// protocol version.
class HostConnectError : public std::runtime_error {
public:
    HostConnectError(std::string kind, const std::string &what)
        : std::runtime_error(what), kind_(std::move(kind)) {}
    const std::string &kind() const noexcept { return kind_; }

private:
    std::string kind_;
};

struct HostOptions {
    /// The host configuration (YAML) for `plugjail host --config FILE`.
    std::string config;
    /// The plugjail executable. Empty: the PLUGJAIL environment variable, then PATH.
    std::string plugjail;
    /// Receives every EVENT, on the client's reader thread: keep it short, and never wait
    /// there for an answer of this client (the reader thread delivers them).
    std::function<void(const HostEvent &)> on_event;
    /// Let `plugjail host` write its messages (configuration errors among them) to this
    /// process's stderr. Default: /dev/null.
    bool inherit_stderr = false;
    /// How long spawn() and connect() wait for the server's HELLO.
    Millis hello_timeout{30000};
};

namespace detail {

/// The shared state of a HostClient: the connection, its reader thread, the requests in
/// flight.
class HostConn {
public:
    using Clock = std::chrono::steady_clock;

    HostConn(int rfd, int wfd, bool socket, pid_t pid, std::function<void(const HostEvent &)> on_event)
        : rfd_(rfd), wfd_(wfd), socket_(socket), pid_(pid), on_event_(std::move(on_event)) {}
    HostConn(const HostConn &) = delete;
    HostConn &operator=(const HostConn &) = delete;

    ~HostConn() {
        finish(std::chrono::seconds(10));
        if (reader_.joinable()) reader_.join();
    }

    void start_reader() {
        reader_ = std::thread([this] { read_loop(); });
    }

    /// Waits for HELLO; throws HostConnectError.
    void await_hello(Millis timeout) {
        std::unique_lock<std::mutex> lock(mu_);
        const bool got = cv_.wait_for(lock, timeout, [&] { return hello_seen_ || ended_; });
        if (hello_seen_ && hello_error_.empty()) return;
        std::string kind = hello_kind_.empty() ? std::string("disconnected") : hello_kind_;
        std::string why = hello_error_;
        if (!got) {
            kind = "timeout";
            why = "no HELLO from plugjail host within " + std::to_string(timeout.count()) + " ms";
        } else if (why.empty()) {
            why = "plugjail host ended before its HELLO";
        }
        lock.unlock();
        if (pid_ > 0) {
            const int st = finish(std::chrono::seconds(5));
            if (st >= 0 && WIFEXITED(st)) {
                why += " (it exited with status " + std::to_string(WEXITSTATUS(st));
                why += WEXITSTATUS(st) == 2 ? ": the configuration is invalid; `plugjail check FILE` lists the errors)"
                                            : ")";
            }
        }
        throw HostConnectError(kind, why);
    }

    const json::Value &hello() const noexcept { return hello_; }

    HostCall call(std::string_view plugin, std::string_view method, std::string_view input) {
        HostCall c;
        std::promise<HostReply> p;
        c.result = p.get_future();
        const std::size_t len = 2 + plugin.size() + 2 + method.size() + input.size();
        if (plugin.size() > 0xffff || method.size() > 0xffff) {
            p.set_value(client_error("invalid", "a plugin id or method longer than 65535 bytes"));
            return c;
        }
        if (len > host_max_frame) {
            p.set_value(client_error("input_too_large", "a CALL of " + std::to_string(len) +
                                                             " bytes does not fit the protocol's cap of " +
                                                             std::to_string(host_max_frame) + " bytes"));
            return c;
        }
        unsigned char n1[2], n2[2];
        put_u16(n1, static_cast<std::uint16_t>(plugin.size()));
        put_u16(n2, static_cast<std::uint16_t>(method.size()));
        c.id = send_request(0x102, std::move(p),
                            {std::string_view(reinterpret_cast<char *>(n1), 2), plugin,
                             std::string_view(reinterpret_cast<char *>(n2), 2), method, input});
        return c;
    }

    std::future<HostReply> control(HostOp op, std::string_view plugin, std::string_view argument) {
        std::promise<HostReply> p;
        std::future<HostReply> f = p.get_future();
        if (plugin.size() > 0xffff) {
            p.set_value(client_error("invalid", "a plugin id longer than 65535 bytes"));
            return f;
        }
        unsigned char head[3];
        head[0] = static_cast<unsigned char>(op);
        put_u16(head + 1, static_cast<std::uint16_t>(plugin.size()));
        send_request(0x108, std::move(p),
                     {std::string_view(reinterpret_cast<char *>(head), 3), plugin, argument});
        return f;
    }

    void cancel(std::uint64_t id) {
        std::lock_guard<std::mutex> lock(write_mu_);
        write_frame(0x107, id, {});
    }

    void send_shutdown() {
        std::lock_guard<std::mutex> lock(write_mu_);
        write_frame(0x106, 0, {});
    }

    /// Waits until the server's stream ended (every answer delivered), at most `grace`.
    bool await_end(Millis grace) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, grace, [&] { return ended_; });
    }

    /// Closes our sending side (the end of stdin stops a spawned host; a socket's
    /// connection ends), waits for the stream's end, reaps a spawned server. Returns its
    /// wait status (-1: none or unknown). Idempotent.
    int finish(Millis grace) {
        std::lock_guard<std::mutex> once(finish_mu_);
        if (finished_) return wait_status_;
        finished_ = true;
        {
            std::lock_guard<std::mutex> lock(write_mu_);
            if (socket_) {
                ::shutdown(wfd_, SHUT_WR);
            } else {
                close_fd(wfd_);
            }
        }
        if (!await_end(grace) && socket_) ::shutdown(rfd_, SHUT_RDWR);
        if (pid_ > 0) {
            if (!reap(Clock::now() + grace)) {
                ::kill(pid_, SIGTERM);
                if (!reap(Clock::now() + std::chrono::seconds(5))) {
                    ::kill(pid_, SIGKILL);
                    reap(Clock::time_point::max());
                }
            }
        }
        if (reader_.joinable() && reader_.get_id() != std::this_thread::get_id()) reader_.join();
        std::lock_guard<std::mutex> lock(write_mu_);
        if (socket_) {
            close_fd(rfd_);  // one socket: rfd_ == wfd_
            wfd_ = -1;
        } else {
            close_fd(rfd_);
        }
        return wait_status_;
    }

    pid_t pid() const noexcept { return pid_; }

private:
    enum class Kind { call, control };
    struct Waiting {
        Kind kind;
        std::promise<HostReply> promise;
    };

    static HostReply client_error(std::string kind, std::string message) {
        HostError e;
        e.kind = std::move(kind);
        e.message = std::move(message);
        return HostReply::failure(std::move(e));
    }

    /// Registers the request before sending it (its answer may come at once), then sends.
    std::uint64_t send_request(std::uint16_t type, std::promise<HostReply> p,
                               std::initializer_list<std::string_view> parts) {
        const std::uint64_t id = next_id_.fetch_add(1);
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (ended_) {
                p.set_value(client_error("disconnected", "the connection to plugjail host has ended"));
                return id;
            }
            waiting_.emplace(id, Waiting{type == 0x102 ? Kind::call : Kind::control, std::move(p)});
        }
        bool sent = false;
        {
            std::lock_guard<std::mutex> lock(write_mu_);
            sent = write_frame(type, id, parts);
        }
        if (!sent) answer(id, client_error("disconnected", "the request could not be sent: the connection has ended"));
        return id;
    }

    /// Writes one frame whole (blocking; the reader thread keeps reading meanwhile, so the
    /// server never waits on us). False when the connection is gone.
    bool write_frame(std::uint16_t type, std::uint64_t id, std::initializer_list<std::string_view> parts) {
        if (wfd_ < 0) return false;
        std::size_t len = 0;
        for (auto p : parts) len += p.size();
        unsigned char h[header_len];
        put_header(h, static_cast<std::uint32_t>(len), type, id);
        std::vector<iovec> iov;
        iov.push_back({h, header_len});
        for (auto p : parts)
            if (!p.empty()) iov.push_back({const_cast<char *>(p.data()), p.size()});
        std::size_t first = 0;
        std::optional<SigpipeGuard> guard;
        if (!socket_) guard.emplace();
        while (first < iov.size()) {
            ssize_t n;
            if (socket_) {
                msghdr m;
                std::memset(&m, 0, sizeof m);
                m.msg_iov = iov.data() + first;
                m.msg_iovlen = iov.size() - first;
                n = ::sendmsg(wfd_, &m, MSG_NOSIGNAL);
            } else {
                n = ::writev(wfd_, iov.data() + first, static_cast<int>(std::min<std::size_t>(iov.size() - first, 1024)));
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EPIPE && guard) guard->consume();
                return false;
            }
            auto left = static_cast<std::size_t>(n);
            while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
            if (first < iov.size()) {
                iov[first].iov_base = static_cast<char *>(iov[first].iov_base) + left;
                iov[first].iov_len -= left;
            }
        }
        return true;
    }

    void answer(std::uint64_t id, HostReply r) {
        std::unique_lock<std::mutex> lock(mu_);
        auto it = waiting_.find(id);
        if (it == waiting_.end()) return;
        std::promise<HostReply> p = std::move(it->second.promise);
        waiting_.erase(it);
        lock.unlock();
        p.set_value(std::move(r));
    }

    static HostError error_of(const json::Value &body) {
        HostError e;
        auto str = [&](std::string_view k) {
            const std::string *s = body.get_string(k);
            return s ? *s : std::string();
        };
        e.kind = str("kind");
        if (e.kind.empty()) e.kind = "unknown";
        e.message = str("message");
        if (const std::string *m = body.get_string("plugin_message")) e.plugin_message = Untrusted(*m);
        e.plugin = str("plugin");
        e.plugin_kind = str("plugin_kind");
        e.status = body.get_int64("status");
        e.outcome = str("outcome");
        e.state = str("state");
        e.body = body;
        return e;
    }

    void read_loop() {
        std::vector<char> buf(64 * 1024);
        std::size_t start = 0, end = 0;
        std::string why = "the connection to plugjail host has ended";
        std::string kind = "disconnected";
        for (;;) {
            // Whole frames first.
            bool out_of_step = false;
            while (end - start >= header_len) {
                const char *h = buf.data() + start;
                const std::uint32_t len = get_u32(h);
                if (get_u16(h + 6) != 0 || len > host_max_frame) {
                    out_of_step = true;
                    break;
                }
                if (end - start < header_len + len) {
                    if (buf.size() - start < header_len + len) {
                        std::memmove(buf.data(), buf.data() + start, end - start);
                        end -= start;
                        start = 0;
                        if (buf.size() < header_len + len) buf.resize(header_len + len);
                    }
                    break;
                }
                const std::uint16_t type = get_u16(h + 4);
                const std::uint64_t id = get_u64(h + 8);
                start += header_len + len;
                dispatch(type, id, std::string_view(h + header_len, len));
            }
            if (out_of_step) {
                kind = "protocol_violation";
                why = "plugjail host sent a frame with flags or a length above the cap";
                break;
            }
            if (start == end) start = end = 0;
            if (end == buf.size()) {
                std::memmove(buf.data(), buf.data() + start, end - start);
                end -= start;
                start = 0;
            }
            const ssize_t n = ::read(rfd_, buf.data() + end, buf.size() - end);
            if (n > 0) {
                end += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (end != start) {
                kind = "protocol_violation";
                why = "the connection ended inside a frame";
            }
            break;
        }
        // Every request still in flight gets its one answer.
        std::unordered_map<std::uint64_t, Waiting> left;
        {
            std::lock_guard<std::mutex> lock(mu_);
            ended_ = true;
            left.swap(waiting_);
            if (!refused_.empty()) {
                kind = "disconnected";
                why = refused_;
            }
            if (!hello_seen_) {
                hello_seen_ = true;
                hello_kind_ = kind;
                hello_error_ = kind == "disconnected" && refused_.empty() ? "plugjail host ended before its HELLO" : why;
            }
        }
        cv_.notify_all();
        for (auto &w : left) w.second.promise.set_value(client_error(kind, why));
    }

    void dispatch(std::uint16_t type, std::uint64_t id, std::string_view payload) {
        switch (type) {
            case 0x101: {  // HELLO
                std::lock_guard<std::mutex> lock(mu_);
                if (hello_seen_) return;
                hello_seen_ = true;
                std::string why;
                auto v = json::Value::parse(payload, &why);
                if (!v || !v->is_object()) {
                    hello_error_ = "a HELLO that is not a JSON object: " + why;
                    hello_kind_ = "protocol_violation";
                } else if (v->get_uint64("protocol") != std::uint64_t{host_protocol_version}) {
                    hello_error_ = "plugjail host speaks another protocol version than 1";
                    hello_kind_ = "protocol_violation";
                } else {
                    hello_ = std::move(*v);
                }
                cv_.notify_all();
                return;
            }
            case 0x103:  // RESULT
                answer(id, HostReply::result(std::string(payload)));
                return;
            case 0x104: {  // ERROR
                std::string why;
                auto v = json::Value::parse(payload, &why);
                HostError e;
                if (v && v->is_object()) {
                    e = error_of(*v);
                } else {
                    e.kind = "protocol_violation";
                    e.message = "an ERROR body that is not a JSON object: " + why;
                }
                if (id == 0) {
                    std::lock_guard<std::mutex> lock(mu_);
                    if (!hello_seen_) {  // refused at connect: forbidden, busy, shutting_down
                        hello_seen_ = true;
                        hello_kind_ = e.kind;
                        hello_error_ = "plugjail host refused the connection (" + e.kind + "): " + e.message;
                        cv_.notify_all();
                    } else {  // e.g. bad_frame for a stream out of step: the end follows
                        refused_ = "plugjail host ended the connection (" + e.kind + "): " + e.message;
                    }
                    return;
                }
                answer(id, HostReply::failure(std::move(e)));
                return;
            }
            case 0x105: {  // EVENT
                if (!on_event_) return;
                auto v = json::Value::parse(payload);
                if (!v || !v->is_object()) return;
                HostEvent ev;
                ev.seq = v->get_uint64("seq").value_or(0);
                ev.time_ms = v->get_uint64("time_ms").value_or(0);
                if (const std::string *s = v->get_string("plugin")) ev.plugin = *s;
                if (const std::string *s = v->get_string("event")) ev.event = *s;
                ev.dropped_before = v->get_uint64("dropped_before").value_or(0);
                ev.body = std::move(*v);
                try {
                    on_event_(ev);
                } catch (...) {
                    // A callback's exception must not stop the reader.
                }
                return;
            }
            case 0x109: {  // DONE
                std::string why;
                auto v = json::Value::parse(payload, &why);
                if (v) answer(id, HostReply::done(std::move(*v)));
                else answer(id, client_error("protocol_violation", "a DONE body that is not JSON: " + why));
                return;
            }
            default:
                return;  // a frame type of a later version 1: ignored
        }
    }

    bool reap(Clock::time_point until) {
        for (;;) {
            if (reaped_) return true;
            int st = 0;
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                reaped_ = true;
                wait_status_ = st;
                return true;
            }
            if (r < 0 && errno != EINTR) {
                reaped_ = true;
                return true;
            }
            if (Clock::now() >= until) return false;
            const timespec ts{0, 2000000};
            ::nanosleep(&ts, nullptr);
        }
    }

    int rfd_, wfd_;
    bool socket_;
    pid_t pid_;
    bool reaped_ = false;
    int wait_status_ = -1;
    std::function<void(const HostEvent &)> on_event_;
    std::thread reader_;
    std::atomic<std::uint64_t> next_id_{1};

    std::mutex write_mu_;
    std::mutex finish_mu_;
    bool finished_ = false;

    std::mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<std::uint64_t, Waiting> waiting_;
    bool ended_ = false;
    bool hello_seen_ = false;
    std::string hello_error_;
    std::string hello_kind_;
    std::string refused_;
    json::Value hello_;
};

}  // namespace detail

/// A connection to `plugjail host`. Movable, not copyable. Destroying it ends the
/// connection (a spawned host then stops, every jail ended) and waits for that.
class HostClient {
public:
    /// Runs `plugjail host --config FILE` with the protocol on its stdin/stdout and waits
    /// for its HELLO. Throws SpawnError (plugjail not found: the places looked at) or
    /// HostConnectError (it ended first, e.g. exit status 2 for an invalid configuration).
    static HostClient spawn(const HostOptions &o) {
        if (o.config.empty()) throw SpawnError(SpawnErrc::bad_options, "HostOptions: config is required");
        const std::string exe = detail::find_plugjail(o.plugjail, "HostOptions::plugjail");
        std::array<int, 2> to{-1, -1}, from{-1, -1};
        pid_t pid = -1;
        try {
            to = detail::make_pipe();
            from = detail::make_pipe();
            pid = detail::spawn_process(exe, {exe, "host", "--config", o.config}, {{to[0], 0}, {from[1], 1}},
                                        o.inherit_stderr);
        } catch (...) {
            for (int *fd : {&to[0], &to[1], &from[0], &from[1]}) detail::close_fd(*fd);
            throw;
        }
        detail::close_fd(to[0]);
        detail::close_fd(from[1]);
        auto conn = std::make_shared<detail::HostConn>(from[0], to[1], false, pid, o.on_event);
        conn->start_reader();
        conn->await_hello(o.hello_timeout);
        return HostClient(std::move(conn));
    }

    /// Connects to `plugjail host --listen PATH` and waits for its HELLO. Throws
    /// std::system_error (socket, connect) or HostConnectError (refused: forbidden, busy,
    /// shutting_down).
    static HostClient connect(const std::string &socket_path,
                              std::function<void(const HostEvent &)> on_event = {},
                              Millis hello_timeout = std::chrono::seconds(30)) {
        sockaddr_un addr;
        std::memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
            throw std::system_error(ENAMETOOLONG, std::generic_category(), "socket path " + socket_path);
        std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
            const int e = errno;
            ::close(fd);
            throw std::system_error(e, std::generic_category(), "connect to " + socket_path);
        }
        auto conn = std::make_shared<detail::HostConn>(fd, fd, true, -1, std::move(on_event));
        conn->start_reader();
        conn->await_hello(hello_timeout);
        return HostClient(std::move(conn));
    }

    HostClient(HostClient &&) noexcept = default;
    HostClient &operator=(HostClient &&) noexcept = default;
    HostClient(const HostClient &) = delete;
    HostClient &operator=(const HostClient &) = delete;
    ~HostClient() = default;

    /// The server's HELLO body: `{"protocol": 1, "plugins": [status...]}`.
    const json::Value &hello() const noexcept {
        static const json::Value none;
        return conn_ ? conn_->hello() : none;
    }
    /// The configured plugin ids, from HELLO, in the configuration's order.
    std::vector<std::string> plugin_ids() const {
        std::vector<std::string> ids;
        if (const json::Value *ps = hello().get("plugins"))
            for (const json::Value &p : ps->items())
                if (const std::string *id = p.get_string("id")) ids.push_back(*id);
        return ids;
    }

    /// Sends a CALL and returns at once: its id and the future of its one answer (RESULT,
    /// or ERROR: plugin_error, timeout, jail_ended, cancelled, ...). Any thread.
    HostCall call(std::string_view plugin, std::string_view method, std::string_view input = {}) {
        if (!conn_) {
            HostCall c;
            std::promise<HostReply> p;
            c.result = p.get_future();
            p.set_value(moved_from());
            return c;
        }
        return conn_->call(plugin, method, input);
    }
    /// CANCEL: the call's jail is ended and the call answers `cancelled` (unless its
    /// answer was already on the way). An id not in flight is ignored.
    void cancel(std::uint64_t id) {
        if (conn_) conn_->cancel(id);
    }

    /// A CONTROL: its DONE body, or an ERROR (invalid_transition, unknown_plugin, ...).
    std::future<HostReply> control(HostOp op, std::string_view plugin, std::string_view argument = {}) {
        if (!conn_) {
            std::promise<HostReply> p;
            p.set_value(moved_from());
            return p.get_future();
        }
        return conn_->control(op, plugin, argument);
    }
    std::future<HostReply> pause(std::string_view plugin) { return control(HostOp::pause, plugin); }
    std::future<HostReply> resume(std::string_view plugin) { return control(HostOp::resume, plugin); }
    std::future<HostReply> release(std::string_view plugin) { return control(HostOp::release, plugin); }
    /// Every plugin's status (plugin empty), or one's.
    std::future<HostReply> status(std::string_view plugin = {}) { return control(HostOp::status, plugin); }
    /// Replaces the plugin with a new build (and profile, when given), answering once the
    /// new one serves, or `rolled_back`.
    std::future<HostReply> upgrade(std::string_view plugin, const std::string &so, const std::string &profile = {}) {
        std::string arg = "{\"plugin\":" + json_string(so);
        if (!profile.empty()) arg += ",\"profile\":" + json_string(profile);
        arg += "}";
        return control(HostOp::upgrade, plugin, arg);
    }

    /// SHUTDOWN: stops the whole host (for every connection): calls in flight answer
    /// `shutting_down`, the jails end. Waits for the end of the stream (at most `grace`)
    /// and, for a spawned host, its exit; returns its wait status (-1 for a socket).
    int shutdown(Millis grace = std::chrono::seconds(30)) {
        if (!conn_) return -1;
        conn_->send_shutdown();
        conn_->await_end(grace);
        return conn_->finish(grace);
    }
    /// Ends this connection without stopping a shared host (a socket); for a spawned host
    /// the end of its stdin stops it. Waits at most `grace`; returns the wait status of a
    /// spawned host (-1 otherwise).
    int close(Millis grace = std::chrono::seconds(30)) { return conn_ ? conn_->finish(grace) : -1; }

    /// The spawned plugjail host's pid (-1 for a socket connection).
    pid_t pid() const noexcept { return conn_ ? conn_->pid() : -1; }

private:
    explicit HostClient(std::shared_ptr<detail::HostConn> c) : conn_(std::move(c)) {}

    static HostReply moved_from() {
        HostError e;
        e.kind = "disconnected";
        e.message = "a moved-from HostClient";
        return HostReply::failure(std::move(e));
    }

    static std::string json_string(std::string_view s) {
        std::string out = "\"";
        for (char c : s) {
            const auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (u < 0x20) {
                out += "\\u00";
                detail::append_hex(out, u, 2);
            } else {
                out += c;
            }
        }
        return out + "\"";
    }

    std::shared_ptr<detail::HostConn> conn_;
};

}  // namespace plugjail

#endif  // PLUGJAIL_HOST_MULTI_HPP
