;; bandit.wat: a two-armed Bernoulli bandit written by hand against the wasmgym ABI v1.
;;
;; It shows the ABI needs no Rust and no SDK: the six exports below, one custom section, the WASI
;; `random_get` import and a few byte layouts are the whole protocol (abi/src/lib.rs, abi/src/wire.rs).
;; All integers and floats on the wire are little-endian, as wasm memory is.
;;
;; Game: each step pulls arm 0 (pays 1 with probability 0.3) or arm 1 (pays 1 with probability 0.7),
;; otherwise pays 0. The episode terminates after 20 pulls. Observation: Box i32 [pulls, total].
;;
;; Calling convention of every export that returns i64: the value packs (ptr << 32) | len of an
;; output in this module's memory. Its first byte is a status: 0 Ok (payload follows), 1 IllegalAction,
;; 2 GuestError, 3 BadRequest (for 1..3 the rest is a UTF-8 message). A refused call changes nothing.
;; Outputs stay valid until the next call into the module.
;;
;; The episode state lives in NON-EXPORTED mutable globals, not in linear memory: a host that
;; snapshots only memory would silently lose it, so a snapshot must capture every mutable global,
;; exported or not (tests can check that restoring such a snapshot restores pulls and total).
;;
;; Memory map (one 64 KiB page, never grown):
;;   0x0010  8 bytes   random_get scratch
;;   0x0100  21 bytes  canned LegalActions [0, 1]      0x0120  5 bytes  canned LegalActions []
;;   0x0140..0x0530    canned messages and text fragments, each NUL-terminated (NUL never sent)
;;   0x0800            spec output: status 0 then the JSON EnvSpec, NUL-terminated
;;   0x0C00..0x1000    output buffer for transitions, render text and built messages
;;   0x1000..0x10000   input area handed out by wasmgym_alloc (60 KiB)
(module
  ;; The only import. The host serves it from its generator, reseeded by `reset(seed)` before
  ;; wasmgym_reset runs, so the guest never sees the seed and draws are exactly reproducible.
  ;; Returns a WASI errno (0 = success).
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))

  ;; ABI version stamp: custom section "wasmgym_abi" holding ABI_VERSION = 1 as a u32 LE.
  ;; The host reads it before linking and refuses any other version.
  (@custom "wasmgym_abi" "\01\00\00\00")

  (memory (export "memory") 1)

  ;; ---- Episode state (mutable, deliberately not exported) ------------------------------------
  (global $phase (mut i32) (i32.const 0)) ;; 0 = no reset yet, 1 = episode running, 2 = episode over
  (global $pulls (mut i32) (i32.const 0)) ;; arms pulled this episode (0..20)
  (global $total (mut i32) (i32.const 0)) ;; reward collected this episode (0..20)

  ;; ---- Static data ---------------------------------------------------------------------------
  ;; LegalActions = n:u32 actions:[i64; n], after the status byte.
  (data (i32.const 0x100) "\00" "\02\00\00\00" "\00\00\00\00\00\00\00\00" "\01\00\00\00\00\00\00\00")
  (data (i32.const 0x120) "\00" "\00\00\00\00")
  ;; Refusals: status byte, message, NUL.
  (data (i32.const 0x140) "\03step called before reset: call reset first\00")
  (data (i32.const 0x1c0) "\03the episode is over (terminated or truncated): call reset\00")
  (data (i32.const 0x240) "\03render called before reset: call reset first\00")
  (data (i32.const 0x2c0) "\03malformed reset request: expected has_seed:u8 seed:u64 options_len:u32 options\00")
  (data (i32.const 0x340) "\03malformed action: expected kind 0 (discrete) then an i64, 9 bytes in all\00")
  (data (i32.const 0x3c0) "\01a text action does not fit the action space Discrete(2)\00")
  (data (i32.const 0x440) "\02random_get failed: the host could not supply random bytes\00")
  ;; Fragments for messages built at run time.
  (data (i32.const 0x4c0) "action \00")
  (data (i32.const 0x4d0) " is outside the action space Discrete(2)\00")
  (data (i32.const 0x500) "pulls \00")
  (data (i32.const 0x510) ", total \00")
  (data (i32.const 0x520) " (episode over)\00")
  ;; The EnvSpec exactly as serde reads it (abi/src/spec.rs): spaces are tagged by "type" in
  ;; snake_case, bounds are JSON numbers (or "inf"/"-inf"), None is null.
  (data (i32.const 0x800) "\00{\"name\":\"bandit\",\"version\":1,\"players\":1,"
    "\"observation_space\":{\"type\":\"box\",\"dtype\":\"i32\",\"shape\":[2],"
    "\"low\":[0.0,0.0],\"high\":[20.0,20.0]},"
    "\"action_space\":{\"type\":\"discrete\",\"n\":2},"
    "\"reward_range\":[0.0,1.0],\"max_episode_steps\":null,\"determinism\":\"stochastic\"}\00")

  ;; ---- Helpers -------------------------------------------------------------------------------
  ;; (ptr << 32) | len: the i64 every output-producing export returns.
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  ;; Length of the NUL-terminated string at $p.
  (func $strlen (param $p i32) (result i32)
    (local $q i32)
    (local.set $q (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $q))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $q) (local.get $p)))

  ;; A static output at $p: one status byte (possibly 0), then text up to the NUL.
  (func $canned (param $p i32) (result i64)
    (call $pack (local.get $p)
      (i32.add (i32.const 1) (call $strlen (i32.add (local.get $p) (i32.const 1))))))

  ;; Copies the NUL-terminated string at $src to $dst (without the NUL); returns the end.
  (func $append (param $dst i32) (param $src i32) (result i32)
    (local $n i32)
    (local.set $n (call $strlen (local.get $src)))
    (memory.copy (local.get $dst) (local.get $src) (local.get $n))
    (i32.add (local.get $dst) (local.get $n)))

  ;; Writes $v in decimal at $dst; returns the end. Negation is read as unsigned, so i64::MIN works.
  (func $append_i64 (param $dst i32) (param $v i64) (result i32)
    (local $t i64) (local $end i32)
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (i32.store8 (local.get $dst) (i32.const 0x2d)) ;; '-'
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    (local.set $t (local.get $v)) ;; count the digits to find the end...
    (local.set $end (local.get $dst))
    (loop $count
      (local.set $end (i32.add (local.get $end) (i32.const 1)))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $count (i64.ne (local.get $t) (i64.const 0))))
    (local.set $dst (local.get $end)) ;; ...then write them from the last one backward
    (loop $digit
      (local.set $dst (i32.sub (local.get $dst) (i32.const 1)))
      (i32.store8 (local.get $dst)
        (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (local.get $end))

  ;; Writes an Ok Transition for the current state at 0x0C00 and returns it packed:
  ;;   status:u8=0 current_player:i32 terminated:u8 truncated:u8 n:u32 rewards:[f64; n]
  ;;   obs_len:u32=8 observation:[pulls:i32, total:i32] info_len:u32=0 (empty info means {})
  ;; $n_rewards is 0 after reset (no reward) and 1 after a step (one per player).
  (func $transition (param $n_rewards i32) (param $reward f64) (result i64)
    (local $p i32) (local $over i32)
    (local.set $over (i32.eq (global.get $phase) (i32.const 2)))
    (local.set $p (i32.const 0x0c00))
    (i32.store8 (local.get $p) (i32.const 0))                                                ;; Ok
    (i32.store offset=1 (local.get $p) (select (i32.const -1) (i32.const 0) (local.get $over))) ;; player, -1 when over
    (i32.store8 offset=5 (local.get $p) (local.get $over))                                   ;; terminated
    (i32.store8 offset=6 (local.get $p) (i32.const 0))        ;; truncated: never (max_episode_steps is null)
    (i32.store offset=7 (local.get $p) (local.get $n_rewards))
    (if (local.get $n_rewards)
      (then
        (f64.store offset=11 (local.get $p) (local.get $reward))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))))
    (i32.store offset=11 (local.get $p) (i32.const 8))
    (i32.store offset=15 (local.get $p) (global.get $pulls))
    (i32.store offset=19 (local.get $p) (global.get $total))
    (i32.store offset=23 (local.get $p) (i32.const 0))
    (call $pack (i32.const 0x0c00) (i32.sub (i32.add (local.get $p) (i32.const 27)) (i32.const 0x0c00))))

  ;; ---- ABI exports ---------------------------------------------------------------------------
  ;; wasmgym_alloc(len) -> ptr: where the host writes the next request (ResetRequest or Action).
  ;; Always the same 60 KiB area; the guest reads it only during the call it was allocated for.
  ;; A request longer than the area (only possible with huge reset options) traps with
  ;; `unreachable` rather than letting the host write past the end of memory.
  ;; An empty request would be passed as (0, 0) without calling this; none is valid here.
  (func (export "wasmgym_alloc") (param $len i32) (result i32)
    (if (i32.gt_u (local.get $len) (i32.const 0xf000)) (then unreachable))
    (i32.const 0x1000))

  ;; wasmgym_spec() -> status 0, then the EnvSpec JSON.
  (func (export "wasmgym_spec") (result i64)
    (call $canned (i32.const 0x800)))

  ;; wasmgym_reset(ptr, len): ResetRequest in, Transition out.
  ;; ResetRequest = has_seed:u8 seed:u64 options_len:u32 options:[u8], so exactly 13 + options_len
  ;; bytes. The host has already applied the seed to its generator; the options are ignored.
  (func (export "wasmgym_reset") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.lt_u (local.get $len) (i32.const 13))
      (then (return (call $canned (i32.const 0x2c0)))))
    (if (i32.ne (i32.load offset=9 (local.get $ptr)) (i32.sub (local.get $len) (i32.const 13)))
      (then (return (call $canned (i32.const 0x2c0)))))
    (global.set $pulls (i32.const 0))
    (global.set $total (i32.const 0))
    (global.set $phase (i32.const 1))
    (call $transition (i32.const 0) (f64.const 0)))

  ;; wasmgym_step(ptr, len): Action in, Transition out.
  ;; Action = 0:u8 value:i64 (discrete, 9 bytes) | 1:u8 len:u32 text:[u8] (text).
  (func (export "wasmgym_step") (param $ptr i32) (param $len i32) (result i64)
    (local $kind i32) (local $arm i64) (local $hit i32) (local $q i32)
    (if (i32.eqz (global.get $phase))                               ;; BadRequest: no episode yet
      (then (return (call $canned (i32.const 0x140)))))
    (if (i32.eq (global.get $phase) (i32.const 2))                  ;; BadRequest: episode over
      (then (return (call $canned (i32.const 0x1c0)))))
    (if (i32.eqz (local.get $len))
      (then (return (call $canned (i32.const 0x340)))))
    (local.set $kind (i32.load8_u (local.get $ptr)))
    (if (i32.eq (local.get $kind) (i32.const 1))                    ;; IllegalAction: text payload
      (then (return (call $canned (i32.const 0x3c0)))))             ;; (not decoded further)
    (if (i32.or (local.get $kind) (i32.ne (local.get $len) (i32.const 9)))
      (then (return (call $canned (i32.const 0x340)))))             ;; BadRequest: malformed
    (local.set $arm (i64.load offset=1 (local.get $ptr)))
    ;; IllegalAction "action <a> is outside the action space Discrete(2)"; unsigned compare
    ;; rejects negatives too. Nothing has changed, so the episode continues.
    (if (i64.ge_u (local.get $arm) (i64.const 2))
      (then
        (i32.store8 (i32.const 0x0c00) (i32.const 1))
        (local.set $q (call $append (i32.const 0x0c01) (i32.const 0x4c0)))
        (local.set $q (call $append_i64 (local.get $q) (local.get $arm)))
        (local.set $q (call $append (local.get $q) (i32.const 0x4d0)))
        (return (call $pack (i32.const 0x0c00) (i32.sub (local.get $q) (i32.const 0x0c00))))))
    ;; Draw 8 bytes, read them as a u64 x, and pay iff (x >> 11) * 2^-53 < p. The product is exact
    ;; (a 53-bit integer scaled by a power of two), so every host and the SDK's Rng::bernoulli agree.
    (if (call $random_get (i32.const 0x10) (i32.const 8))
      (then (return (call $canned (i32.const 0x440)))))
    (local.set $hit
      (f64.lt
        (f64.mul (f64.convert_i64_u (i64.shr_u (i64.load (i32.const 0x10)) (i64.const 11)))
                 (f64.const 0x1p-53))
        (select (f64.const 0.3) (f64.const 0.7) (i64.eqz (local.get $arm)))))
    (global.set $pulls (i32.add (global.get $pulls) (i32.const 1)))
    (global.set $total (i32.add (global.get $total) (local.get $hit)))
    (if (i32.ge_u (global.get $pulls) (i32.const 20))               ;; terminated after 20 pulls
      (then (global.set $phase (i32.const 2))))
    (call $transition (i32.const 1) (f64.convert_i32_u (local.get $hit))))

  ;; wasmgym_legal_actions() -> status 0, LegalActions: [0, 1] while an episode runs, else [].
  (func (export "wasmgym_legal_actions") (result i64)
    (if (result i64) (i32.eq (global.get $phase) (i32.const 1))
      (then (call $pack (i32.const 0x100) (i32.const 21)))
      (else (call $pack (i32.const 0x120) (i32.const 5)))))

  ;; wasmgym_render() -> status 0, "pulls 3, total 2" (plus " (episode over)" at the end);
  ;; BadRequest before the first reset, as the Rust SDK does.
  (func (export "wasmgym_render") (result i64)
    (local $q i32)
    (if (i32.eqz (global.get $phase))
      (then (return (call $canned (i32.const 0x240)))))
    (i32.store8 (i32.const 0x0c00) (i32.const 0))
    (local.set $q (call $append (i32.const 0x0c01) (i32.const 0x500)))
    (local.set $q (call $append_i64 (local.get $q) (i64.extend_i32_u (global.get $pulls))))
    (local.set $q (call $append (local.get $q) (i32.const 0x510)))
    (local.set $q (call $append_i64 (local.get $q) (i64.extend_i32_u (global.get $total))))
    (if (i32.eq (global.get $phase) (i32.const 2))
      (then (local.set $q (call $append (local.get $q) (i32.const 0x520)))))
    (call $pack (i32.const 0x0c00) (i32.sub (local.get $q) (i32.const 0x0c00))))
)
