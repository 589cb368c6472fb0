/*
 * Layered sum-product decoder for quasi-cyclic LDPC codes (5G NR), int16 fixed point, AVX-512BW.
 *
 * Why a C kernel: the numba kernel spends as much time in loop overhead around the
 * circulant rotations as in the check-node arithmetic, and numba widens int16 arithmetic
 * to int64. Here one zmm register holds 32 rows of a layer, every message stays in
 * registers across the forward-backward check-node pass, and a rotated block column is
 * read or written with two masked loads/stores, so no Z needs to be a multiple of 32.
 *
 * Numbers: LLRs scaled by SCALE (1/32 LLR resolution), log(P0/P1) sign (positive = bit 0).
 * Channel LLRs are clipped to +-30, posteriors to +-120, check messages to +-30: the
 * same limits as the float kernel, and every sum stays inside int16.
 * Check-node rule: a (+) b = sign(a)sign(b) min(|a|,|b|) + c(|a|+|b|) - c(||a|-|b||),
 * c(x) = log(1 + exp(-x)) from a 32-entry table over [0, 4) (one vpermw), 0 beyond.
 * Early stop: the syndrome of the 4 core block rows. In NR base graphs every later row
 * adds one degree-1 parity column, so a zero core syndrome means the decided information
 * and core parity bits extend to a codeword (the extension parity bits follow from them).
 *
 * Built by `make setup` (cc -O3 -march=native) and by CMake; loaded with ctypes. Without
 * AVX-512BW it compiles to a stub whose ncsc_ldpc_available() returns 0, and Python uses
 * the numba kernel.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SCALE 32
#define CH_CLIP (30 * SCALE)
#define L_CLIP (120 * SCALE)
#define R_CLIP (30 * SCALE)
#define MAX_DEG 32

#if defined(__AVX512BW__) && defined(__AVX512F__)
#include <immintrin.h>
#include <math.h>

static __m512i corr_table;

static inline size_t round_up64(size_t n) { return (n + 63) & ~(size_t)63; }

static void init_table(void)
{
    int16_t t[32];
    /* bucket b covers x in [b, b+1) / 8 LLR (4 units); value = mean of c over the bucket */
    for (int b = 0; b < 32; b++) {
        double s = 0.0;
        for (int k = 0; k < 64; k++) {
            double x = (b + (k + 0.5) / 64.0) / 8.0;
            s += log1p(exp(-x));
        }
        t[b] = (b == 31) ? 0 : (int16_t)lrint(s / 64.0 * SCALE);
    }
    corr_table = _mm512_loadu_si512((const void *)t);
}

static inline __m512i corr(__m512i x) /* x >= 0 */
{
    __m512i idx = _mm512_min_epu16(_mm512_srli_epi16(x, 2), _mm512_set1_epi16(31));
    return _mm512_permutexvar_epi16(idx, corr_table);
}

static inline __m512i boxplus(__m512i a, __m512i b)
{
    __m512i A = _mm512_abs_epi16(a), B = _mm512_abs_epi16(b);
    __m512i m = _mm512_min_epi16(A, B);
    __m512i s = _mm512_adds_epi16(A, B);
    __m512i d = _mm512_abs_epi16(_mm512_sub_epi16(A, B));
    m = _mm512_subs_epi16(_mm512_adds_epi16(m, corr(s)), corr(d));
    m = _mm512_max_epi16(m, _mm512_setzero_si512());
    __mmask32 neg = _mm512_movepi16_mask(_mm512_xor_si512(a, b));
    return _mm512_mask_sub_epi16(m, neg, _mm512_setzero_si512(), m);
}

static inline __m512i clip(__m512i x, int lim)
{
    return _mm512_max_epi16(_mm512_min_epi16(x, _mm512_set1_epi16(lim)), _mm512_set1_epi16(-lim));
}

/* Lanes t of the chunk starting at row i0: valid while i0 + t < z; lane t reads position
 * (sh + i0 + t) mod z of the block column, from p1[t] before the wrap and p1[t - z] after. */
static inline void rot_masks(int z, int sh, int i0, __mmask32 *m1, __mmask32 *m2)
{
    int valid = z - i0 < 32 ? z - i0 : 32;
    int before = z - sh - i0; /* lanes before the wrap */
    if (before < 0) before = 0;
    if (before > valid) before = valid;
    uint32_t vmask = valid == 32 ? 0xFFFFFFFFu : ((1u << valid) - 1u);
    uint32_t bmask = before == 32 ? 0xFFFFFFFFu : ((1u << before) - 1u);
    *m1 = (__mmask32)bmask;
    *m2 = (__mmask32)(vmask & ~bmask);
}

static inline __m512i load_rot(const int16_t *col, int z, int sh, int i0, __mmask32 m1, __mmask32 m2)
{
    const int16_t *p = col + sh + i0;
    __m512i v = _mm512_maskz_loadu_epi16(m1, p);
    return _mm512_mask_loadu_epi16(v, m2, p - z);
}

static inline void store_rot(int16_t *col, int z, int sh, int i0, __mmask32 m1, __mmask32 m2, __m512i v)
{
    int16_t *p = col + sh + i0;
    _mm512_mask_storeu_epi16(p, m1, v);
    _mm512_mask_storeu_epi16(p - z, m2, v);
}

/* One layer (block row) on nch chunks of 32 rows side by side: independent dependency
 * chains for the out-of-order core. */
static inline __attribute__((always_inline)) void
layer_chunks(int16_t *L, int16_t *R, int z, int zp, int e0, int d, int ext, int i0, const int nch,
             const int32_t *ent_col, const int32_t *ent_shift)
{
    __m512i q[MAX_DEG][2], f[MAX_DEG][2], b[2];
    __mmask32 m1[MAX_DEG][2], m2[MAX_DEG][2];
    for (int j = 0; j < d; j++) {
        int sh = ent_shift[e0 + j];
        const int16_t *col = L + ent_col[e0 + j] * z;
        const int16_t *rr = R + (size_t)(e0 + j) * zp + i0;
        for (int c = 0; c < nch; c++) {
            rot_masks(z, sh, i0 + 32 * c, &m1[j][c], &m2[j][c]);
            __m512i lv = load_rot(col, z, sh, i0 + 32 * c, m1[j][c], m2[j][c]);
            q[j][c] = (ext && j == d - 1) ? lv : _mm512_subs_epi16(lv, _mm512_load_si512((const void *)(rr + 32 * c)));
        }
    }
    int last = ext ? d - 2 : d - 1; /* last entry that gets a new message */
    for (int c = 0; c < nch; c++) f[0][c] = q[0][c];
    for (int j = 1; j < last; j++)
        for (int c = 0; c < nch; c++) f[j][c] = boxplus(f[j - 1][c], q[j][c]);
    for (int c = 0; c < nch; c++) b[c] = q[d - 1][c];
    for (int j = d - 1; j >= 0; j--) {
        if (j > last) continue;
        int16_t *rr = R + (size_t)(e0 + j) * zp + i0;
        int16_t *col = L + ent_col[e0 + j] * z;
        int sh = ent_shift[e0 + j];
        for (int c = 0; c < nch; c++) {
            __m512i rn;
            if (j == d - 1) rn = f[d - 2][c];
            else if (j == 0) rn = b[c];
            else rn = boxplus(f[j - 1][c], b[c]);
            if (j < d - 1 && j > 0) b[c] = boxplus(b[c], q[j][c]);
            rn = clip(rn, R_CLIP);
            _mm512_store_si512((void *)(rr + 32 * c), rn);
            __m512i lv = clip(_mm512_adds_epi16(q[j][c], rn), L_CLIP);
            store_rot(col, z, sh, i0 + 32 * c, m1[j][c], m2[j][c], lv);
        }
    }
}

int ncsc_ldpc_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f");
}

/* Returns 0 on success, -1 for a row degree above MAX_DEG, -2 when out of memory. */
int ncsc_ldpc_qc_decode(const float *llr, int n_cw, int n_var, int z,
                        const int32_t *layer_ptr, int n_layers, const int32_t *ent_col,
                        const int32_t *ent_shift, int n_core, int max_iter,
                        uint8_t *out_hard, uint8_t *out_ok, int64_t *out_iter)
{
    static int table_ready = 0;
    if (!table_ready) {
        init_table();
        table_ready = 1;
    }
    for (int r = 0; r < n_layers; r++)
        if (layer_ptr[r + 1] - layer_ptr[r] > MAX_DEG) return -1;
    int n_ent = layer_ptr[n_layers];
    int zp = (z + 31) & ~31;
    /* L gets z spare entries in front and behind: masked-off lanes never touch memory,
     * but keep every address computed inside the allocation anyway. */
    /* aligned_alloc wants a size that is a multiple of the alignment (C11 7.22.3.1) */
    int16_t *Lbuf = aligned_alloc(64, round_up64((size_t)(n_var + 2 * zp + 64) * sizeof(int16_t) + 64));
    int16_t *R = aligned_alloc(64, round_up64((size_t)n_ent * zp * sizeof(int16_t) + 64));
    if (!Lbuf || !R) {
        free(Lbuf);
        free(R);
        return -2;
    }
    int16_t *L = Lbuf + zp;
    const __m512i zero = _mm512_setzero_si512();
    for (int cw = 0; cw < n_cw; cw++) {
        const float *in = llr + (size_t)cw * n_var;
        int v0 = 0;
        for (; v0 + 16 <= n_var; v0 += 16) {
            __m512 x = _mm512_mul_ps(_mm512_loadu_ps(in + v0), _mm512_set1_ps((float)SCALE));
            x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps((float)CH_CLIP)), _mm512_set1_ps((float)-CH_CLIP));
            _mm256_storeu_si256((__m256i *)(L + v0), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(x)));
        }
        for (int v = v0; v < n_var; v++) {
            float x = in[v] * SCALE;
            x = x > CH_CLIP ? CH_CLIP : (x < -CH_CLIP ? -CH_CLIP : x);
            L[v] = (int16_t)lrintf(x);
        }
        memset(R, 0, (size_t)n_ent * zp * sizeof(int16_t));
        int ok = 0, it = 0;
        while (it < max_iter && !ok) {
            it++;
            for (int r = 0; r < n_layers; r++) {
                int e0 = layer_ptr[r], d = layer_ptr[r + 1] - e0;
                /* Extension rows end in a degree-1 parity column: its message to the check is
                 * its channel LLR, and nothing downstream needs the message back. */
                int ext = r >= n_core;
                int i0 = 0;
                for (; i0 + 32 < z; i0 += 64)
                    layer_chunks(L, R, z, zp, e0, d, ext, i0, 2, ent_col, ent_shift);
                if (i0 < z) layer_chunks(L, R, z, zp, e0, d, ext, i0, 1, ent_col, ent_shift);
            }
            /* Zero syndrome of the core rows ends this codeword. */
            ok = 1;
            for (int r = 0; r < n_core && ok; r++) {
                int e0 = layer_ptr[r], d = layer_ptr[r + 1] - e0;
                for (int i0 = 0; i0 < z && ok; i0 += 32) {
                    __m512i p = zero;
                    __mmask32 a1, a2;
                    for (int j = 0; j < d; j++) {
                        int sh = ent_shift[e0 + j];
                        rot_masks(z, sh, i0, &a1, &a2);
                        p = _mm512_xor_si512(p, load_rot(L + ent_col[e0 + j] * z, z, sh, i0, a1, a2));
                    }
                    if (_mm512_movepi16_mask(p)) ok = 0;
                }
            }
        }
        uint8_t *h = out_hard + (size_t)cw * n_var;
        for (int v = 0; v < n_var; v++) h[v] = L[v] < 0;
        out_ok[cw] = (uint8_t)ok;
        out_iter[cw] = it;
    }
    free(Lbuf);
    free(R);
    return 0;
}

#else /* no AVX-512BW: the numba kernel is used */

int ncsc_ldpc_available(void) { return 0; }

int ncsc_ldpc_qc_decode(const float *llr, int n_cw, int n_var, int z, const int32_t *layer_ptr,
                        int n_layers, const int32_t *ent_col, const int32_t *ent_shift, int n_core,
                        int max_iter, uint8_t *out_hard, uint8_t *out_ok, int64_t *out_iter)
{
    (void)llr; (void)n_cw; (void)n_var; (void)z; (void)layer_ptr; (void)n_layers; (void)ent_col;
    (void)ent_shift; (void)n_core; (void)max_iter; (void)out_hard; (void)out_ok; (void)out_iter;
    return -3;
}

#endif
