;; The lens table applied to a float image (calibration/undistort-map.ts remapF32), scalar
;; WebAssembly: per output pixel four loads around index[k] and three lerps in f64 (the JS
;; function's arithmetic, so the f32 results are the same bits), the fractions unpacked from
;; weights[k] (x in the low 16 bits, y in the high 16, x 1/32768: exact in f64).
;; Source of undistort-remap-wasm.ts's module (scripts/build-wasm.ts compiles it with wabt).
(module
  (memory (export "memory") 1)
  (func (export "remapf32")
    (param $src i32) (param $index i32) (param $weights i32) (param $out i32) (param $n i32) (param $width i32)
    (local $k i32) (local $p i32) (local $w i32) (local $fx f64) (local $fy f64)
    (local $a f64) (local $b f64) (local $c f64) (local $e f64) (local $top f64) (local $bot f64) (local $row i32)
    (local.set $row (i32.shl (local.get $width) (i32.const 2)))
    (block $done
      (loop $px
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $p (i32.add (local.get $src) (i32.shl (i32.load (local.get $index)) (i32.const 2))))
        (local.set $w (i32.load (local.get $weights)))
        (local.set $fx (f64.mul (f64.convert_i32_u (i32.and (local.get $w) (i32.const 0xffff))) (f64.const 0x1p-15)))
        (local.set $fy (f64.mul (f64.convert_i32_u (i32.shr_u (local.get $w) (i32.const 16))) (f64.const 0x1p-15)))
        (local.set $a (f64.promote_f32 (f32.load (local.get $p))))
        (local.set $b (f64.promote_f32 (f32.load offset=4 (local.get $p))))
        (local.set $c (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $row)))))
        (local.set $e (f64.promote_f32 (f32.load offset=4 (i32.add (local.get $p) (local.get $row)))))
        (local.set $top (f64.add (local.get $a) (f64.mul (f64.sub (local.get $b) (local.get $a)) (local.get $fx))))
        (local.set $bot (f64.add (local.get $c) (f64.mul (f64.sub (local.get $e) (local.get $c)) (local.get $fx))))
        (f32.store (local.get $out) (f32.demote_f64 (f64.add (local.get $top) (f64.mul (f64.sub (local.get $bot) (local.get $top)) (local.get $fy)))))
        (local.set $index (i32.add (local.get $index) (i32.const 4)))
        (local.set $weights (i32.add (local.get $weights) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $px))))

  ;; the same for bytes (remapU8): rounded to nearest, + 0.5 then truncated as the JS `| 0`
  (func (export "remapu8")
    (param $src i32) (param $index i32) (param $weights i32) (param $out i32) (param $n i32) (param $width i32)
    (local $k i32) (local $p i32) (local $w i32) (local $fx f64) (local $fy f64)
    (local $a f64) (local $b f64) (local $c f64) (local $e f64) (local $top f64) (local $bot f64) (local $row i32)
    (local.set $row (local.get $width))
    (block $done
      (loop $px
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $p (i32.add (local.get $src) (i32.load (local.get $index))))
        (local.set $w (i32.load (local.get $weights)))
        (local.set $fx (f64.mul (f64.convert_i32_u (i32.and (local.get $w) (i32.const 0xffff))) (f64.const 0x1p-15)))
        (local.set $fy (f64.mul (f64.convert_i32_u (i32.shr_u (local.get $w) (i32.const 16))) (f64.const 0x1p-15)))
        (local.set $a (f64.convert_i32_u (i32.load8_u (local.get $p))))
        (local.set $b (f64.convert_i32_u (i32.load8_u offset=1 (local.get $p))))
        (local.set $c (f64.convert_i32_u (i32.load8_u (i32.add (local.get $p) (local.get $row)))))
        (local.set $e (f64.convert_i32_u (i32.load8_u offset=1 (i32.add (local.get $p) (local.get $row)))))
        (local.set $top (f64.add (local.get $a) (f64.mul (f64.sub (local.get $b) (local.get $a)) (local.get $fx))))
        (local.set $bot (f64.add (local.get $c) (f64.mul (f64.sub (local.get $e) (local.get $c)) (local.get $fx))))
        (i32.store8 (local.get $out) (i32.trunc_f64_s (f64.add (f64.add (local.get $top) (f64.mul (f64.sub (local.get $bot) (local.get $top)) (local.get $fy))) (f64.const 0.5))))
        (local.set $index (i32.add (local.get $index) (i32.const 4)))
        (local.set $weights (i32.add (local.get $weights) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $px))))
)
