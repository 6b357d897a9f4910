// Packing, gathering and small helper kernels of the bnn-hw GPU reference (docs/gpu.md).
//
// Bit order is docs/format.md's: element i of a row is bit (i % 32) of 32-bit word i / 32, bit 0 the least
// significant. That is the same memory as bnn_hw.packing's little-endian uint64 words, so a uint64 row viewed as
// uint32 needs no reordering. Bits past the fan-in K of a row, and whole padding words up to the row stride, are 0.
//
// Packed-row layout shared by every kernel: a matrix of rows, each `ld` words (ld a multiple of 4 so rows can be
// moved as 16-byte vectors). A pixel operand stores 8 bit planes per row: plane p (bit p of every pixel value) at
// words [p * ld, (p + 1) * ld) of a row of 8 * ld words.
//
// Self-contained on purpose (no #include): CuPy compiles it with NVRTC, the tests with nvcc.

typedef unsigned int u32;
typedef unsigned char u8;
typedef long long i64;

// Signs (int8) -> packed bits, 1 = +1 and sign(0) = +1, so any value >= 0 is a 1 bit. One warp per output word:
// lane j reads element 32 * word + j and __ballot_sync puts it at bit j. Blocks are a multiple of 32 threads, so
// a warp is either entirely inside the output or entirely outside.
extern "C" __global__ void pack_signs_i8(const signed char* __restrict__ x, i64 rows, int k, i64 ldx,
                                         u32* __restrict__ out, int ld)
{
    const i64 warp = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= rows * ld) return;
    const i64 row = warp / ld;
    const int word = (int)(warp - row * ld);
    const int e = word * 32 + lane;
    const bool bit = e < k && x[row * ldx + e] >= 0;
    const u32 w = __ballot_sync(0xffffffffu, bit);
    if (lane == 0) out[row * ld + word] = w;
}

// 8-bit images -> packed rows, for the first layer. Output row r = (b, oy, ox) is the window of a kh x kw
// "convolution" over the (B, H, W, C) channels-last uint8 images, stride `stride`, `pad` rows/columns of padding, in
// fan-in order e = (ky * kw + kx) * C + c (docs/format.md). A dense layer is the window kh = H, kw = W, pad 0 at the
// single position (0, 0): e is then the flattened HWC index.
//   planes == 8: the 8 bit planes of the pixel values (pixel layers); a padded element has the value pad_pixel.
//   planes == 1: one plane of bits (pixel >= thresh), the model's binarize_at; a padded element is the bit pad_bit.
// One thread per output word (32 elements); words up to `ld` past the fan-in are written as 0.
extern "C" __global__ void gather_u8(const u8* __restrict__ img, int batch, int h, int w, int c, int kh, int kw,
                                     int stride, int pad, int oh, int ow, int planes, int pad_pixel, int thresh,
                                     int pad_bit, int k, u32* __restrict__ out, int ld)
{
    const i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const i64 positions = (i64)oh * ow;
    const i64 rows = (i64)batch * positions;
    if (idx >= rows * ld) return;
    const i64 r = idx / ld;
    const int word = (int)(idx - r * ld);
    const i64 b = r / positions;
    const int pos = (int)(r - b * positions);
    const int oy = pos / ow, ox = pos - oy * ow;
    const u8* __restrict__ base = img + b * ((i64)h * w * c);

    u32 bits[8];
#pragma unroll
    for (int p = 0; p < 8; ++p) bits[p] = 0u;

    const int e0 = word * 32;
    if (e0 < k) {
        const int kc = kw * c;
        int ky = e0 / kc;
        int rem = e0 - ky * kc;
        int kx = rem / c;
        int ch = rem - kx * c;
        const int n = min(32, k - e0);
        for (int j = 0; j < n; ++j) {
            const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
            const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
            if (planes == 1) {
                const u32 bit = inside ? (u32)(base[((i64)iy * w + ix) * c + ch] >= thresh) : (u32)(pad_bit != 0);
                bits[0] |= bit << j;
            } else {
                const u32 v = inside ? (u32)base[((i64)iy * w + ix) * c + ch] : (u32)pad_pixel;
#pragma unroll
                for (int p = 0; p < 8; ++p) bits[p] |= ((v >> p) & 1u) << j;
            }
            if (++ch == c) {
                ch = 0;
                if (++kx == kw) {
                    kx = 0;
                    ++ky;
                }
            }
        }
    }
    u32* __restrict__ dst = out + r * ((i64)planes * ld) + word;
    if (planes == 1) {
        dst[0] = bits[0];
    } else {
#pragma unroll
        for (int p = 0; p < 8; ++p) dst[(i64)p * ld] = bits[p];
    }
}

// Packed bit feature map -> packed rows: the im2col of a binary convolution (or the HWC flattening before a dense
// layer: kh = H, kw = W, pad 0, one position). The map is (B, H, W) pixels of `ldp` words each holding C channel
// bits; output row r = (b, oy, ox), fan-in order (ky, kx, c); padded elements are the bit pad_bit (pad_value +1 ->
// 1, -1 -> 0). One thread per output word. When C is a multiple of 32 a word is one whole input word (copy).
extern "C" __global__ void gather_bits(const u32* __restrict__ in, int batch, int h, int w, int c, int ldp, int kh,
                                       int kw, int stride, int pad, int oh, int ow, int pad_bit, int k,
                                       u32* __restrict__ out, int ld)
{
    const i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const i64 positions = (i64)oh * ow;
    const i64 rows = (i64)batch * positions;
    if (idx >= rows * ld) return;
    const i64 r = idx / ld;
    const int word = (int)(idx - r * ld);
    const i64 b = r / positions;
    const int pos = (int)(r - b * positions);
    const int oy = pos / ow, ox = pos - oy * ow;
    const u32* __restrict__ base = in + b * ((i64)h * w * ldp);
    const u32 pad_word = pad_bit ? 0xffffffffu : 0u;

    u32 result = 0u;
    const int e0 = word * 32;
    if (e0 < k) {
        const int kc = kw * c;
        int ky = e0 / kc;
        int rem = e0 - ky * kc;
        int kx = rem / c;
        int ch = rem - kx * c;
        if ((c & 31) == 0) {  // k is a multiple of 32 too, so this word is 32 channels of one pixel
            const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
            const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
            result = inside ? base[((i64)iy * w + ix) * ldp + (ch >> 5)] : pad_word;
        } else {
            const int n = min(32, k - e0);
            for (int j = 0; j < n; ++j) {
                const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                const u32 bit = inside ? (base[((i64)iy * w + ix) * ldp + (ch >> 5)] >> (ch & 31)) & 1u
                                       : (pad_word & 1u);
                result |= bit << j;
                if (++ch == c) {
                    ch = 0;
                    if (++kx == kw) {
                        kx = 0;
                        ++ky;
                    }
                }
            }
        }
    }
    out[r * ld + word] = result;
}

// Max-pooling of +-1 values on packed bits: the OR of the words of a pool x pool window (non-overlapping, floor
// mode: rows/columns that do not fill a window are dropped). In (B, H, W, ldp) words -> out (B, PH, PW, ldp).
extern "C" __global__ void or_pool(const u32* __restrict__ in, int batch, int h, int w, int ldp, int pool, int ph,
                                   int pw, u32* __restrict__ out)
{
    const i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const i64 total = (i64)batch * ph * pw * ldp;
    if (idx >= total) return;
    const int word = (int)(idx % ldp);
    i64 rest = idx / ldp;
    const int px = (int)(rest % pw);
    rest /= pw;
    const int py = (int)(rest % ph);
    const i64 b = rest / ph;
    u32 v = 0u;
    for (int dy = 0; dy < pool; ++dy)
        for (int dx = 0; dx < pool; ++dx)
            v |= in[((b * h + (i64)py * pool + dy) * w + (i64)px * pool + dx) * ldp + word];
    out[idx] = v;
}

// Row weights for the tensor-core correction: weight[r] = sum_p 2^p * popcount(plane p of row r). For a bits
// operand (planes == 1) that is the number of +1 bits; for pixel planes it is the sum of the row's pixel values.
// One warp per row.
extern "C" __global__ void row_weights(const u32* __restrict__ a, i64 rows, int ld, int planes, int* __restrict__ out)
{
    const i64 row = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const u32* __restrict__ src = a + row * ((i64)planes * ld);
    int total = 0;
    for (int p = planes - 1; p >= 0; --p) {
        int s = 0;
        for (int i = lane; i < ld; i += 32) s += __popc(src[(i64)p * ld + i]);
        total = 2 * total + s;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) total += __shfl_xor_sync(0xffffffffu, total, off);
    if (lane == 0) out[row] = total;
}

// Predicted class of every row of int32 scores: the first index of the maximum (numpy's argmax convention).
extern "C" __global__ void argmax_rows(const int* __restrict__ scores, i64 rows, int n, i64* __restrict__ out)
{
    const i64 row = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    const int* __restrict__ s = scores + row * n;
    int best = s[0];
    int arg = 0;
    for (int j = 1; j < n; ++j) {
        const int v = s[j];
        if (v > best) {
            best = v;
            arg = j;
        }
    }
    out[row] = arg;
}
