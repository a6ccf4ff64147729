// wellbehaved: a C++ program that does only what a jailed test binary may do.
//
//     wellbehaved IN OUT
//
// Reads IN, sorts its lines, counts words on two threads, throws and catches an exception
// (so libstdc++ and the unwinder load and work), and writes to OUT:
//
//     words=N
//     <the sorted lines, one per line>
//
// Prints `result: safe ...` and exits 0 on success; `error: ...` and exits 2 otherwise.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static size_t count_words(const std::vector<std::string> &lines, size_t from, size_t to)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        std::istringstream in(lines[i]);
        std::string w;
        while (in >> w)
            n++;
    }
    return n;
}

static std::vector<std::string> read_lines(const char *path)
{
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error(std::string("cannot open ") + path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::printf("error: usage: wellbehaved IN OUT\n");
        return 2;
    }
    try {
        std::vector<std::string> lines = read_lines(argv[1]);
        std::sort(lines.begin(), lines.end());
        size_t half = lines.size() / 2, first = 0, second = 0;
        std::thread t([&] { first = count_words(lines, 0, half); });
        second = count_words(lines, half, lines.size());
        t.join();
        try {
            read_lines("/nonexistent/plugjail-wellbehaved");
            std::printf("error: a missing file opened\n");
            return 2;
        } catch (const std::runtime_error &) {
            // expected: exceptions unwind inside the jail
        }
        std::ofstream out(argv[2]);
        out << "words=" << first + second << "\n";
        for (const auto &l : lines)
            out << l << "\n";
        out.close();
        if (!out) {
            std::printf("error: cannot write %s\n", argv[2]);
            return 2;
        }
    } catch (const std::exception &e) {
        std::printf("error: %s\n", e.what());
        return 2;
    }
    std::printf("result: safe sorted and counted\n");
    return 0;
}
