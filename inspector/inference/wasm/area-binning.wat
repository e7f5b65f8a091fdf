;; The station's 4 x fy box binning of a GRAY8 frame, with 128-bit SIMD.
;; Source of area-binning-wasm.ts's module (scripts/build-wasm.ts compiles it with wabt).
;;
;; Memory: exported, sized by the host (grow before use); the host copies the
;; frame to `src` and reads the result at `out`. Width must be a multiple of 16.
;; Each step loads 16 pixels (4 output pixels) of one row; two pairwise widening
;; adds give the four 4-pixel sums as i32x4, accumulated over fy rows.
(module
  (memory (export "memory") 1)

  ;; float output: out[i] = f32(sum * k + add) in f64, k = mul / (4 fy): the JS expression's exact result
  (func (export "bin4f32")
    (param $src i32) (param $w i32) (param $h i32) (param $fy i32) (param $out i32) (param $k f64) (param $add f64)
    (local $outH i32) (local $oy i32) (local $x i32) (local $r i32) (local $base i32) (local $p i32)
    (local $acc v128) (local $kv v128) (local $av v128) (local $lo v128) (local $hi v128)
    (local.set $kv (f64x2.splat (local.get $k)))
    (local.set $av (f64x2.splat (local.get $add)))
    (local.set $outH (i32.div_u (local.get $h) (local.get $fy)))
    (block $done_rows
      (loop $rows
        (br_if $done_rows (i32.ge_u (local.get $oy) (local.get $outH)))
        (local.set $base (i32.add (local.get $src) (i32.mul (i32.mul (local.get $oy) (local.get $fy)) (local.get $w))))
        (local.set $x (i32.const 0))
        (block $done_cols
          (loop $cols
            (br_if $done_cols (i32.ge_u (local.get $x) (local.get $w)))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (local.set $p (i32.add (local.get $base) (local.get $x)))
            (local.set $r (i32.const 0))
            (block $done_r
              (loop $rr
                (br_if $done_r (i32.ge_u (local.get $r) (local.get $fy)))
                (local.set $acc (i32x4.add (local.get $acc)
                  (i32x4.extadd_pairwise_i16x8_u (i16x8.extadd_pairwise_i8x16_u (v128.load (local.get $p))))))
                (local.set $p (i32.add (local.get $p) (local.get $w)))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $rr)))
            (local.set $lo (f64x2.add (f64x2.mul (f64x2.convert_low_i32x4_u (local.get $acc)) (local.get $kv)) (local.get $av)))
            (local.set $hi (f64x2.add (f64x2.mul (f64x2.convert_low_i32x4_u
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $acc) (local.get $acc))) (local.get $kv)) (local.get $av)))
            (v128.store (local.get $out)
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $lo)) (f32x4.demote_f64x2_zero (local.get $hi))))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (local.set $x (i32.add (local.get $x) (i32.const 16)))
            (br $cols)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $rows))))

  ;; byte output for power-of-two block sizes: out[i] = (2 sum + n) >> (log2 n + 1), n = 4 fy
  ;; (round half up, what resizeGray's area resize gives)
  (func (export "bin4u8")
    (param $src i32) (param $w i32) (param $h i32) (param $fy i32) (param $out i32) (param $shift i32)
    (local $outH i32) (local $oy i32) (local $x i32) (local $r i32) (local $base i32) (local $p i32)
    (local $acc v128) (local $half v128) (local $b v128)
    (local.set $half (i32x4.splat (i32.mul (local.get $fy) (i32.const 4))))
    (local.set $outH (i32.div_u (local.get $h) (local.get $fy)))
    (block $done_rows
      (loop $rows
        (br_if $done_rows (i32.ge_u (local.get $oy) (local.get $outH)))
        (local.set $base (i32.add (local.get $src) (i32.mul (i32.mul (local.get $oy) (local.get $fy)) (local.get $w))))
        (local.set $x (i32.const 0))
        (block $done_cols
          (loop $cols
            (br_if $done_cols (i32.ge_u (local.get $x) (local.get $w)))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (local.set $p (i32.add (local.get $base) (local.get $x)))
            (local.set $r (i32.const 0))
            (block $done_r
              (loop $rr
                (br_if $done_r (i32.ge_u (local.get $r) (local.get $fy)))
                (local.set $acc (i32x4.add (local.get $acc)
                  (i32x4.extadd_pairwise_i16x8_u (i16x8.extadd_pairwise_i8x16_u (v128.load (local.get $p))))))
                (local.set $p (i32.add (local.get $p) (local.get $w)))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $rr)))
            (local.set $acc (i32x4.shr_u (i32x4.add (i32x4.add (local.get $acc) (local.get $acc)) (local.get $half)) (local.get $shift)))
            (local.set $b (i16x8.narrow_i32x4_u (local.get $acc) (local.get $acc)))
            (local.set $b (i8x16.narrow_i16x8_u (local.get $b) (local.get $b)))
            (v128.store32_lane 0 (local.get $out) (local.get $b))
            (local.set $out (i32.add (local.get $out) (i32.const 4)))
            (local.set $x (i32.add (local.get $x) (i32.const 16)))
            (br $cols)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $rows))))
)
