;; A checker that gives every output the score 1.0 with the message "ok".
(module
  (@custom "wasmgym_checker_abi" "\01\00\00\00")
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\00\00\00\00\f0\3fok")
  (func (export "wasmgym_checker_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgym_check") (param i32 i32 i32 i32) (result i64) (i64.const 10)))
