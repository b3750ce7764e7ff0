"""The golden model's conv and pool layers: one compiled (numba) kernel per layer that
computes the synaptic sums and the LIF update of a batch together, without an im2col matrix.

Spike input (every layer after the first, or an event input): at every time step the padded
input map is packed into bits, row by row (bit i of a padded row is element i of it in the
element order, so a window's kernel row ky is K·C_in consecutive bits); each kernel row
segment is cut once per step, each output position's window assembled from its K segments as
``ceil(N / 64)`` 64-bit words in the window order ``(ky·K + kx)·C_in + c``, and every channel's
sum is the XNOR/popcount form of docs/arithmetic.md §2::

    x_o = 2 · popcount(s ∧ w_o) − popcount(s)

with the channels' weight bits packed the same way (bit 1 = +1; LLVM's ctpop, vectorised over
the channels). The cost is the same whatever the spike rates and the weights. Multi-bit input
(a direct-encoded first layer): the sums are multiply-free integer sums of ±values, once per
sample. The LIF update follows (docs/arithmetic.md §4, the update of the numpy dense layers of
:class:`sw.golden.GoldenModel`) in the layer's state type (int16/int32/int64, holding the
proven bound: no value wraps).

The kernels also return, per time step, the least and greatest h and (soft reset) v over the
batch, which the caller checks against the proven width, and they fill the recorded traces
when asked (one code path for recorded and unrecorded runs). Every array index in the loops is
cast to an unsigned integer (``_u``): numba then emits no negative-index wraparound, which
otherwise costs a select per access and keeps LLVM from vectorising. numba is imported here and
only here: the golden model imports this module the first time it runs a conv or pool layer.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["conv_direct", "conv_spikes", "pool", "STAT_INIT"]

#: the initial (least, greatest) of the per-step statistics: any value replaces them
STAT_INIT = (np.iinfo(np.int64).max, np.iinfo(np.int64).min)

#: an array index as an unsigned integer: numba then skips the negative-index wraparound, a
#: select on every access of a computed index, which also keeps LLVM from vectorising loops
_u = np.uint64

_OPTIONS = dict(nogil=True, boundscheck=False, error_model="numpy")


def _jit(**options):
    """``numba.njit`` with the compiled code cached on disk (next to this file, or in the
    user's cache directory when the install is read-only); where neither can be written,
    numba refuses to cache and the kernels are compiled in every process instead."""
    def wrap(fn):
        try:
            return njit(cache=True, **_OPTIONS, **options)(fn)
        except RuntimeError as err:
            if "cannot cache" not in str(err):
                raise
            return njit(cache=False, **_OPTIONS, **options)(fn)

    return wrap


@intrinsic
def _popcount(typingctx, x):
    """The number of 1 bits of a uint64, as an int64 (LLVM's ctpop: the POPCNT instruction)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(types.uint64), codegen


@_jit()
def _range(x, stats, t, col):
    """Widen ``stats[t, col]`` (least) and ``stats[t, col + 1]`` (greatest) to the values of
    ``x`` (at least one), the extremes kept in x's own type (a narrow vector loop)."""
    lo = hi = x[0]
    for n in range(x.shape[0]):
        lo = min(lo, x[_u(n)])
        hi = max(hi, x[_u(n)])
    stats[_u(t), col] = min(stats[_u(t), col], lo)
    stats[_u(t), col + 1] = max(stats[_u(t), col + 1], hi)


@_jit()
def _fire(cur, v, hbuf, t, bias, theta, cmask, frac, leak, soft, gain, check, spikes, b,
          record, rec_cur, rec_pot, rec_mem, stats):
    """The LIF update at step t of the M neurons of sample b from their synaptic sums ``cur``
    (M,): writes ``spikes[b, t]``, the state ``v``, the traces when ``record`` and (when
    ``check``) the step's h / v ranges into ``stats[t]``. ``bias``, ``theta`` and ``cmask``
    (−c: all ones for a connected neuron, 0 for a disconnected one) are per neuron. Every
    branch is outside the loops and each loop is one pass over the M neurons, so LLVM
    vectorises them."""
    m = v.shape[0]
    if leak >= 0 and gain == 1:
        for n in range(m):
            u = v[_u(n)]
            hbuf[_u(n)] = u - (u >> leak) + ((cur[_u(n)] << frac) & cmask[_u(n)]) + bias[_u(n)]
    elif leak >= 0:
        for n in range(m):
            u = v[_u(n)]
            hbuf[_u(n)] = u - (u >> leak) + gain * (((cur[_u(n)] << frac) & cmask[_u(n)])
                                                    + bias[_u(n)])
    elif gain == 1:
        for n in range(m):
            hbuf[_u(n)] = v[_u(n)] + ((cur[_u(n)] << frac) & cmask[_u(n)]) + bias[_u(n)]
    else:
        for n in range(m):
            hbuf[_u(n)] = v[_u(n)] + gain * (((cur[_u(n)] << frac) & cmask[_u(n)])
                                             + bias[_u(n)])
    if check:
        _range(hbuf, stats, t, 0)
    if soft:
        for n in range(m):
            h = hbuf[_u(n)]
            fire = h >= theta[_u(n)]
            spikes[_u(b), _u(t), _u(n)] = fire
            v[_u(n)] = h - theta[_u(n)] if fire else h
        if check:
            _range(v, stats, t, 2)
    else:
        for n in range(m):
            h = hbuf[_u(n)]
            fire = h >= theta[_u(n)]
            spikes[_u(b), _u(t), _u(n)] = fire
            v[_u(n)] = 0 if fire else h
    if record:
        for n in range(m):
            rec_cur[_u(b), _u(t), _u(n)] = cur[_u(n)]
            rec_pot[_u(b), _u(t), _u(n)] = hbuf[_u(n)]
            rec_mem[_u(b), _u(t), _u(n)] = v[_u(n)]


@_jit(inline="always")
def _bits(rows, r, off, n):
    """n <= 64 bits of row r of ``rows`` (uint64 words, a spare word at the end) from bit
    ``off``."""
    i = off >> 6
    sh = np.uint64(off & 63)
    val = rows[_u(r), _u(i)] >> sh
    if sh != 0:
        val |= rows[_u(r), _u(i + 1)] << (np.uint64(64) - sh)
    if n < 64:
        val &= (np.uint64(1) << np.uint64(n)) - np.uint64(1)
    return val


@_jit()
def _sums(segs, words, k, s, seg, h_out, w_out, win, cur):
    """The synaptic sums of every output position of one step, from the kernel row segments
    ``segs`` of the step's padded map: each window assembled into ``win`` (its K segments one
    after the other, in (ky, kx, c) order), then ``2·popcount(s ∧ w_o) − popcount(s)`` for
    every channel o, four words per pass over the channels (fewer passes through ``cur``)."""
    n_words, c_out = words.shape
    seg_words = segs.shape[2]
    for oy in range(h_out):
        for ox in range(w_out):
            for j in range(n_words):
                win[_u(j)] = 0
            for ky in range(k):
                r = oy * s + ky
                pos = ky * seg
                for q in range(seg_words):
                    val = segs[_u(r), _u(ox), _u(q)]
                    j = pos >> 6
                    sh = np.uint64(pos & 63)
                    win[_u(j)] |= val << sh
                    if sh != 0:
                        win[_u(j + 1)] |= val >> (np.uint64(64) - sh)
                    pos += 64
            active = 0
            for j in range(n_words):
                active += _popcount(win[_u(j)])
            base = (oy * w_out + ox) * c_out
            whole = n_words - n_words % 4
            if whole == 0:
                for o in range(c_out):
                    cur[_u(base + o)] = 0
            for j in range(0, whole, 4):
                x0, x1 = win[_u(j)], win[_u(j + 1)]
                x2, x3 = win[_u(j + 2)], win[_u(j + 3)]
                if j == 0:
                    for o in range(c_out):
                        cur[_u(base + o)] = (_popcount(x0 & words[_u(j), _u(o)])
                                             + _popcount(x1 & words[_u(j + 1), _u(o)])
                                             + _popcount(x2 & words[_u(j + 2), _u(o)])
                                             + _popcount(x3 & words[_u(j + 3), _u(o)]))
                else:
                    for o in range(c_out):
                        cur[_u(base + o)] += (_popcount(x0 & words[_u(j), _u(o)])
                                              + _popcount(x1 & words[_u(j + 1), _u(o)])
                                              + _popcount(x2 & words[_u(j + 2), _u(o)])
                                              + _popcount(x3 & words[_u(j + 3), _u(o)]))
            # the last 0-3 words in the pass that also makes the sum 2·ones − active
            j = whole
            left = n_words - whole
            x0, x1, x2 = win[_u(j)], win[_u(j + 1)], win[_u(j + 2)]
            if left == 0:
                for o in range(c_out):
                    cur[_u(base + o)] = 2 * cur[_u(base + o)] - active
            elif left == 1:
                for o in range(c_out):
                    cur[_u(base + o)] = 2 * (cur[_u(base + o)]
                                             + _popcount(x0 & words[_u(j), _u(o)])) - active
            elif left == 2:
                for o in range(c_out):
                    cur[_u(base + o)] = 2 * (cur[_u(base + o)]
                                             + _popcount(x0 & words[_u(j), _u(o)])
                                             + _popcount(x1 & words[_u(j + 1), _u(o)])) - active
            else:
                for o in range(c_out):
                    cur[_u(base + o)] = 2 * (cur[_u(base + o)]
                                             + _popcount(x0 & words[_u(j), _u(o)])
                                             + _popcount(x1 & words[_u(j + 1), _u(o)])
                                             + _popcount(x2 & words[_u(j + 2), _u(o)])) - active


@_jit()
def _sums_one_word(segs, words, k, s, seg, h_out, w_out, cur):
    """:func:`_sums` for a window of at most 64 bits: one word, its segments shifted in."""
    c_out = words.shape[1]
    for oy in range(h_out):
        for ox in range(w_out):
            x = np.uint64(0)
            for ky in range(k):
                x |= segs[_u(oy * s + ky), _u(ox), 0] << np.uint64(ky * seg)
            active = _popcount(x)
            base = (oy * w_out + ox) * c_out
            for o in range(c_out):
                cur[_u(base + o)] = 2 * _popcount(x & words[0, _u(o)]) - active


#: times eight 0/1 bytes of a little-endian word: byte i lands on bit 56 + i, no carries
_GATHER = np.uint64(0x0102040810204080)


@_jit()
def _pack_rows8(bytes8, b, t, h, p, row_len, lead, rows, line):
    """The rows of the padded map of sample b, step t as bits (see :func:`conv_spikes`), from
    whole 8-byte groups of spikes: each group's bits by one multiply, each map row built in
    ``line`` from bit 0 and shifted in behind its ``lead`` padding bits."""
    groups = row_len // 8
    at, sh = lead >> 6, np.uint64(lead & 63)
    for y in range(h):
        src = y * groups
        for j in range(line.shape[0]):
            acc = np.uint64(0)
            for q in range(min(8, groups - 8 * j)):
                g = bytes8[_u(b), _u(t), _u(src + 8 * j + q)]
                acc |= ((g * _GATHER) >> np.uint64(56)) << np.uint64(8 * q)
            line[_u(j)] = acc
        r = y + p
        for j in range(rows.shape[1]):
            rows[_u(r), _u(j)] = 0
        for j in range(line.shape[0]):
            rows[_u(r), _u(at + j)] |= line[_u(j)] << sh
            if sh != 0:
                rows[_u(r), _u(at + j + 1)] |= line[_u(j)] >> (np.uint64(64) - sh)


@_jit()
def conv_spikes(inp, bytes8, geom, words, bias, theta, cmask, frac, leak, soft, gains, check,
                spikes, record, rec_cur, rec_pot, rec_mem, stats, cur, v, hbuf):
    """A conv layer on spike input ``inp`` (B, T, H·W·C_in) uint8 in the element order.

    ``geom`` = (H, W, C_in, K, S, P, H_out, W_out); ``words`` (ceil(N/64), C_out) from
    :func:`sw.golden._pack_weights`; ``bias``, ``theta``, ``cmask`` (M,) per neuron in the
    state type (see :func:`_fire`); ``leak`` the shift or −1; ``gains`` (T,) int64. Writes
    ``spikes`` (B, T, M) uint8, the traces when ``record`` and, when ``check``, the per-step
    (h min, h max, v min, v max) into ``stats`` (T, 4). ``cur`` (M,) int64, ``v`` and ``hbuf``
    (M,) in the state type are scratch. ``bytes8`` is ``inp`` viewed as (B, T, H·W·C_in / 8)
    uint64 where a map row is a whole number of 8-byte groups (else shape (0, 0, 0)): eight
    spikes are then packed at a time."""
    h, w, c_in, k, s, p, h_out, w_out = geom
    batch, t_steps = inp.shape[0], inp.shape[1]
    n_words, c_out = words.shape
    row_len = w * c_in
    lead = p * c_in  # bits of left padding
    row_words = (w + 2 * p) * c_in // 64 + 2
    rows = np.zeros((h + 2 * p, row_words), dtype=np.uint64)
    seg = k * c_in  # bits of one kernel row of a window
    seg_words = (seg + 63) // 64
    segs = np.zeros((h + 2 * p, w_out, seg_words), dtype=np.uint64)
    # spare words: a segment's top half, and the unused words the last pass of _sums reads
    win = np.zeros(n_words + 3, dtype=np.uint64)
    line = np.zeros((row_len + 63) // 64, dtype=np.uint64)
    for b in range(batch):
        v[:] = 0
        for t in range(t_steps):
            # the padded map's rows as bits: word j of row y + P holds elements 64·j − lead …
            if bytes8.shape[2]:
                _pack_rows8(bytes8, b, t, h, p, row_len, lead, rows, line)
            else:
                for y in range(h):
                    src = y * row_len
                    for j in range(row_words):
                        first = max(64 * j - lead, 0)
                        last = min(64 * j + 64 - lead, row_len)
                        acc = np.uint64(0)
                        for i in range(first, last):
                            bit = np.uint64(inp[_u(b), _u(t), _u(src + i)])
                            acc |= bit << np.uint64(i + lead - 64 * j)
                        rows[_u(y + p), _u(j)] = acc
            # every kernel row segment (K·C_in consecutive bits of a padded row from bit
            # ox·S·C_in), cut once and shared by the K windows that contain it
            for r in range(p, h + p):
                for ox in range(w_out):
                    off = ox * s * c_in
                    for q in range(seg_words):
                        n = min(64, seg - 64 * q)
                        segs[_u(r), _u(ox), _u(q)] = _bits(rows, r, off + 64 * q, n)
            if n_words == 1:
                _sums_one_word(segs, words, k, s, seg, h_out, w_out, cur)
            else:
                _sums(segs, words, k, s, seg, h_out, w_out, win, cur)
            _fire(cur, v, hbuf, t, bias, theta, cmask, frac, leak, soft, gains[t], check,
                  spikes, b, record, rec_cur, rec_pot, rec_mem, stats)


@_jit()
def conv_direct(inp, geom, signs, bias, theta, cmask, frac, leak, soft, gains, check,
                spikes, record, rec_cur, rec_pot, rec_mem, stats, cur, v, hbuf):
    """A conv layer on multi-bit input ``inp`` (B, H·W·C_in) (direct encoding: the sums
    are computed once per sample and drive every step). ``signs`` (N, C_out): 0 for a weight
    +1, −1 (all ones) for a weight −1, so that ``(x ^ sign) − sign`` is ``w·x`` without a
    multiply; ``inp``, ``signs`` and ``cur`` in one integer type holding every sum. The other
    arguments as :func:`conv_spikes`."""
    h, w, c_in, k, s, p, h_out, w_out = geom
    batch = inp.shape[0]
    t_steps = spikes.shape[1]
    c_out = signs.shape[1]
    for b in range(batch):
        cur[:] = 0
        for oy in range(h_out):
            for ox in range(w_out):
                base = (oy * w_out + ox) * c_out
                for ky in range(k):
                    iy = oy * s - p + ky
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(k):
                        ix = ox * s - p + kx
                        if ix < 0 or ix >= w:
                            continue
                        src = (iy * w + ix) * c_in
                        tap = (ky * k + kx) * c_in
                        for c in range(c_in):
                            val = inp[_u(b), _u(src + c)]
                            if val != 0:
                                for o in range(c_out):
                                    neg = signs[_u(tap + c), _u(o)]
                                    cur[_u(base + o)] += (val ^ neg) - neg
        v[:] = 0
        for t in range(t_steps):
            _fire(cur, v, hbuf, t, bias, theta, cmask, frac, leak, soft, gains[t], check,
                  spikes, b, record, rec_cur, rec_pot, rec_mem, stats)


@_jit()
def pool(spikes, geom, out):
    """A pool layer: ``out`` (R, H_out·W_out·C) is the OR of the ``spikes`` (R, H·W·C) over
    each k×k window (rows and columns past the last whole window dropped); R runs over
    samples and steps, ``geom`` = (C, W, k, H_out, W_out)."""
    c, w, k, h_out, w_out = geom
    for r in range(spikes.shape[0]):
        for oy in range(h_out):
            for ox in range(w_out):
                dst = (oy * w_out + ox) * c
                for ch in range(c):
                    out[_u(r), _u(dst + ch)] = 0
                for dy in range(k):
                    for dx in range(k):
                        src = ((oy * k + dy) * w + ox * k + dx) * c
                        for ch in range(c):
                            out[_u(r), _u(dst + ch)] |= spikes[_u(r), _u(src + ch)]
