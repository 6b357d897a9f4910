// XNOR-popcount matrix multiply on CUDA cores: the naive baseline and the tiled kernel (docs/gpu.md).
//
// Operands are packed rows (see pack.cu): A is M rows of activations, B is N rows of weights, both `ld` words per
// row (ld a multiple of 4), zero past the fan-in K. Zero padding bits agree in A and B, so they are not counted as
// mismatches: mism = sum popcount(a XOR b) over the words, and the XNOR popcount is K - mism (docs/format.md).
//
// Pixel layers: A holds 8 bit planes per row (row stride 8 * ld words, plane p at offset p * ld) and the weighted
// mismatch count is mismw = sum_p 2^p * popcount(plane_p XOR w). With pw = popcount(w),
//     dot = sum_p 2^p * (2 * popcount(plane_p AND w) - popcount(plane_p)) = sum_p 2^p * (pw - mism_p)
//         = 255 * pw - mismw.
// So every layer's accumulator is  acc = colc[n] - mismw  with colc = K (bits input) or 255 * popcount(w_n) (pixels),
// and the plane weights are applied by Horner's rule (planes are visited from the most significant; the running
// count doubles at each new plane).
//
// Epilogue (flags, any combination):
//   1 (ACC):    acc_out[m * N + n] = acc                                   int32, the golden model's accumulator
//   2 (BITS):   bit (acc >= thr[n]) packed little-endian into bits_out[m * ldo + n / 32]; bits n >= N are 0, words
//               of the row past the block's columns are not touched; the output is the next layer's packed input
//   4 (SCORES): scores_out[m * N + n] = acc * score_scale + score_off[n]  (dot + bias of the last layer)
// Unused pointer arguments must still point at valid (possibly 1-element) memory; they are never dereferenced.

typedef unsigned int u32;
typedef long long i64;

#define FLAG_ACC 1
#define FLAG_BITS 2
#define FLAG_SCORES 4

// The paper's "unoptimized" comparison: one thread per output, every operand word read from global memory, no
// reuse. Writes the XNOR popcount (K - mism) as int32.
extern "C" __global__ void xnor_gemm_naive(const u32* __restrict__ a, const u32* __restrict__ b, int m, int n,
                                           int ld, int k, int* __restrict__ acc_out)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const i64 row = (i64)blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= m || col >= n) return;
    const u32* pa = a + row * ld;
    const u32* pb = b + (i64)col * ld;
    int mism = 0;
    for (int i = 0; i < ld; ++i) mism += __popc(pa[i] ^ pb[i]);
    acc_out[row * n + col] = k - mism;
}

// The BinaryNet paper's own baseline was an unoptimized *float* matrix multiply; this is that kernel (one thread per
// output, float multiply-adds from global memory) on the same +-1 values, timed for reference. Sums of K <= 2^24
// values +-1 are exact in float.
extern "C" __global__ void float_gemm_naive(const float* __restrict__ a, const float* __restrict__ b, int m, int n,
                                            int k, float* __restrict__ out)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const i64 row = (i64)blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= m || col >= n) return;
    const float* pa = a + row * k;
    const float* pb = b + (i64)col * k;
    float s = 0.0f;
    for (int i = 0; i < k; ++i) s += pa[i] * pb[i];
    out[row * n + col] = s;
}

// Tiled kernel: a 128 x 128 output tile per block of 256 threads, 8 x 8 outputs per thread, K consumed 8 words
// (256 bits) at a time through double-buffered shared memory filled with 16-byte loads.
//
// Thread (tx, ty) = (tid % 16, tid / 16) owns rows {ty*4 + i, 64 + ty*4 + i} and columns {tx*4 + j, 64 + tx*4 + j}
// (i, j < 4), so its operands are two aligned 16-byte shared loads each and the 16 threads of a half-warp read 256
// consecutive bytes (no bank conflicts). Shared tiles are stored transposed, [k word][row], with a stride of 132
// words so the transposing stores of a warp hit 32 distinct banks.
#define XT_BM 128
#define XT_BN 128
#define XT_BK 8
#define XT_PAD 4

__device__ __forceinline__ void xt_load(const u32* __restrict__ a_row, const u32* __restrict__ b_row, bool a_ok,
                                        bool b_ok, int ld, int plane, int word, uint4& ra, uint4& rb)
{
    const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
    const bool in_k = word < ld;  // ld % 4 == 0: a 16-byte quad is entirely inside the row or entirely past it
    ra = (a_ok && in_k) ? *reinterpret_cast<const uint4*>(a_row + (i64)plane * ld + word) : zero;
    rb = (b_ok && in_k) ? *reinterpret_cast<const uint4*>(b_row + word) : zero;
}

extern "C" __global__ void __launch_bounds__(256)
xnor_gemm_tiled(const u32* __restrict__ a, const u32* __restrict__ b, int m, int n, int ld, int planes,
                const int* __restrict__ colc, int flags, int* __restrict__ acc_out, const int* __restrict__ thr,
                u32* __restrict__ bits_out, int ldo, int score_scale, const int* __restrict__ score_off,
                int* __restrict__ scores_out)
{
    __shared__ __align__(16) u32 as[2][XT_BK][XT_BM + XT_PAD];
    __shared__ __align__(16) u32 bs[2][XT_BK][XT_BN + XT_PAD];

    const int tid = threadIdx.x;
    const int tx = tid & 15, ty = tid >> 4;
    const i64 m0 = (i64)blockIdx.x * XT_BM;
    const int n0 = blockIdx.y * XT_BN;
    const i64 lda = (i64)ld * planes;

    // Loader: thread tid moves words [lq, lq + 4) of tile row lr, for A and for B.
    const int lr = tid >> 1, lq = (tid & 1) * 4;
    const bool a_ok = m0 + lr < m;
    const bool b_ok = n0 + lr < n;
    const u32* __restrict__ a_row = a + (a_ok ? (m0 + lr) * lda : 0);
    const u32* __restrict__ b_row = b + (b_ok ? (i64)(n0 + lr) * ld : 0);
    const int tiles_per_plane = (ld + XT_BK - 1) / XT_BK;
    const int tiles = tiles_per_plane * planes;

    int acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0;

    uint4 ra, rb;
    xt_load(a_row, b_row, a_ok, b_ok, ld, planes - 1, lq, ra, rb);
    as[0][lq + 0][lr] = ra.x; as[0][lq + 1][lr] = ra.y; as[0][lq + 2][lr] = ra.z; as[0][lq + 3][lr] = ra.w;
    bs[0][lq + 0][lr] = rb.x; bs[0][lq + 1][lr] = rb.y; bs[0][lq + 2][lr] = rb.z; bs[0][lq + 3][lr] = rb.w;
    __syncthreads();

    for (int t = 0; t < tiles; ++t) {
        const int buf = t & 1;
        const bool more = t + 1 < tiles;
        if (more) {  // prefetch the next tile into registers while this one is computed
            const int pi = (t + 1) / tiles_per_plane;
            const int kt = (t + 1) - pi * tiles_per_plane;
            xt_load(a_row, b_row, a_ok, b_ok, ld, planes - 1 - pi, kt * XT_BK + lq, ra, rb);
        }
        if (t > 0 && t % tiles_per_plane == 0) {  // a new, less significant bit plane: Horner step
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] <<= 1;
        }
#pragma unroll
        for (int kk = 0; kk < XT_BK; ++kk) {
            const uint4 a0 = *reinterpret_cast<const uint4*>(&as[buf][kk][ty * 4]);
            const uint4 a1 = *reinterpret_cast<const uint4*>(&as[buf][kk][64 + ty * 4]);
            const uint4 b0 = *reinterpret_cast<const uint4*>(&bs[buf][kk][tx * 4]);
            const uint4 b1 = *reinterpret_cast<const uint4*>(&bs[buf][kk][64 + tx * 4]);
            const u32 av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const u32 bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] += __popc(av[i] ^ bv[j]);
        }
        if (more) {  // the other buffer was last read before the previous barrier
            const int nb = buf ^ 1;
            as[nb][lq + 0][lr] = ra.x; as[nb][lq + 1][lr] = ra.y; as[nb][lq + 2][lr] = ra.z; as[nb][lq + 3][lr] = ra.w;
            bs[nb][lq + 0][lr] = rb.x; bs[nb][lq + 1][lr] = rb.y; bs[nb][lq + 2][lr] = rb.z; bs[nb][lq + 3][lr] = rb.w;
        }
        __syncthreads();
    }

    // Epilogue. acc now holds the (plane-weighted) mismatch counts; turn them into accumulators.
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
        const int cc = col < n ? colc[col] : 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[i][j] = cc - acc[i][j];
    }

    if (flags & (FLAG_ACC | FLAG_SCORES)) {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const i64 row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
            if (row >= m) continue;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const int col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
                if (col >= n) continue;
                if (flags & FLAG_ACC) acc_out[row * n + col] = acc[i][j];
                if (flags & FLAG_SCORES) scores_out[row * n + col] = acc[i][j] * score_scale + score_off[col];
            }
        }
    }

    if (flags & FLAG_BITS) {
        // Columns h*64 + tx*4 + jj of a row form nibble (tx % 8) of output word (n0 + h*64 + (tx / 8) * 32) / 32;
        // the 8 lanes holding one word differ only in lane bits 0..2, so three xor-shuffles OR it together.
        // Every lane of the warp executes the shuffles (no divergence around them).
        int thr_reg[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
            thr_reg[j] = col < n ? thr[col] : 0;
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const i64 row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                u32 nib = 0u;
#pragma unroll
                for (int jj = 0; jj < 4; ++jj) {
                    const int j = h * 4 + jj;
                    const int col = n0 + h * 64 + tx * 4 + jj;
                    const bool bit = col < n && acc[i][j] >= thr_reg[j];
                    nib |= (u32)bit << jj;
                }
                u32 word = nib << (4 * (tx & 7));
                word |= __shfl_xor_sync(0xffffffffu, word, 1);
                word |= __shfl_xor_sync(0xffffffffu, word, 2);
                word |= __shfl_xor_sync(0xffffffffu, word, 4);
                const int wi = (n0 + h * 64 + (tx >> 3) * 32) >> 5;
                if ((tx & 7) == 0 && row < m && wi < ldo) bits_out[row * ldo + wi] = word;
            }
        }
    }
}
