// Tensor-core matrix multiplies (sm_80 and newer) with the fused bnn-hw epilogue (docs/gpu.md).
//
// Binary: mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc computes D = C + popcount(A AND B) on 16 x 8
// tiles over 256 bits. AND, not XOR: on sm_90 (H100/H200) the compiler emits one BMMA for .and.popc but emulates
// .xor.popc with two BMMAs plus logic. With bits 1 = +1 and px, pw the row popcounts of activation and weight,
//     popcount(x XOR w) = px + pw - 2 * popcount(x AND w)
// so the XNOR popcount of a bits layer is  acc = K - px - pw + 2 * and.
// Pixel layers (8 bit planes per row, see xnor_gemm.cu) give dot = sum_p 2^p * (2 * and_p - px_p) = 2 * andw - S
// with S the sum of the row's pixel values. Both are
//     acc = 2 * andw - roww[m] + colc[n]
// with roww from row_weights() (pack.cu; px or S) and colc = K - pw (bits) or 0 (pixels). The plane weights are
// applied by Horner's rule: planes from the most significant, the accumulators double at each new plane.
//
// 8-bit: pixel layers can instead run on the int8 tensor cores, mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32:
// A = the pixel bytes of each row, B = the weights as int8 +-1 (0 past the fan-in), acc = the dot product itself
// (roww, colc unused). One int8 MAC replaces the 8 bit-plane MACs of the binary path. Its fragments are word-for-word
// those of the binary mma (lane = 4 * g + t holds word t and t + 4 of rows g and g + 8 of A, and of row g of B; a word
// is 32 bits or 4 bytes), so both share the tiling below.
//
// Operands, flags and the epilogue are those of xnor_gemm_tiled (xnor_gemm.cu), so the kernels are interchangeable
// and are tested against the same golden model.
//
// Tiling (template parameters): a (WM * MI * 16) x (WN * NI * 8) output tile per block of WM x WN warps, MI x NI mma
// tiles per warp; every instance uses 64 x 64 per warp (4 x 8 mma tiles, 128 int32 accumulators per thread: 8 warps
// per SM by registers, which on an H100 already reaches 98 % of the mma.sync ceiling; 64 x 32 warp tiles with twice
// the warps were slower, benchmarks/RESULTS.md run 6). K is consumed BKW words per stage (BKW / 8 mma k-steps)
// through a cp.async pipeline of STAGES stages (two; three for `_v3`); out-of-range rows and words are zero-filled by
// cp.async (src-size 0).
// Shared rows are LDS = BKW + 4 words apart so the fragment reads (lane = 4 * g + t reads word t of row g) hit 32
// distinct banks. Instances: 128 x 128 with 16 words per stage (`bmma_gemm`, `imma_gemm`) and 256 x 128 with 8 words
// per stage (`bmma_gemm_256`, `imma_gemm_256`: more reuse of each loaded word, one k-step per barrier); both stay
// within the 48 KiB of static shared memory.
//
// Vector fragment reads (the `_v` instances, VEC): the sum over K does not care in which order the words of a stage
// meet, as long as A and B feed the same word to the same fragment slot. So instead of words t and t + 4 of k-step
// ks (two 32-bit reads per row and k-step), thread t reads words 4t .. 4t+3 of a 16-word group in one 128-bit read
// and feeds 4t, 4t+1 to one k-step and 4t+2, 4t+3 to the next: a quarter of the shared-memory instructions for the
// same bytes. Rows are then 16 (mod 32) words apart so that a quarter-warp's reads hit distinct banks. 256 x 128
// with 16 words per stage fills the 48 KiB exactly (2 stages x 384 rows x 64 bytes), and so does 128 x 128 with three
// stages (`bmma_gemm_v3`, `imma_gemm_v3`: two stages in flight while one is computed).

// Block order: with FLAG_N_FAST the grid is one-dimensional and consecutive blocks take consecutive column tiles of
// the same row tile, so the blocks resident at one time share their A rows (read from DRAM once, then from L2) and
// the whole weight matrix stays in L2; without it blockIdx.x / .y are the row / column tiles (row tiles fastest:
// every pass over the columns re-reads all of A, which for a layer at large batch is larger than L2).

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 800)
#error "bmma_gemm.cu needs sm_80 or newer (binary mma with .and.popc)"
#endif

typedef unsigned int u32;
typedef long long i64;

#define FLAG_ACC 1
#define FLAG_BITS 2
#define FLAG_SCORES 4
#define FLAG_N_FAST 8  // one-dimensional grid, column tiles fastest (see "Block order" above)


// The inline PTX below; host_emulation.cuh supplies equivalents when the file is compiled for the CPU emulator.
#ifndef BNN_HOST_EMULATION
__device__ __forceinline__ void cp_async16(u32* smem, const u32* gmem, bool valid)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// Wait until at most N of this thread's committed cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// d += popcount(a AND b) on a 16 x 8 x 256 tile. Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k256", b1):
// lane = 4 * g + t; a0 = row g word t, a1 = row g+8 word t, a2 = row g word t+4, a3 = row g+8 word t+4 of the
// 16 x 8-word A tile; b0 = column g word t, b1 = column g word t+4 of the 8 x 8-word B tile; d0, d1 = row g columns
// 2t, 2t+1 and d2, d3 = row g+8 columns 2t, 2t+1.
__device__ __forceinline__ void bmma_and_popc(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1)
{
    asm("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += A * B on a 16 x 8 x 32 tile of unsigned bytes (A) and signed bytes (B); fragments as bmma_and_popc, with a
// word holding 4 consecutive k (PTX ISA, "Matrix Fragments for mma.m16n8k32", .u8/.s8).
__device__ __forceinline__ void imma_u8s8(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1)
{
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif  // BNN_HOST_EMULATION

// The cp.async loader of one operand: ROWS rows of BKW words per stage, BKW / 4 chunks of 16 bytes per row. A thread
// always moves the same chunk column of rows r0, r0 + ROW_STEP, ...: its source pointer, destination offsets and row
// validity are fixed before the K loop, so a stage costs one 64-bit add and one copy per chunk (the first version
// recomputed 64-bit addresses and two integer divisions per stage, which Nsight Compute showed as the top stall on
// an H100: fixed-latency dependencies).
template <int ROWS, int BKW, int LDS, int THREADS>
struct BtLoader {
    static constexpr int CPR = BKW / 4;  // chunks per row
    static constexpr int ROW_STEP = THREADS / CPR;
    static constexpr int CHUNKS = ROWS / ROW_STEP;
    static_assert(THREADS % CPR == 0 && ROWS % ROW_STEP == 0, "tile does not split over the threads");
    static_assert(CHUNKS <= 32, "row validity is a 32-bit mask");

    const u32* src;  // this thread's first chunk in word 0 of plane 0
    const u32* base;  // a valid address for zero-filled chunks
    i64 row_stride;  // words between a thread's successive rows (ROW_STEP rows of the operand)
    u32 rows_ok;  // bit i: chunk i's row lies inside the matrix
    int q;  // the thread's first word within a stage

    __device__ __forceinline__ BtLoader(const u32* __restrict__ operand, i64 first_row, i64 rows, i64 pitch)
    {
        const int r0 = threadIdx.x / CPR;
        q = (threadIdx.x % CPR) * 4;
        base = operand;
        row_stride = pitch * ROW_STEP;
        rows_ok = 0u;
#pragma unroll
        for (int i = 0; i < CHUNKS; ++i) rows_ok |= (u32)(first_row + r0 + i * ROW_STEP < rows) << i;
        src = rows_ok ? operand + (first_row + r0) * pitch + q : operand;
    }

    // Stage kt of K (words kt * BKW ...) of plane `plane_words` / ld into dst (the stage's ROWS x LDS words).
    __device__ __forceinline__ void load(u32 (*dst)[LDS], i64 plane_words, int kt, int ld) const
    {
        const int word = kt * BKW;
        const bool word_ok = word + q < ld;  // ld % 4 == 0: a chunk is entirely inside or past the row
        const u32* p = src + plane_words + word;
        const int r0 = threadIdx.x / CPR;
#pragma unroll
        for (int i = 0; i < CHUNKS; ++i) {
            const bool ok = word_ok && ((rows_ok >> i) & 1u);
            cp_async16(&dst[r0 + i * ROW_STEP][q], ok ? p : base, ok);
            p += row_stride;
        }
    }
};

// The shared body of every instance. INT8: the 8-bit mma, `planes` must be 1 and acc is the dot product itself.
// VEC: fragments are read with 128-bit shared loads (see "Vector fragment reads" at the top of the file).
// STAGES: shared-memory stages of the cp.async pipeline (2: load the next stage, then wait for the current one;
// more: STAGES - 1 stages in flight while one is computed).
template <bool INT8, int WM, int WN, int MI, int NI, int BKW, bool VEC, int STAGES>
__device__ __forceinline__ void bt_gemm(const u32* __restrict__ a, const u32* __restrict__ b, int m, int n, int ld,
                                        int planes, const int* __restrict__ roww, const int* __restrict__ colc,
                                        int flags, int* __restrict__ acc_out, const int* __restrict__ thr,
                                        u32* __restrict__ bits_out, int ldo, int score_scale,
                                        const int* __restrict__ score_off, int* __restrict__ scores_out)
{
    // Row pitch in words: BKW + 4 spreads the 32-bit fragment reads over all banks; the 128-bit reads need
    // LDS % 32 == 16, so that the two rows a quarter-warp reads (g, g + 1) fall into the two halves of the banks.
    constexpr int LDS = VEC ? BKW + (48 - BKW % 32) % 32 : BKW + 4;
    constexpr int WTM = MI * 16, WTN = NI * 8;  // the warp tile
    constexpr int BM = WM * WTM, BN = WN * WTN, THREADS = WM * WN * 32;
    static_assert(NI % 4 == 0, "a warp's columns fill whole 32-bit output words");
    static_assert(BN % 128 == 0, "output rows are padded to 128 columns (kernels.row_words): the last column tile "
                                 "must write the padding words too");
    static_assert(BKW % (VEC ? 16 : 8) == 0, "a stage holds whole mma k-steps (pairs of them with VEC)");
    static_assert(!VEC || LDS % 32 == 16, "128-bit fragment reads need a row pitch of 16 (mod 32) words");
    static_assert(STAGES >= 2, "a pipeline needs at least two stages");
    __shared__ __align__(16) u32 as[STAGES][BM][LDS];
    __shared__ __align__(16) u32 bs[STAGES][BN][LDS];

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = warp / WN, wn = warp % WN;
    const int g = lane >> 2, t = lane & 3;
    i64 m0;
    int n0;
    if (flags & FLAG_N_FAST) {
        const int n_tiles = (n + BN - 1) / BN;
        m0 = (i64)(blockIdx.x / n_tiles) * BM;
        n0 = (int)(blockIdx.x % n_tiles) * BN;
    } else {
        m0 = (i64)blockIdx.x * BM;
        n0 = blockIdx.y * BN;
    }
    const i64 lda = (i64)ld * planes;
    const int tiles_per_plane = (ld + BKW - 1) / BKW;
    const int tiles = tiles_per_plane * planes;

    int acc[MI][NI][4];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[mi][ni][c] = 0;

    // Tiles of the K loop in order: planes from the most significant (plane planes - 1) down, chunks 0 ..
    // tiles_per_plane - 1 within a plane. Every thread moves the same number of chunks of each operand, so nothing
    // branches on the thread (H100, 2026-11-26: a loader that chose the operand per chunk at run time made the
    // 128 x 128 instance ~17 % slower). Counters instead of divisions: the next tile to load is (load_plane, load_kt).
    const BtLoader<BM, BKW, LDS, THREADS> a_loader(a, m0, m, lda);
    const BtLoader<BN, BKW, LDS, THREADS> b_loader(b, n0, n, ld);
    i64 load_plane_words = (i64)(planes - 1) * ld;
    int load_kt = 0;
    auto load_next = [&](int stage) {
        a_loader.load(as[stage], load_plane_words, load_kt, ld);
        b_loader.load(bs[stage], 0, load_kt, ld);
        if (++load_kt == tiles_per_plane) {
            load_kt = 0;
            load_plane_words -= ld;
        }
    };
    if constexpr (STAGES == 2) {
        load_next(0);
        cp_async_commit();
    } else {
#pragma unroll
        for (int st = 0; st < STAGES - 1; ++st) {
            if (st < tiles) load_next(st);
            cp_async_commit();  // empty groups too: group i always belongs to tile i
        }
    }
    int kt = 0;  // the computed tile's chunk within its plane

    for (int tile = 0; tile < tiles; ++tile) {
        if constexpr (STAGES == 2) {
            if (tile + 1 < tiles) {  // stage (tile + 1) & 1 was last read before the previous iteration's last barrier
                load_next((tile + 1) & 1);
                cp_async_commit();
                cp_async_wait_all_but_one();
            } else {
                cp_async_wait_all();
            }
            __syncthreads();
        } else {
            // Groups 0 .. STAGES - 2 + tile are committed; at most STAGES - 2 pending means group `tile` has landed.
            cp_async_wait<STAGES - 2>();
            __syncthreads();  // ... for every thread; and every warp is done with tile - 1, whose stage is reloaded now
            if (tile + STAGES - 1 < tiles) load_next((tile + STAGES - 1) % STAGES);
            cp_async_commit();
        }

        if (kt == tiles_per_plane) kt = 0;
        if (tile > 0 && kt == 0) {  // a new, less significant bit plane: Horner step
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                    for (int c = 0; c < 4; ++c) acc[mi][ni][c] <<= 1;
        }

        const int s = tile % STAGES;
        if constexpr (VEC) {
            // Two k-steps per read: thread t takes words 4t .. 4t+3 of each 16-word group, feeding 4t and 4t+1 to
            // the first k-step (as its words t and t+4) and 4t+2, 4t+3 to the second, for A and B alike.
#pragma unroll
            for (int kp = 0; kp < BKW / 16; ++kp) {
                const int kb = kp * 16 + 4 * t;
                u32 af[2][MI][4];
#pragma unroll
                for (int mi = 0; mi < MI; ++mi) {
                    const int r = wm * WTM + mi * 16 + g;
                    const uint4 lo = *reinterpret_cast<const uint4*>(&as[s][r][kb]);
                    const uint4 hi = *reinterpret_cast<const uint4*>(&as[s][r + 8][kb]);
                    af[0][mi][0] = lo.x, af[0][mi][1] = hi.x, af[0][mi][2] = lo.y, af[0][mi][3] = hi.y;
                    af[1][mi][0] = lo.z, af[1][mi][1] = hi.z, af[1][mi][2] = lo.w, af[1][mi][3] = hi.w;
                }
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    const uint4 bv = *reinterpret_cast<const uint4*>(&bs[s][wn * WTN + ni * 8 + g][kb]);
#pragma unroll
                    for (int mi = 0; mi < MI; ++mi) {
                        if constexpr (INT8) {
                            imma_u8s8(acc[mi][ni], af[0][mi], bv.x, bv.y);
                            imma_u8s8(acc[mi][ni], af[1][mi], bv.z, bv.w);
                        } else {
                            bmma_and_popc(acc[mi][ni], af[0][mi], bv.x, bv.y);
                            bmma_and_popc(acc[mi][ni], af[1][mi], bv.z, bv.w);
                        }
                    }
                }
            }
        } else {
#pragma unroll
            for (int ks = 0; ks < BKW / 8; ++ks) {
                const int kb = ks * 8;
                u32 af[MI][4];
#pragma unroll
                for (int mi = 0; mi < MI; ++mi) {
                    const int r = wm * WTM + mi * 16 + g;
                    af[mi][0] = as[s][r][kb + t];
                    af[mi][1] = as[s][r + 8][kb + t];
                    af[mi][2] = as[s][r][kb + t + 4];
                    af[mi][3] = as[s][r + 8][kb + t + 4];
                }
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    const int c = wn * WTN + ni * 8 + g;
                    const u32 b0 = bs[s][c][kb + t];
                    const u32 b1 = bs[s][c][kb + t + 4];
#pragma unroll
                    for (int mi = 0; mi < MI; ++mi) {
                        if constexpr (INT8)
                            imma_u8s8(acc[mi][ni], af[mi], b0, b1);
                        else
                            bmma_and_popc(acc[mi][ni], af[mi], b0, b1);
                    }
                }
            }
        }
        ++kt;
        if constexpr (STAGES == 2) __syncthreads();
    }

    if constexpr (!INT8) {  // acc = 2 * andw - roww[row] + colc[col]
        int rw[MI][2];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const i64 row = m0 + wm * WTM + mi * 16 + g + hr * 8;
                rw[mi][hr] = row < m ? roww[row] : 0;
            }
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                const int col = n0 + wn * WTN + ni * 8 + 2 * t + j;
                const int cc = col < n ? colc[col] : 0;
#pragma unroll
                for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                    for (int hr = 0; hr < 2; ++hr)
                        acc[mi][ni][hr * 2 + j] = 2 * acc[mi][ni][hr * 2 + j] - rw[mi][hr] + cc;
            }
    }

    if (flags & (FLAG_ACC | FLAG_SCORES)) {
        // Thread t holds columns 2t, 2t+1: with n even they are one 8-byte pair (aligned when the output is, which
        // kernels.gemm checks), so the 4 threads of a row write 32 contiguous bytes per mma tile (whole 32-byte
        // sectors when n % 8 == 0, otherwise spread over two).
        const bool pairs = n % 2 == 0;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const i64 row = m0 + wm * WTM + mi * 16 + g + hr * 8;
                if (row >= m) continue;
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    const int col0 = n0 + wn * WTN + ni * 8 + 2 * t;
                    if (pairs) {
                        if (col0 >= n) continue;
                        const int v0 = acc[mi][ni][hr * 2], v1 = acc[mi][ni][hr * 2 + 1];
                        if (flags & FLAG_ACC) *reinterpret_cast<int2*>(&acc_out[row * n + col0]) = make_int2(v0, v1);
                        if (flags & FLAG_SCORES)
                            *reinterpret_cast<int2*>(&scores_out[row * n + col0]) =
                                make_int2(v0 * score_scale + score_off[col0], v1 * score_scale + score_off[col0 + 1]);
                        continue;
                    }
#pragma unroll
                    for (int j = 0; j < 2; ++j) {
                        const int col = n0 + wn * WTN + ni * 8 + 2 * t + j;
                        if (col >= n) continue;
                        const int v = acc[mi][ni][hr * 2 + j];
                        if (flags & FLAG_ACC) acc_out[row * n + col] = v;
                        if (flags & FLAG_SCORES) scores_out[row * n + col] = v * score_scale + score_off[col];
                    }
                }
            }
    }

    if (flags & FLAG_BITS) {
        // Word w (0 .. NI / 4 - 1) of a warp row covers mma tiles ni = 4w .. 4w+3; thread t holds columns 2t, 2t+1
        // of each, at bit (ni % 4) * 8 + 2t + j. The 4 lanes of a group differ in lane bits 0..1: two xor-shuffles OR
        // the word.
        int th[NI][2];
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                const int col = n0 + wn * WTN + ni * 8 + 2 * t + j;
                th[ni][j] = col < n ? thr[col] : 0;
            }
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const i64 row = m0 + wm * WTM + mi * 16 + g + hr * 8;
#pragma unroll
                for (int w = 0; w < NI / 4; ++w) {
                    u32 word = 0u;
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        const int ni = w * 4 + q;
#pragma unroll
                        for (int j = 0; j < 2; ++j) {
                            const int col = n0 + wn * WTN + ni * 8 + 2 * t + j;
                            const bool bit = col < n && acc[mi][ni][hr * 2 + j] >= th[ni][j];
                            word |= (u32)bit << (q * 8 + 2 * t + j);
                        }
                    }
                    word |= __shfl_xor_sync(0xffffffffu, word, 1);
                    word |= __shfl_xor_sync(0xffffffffu, word, 2);
                    const int wi = (n0 + wn * WTN + w * 32) >> 5;
                    if (t == 0 && row < m && wi < ldo) bits_out[row * ldo + wi] = word;
                }
            }
    }
}

#define BT_KERNEL(NAME, INT8, WM, WN, MI, NI, BKW, VEC, STAGES)                                                                            \
    extern "C" __global__ void __launch_bounds__(WM * WN * 32, 1)                                                    \
    NAME(const u32* __restrict__ a, const u32* __restrict__ b, int m, int n, int ld, int planes,                     \
         const int* __restrict__ roww, const int* __restrict__ colc, int flags, int* __restrict__ acc_out,          \
         const int* __restrict__ thr, u32* __restrict__ bits_out, int ldo, int score_scale,                          \
         const int* __restrict__ score_off, int* __restrict__ scores_out)                                            \
    {                                                                                                                 \
        bt_gemm<INT8, WM, WN, MI, NI, BKW, VEC, STAGES>(a, b, m, n, ld, planes, roww, colc, flags, acc_out, thr, bits_out, ldo,           \
                                   score_scale, score_off, scores_out);                                              \
    }

// name, 8-bit, warps along M, warps along N, mma tiles per warp along M (16 rows) and N (8 columns), words per stage,
// 128-bit fragment reads, pipeline stages. The `, 1` (at least one resident block per SM) in __launch_bounds__ is
// what every timing in benchmarks/RESULTS.md was measured with: without it nvcc 13 gives bmma_gemm 168 registers
// instead of 214 (so three blocks per SM would fit), a different kernel, not yet timed on a GPU.
// (keep in step with kernels.TENSOR_CORE_TILES and _device.KERNELS)
BT_KERNEL(bmma_gemm, false, 2, 2, 4, 8, 16, false, 2)
BT_KERNEL(bmma_gemm_256, false, 4, 2, 4, 8, 8, false, 2)
BT_KERNEL(imma_gemm, true, 2, 2, 4, 8, 16, false, 2)
BT_KERNEL(imma_gemm_256, true, 4, 2, 4, 8, 8, false, 2)
BT_KERNEL(bmma_gemm_v, false, 2, 2, 4, 8, 16, true, 2)
BT_KERNEL(bmma_gemm_256v, false, 4, 2, 4, 8, 16, true, 2)
BT_KERNEL(imma_gemm_v, true, 2, 2, 4, 8, 16, true, 2)
BT_KERNEL(imma_gemm_256v, true, 4, 2, 4, 8, 16, true, 2)
BT_KERNEL(bmma_gemm_v3, false, 2, 2, 4, 8, 16, true, 3)
BT_KERNEL(imma_gemm_v3, true, 2, 2, 4, 8, 16, true, 3)
