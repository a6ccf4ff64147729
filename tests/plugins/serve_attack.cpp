// Hostile test plugin: tries to leave the load phase's wider syscall set in force while
// serving, from code that runs in the stub's address space before the serve phase. Which
// attack runs is chosen by PLUGJAIL_ATTACK (the test profile sets it). Each one targets a
// way a stub that installs its own serve filter could be defeated; call("mkdir") then
// makes a syscall the default profile allows only while loading.
//
//   patch_read     (constructor) libc's read/pread64 answer reads of fd 6 — where such a
//                  stub read its serve filter — with a one-instruction "allow everything"
//   syscall_text   (init) libc's syscall() rewritten: a seccomp() through it keeps the
//                  stub's 7-instruction probe and replaces the rest with "allow"
//   syscall_got    (init) the same replacement, through the stub's own GOT entry
//   replace_fd     (init) fd 6 replaced by a file holding an "allow everything" program
//   thread_race    (init) a thread that keeps calling umask (load-only) across the switch
//   own_filter     (init) stacks a filter that answers socket() with the serve gate's
//                  RET_TRACE data, then calls socket(), which the load phase refuses
//
// x86_64 only (raw syscalls and a jump patch in machine code).
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

#include "plugjail.h"

namespace {

bool attack(const char *name) {
    const char *a = std::getenv("PLUGJAIL_ATTACK");
    return a && std::strcmp(a, name) == 0;
}

// A syscall that bypasses libc (which these attacks rewrite).
long raw(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0) {
    long ret;
    register long r10 asm("r10") = a4;
    register long r8 asm("r8") = a5;
    register long r9 asm("r9") = a6;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                 : "rcx", "r11", "memory");
    return ret;
}

const sock_filter ALLOW_ALL = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

// Overwrites the start of `fn` with `movabs rax, to; jmp rax`.
bool patch_text(void *fn, void *to) {
    if (!fn) return false;
    uintptr_t page = reinterpret_cast<uintptr_t>(fn) & ~uintptr_t(4095);
    if (raw(SYS_mprotect, page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) return false;
    unsigned char code[12] = {0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xe0};
    std::memcpy(code + 2, &to, 8);
    std::memcpy(fn, code, sizeof code);
    return true;
}

// --- patch_read -----------------------------------------------------------------------

int64_t served_filter_bytes = 0;

ssize_t fake_pread(int fd, void *buf, size_t n, off_t) {
    if (fd == 6 && served_filter_bytes == 0 && n >= sizeof ALLOW_ALL) {
        std::memcpy(buf, &ALLOW_ALL, sizeof ALLOW_ALL);
        served_filter_bytes = sizeof ALLOW_ALL;
        return sizeof ALLOW_ALL;
    }
    if (fd == 6) return 0;
    return raw(SYS_pread64, fd, reinterpret_cast<long>(buf), n, 0);
}

ssize_t fake_read(int fd, void *buf, size_t n) {
    if (fd == 6) return fake_pread(fd, buf, n, 0);
    return raw(SYS_read, fd, reinterpret_cast<long>(buf), n);
}

__attribute__((constructor)) void patch_reads() {
    if (!attack("patch_read")) return;
    patch_text(dlsym(RTLD_DEFAULT, "pread64"), reinterpret_cast<void *>(fake_pread));
    patch_text(dlsym(RTLD_DEFAULT, "pread"), reinterpret_cast<void *>(fake_pread));
    patch_text(dlsym(RTLD_DEFAULT, "read"), reinterpret_cast<void *>(fake_read));
}

// --- syscall_text, syscall_got --------------------------------------------------------

long fake_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
    if (nr == SYS_seccomp && a1 == SECCOMP_SET_MODE_FILTER && a3) {
        auto *prog = reinterpret_cast<sock_fprog *>(a3);
        sock_filter f[8];
        unsigned keep = prog->len < 7 ? prog->len : 7;
        std::memcpy(f, prog->filter, keep * sizeof(sock_filter));
        f[keep] = ALLOW_ALL;
        sock_fprog weaker = {static_cast<unsigned short>(keep + 1), f};
        a3 = reinterpret_cast<long>(&weaker);
        long r = raw(nr, a1, a2, a3, a4, a5, a6);
        if (r < 0) { errno = -r; return -1; }
        return r;
    }
    long r = raw(nr, a1, a2, a3, a4, a5, a6);
    if (r < 0 && r > -4096) { errno = -r; return -1; }
    return r;
}

// The GOT slot of `symbol` in the main program (the stub), found through its dynamic
// relocations, pointed at `to`.
struct GotPatch {
    const char *symbol;
    void *to;
    bool done;
};

int patch_got_in(dl_phdr_info *info, size_t, void *data) {
    auto *p = static_cast<GotPatch *>(data);
    if (info->dlpi_name && info->dlpi_name[0]) return 0;  // the main program comes first, unnamed
    const ElfW(Dyn) *dyn = nullptr;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = reinterpret_cast<const ElfW(Dyn) *>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn) return 1;
    const ElfW(Sym) *symtab = nullptr;
    const char *strtab = nullptr;
    const ElfW(Rela) *rela[2] = {nullptr, nullptr};
    size_t size[2] = {0, 0};
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
            case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym) *>(dyn->d_un.d_ptr); break;
            case DT_STRTAB: strtab = reinterpret_cast<const char *>(dyn->d_un.d_ptr); break;
            case DT_JMPREL: rela[0] = reinterpret_cast<const ElfW(Rela) *>(dyn->d_un.d_ptr); break;
            case DT_PLTRELSZ: size[0] = dyn->d_un.d_val; break;
            case DT_RELA: rela[1] = reinterpret_cast<const ElfW(Rela) *>(dyn->d_un.d_ptr); break;
            case DT_RELASZ: size[1] = dyn->d_un.d_val; break;
        }
    }
    if (!symtab || !strtab) return 1;
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; rela[t] && i < size[t] / sizeof(ElfW(Rela)); i++) {
            const ElfW(Sym) &sym = symtab[ELF64_R_SYM(rela[t][i].r_info)];
            if (std::strcmp(strtab + sym.st_name, p->symbol) != 0) continue;
            uintptr_t slot = info->dlpi_addr + rela[t][i].r_offset;
            uintptr_t page = slot & ~uintptr_t(4095);
            // Full RELRO made it read-only after relocation.
            if (raw(SYS_mprotect, page, 4096, PROT_READ | PROT_WRITE) != 0) return 1;
            *reinterpret_cast<void **>(slot) = p->to;
            p->done = true;
        }
    }
    return 1;
}

// --- thread_race ----------------------------------------------------------------------

void *race(void *) {
    for (;;) {
        umask(022);
        usleep(200);
    }
    return nullptr;
}

// --- own_filter -----------------------------------------------------------------------

// The serve gate's RET_TRACE data (plugjail's TraceData::Gate).
const unsigned GATE = 5;

int own_filter() {
    sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | GATE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
            reinterpret_cast<long>(&prog)) != 0)
        return 10;
    // Refused by the load phase: only a gate answer the init believed would let it run.
    int s = socket(AF_INET, SOCK_STREAM, 0);
    return s >= 0 ? 11 : 12;
}

int init(const plugjail_host *) {
    void *fake = reinterpret_cast<void *>(fake_syscall);
    if (attack("syscall_text") && !patch_text(dlsym(RTLD_DEFAULT, "syscall"), fake)) return 20;
    if (attack("syscall_got")) {
        GotPatch p = {"syscall", fake, false};
        dl_iterate_phdr(patch_got_in, &p);
        if (!p.done) return 21;
    }
    if (attack("replace_fd")) {
        int m = open("/tmp/plugjail-allow-all.bpf", O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (m < 0 || write(m, &ALLOW_ALL, sizeof ALLOW_ALL) != sizeof ALLOW_ALL) return 22;
        if (dup2(m, 6) != 6) return 23;
    }
    if (attack("thread_race")) {
        pthread_t t;
        if (pthread_create(&t, nullptr, race, nullptr) != 0) return 24;
        usleep(2000);
    }
    if (attack("own_filter")) return own_filter();
    return 0;
}

// Answers (a plain RESULT) only if mkdir was allowed while serving. (The directory is in
// the jail's private /tmp, gone with the jail.)
int call(const char *method, const uint8_t *, size_t, plugjail_output *) {
    if (std::strcmp(method, "mkdir") != 0) return 1;
    if (mkdir("/tmp/plugjail-serve-attack", 0700) != 0) return 2;
    return 0;
}

const char *const methods[] = {"mkdir", nullptr};
const plugjail_plugin plugin = {sizeof(plugjail_plugin), PLUGJAIL_ABI_VERSION, "serve_attack",
                                "1", methods, init, call, nullptr};

}  // namespace

extern "C" const plugjail_plugin *plugjail_plugin_v1(void) { return &plugin; }
