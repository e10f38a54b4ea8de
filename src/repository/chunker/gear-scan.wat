;; The gear-hash scan of fastcdc.ts (Chunker.scan), in WebAssembly: about twice the speed of the same loop in
;; JavaScript, and the main thread of a backup chunks every byte it reads. Assembled into gear-scan-wasm.ts by
;; `npm run assemble-wasm`; a unit test holds the two together.
;;
;; Memory: the gear table at 0 (256 little-endian i32), the same values shifted left by one at 1024, the bytes
;; to scan from 4096 on (gear-scan.ts copies a window of at most 256 KiB there).
;;
;; scan(from, to, h, mask) rolls h = (h << 1) + gear[byte] over memory[from, to) and returns the address just
;; past the first byte after which (h & mask) == 0, or -1 with h left in the global `hash`. Two bytes per step,
;; as in fastcdc.ts: (h << 2) + (gear[a] << 1) is h after byte a shifted left by one, tested against mask << 1
;; (lossless: mask has no bit 31); adding gear[b] gives h after byte b. Four bytes are loaded at once.
(module
  (memory (export "memory") 5)
  (global $hash (export "hash") (mut i32) (i32.const 0))
  (func (export "scan") (param $i i32) (param $to i32) (param $h i32) (param $mask i32) (result i32)
    (local $w i32)
    (local $maskShifted i32)
    (local.set $maskShifted (i32.shl (local.get $mask) (i32.const 1)))
    (block $quadsDone
      (loop $quads
        (br_if $quadsDone (i32.ge_u (i32.add (local.get $i) (i32.const 3)) (local.get $to)))
        (local.set $w (i32.load (local.get $i)))
        ;; byte 0: gearShifted[w & 255]
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 2))
          (i32.load offset=1024 (i32.shl (i32.and (local.get $w) (i32.const 255)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskShifted)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))
        ;; byte 1: gear[(w >>> 8) & 255]
        (local.set $h (i32.add (local.get $h)
          (i32.load (i32.and (i32.shr_u (local.get $w) (i32.const 6)) (i32.const 1020)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 2)))))
        ;; byte 2: gearShifted[(w >>> 16) & 255]
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 2))
          (i32.load offset=1024 (i32.and (i32.shr_u (local.get $w) (i32.const 14)) (i32.const 1020)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskShifted)))
          (then (return (i32.add (local.get $i) (i32.const 3)))))
        ;; byte 3: gear[w >>> 24]
        (local.set $h (i32.add (local.get $h)
          (i32.load (i32.and (i32.shr_u (local.get $w) (i32.const 22)) (i32.const 1020)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $quads)))
    (block $bytesDone
      (loop $bytes
        (br_if $bytesDone (i32.ge_u (local.get $i) (local.get $to)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (local.get $i))))
        (br $bytes)))
    (global.set $hash (local.get $h))
    (i32.const -1)))
