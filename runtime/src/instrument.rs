//! Dirty-page tracking inside the guest: a load-time pass that makes every write to linear memory
//! mark a byte map, so a restore or a capture knows the pages written since the last one without
//! comparing memories, page faults or system calls (measured against the alternatives in
//! `docs/measurements/dirty-page-mechanisms.md`).
//!
//! The map is a second memory the guest's own code cannot name: byte `p` is set when a write
//! starts in 4 KiB page `p` of memory 0. Each store becomes
//!
//! ```text
//! local.set $value  local.tee $addr  i32.const offset  i32.add  i32.const 12  i32.shr_u
//! i32.const 1  i32.store8 (memory $map)  local.get $addr  local.get $value  <the store>
//! ```
//!
//! (without the add when the offset is 0). A store of up to 16 bytes may also reach the next page,
//! so a reader treats page `p + 1` as written whenever `p` is (and copies its first 16 bytes back).
//! Stores whose address is a `local.get` of one local, not set in between, in straight-line code
//! (no control flow or call between them) and within one page of each other (a Rust stack frame,
//! a `&mut` struct) are marked once instead, at the first: the pages of the lowest and highest
//! byte they can write (`plan_marks`). `memory.fill`, `memory.copy` and `memory.init` of up to a
//! page mark the pages of their first and last byte inline; longer ones call an added function
//! that marks every page of their destination range. The host marks the pages it writes itself.
//! The added instructions consume fuel like any others.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, MemArg, MemArgTarget,
    MemorySection, MemoryType, Module, RawSection, TypeSection, ValType,
};
use wasmparser::{CompositeInnerType, Operator, Parser, Payload, TypeRef};

use crate::error::Error;

/// Export name of the dirty map memory.
pub(crate) const DIRTY_MAP_EXPORT: &str = "__wasmgym_dirty";
/// The map covers all of wasm32's 4 GiB: one byte per 4 KiB page, 16 wasm pages.
const MAP_WASM_PAGES: u64 = 16;

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidModule { message: e.to_string() }
}

/// Adds the dirty map to a module with exactly one defined memory (and no imported one). Modules
/// with another shape are returned unchanged, with `false`.
pub(crate) fn dirty_map(wasm: &[u8]) -> Result<(Vec<u8>, bool), Error> {
    // First pass: the facts the rewrite needs (function signatures, counts).
    let mut func_params: Vec<u32> = Vec::new(); // per type index; 0 for non-function types
    let mut imported_funcs = 0u32;
    let mut defined_types: Vec<u32> = Vec::new();
    let mut memories = 0u32;
    let mut has = [false; 4]; // type, function, memory, code sections
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                has[0] = true;
                for group in reader {
                    for sub in group.map_err(invalid)?.into_types() {
                        func_params.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => f.params().len() as u32,
                            _ => 0,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(invalid)?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => imported_funcs += 1,
                        TypeRef::Memory(_) => return Ok((wasm.to_vec(), false)),
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                has[1] = true;
                for ty in reader {
                    defined_types.push(ty.map_err(invalid)?);
                }
            }
            Payload::MemorySection(reader) => {
                has[2] = true;
                memories += reader.count();
            }
            Payload::CodeSectionStart { .. } => has[3] = true,
            _ => {}
        }
    }
    if memories != 1 || has.contains(&false) {
        return Ok((wasm.to_vec(), false));
    }
    let map = memories; // the map's memory index
    let mark_type = func_params.len() as u32;
    let mark_func = imported_funcs + defined_types.len() as u32;

    // Second pass: re-encode the sections that change, copy the rest.
    let mut re = RoundtripReencoder;
    let mut out = Module::new();
    let mut body = 0usize;
    let mut code = CodeSection::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        match payload {
            Payload::TypeSection(reader) => {
                let mut types = TypeSection::new();
                re.parse_type_section(&mut types, reader).map_err(invalid)?;
                types.ty().function([ValType::I32, ValType::I32], []);
                out.section(&types);
            }
            Payload::FunctionSection(reader) => {
                let mut functions = FunctionSection::new();
                re.parse_function_section(&mut functions, reader).map_err(invalid)?;
                functions.function(mark_type);
                out.section(&functions);
            }
            Payload::MemorySection(reader) => {
                let mut section = MemorySection::new();
                re.parse_memory_section(&mut section, reader).map_err(invalid)?;
                section.memory(MemoryType {
                    minimum: MAP_WASM_PAGES,
                    maximum: Some(MAP_WASM_PAGES),
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
                out.section(&section);
            }
            Payload::ExportSection(reader) => {
                let mut exports = ExportSection::new();
                re.parse_export_section(&mut exports, reader).map_err(invalid)?;
                exports.export(DIRTY_MAP_EXPORT, ExportKind::Memory, map);
                out.section(&exports);
            }
            Payload::CodeSectionStart { .. } => {}
            Payload::CodeSectionEntry(entry) => {
                let params =
                    func_params.get(*defined_types.get(body).ok_or_else(|| invalid("code without function"))? as usize);
                code.function(&instrument_body(&mut re, entry, params.copied().unwrap_or(0), map, mark_func)?);
                body += 1;
                if body == defined_types.len() {
                    code.function(&mark_range(map));
                    out.section(&code);
                }
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    let data = wasm
                        .get(range.start as usize..range.end as usize)
                        .ok_or_else(|| invalid("section past the end"))?;
                    out.section(&RawSection { id, data });
                }
            }
        }
    }
    Ok((out.finish(), true))
}

/// The extra locals every instrumented function gets, after its own.
struct Scratch {
    addr: u32,
    n: u32,
    i32: u32,
    i64: u32,
    f32: u32,
    f64: u32,
    v128: u32,
}

fn instrument_body(
    re: &mut RoundtripReencoder,
    entry: wasmparser::FunctionBody<'_>,
    params: u32,
    map: u32,
    mark_func: u32,
) -> Result<Function, Error> {
    let mut locals = Vec::new();
    let mut count = params;
    for local in entry.get_locals_reader().map_err(invalid)? {
        let (n, ty) = local.map_err(invalid)?;
        locals.push((n, re.val_type(ty).map_err(invalid)?));
        count += n;
    }
    let s = Scratch {
        addr: count,
        n: count + 1,
        i32: count + 2,
        i64: count + 3,
        f32: count + 4,
        f64: count + 5,
        v128: count + 6,
    };
    locals.extend([(3, ValType::I32), (1, ValType::I64), (1, ValType::F32), (1, ValType::F64), (1, ValType::V128)]);
    let mut f = Function::new(locals);
    let plan = plan_marks(entry.get_operators_reader().map_err(invalid)?)?;
    let mut stores = plan.iter();
    let mut ops = entry.get_operators_reader().map_err(invalid)?;
    while !ops.eof() {
        let op = ops.read().map_err(invalid)?;
        // The value local of a store to memory 0, and its static offset.
        let store = store_of(&op).map(|(kind, memarg, _)| {
            let value = match kind {
                ValType::I32 => s.i32,
                ValType::I64 => s.i64,
                ValType::F32 => s.f32,
                ValType::F64 => s.f64,
                _ => s.v128,
            };
            (value, memarg)
        });
        let range = matches!(
            &op,
            Operator::MemoryFill { mem: 0 }
                | Operator::MemoryCopy { dst_mem: 0, .. }
                | Operator::MemoryInit { mem: 0, .. }
        );
        let mark = match store {
            Some(_) => stores.next().copied().unwrap_or(Mark::Own),
            None => Mark::Own,
        };
        if let (Some(_), Mark::Covered) = (store, mark) {
            // Marked with the other stores through the same local in this straight-line code.
        } else if let (Some(_), Mark::Group { local, low, high }) = (store, mark) {
            // The first of several stores through `local` here, all within `low..high` of it: the
            // pages of the range's first and last byte hold them all. Should `local + high - 1`
            // wrap past 4 GiB, the stores that write end in the last page, which is marked.
            let base_plus = |f: &mut Function, at: u64| {
                f.instruction(&Instruction::LocalGet(local));
                f.instruction(&Instruction::I32Const(at as u32 as i32));
                f.instruction(&Instruction::I32Add);
            };
            base_plus(&mut f, low);
            mark_page(&mut f, map);
            f.instruction(&Instruction::I32Const(-1));
            base_plus(&mut f, high - 1);
            f.instruction(&Instruction::LocalTee(s.addr));
            f.instruction(&Instruction::LocalGet(s.addr));
            base_plus(&mut f, low);
            f.instruction(&Instruction::I32LtU);
            f.instruction(&Instruction::Select);
            mark_page(&mut f, map);
        } else if let Some((value, memarg)) = store {
            f.instruction(&Instruction::LocalSet(value));
            f.instruction(&Instruction::LocalTee(s.addr));
            if memarg.offset != 0 {
                f.instruction(&Instruction::I32Const(memarg.offset as u32 as i32));
                f.instruction(&Instruction::I32Add);
            }
            mark_page(&mut f, map);
            f.instruction(&Instruction::LocalGet(s.addr));
            f.instruction(&Instruction::LocalGet(value));
        } else if range {
            // [dest, value-or-source, len] -> mark the pages of dest..dest + len, then the operands
            // back. Up to a page long (most are a few bytes), the range lies in the pages of its
            // first and last byte, marked inline; longer ones call `mark(dest, len)`. (A zero
            // length marks a page or two for nothing, harmlessly.)
            f.instruction(&Instruction::LocalSet(s.n));
            f.instruction(&Instruction::LocalSet(s.i32));
            f.instruction(&Instruction::LocalSet(s.addr));
            f.instruction(&Instruction::LocalGet(s.n));
            f.instruction(&Instruction::I32Const(4096));
            f.instruction(&Instruction::I32LeU);
            f.instruction(&Instruction::If(BlockType::Empty));
            f.instruction(&Instruction::LocalGet(s.addr));
            mark_page(&mut f, map);
            f.instruction(&Instruction::LocalGet(s.addr));
            f.instruction(&Instruction::LocalGet(s.n));
            f.instruction(&Instruction::I32Add);
            f.instruction(&Instruction::I32Const(1));
            f.instruction(&Instruction::I32Sub);
            mark_page(&mut f, map);
            f.instruction(&Instruction::Else);
            f.instruction(&Instruction::LocalGet(s.addr));
            f.instruction(&Instruction::LocalGet(s.n));
            f.instruction(&Instruction::Call(mark_func));
            f.instruction(&Instruction::End);
            f.instruction(&Instruction::LocalGet(s.addr));
            f.instruction(&Instruction::LocalGet(s.i32));
            f.instruction(&Instruction::LocalGet(s.n));
        }
        f.instruction(&re.instruction(op).map_err(invalid)?);
    }
    Ok(f)
}

/// `[address] -> []`: sets the dirty map's byte for the page of the address on the stack.
fn mark_page(f: &mut Function, map: u32) {
    f.instruction(&Instruction::I32Const(12));
    f.instruction(&Instruction::I32ShrU);
    f.instruction(&Instruction::I32Const(1));
    f.instruction(&Instruction::I32Store8(MemArg {
        offset: 0,
        align: 0,
        target: MemArgTarget::Memory(map),
        ordering: None,
    }));
}

/// A store to memory 0: the type of its value, its memarg and how many bytes it writes.
fn store_of<'a>(op: &'a Operator<'_>) -> Option<(ValType, &'a wasmparser::MemArg, u64)> {
    let (kind, memarg, size) = match op {
        Operator::I32Store { memarg } => (ValType::I32, memarg, 4),
        Operator::I32Store8 { memarg } => (ValType::I32, memarg, 1),
        Operator::I32Store16 { memarg } => (ValType::I32, memarg, 2),
        Operator::I64Store { memarg } => (ValType::I64, memarg, 8),
        Operator::I64Store8 { memarg } => (ValType::I64, memarg, 1),
        Operator::I64Store16 { memarg } => (ValType::I64, memarg, 2),
        Operator::I64Store32 { memarg } => (ValType::I64, memarg, 4),
        Operator::F32Store { memarg } => (ValType::F32, memarg, 4),
        Operator::F64Store { memarg } => (ValType::F64, memarg, 8),
        Operator::V128Store { memarg } => (ValType::V128, memarg, 16),
        Operator::V128Store8Lane { memarg, .. } => (ValType::V128, memarg, 1),
        Operator::V128Store16Lane { memarg, .. } => (ValType::V128, memarg, 2),
        Operator::V128Store32Lane { memarg, .. } => (ValType::V128, memarg, 4),
        Operator::V128Store64Lane { memarg, .. } => (ValType::V128, memarg, 8),
        _ => return None,
    };
    (memarg.target == wasmparser::MemArgTarget::Memory(0)).then_some((kind, memarg, size))
}

/// How a store to memory 0 is marked.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mark {
    /// By itself: the page its address (plus offset) falls in.
    Own,
    /// The first store of a group: the pages of `local + low` and `local + high - 1`, which hold
    /// every byte the group's stores write (`high - low` is at most a page).
    Group { local: u32, low: u64, high: u64 },
    /// Another store of a group: marked by its first.
    Covered,
}

/// How to mark each store to memory 0 of a function body, in order. Within straight-line code
/// (no control flow, no call between), stores whose address is a `local.get` of the same local,
/// not set in between, write within a range known from their offsets: when it is at most a page
/// long, marking the pages of its two ends once, at the first store, covers them all. Rust code
/// writes most of its stack frame and its `&mut` structs this way. Anything the pass cannot follow
/// (an operator whose operand counts it does not know) ends the straight-line code.
fn plan_marks(mut ops: wasmparser::OperatorsReader<'_>) -> Result<Vec<Mark>, Error> {
    /// Where a value on the operand stack came from, as far as the pass knows.
    #[derive(Clone, Copy, PartialEq)]
    enum Source {
        Unknown,
        /// `local.get` of this local, in this generation (bumped by every `local.set`/`tee`).
        Local(u32, u32),
    }
    let mut plan = Vec::new();
    let mut stack: Vec<Source> = Vec::new();
    let mut generation: std::collections::HashMap<u32, u32> = Default::default();
    /// Stores of the current straight-line code by (local, generation): (index, low, high).
    type Groups = std::collections::HashMap<(u32, u32), Vec<(usize, u64, u64)>>;
    let mut groups = Groups::default();
    let flush = |plan: &mut Vec<Mark>, groups: &mut Groups| {
        for ((local, _), stores) in groups.drain() {
            let low = stores.iter().map(|s| s.1).min().unwrap_or(0);
            let high = stores.iter().map(|s| s.2).max().unwrap_or(0);
            if stores.len() < 2 || high - low > 4096 || high > 1 << 32 {
                continue;
            }
            plan[stores[0].0] = Mark::Group { local, low, high };
            stores[1..].iter().for_each(|s| plan[s.0] = Mark::Covered);
        }
    };
    while !ops.eof() {
        let op = ops.read().map_err(invalid)?;
        if let Some((_, memarg, size)) = store_of(&op) {
            let _value = stack.pop();
            let address = stack.pop().unwrap_or(Source::Unknown);
            plan.push(Mark::Own);
            if let Source::Local(local, generation) = address {
                let entry = groups.entry((local, generation)).or_default();
                entry.push((plan.len() - 1, memarg.offset, memarg.offset.saturating_add(size)));
            }
            continue;
        }
        match op {
            Operator::LocalGet { local_index } => {
                let generation = generation.get(&local_index).copied().unwrap_or(0);
                stack.push(Source::Local(local_index, generation));
            }
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                stack.pop();
                let generation = generation.entry(local_index).or_default();
                *generation += 1;
                if matches!(op, Operator::LocalTee { .. }) {
                    // The value left is the local's new one.
                    stack.push(Source::Local(local_index, *generation));
                }
            }
            // Straight-line operators whose operand counts do not depend on the module.
            ref other if !ends_straight_line(other) => match other.operator_arity(&NoModule) {
                Some((pops, pushes)) => {
                    stack.truncate(stack.len().saturating_sub(pops as usize));
                    stack.extend(std::iter::repeat_n(Source::Unknown, pushes as usize));
                }
                None => {
                    flush(&mut plan, &mut groups);
                    stack.clear();
                }
            },
            _ => {
                flush(&mut plan, &mut groups);
                stack.clear();
            }
        }
    }
    flush(&mut plan, &mut groups);
    Ok(plan)
}

/// Control flow and calls: where the pass stops following the operand stack.
fn ends_straight_line(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::Return
            | Operator::Unreachable
            | Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. }
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Rethrow { .. }
            | Operator::Delegate { .. }
    )
}

/// A module for `operator_arity` that knows nothing: operators whose operand counts depend on the
/// module's types or labels get no arity, which ends the straight-line code.
struct NoModule;

impl wasmparser::ModuleArity for NoModule {
    fn sub_type_at(&self, _: u32) -> Option<&wasmparser::SubType> {
        None
    }
    fn tag_type_arity(&self, _: u32) -> Option<(u32, u32)> {
        None
    }
    fn type_index_of_function(&self, _: u32) -> Option<u32> {
        None
    }
    fn func_type_of_cont_type(&self, _: &wasmparser::ContType) -> Option<&wasmparser::FuncType> {
        None
    }
    fn sub_type_of_ref_type(&self, _: &wasmparser::RefType) -> Option<&wasmparser::SubType> {
        None
    }
    fn control_stack_height(&self) -> u32 {
        0
    }
    fn label_block(&self, _: u32) -> Option<(wasmparser::BlockType, wasmparser::FrameKind)> {
        None
    }
}

/// `(func (param $dest i32) (param $len i32))`: marks every page of `dest..dest + len`.
fn mark_range(map: u32) -> Function {
    let (dest, len, page, last) = (0, 1, 2, 3);
    let mut f = Function::new([(2, ValType::I32)]);
    let store =
        Instruction::I32Store8(MemArg { offset: 0, align: 0, target: MemArgTarget::Memory(map), ordering: None });
    for ins in [
        Instruction::LocalGet(len),
        Instruction::I32Eqz,
        Instruction::BrIf(0),
        Instruction::LocalGet(dest),
        Instruction::I32Const(12),
        Instruction::I32ShrU,
        Instruction::LocalSet(page),
        // The last page, wrapping like the address computation of the operation itself (which then
        // traps as out of bounds; marking is harmless).
        Instruction::LocalGet(dest),
        Instruction::LocalGet(len),
        Instruction::I32Add,
        Instruction::I32Const(1),
        Instruction::I32Sub,
        Instruction::I32Const(12),
        Instruction::I32ShrU,
        Instruction::LocalSet(last),
        Instruction::Loop(BlockType::Empty),
        Instruction::LocalGet(page),
        Instruction::I32Const(1),
        store,
        Instruction::LocalGet(page),
        Instruction::LocalGet(last),
        Instruction::I32GeU,
        Instruction::BrIf(1),
        Instruction::LocalGet(page),
        Instruction::I32Const(1),
        Instruction::I32Add,
        Instruction::LocalSet(page),
        Instruction::Br(0),
        Instruction::End,
        Instruction::End,
    ] {
        f.instruction(&ins);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_bulk_writes_mark_the_map_and_the_module_validates() {
        let wat = r#"(module
            (memory (export "m") 2)
            (func (export "f") (param i32) (result i32)
              (i32.store offset=8 (local.get 0) (i32.const 7))
              (i64.store8 (i32.const 70000) (i64.const 1))
              (memory.fill (i32.const 90000) (i32.const 1) (i32.const 9000))
              (memory.copy (i32.const 110582) (i32.const 0) (i32.const 20))
              (memory.fill (i32.const 116736) (i32.const 2) (i32.const 4096))
              (memory.fill (i32.const 126981) (i32.const 3) (i32.const 0))
              (i32.load offset=8 (local.get 0))))"#;
        let (wasm, done) = dirty_map(&wat::parse_str(wat).unwrap()).unwrap();
        assert!(done);
        wasmparser::Validator::new().validate_all(&wasm).unwrap();

        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<i32, i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, 4096 * 5 - 4).unwrap(), 7, "the instrumented store still stores");
        let map = instance.get_memory(&mut store, DIRTY_MAP_EXPORT).unwrap();
        let memory = instance.get_memory(&mut store, "m").unwrap();
        let marked: Vec<usize> = (0..64).filter(|&p| map.data(&store)[p] != 0).collect();
        // 4096*5-4+8 is in page 5; 70000 in page 17; 90000..99000 spans pages 21..=24 (marked by
        // the added function); 110582..110602 straddles pages 26 and 27, 116736..120832 pages 28
        // and 29 (both marked inline); the empty fill at 126981 marks its page 31 for nothing.
        assert_eq!(marked, vec![5, 17, 21, 22, 23, 24, 26, 27, 28, 29, 31]);
        assert_eq!(&memory.data(&store)[116736..116740], &[2; 4], "the bulk writes still write");
    }

    #[test]
    fn stores_through_one_local_in_straight_line_code_are_marked_once_and_cover_every_page() {
        let wat = r#"(module
            (memory (export "m") 2)
            (func (export "g") (param $p i32) (param $q i32)
              ;; Through $p, 8 bytes before a page's end: offsets 0 and 16 straddle pages 2 and 3.
              (i64.store (local.get $p) (i64.const -1))
              (i32.store offset=16 (local.get $p) (i32.const 2))
              ;; $p set again: a new group, offsets 0 and 4000 of page 6.
              (local.set $p (i32.const 24576))
              (i32.store (local.get $p) (i32.const 3))
              (f64.store offset=4000 (local.get $p) (f64.const 1))
              ;; Through $q, the same local on both sides of a block: two groups of one.
              (i32.store8 (local.get $q) (i32.const 4))
              (block)
              (i32.store16 offset=5000 (local.get $q) (i32.const 5))
              ;; Too far apart for one group (more than a page): each by itself.
              (i32.store offset=12000 (local.get $q) (i32.const 6))
              (i32.store offset=20000 (local.get $q) (i32.const 7))))"#;
        let original = wat::parse_str(wat).unwrap();
        let (wasm, done) = dirty_map(&original).unwrap();
        assert!(done);
        wasmparser::Validator::new().validate_all(&wasm).unwrap();
        // The plan: groups for $p (twice), the rest by themselves.
        let body = Parser::new(0)
            .parse_all(&original)
            .find_map(|p| match p.unwrap() {
                Payload::CodeSectionEntry(body) => Some(body),
                _ => None,
            })
            .unwrap();
        let plan = plan_marks(body.get_operators_reader().unwrap()).unwrap();
        let group = |local, low, high| Mark::Group { local, low, high };
        assert_eq!(
            plan,
            [
                group(0, 0, 20),
                Mark::Covered,
                group(0, 0, 4008),
                Mark::Covered,
                Mark::Own,
                Mark::Own,
                Mark::Own,
                Mark::Own
            ]
        );

        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let g = instance.get_typed_func::<(i32, i32), ()>(&mut store, "g").unwrap();
        let (p, q) = (4096 * 3 - 8, 4096 * 10 + 100);
        g.call(&mut store, (p, q)).unwrap();
        let map = instance.get_memory(&mut store, DIRTY_MAP_EXPORT).unwrap();
        let memory = instance.get_memory(&mut store, "m").unwrap();
        let marked: Vec<usize> = (0..32).filter(|&p| map.data(&store)[p] != 0).collect();
        // Every page holding a written byte, and no other.
        let written: Vec<usize> = (0..32).filter(|&p| memory.data(&store)[p * 4096..][..4096] != [0; 4096]).collect();
        assert_eq!(written, [2, 3, 6, 10, 11, 12, 14]);
        assert_eq!(marked, written);
    }

    #[test]
    fn modules_without_exactly_one_memory_are_left_alone() {
        let none = wat::parse_str("(module (func))").unwrap();
        assert_eq!(dirty_map(&none).unwrap(), (none.clone(), false));
        let two = wat::parse_str("(module (memory 1) (memory 1) (func))").unwrap();
        assert!(!dirty_map(&two).unwrap().1);
    }
}
