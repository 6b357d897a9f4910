// Micro-benchmarks that measure the device's ceilings for `bnn-hw bench gpu` (docs/gpu.md): the integer popcount
// rate of the CUDA cores (the bound of any XNOR-popcount kernel) and the binary tensor-core rate of
// mma.sync m16n8k256 .and.popc (sm_80+). Both keep everything in registers; the results are stored so the work
// cannot be optimized away.

typedef unsigned int u32;

// Each thread runs 8 independent chains of  v += popcount(v XOR key), the inner step of an XNOR-popcount kernel:
// one popcount = 32 bit multiply-accumulates.
extern "C" __global__ void popc_peak(int iters, u32 key, int* __restrict__ sink)
{
    const u32 tid = blockIdx.x * blockDim.x + threadIdx.x;
    u32 v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = tid * 8u + (u32)i;
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] += __popc(v[i] ^ key);
    }
    u32 s = 0u;
#pragma unroll
    for (int i = 0; i < 8; ++i) s ^= v[i];
    sink[tid] = (int)s;
}

#if !defined(__CUDA_ARCH__) || (__CUDA_ARCH__ >= 800)
// Each warp runs 8 independent accumulations of one tensor-core mma on register operands.
#define MMA_PEAK(NAME, INSTRUCTION)                                                                               \
    extern "C" __global__ void NAME(int iters, u32 key, int* __restrict__ sink)                                   \
    {                                                                                                             \
        const u32 tid = blockIdx.x * blockDim.x + threadIdx.x;                                                    \
        const u32 a0 = tid ^ key, a1 = tid * 3u, a2 = ~tid, a3 = key * tid, b0 = tid + key, b1 = key;           \
        int d[8][4];                                                                                              \
        _Pragma("unroll") for (int j = 0; j < 8; ++j)                                                             \
            _Pragma("unroll") for (int c = 0; c < 4; ++c) d[j][c] = 0;                                            \
        for (int it = 0; it < iters; ++it) {                                                                      \
            _Pragma("unroll") for (int j = 0; j < 8; ++j)                                                         \
                asm volatile(INSTRUCTION " {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"    \
                             : "+r"(d[j][0]), "+r"(d[j][1]), "+r"(d[j][2]), "+r"(d[j][3])                         \
                             : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));                             \
        }                                                                                                         \
        int s = 0;                                                                                                \
        _Pragma("unroll") for (int j = 0; j < 8; ++j) s += d[j][0] + d[j][1] + d[j][2] + d[j][3];                 \
        sink[tid] = s;                                                                                            \
    }

// Binary tensor cores: one m16n8k256 mma = 16 * 8 * 256 bit MACs.
MMA_PEAK(bmma_peak, "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc")
// The 8-bit tensor cores the pixel layers can use: one m16n8k32 .u8.s8 mma = 16 * 8 * 32 MACs.
MMA_PEAK(imma_peak, "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32")
#endif

// Clock calibration: spins for `cycles` SM clock cycles; timed with CUDA events it gives the SM clock in Hz.
extern "C" __global__ void spin_cycles(long long cycles, long long* __restrict__ sink)
{
    const long long start = clock64();
    long long now = start;
    while (now - start < cycles) now = clock64();
    if (threadIdx.x == 0) sink[blockIdx.x] = now - start;
}
