;; A minimal environment (ABI v1): Discrete(2) observations and actions, one player. Each step
;; grows memory up to 3 pages, writes the step count at a spot that moves across the pages and
;; bumps a non-exported mutable global, so snapshots, restores and forks have work to do.
(module
  (@custom "wasmgym_abi" "\01\00\00\00")
  (memory (export "memory") 1 4)
  (global $steps (mut i32) (i32.const 0))
  (data (i32.const 2048) "\00{\"name\":\"stub\",\"version\":1,\"players\":1,\"observation_space\":{\"type\":\"discrete\",\"n\":2},\"action_space\":{\"type\":\"discrete\",\"n\":2},\"reward_range\":[0,1],\"max_episode_steps\":8,\"determinism\":\"deterministic\"}")
  ;; Transition: status 0, player 0, not over, no rewards, 8-byte observation 0, empty info.
  (data (i32.const 4096) "\00\00\00\00\00\00\00\00\00\00\00\08\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
  ;; Legal actions: status 0, [0, 1].
  (data (i32.const 4200) "\00\02\00\00\00\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00")
  (func (export "wasmgym_alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "wasmgym_spec") (result i64) (i64.const 8796093022408))
  (func (export "wasmgym_reset") (param i32 i32) (result i64)
    (global.set $steps (i32.const 0))
    (i64.const 17592186044443))
  (func (export "wasmgym_step") (param i32 i32) (result i64)
    (if (i32.lt_u (memory.size) (i32.const 3)) (then (drop (memory.grow (i32.const 1)))))
    (global.set $steps (i32.add (global.get $steps) (i32.const 1)))
    (i32.store
      (i32.rem_u (i32.mul (global.get $steps) (i32.const 40961))
                 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 8)))
      (global.get $steps))
    (i64.const 17592186044443))
  (func (export "wasmgym_legal_actions") (result i64) (i64.const 18038862643221))
  (func (export "wasmgym_render") (result i64) (i64.const 17592186044443)))
