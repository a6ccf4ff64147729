// csv2json: converts CSV (RFC 4180) to JSON — the kind of parser of untrusted input a
// desktop application wants out of its own address space.
//
//   g++ -std=c++17 -O2 -shared -fPIC -I../../include -o csv2json.so csv2json.cpp
//
// Methods:
//   convert   input: CSV whose first row names the columns
//             output: a JSON array with one object per row: [{"name":"ada","age":"36"}]
//   validate  input: the same CSV
//             output: {"rows":N,"columns":M}, or an ERROR saying what and where
//
// Quoted fields ("a, b", "say ""hi"""), CRLF or LF line ends, and a missing final line
// end are accepted. Every row must have as many fields as the header; column names must
// be unique and non-empty; the input must be UTF-8. Errors name the line and column.
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "plugjail.h"

namespace {

const plugjail_host *host = nullptr;
const size_t MAX_COLUMNS = 4096;

struct Failure {
    std::string message;
};

// Splits the input into rows of fields, one row at a time.
class Reader {
public:
    Reader(const uint8_t *p, size_t n) : p_(p), end_(p + n) {}

    // Reads the next row into `fields`; false at the end of the input.
    bool row(std::vector<std::string> &fields) {
        fields.clear();
        if (p_ == end_) return false;
        line_ = next_line_;
        std::string field;
        for (;;) {
            field.clear();
            size_t column = static_cast<size_t>(p_ - line_start_) + 1;
            if (p_ < end_ && *p_ == '"') {
                quoted(field, column);
            } else {
                while (p_ < end_ && *p_ != ',' && *p_ != '\n' && *p_ != '\r') {
                    if (*p_ == '"') fail("a quote inside an unquoted field", column);
                    field.push_back(static_cast<char>(*p_++));
                }
            }
            fields.push_back(field);
            if (fields.size() > MAX_COLUMNS) fail("more than 4096 columns", column);
            if (p_ == end_) return true;
            if (*p_ == ',') {
                p_++;
                continue;
            }
            // \n or \r\n ends the row.
            if (*p_ == '\r') {
                p_++;
                if (p_ == end_ || *p_ != '\n') fail("a carriage return without a line feed", column);
            }
            p_++;
            next_line_++;
            line_start_ = p_;
            return true;
        }
    }

    size_t line() const { return line_; }

    [[noreturn]] void fail(const char *what, size_t column) const {
        char buf[160];
        std::snprintf(buf, sizeof buf, "line %zu, column %zu: %s", next_line_, column, what);
        throw Failure{buf};
    }

private:
    void quoted(std::string &field, size_t column) {
        p_++;  // opening quote
        for (;;) {
            if (p_ == end_) fail("a quoted field is never closed", column);
            uint8_t c = *p_++;
            if (c == '"') {
                if (p_ < end_ && *p_ == '"') {
                    field.push_back('"');
                    p_++;
                    continue;
                }
                if (p_ < end_ && *p_ != ',' && *p_ != '\n' && *p_ != '\r')
                    fail("text after a closing quote", column);
                return;
            }
            if (c == '\n') {
                next_line_++;
                line_start_ = p_;
            }
            field.push_back(static_cast<char>(c));
        }
    }

    const uint8_t *p_, *end_;
    const uint8_t *line_start_ = p_;
    size_t line_ = 1, next_line_ = 1;
};

// Well-formed UTF-8: no stray continuation bytes, overlong forms or surrogates.
bool valid_utf8(const std::string &s) {
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = s[i];
        size_t extra;
        if (c < 0x80) extra = 0;
        else if (c >= 0xc2 && c <= 0xdf) extra = 1;
        else if (c >= 0xe0 && c <= 0xef) extra = 2;
        else if (c >= 0xf0 && c <= 0xf4) extra = 3;
        else return false;
        if (n - i - 1 < extra) return false;
        for (size_t k = 1; k <= extra; k++)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        unsigned char d = extra ? static_cast<unsigned char>(s[i + 1]) : 0;
        if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0) || (c == 0xf0 && d < 0x90) ||
            (c == 0xf4 && d >= 0x90))
            return false;
        i += extra + 1;
    }
    return true;
}

// Output goes to the host in chunks, so a large document never sits here twice.
class Out {
public:
    explicit Out(plugjail_output *out) : out_(out) {}
    void put(const std::string &s) { put(s.data(), s.size()); }
    void put(const char *s, size_t n) {
        buf_.append(s, n);
        if (buf_.size() >= 64 * 1024) flush();
    }
    void flush() {
        if (!buf_.empty() && host->write(out_, buf_.data(), buf_.size()) != 0)
            throw Failure{"the JSON is larger than the host accepts"};
        buf_.clear();
    }

private:
    plugjail_output *out_;
    std::string buf_;
};

void json_string(Out &o, const std::string &s) {
    std::string r = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': r += "\\\""; break;
            case '\\': r += "\\\\"; break;
            case '\n': r += "\\n"; break;
            case '\r': r += "\\r"; break;
            case '\t': r += "\\t"; break;
            default:
                if (c < 0x20) {
                    char u[8];
                    std::snprintf(u, sizeof u, "\\u%04x", c);
                    r += u;
                } else {
                    r += static_cast<char>(c);
                }
        }
    }
    r += '"';
    o.put(r);
}

// Parses the whole input; when `o` is non-null, writes the JSON array as it goes.
void convert(const uint8_t *input, size_t len, Out *o, size_t &rows, size_t &columns) {
    Reader r(input, len);
    std::vector<std::string> header, fields;
    if (!r.row(header)) throw Failure{"the input is empty: no header row"};
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < header.size(); i++) {
        if (header[i].empty()) r.fail("an empty column name", i + 1);
        if (!valid_utf8(header[i])) r.fail("a column name is not UTF-8", i + 1);
        if (!seen.insert(header[i]).second) r.fail("a column name appears twice", i + 1);
    }
    columns = header.size();
    rows = 0;
    if (o) o->put("[", 1);
    while (r.row(fields)) {
        if (fields.size() == 1 && fields[0].empty() && columns != 1) continue;  // blank line
        if (fields.size() != columns) {
            char buf[120];
            std::snprintf(buf, sizeof buf, "line %zu: %zu fields, the header has %zu", r.line(),
                          fields.size(), columns);
            throw Failure{buf};
        }
        for (const auto &f : fields)
            if (!valid_utf8(f)) {
                char buf[80];
                std::snprintf(buf, sizeof buf, "line %zu: a field is not UTF-8", r.line());
                throw Failure{buf};
            }
        if (o) {
            o->put(rows == 0 ? "{" : ",{", rows == 0 ? 1 : 2);
            for (size_t i = 0; i < columns; i++) {
                if (i) o->put(",", 1);
                json_string(*o, header[i]);
                o->put(":", 1);
                json_string(*o, fields[i]);
            }
            o->put("}", 1);
        }
        rows++;
    }
    if (o) {
        o->put("]", 1);
        o->flush();
    }
}

int init(const plugjail_host *h) {
    host = h;
    return PLUGJAIL_OK;
}

int call(const char *method, const uint8_t *input, size_t len, plugjail_output *out) {
    try {
        size_t rows = 0, columns = 0;
        if (std::strcmp(method, "convert") == 0) {
            Out o(out);
            convert(input, len, &o, rows, columns);
        } else {
            convert(input, len, nullptr, rows, columns);
            std::string s = "{\"rows\":" + std::to_string(rows) + ",\"columns\":" +
                            std::to_string(columns) + "}";
            host->write(out, s.data(), s.size());
        }
        return PLUGJAIL_OK;
    } catch (const Failure &f) {
        host->fail(out, f.message.data(), f.message.size());
    } catch (const std::bad_alloc &) {
        const char m[] = "out of memory";
        host->fail(out, m, sizeof m - 1);
    }
    return PLUGJAIL_FAILED;
}

const char *const methods[] = {"convert", "validate", nullptr};

const plugjail_plugin plugin = {
    sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "csv2json", "1.0.0", methods,
    init, call, nullptr,
};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
