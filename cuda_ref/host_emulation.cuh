// Host emulation of the few CUDA features the cuda_ref kernels use, so the unchanged .cu sources can be compiled
// with g++ and run on the CPU (cuda_ref/emulator.py). It exists to test the kernels' index arithmetic, tiling,
// pipelining, epilogues and the Python launchers on a machine without a GPU; it says nothing about speed.
//
// Model: the blocks of a launch run one after another; the threads of a block are cooperative fibers (started with
// ucontext, switched with _setjmp/_longjmp, which skip the signal-mask system calls of swapcontext),
// each running until it reaches a barrier, so __syncthreads() is a real barrier and a thread that reads shared data
// before the barrier that publishes it reads stale data here too. `__shared__` becomes `static`: one instance per
// kernel, which is one block's shared memory since blocks do not overlap. Warp collectives (__ballot_sync,
// __shfl_xor_sync, the binary mma) exchange values through per-warp slots between two warp barriers, so every lane
// of the warp must take part (as on the GPU); a barrier that can never complete aborts with "deadlock". The mma computes what the PTX ISA defines
// for mma.m16n8k256 .b1 .and.popc and mma.m16n8k32 .u8.s8 from the documented fragment layouts.
// cp.async is as late and as early as the PTX ISA allows: at issue the destination is filled with a poison pattern
// (the hardware may write it at any time until the wait), and the data (or the zero fill) lands only when the issuing
// thread's cp.async.wait_group retires its group; so a read before the wait + barrier that publish a stage, and a
// load into a stage another warp still reads, both give wrong results here. Misaligned 8- and 16-byte accesses (int2,
// uint4, cp.async) abort with "misaligned address", as they fault on the GPU.

#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <csetjmp>
#include <ucontext.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

[[noreturn]] inline void emu_misaligned(const void* p, unsigned bytes)
{
    std::fprintf(stderr, "host emulation: misaligned address %p for a %u-byte access\n", p, bytes);
    std::abort();
}
inline void emu_check_aligned(const void* p, unsigned bytes)
{
    if (reinterpret_cast<std::uintptr_t>(p) % bytes) emu_misaligned(p, bytes);
}

// The CUDA vector types with their alignment; a copy from or into memory checks it, as the GPU's vector access does.
struct alignas(16) uint4 {
    unsigned x, y, z, w;
    uint4() = default;
    uint4(unsigned x_, unsigned y_, unsigned z_, unsigned w_) : x(x_), y(y_), z(z_), w(w_) {}
    uint4(const uint4& o) : x(o.x), y(o.y), z(o.z), w(o.w) { emu_check_aligned(&o, 16); }
    uint4& operator=(const uint4& o)
    {
        emu_check_aligned(this, 16);
        emu_check_aligned(&o, 16);
        x = o.x, y = o.y, z = o.z, w = o.w;
        return *this;
    }
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4(x, y, z, w); }
struct alignas(8) int2 {
    int x, y;
    int2() = default;
    int2(int x_, int y_) : x(x_), y(y_) {}
    int2(const int2& o) : x(o.x), y(o.y) { emu_check_aligned(&o, 8); }
    int2& operator=(const int2& o)
    {
        emu_check_aligned(this, 8);
        emu_check_aligned(&o, 8);
        x = o.x, y = o.y;
        return *this;
    }
};
inline int2 make_int2(int x, int y) { return int2(x, y); }

inline dim3 threadIdx;  // of the fiber that runs now
inline dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

using std::max;
using std::min;

inline int __popc(unsigned v) { return __builtin_popcount(v); }

// ---- fibers and barriers

struct EmuBarrier {
    unsigned expected = 0, count = 0, gen = 0;
};
struct EmuCopy {  // a cp.async in flight: 16 bytes read at issue, written to dst when its group retires
    unsigned* dst;
    unsigned data[4];
};
struct EmuFiber {
    ucontext_t ctx;  // only to start the fiber on its own stack
    std::vector<EmuCopy> open;  // cp.async issued since the last commit_group
    std::vector<std::vector<EmuCopy>> groups;  // committed groups, oldest first
    std::jmp_buf jb;
    bool started = false;
    dim3 tid;
    bool done = false;
    const unsigned* wait_gen = nullptr;  // blocked until *wait_gen != wait_value
    unsigned wait_value = 0;
};
struct EmuWarp {
    EmuBarrier bar;
    unsigned words[32][8];
};
struct EmuBlock {
    ucontext_t main;
    std::jmp_buf sched;
    std::vector<EmuFiber> fibers;
    std::vector<EmuWarp> warps;
    EmuBarrier bar;
    int current = -1;
    std::function<void()> body;
};
inline EmuBlock* emu_block = nullptr;
constexpr std::size_t EMU_STACK = 256 * 1024;

inline void emu_arrive(EmuBarrier& b)
{
    const unsigned gen = b.gen;
    if (++b.count == b.expected) {  // last to arrive releases the others
        b.count = 0;
        ++b.gen;
        return;
    }
    EmuFiber& f = emu_block->fibers[emu_block->current];
    f.wait_gen = &b.gen;
    f.wait_value = gen;
    if (!_setjmp(f.jb)) _longjmp(emu_block->sched, 1);
}

inline void emu_fiber_entry()
{
    emu_block->body();
    emu_block->fibers[emu_block->current].done = true;
    _longjmp(emu_block->sched, 1);  // never returns through uc_link
}

inline unsigned emu_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
inline EmuWarp& emu_warp() { return emu_block->warps[emu_tid() / 32]; }
inline unsigned emu_lane() { return emu_tid() % 32; }

inline void __syncthreads() { emu_arrive(emu_block->bar); }

inline unsigned __ballot_sync(unsigned, bool bit)
{
    EmuWarp& w = emu_warp();
    w.words[emu_lane()][0] = bit ? 1u : 0u;
    emu_arrive(w.bar);
    unsigned r = 0;
    for (int l = 0; l < 32; ++l) r |= w.words[l][0] << l;
    emu_arrive(w.bar);
    return r;
}

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask)
{
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    EmuWarp& w = emu_warp();
    std::memcpy(&w.words[emu_lane()][0], &v, 4);
    emu_arrive(w.bar);
    T r;
    std::memcpy(&r, &w.words[emu_lane() ^ (unsigned)mask][0], 4);
    emu_arrive(w.bar);
    return r;
}

// ---- replacements for the inline PTX of bmma_gemm.cu (guarded there by BNN_HOST_EMULATION)

constexpr unsigned EMU_POISON = 0xA5C3E10Fu;  // what a stage holds between a cp.async and its wait

inline EmuFiber& emu_fiber() { return emu_block->fibers[emu_block->current]; }

inline void cp_async16(unsigned* smem, const unsigned* gmem, bool valid)
{
    emu_check_aligned(smem, 16);
    emu_check_aligned(gmem, 16);
    EmuCopy c{smem, {0u, 0u, 0u, 0u}};
    if (valid) std::memcpy(c.data, gmem, 16);
    for (int i = 0; i < 4; ++i) smem[i] = EMU_POISON;
    emu_fiber().open.push_back(c);
}
inline void cp_async_commit()
{
    EmuFiber& f = emu_fiber();
    f.groups.push_back(std::move(f.open));
    f.open.clear();
}
// cp.async.wait_group N: retire this thread's oldest committed groups until at most N are in flight.
inline void emu_cp_async_wait(std::size_t n)
{
    EmuFiber& f = emu_fiber();
    while (f.groups.size() > n) {
        for (const EmuCopy& c : f.groups.front()) std::memcpy(c.dst, c.data, 16);
        f.groups.erase(f.groups.begin());
    }
}
inline void cp_async_wait_all_but_one() { emu_cp_async_wait(1); }
inline void cp_async_wait_all() { emu_cp_async_wait(0); }
template <int N>
inline void cp_async_wait() { emu_cp_async_wait(N); }

// The m16n8 mma shapes the kernels use share one fragment layout of 32-bit words (PTX ISA, lane = 4 * g + t):
// A row g word t = a0 of lane (g, t), row g+8 word t = a1, row g word t+4 = a2, row g+8 word t+4 = a3;
// B column g word t = b0 of lane (g, t), word t+4 = b1; D row g cols 2t, 2t+1 = d0, d1; row g+8 = d2, d3.
// `dot(a_word, b_word)` is what one pair of words contributes to D.
template <typename WordDot>
inline void emu_mma_words(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1, WordDot dot)
{
    EmuWarp& w = emu_warp();
    const unsigned lane = emu_lane();
    for (int i = 0; i < 4; ++i) w.words[lane][i] = a[i];
    w.words[lane][4] = b0;
    w.words[lane][5] = b1;
    emu_arrive(w.bar);
    auto a_word = [&](int row, int word) {
        const int g = row % 8, t = word % 4;
        const int reg = (row >= 8 ? 1 : 0) + (word >= 4 ? 2 : 0);
        return w.words[4 * g + t][reg];
    };
    auto b_word = [&](int col, int word) { return w.words[4 * col + word % 4][word >= 4 ? 5 : 4]; };
    const int g = lane / 4, t = lane % 4;
    int out[4];
    for (int c = 0; c < 4; ++c) {
        const int row = g + (c >= 2 ? 8 : 0), col = 2 * t + (c & 1);
        int s = 0;
        for (int k = 0; k < 8; ++k) s += dot(a_word(row, k), b_word(col, k));
        out[c] = s;
    }
    emu_arrive(w.bar);
    for (int c = 0; c < 4; ++c) d[c] += out[c];
}

// d += popcount(A AND B) over a 16 x 8 x 256 tile (mma.m16n8k256 .b1 .and.popc): a word is 32 bits of k.
inline void bmma_and_popc(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    emu_mma_words(d, a, b0, b1, [](unsigned x, unsigned y) { return __builtin_popcount(x & y); });
}

// d += A * B over a 16 x 8 x 32 tile of unsigned (A) and signed (B) bytes (mma.m16n8k32 .u8.s8): a word is 4
// consecutive k, lowest byte first.
inline void imma_u8s8(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    emu_mma_words(d, a, b0, b1, [](unsigned x, unsigned y) {
        int s = 0;
        for (int byte = 0; byte < 4; ++byte)
            s += (int)((x >> (8 * byte)) & 0xFFu) * (int)(signed char)((y >> (8 * byte)) & 0xFFu);
        return s;
    });
}

// ---- launching: the kernel's arguments come as an array of pointers to their values (cudaLaunchKernel style)

template <typename... Args, std::size_t... I>
void emu_call(void (*kernel)(Args...), void** args, std::index_sequence<I...>)
{
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<Args>>*>(args[I])...);
}

template <typename... Args>
void emu_launch(void (*kernel)(Args...), dim3 grid, dim3 block, void** args)
{
    gridDim = grid;
    blockDim = block;
    const unsigned threads = block.x * block.y * block.z;
    static std::vector<std::unique_ptr<char[]>> stacks;  // reused by every launch
    while (stacks.size() < threads) stacks.emplace_back(new char[EMU_STACK]);
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                EmuBlock blk;
                blk.fibers.resize(threads);
                blk.warps.resize((threads + 31) / 32);
                for (auto& w : blk.warps) w.bar.expected = 32;
                blk.bar.expected = threads;
                blk.body = [=] { emu_call(kernel, args, std::index_sequence_for<Args...>{}); };
                emu_block = &blk;
                blockIdx = dim3{bx, by, bz};
                for (unsigned t = 0; t < threads; ++t) {
                    EmuFiber& f = blk.fibers[t];
                    f.tid = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = stacks[t].get();
                    f.ctx.uc_stack.ss_size = EMU_STACK;
                    f.ctx.uc_link = &blk.main;
                    makecontext(&f.ctx, emu_fiber_entry, 0);
                }
                unsigned remaining = threads;
                while (remaining) {
                    bool progress = false;
                    for (unsigned t = 0; t < threads; ++t) {
                        EmuFiber& f = blk.fibers[t];
                        if (f.done || (f.wait_gen && *f.wait_gen == f.wait_value)) continue;
                        f.wait_gen = nullptr;
                        blk.current = (int)t;
                        threadIdx = f.tid;
                        if (!_setjmp(blk.sched)) {
                            if (!f.started) {
                                f.started = true;
                                swapcontext(&blk.main, &f.ctx);
                            } else {
                                _longjmp(f.jb, 1);
                            }
                        }
                        progress = true;
                        if (f.done) --remaining;
                    }
                    if (!progress) {
                        std::fprintf(stderr, "host emulation: deadlock (a barrier some threads never reach)\n");
                        std::abort();
                    }
                }
                emu_block = nullptr;
            }
}

#define EMU_EXPORT(name)                                                                                      \
    extern "C" void emu_##name(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,  \
                               void** args)                                                                   \
    {                                                                                                         \
        emu_launch(name, dim3{gx, gy, gz}, dim3{bx, by, bz}, args);                                           \
    }
