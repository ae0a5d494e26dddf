//! Load-time inspection and rewriting of guest modules.
//!
//! wasmtime's API reaches only *exported* globals and memories, but a snapshot must hold every piece
//! of mutable instance state (a Rust guest's shadow stack pointer is a non-exported mutable global).
//! So, as Wizer does, the host rewrites each module before compiling it: every defined memory and
//! every defined mutable global gets an extra export under a reserved name. Sections are copied
//! byte for byte; only the export section is re-encoded.
//!
//! The inspection also refuses what a snapshot could not capture: imported memories, tables or
//! globals, and instructions that mutate tables or drop segments at run time.

use wasm_encoder::{ExportKind, ExportSection, Module, RawSection, SectionId};
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef};

use crate::error::Error;
use crate::limits::LoadLimits;

/// Prefix of the exports the rewrite adds for memories.
pub(crate) const MEMORY_EXPORT: &str = "__wasmgym_memory_";
/// Prefix of the exports the rewrite adds for mutable globals.
pub(crate) const GLOBAL_EXPORT: &str = "__wasmgym_global_";

/// What the host learned about a module while rewriting it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Layout {
    /// The ABI version stamped in the `wasmgym_abi` custom section, if present and well formed.
    pub abi_version: Option<u32>,
    /// Function imports as `(module, name)`.
    pub imports: Vec<(String, String)>,
    /// Names of the module's own exports.
    pub exports: Vec<String>,
    /// Number of defined memories; each is exported as `__wasmgym_memory_{i}`.
    pub memories: u32,
    /// Initial size of each defined memory, in 64 KiB pages.
    pub initial_pages: Vec<u64>,
    /// Indices of the defined mutable globals; each is exported as `__wasmgym_global_{i}`.
    pub mutable_globals: Vec<u32>,
    /// Position in `mutable_globals` of the shadow stack pointer (`__stack_pointer` in the name
    /// section), which compiled languages such as Rust and C keep in linear memory.
    pub stack_pointer: Option<usize>,
    /// The first instruction found whose effect lives outside memories and globals (`table.grow`,
    /// `elem.drop`...), which only [`Options::allow_table_mutation`] lets through.
    pub unsnapshotted: Option<String>,
}

/// What the rewrite accepts, by kind of guest.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// Accept state a snapshot does not hold: instructions that mutate tables or drop segments,
    /// and mutable globals of reference type. Environments must not use them (their snapshots
    /// would be incomplete); programs may, and then get a fresh instance per run instead of a
    /// restored snapshot.
    pub allow_table_mutation: bool,
    /// Accept exception tags (WebAssembly exception handling): only a trusted interpreter's, on a
    /// runtime made with `RuntimeConfig::wasm_exceptions`, since exception objects live outside
    /// linear memory and its limits. Without a tag nothing can be thrown, so refusing the tag
    /// section refuses exceptions.
    pub allow_exceptions: bool,
    /// Static bounds checked before compiling.
    pub limits: LoadLimits,
}

/// Inspects `wasm` and returns it rewritten to export all mutable state, with what was learned.
#[cfg(test)]
pub(crate) fn rewrite(wasm: &[u8]) -> Result<(Vec<u8>, Layout), Error> {
    rewrite_with(wasm, &Options::default())
}

/// Fails with [`Error::ModuleLimit`] if `found` is over `limit`.
fn within(what: impl FnOnce() -> String, found: u64, limit: u64) -> Result<(), Error> {
    if found > limit {
        return Err(Error::ModuleLimit { what: what(), found, limit });
    }
    Ok(())
}

/// [`rewrite`] with `options`.
pub(crate) fn rewrite_with(wasm: &[u8], options: &Options) -> Result<(Vec<u8>, Layout), Error> {
    let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule { message: e.to_string() };
    let limits = &options.limits;
    within(|| "module_bytes".into(), wasm.len() as u64, limits.module_bytes as u64)?;
    let mut layout = Layout::default();
    let mut code_bytes = 0u64;
    let mut blocks = 0u64;
    let mut function = 0u32;
    let mut out = Module::new();
    let mut existing_exports = ExportSection::new();
    let mut export_written = false;
    let mut stack_pointer = None;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        // Emit our export section at its place in section order, even if the module has none.
        if let Some((id, _)) = payload.as_section()
            && !export_written
            && id != SectionId::Custom as u8
            && order(id) > order(SectionId::Export as u8)
        {
            write_exports(&mut out, &existing_exports, &layout);
            export_written = true;
        }
        match &payload {
            Payload::Version { encoding, .. } if *encoding != wasmparser::Encoding::Module => {
                return Err(Error::InvalidModule {
                    message: "this is a WebAssembly component, not a core module: build for wasm32-wasip1".into(),
                });
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import.map_err(invalid)?;
                    match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                            layout.imports.push((import.module.to_owned(), import.name.to_owned()))
                        }
                        TypeRef::Global(_) => return Err(unsupported_import(import.module, import.name, "global")),
                        TypeRef::Memory(_) => return Err(unsupported_import(import.module, import.name, "memory")),
                        TypeRef::Table(_) => return Err(unsupported_import(import.module, import.name, "table")),
                        TypeRef::Tag(_) => return Err(unsupported_import(import.module, import.name, "tag")),
                    }
                }
            }
            Payload::TagSection(_) if !options.allow_exceptions => {
                return Err(Error::Unsupported {
                    message: "the module declares exception tags (WebAssembly exception handling), which only a \
                              trusted interpreter loaded by Runtime::load_reactor on a runtime with wasm_exceptions \
                              may use: build without exceptions (C++: -fno-exceptions; Rust: panic = \"abort\")"
                        .into(),
                });
            }
            Payload::MemorySection(reader) => {
                for memory in reader.clone() {
                    let memory = memory.map_err(invalid)?;
                    if memory.shared {
                        return Err(Error::Unsupported {
                            message: "shared memories (threads) cannot be snapshotted".into(),
                        });
                    }
                    layout.initial_pages.push(memory.initial);
                    layout.memories += 1;
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.clone().into_iter().enumerate() {
                    let global = global.map_err(invalid)?;
                    if global.ty.mutable && matches!(global.ty.content_type, wasmparser::ValType::Ref(_)) {
                        let what = "a mutable global of reference type (funcref, externref)";
                        if !options.allow_table_mutation {
                            return Err(Error::Unsupported {
                                message: format!(
                                    "the module has {what}, which a snapshot cannot hold: build without it"
                                ),
                            });
                        }
                        layout.unsnapshotted.get_or_insert(what.to_owned());
                    }
                    if global.ty.mutable {
                        layout.mutable_globals.push(i as u32); // no imported globals, so defined = absolute index
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.map_err(invalid)?;
                    if export.name.starts_with("__wasmgym_") {
                        return Err(Error::InvalidModule {
                            message: format!("export name {:?} uses the reserved prefix __wasmgym_", export.name),
                        });
                    }
                    existing_exports.export(export.name, export_kind(export.kind), export.index);
                    layout.exports.push(export.name.to_owned());
                }
                continue; // re-emitted by write_exports
            }
            Payload::FunctionSection(reader) => {
                within(|| "functions".into(), reader.count() as u64, limits.functions as u64)?;
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().end - body.range().start;
                let name = || format!("function_body_bytes (defined function {function})");
                within(name, size, limits.function_body_bytes as u64)?;
                code_bytes += size;
                within(|| "code_bytes".into(), code_bytes, limits.code_bytes as u64)?;
                let (unsnapshotted, here) = check_body(body, function, limits)?;
                blocks += here;
                within(|| "blocks".into(), blocks, limits.blocks as u64)?;
                if let Some(name) = unsnapshotted
                    && layout.unsnapshotted.is_none()
                {
                    if !options.allow_table_mutation {
                        return Err(Error::Unsupported {
                            message: format!(
                                "the module uses `{name}`, whose effect a snapshot cannot hold yet (tables and \
                                 segments are not captured): build without it"
                            ),
                        });
                    }
                    layout.unsnapshotted = Some(name.to_owned());
                }
                function += 1;
            }
            Payload::CustomSection(section) if section.name() == wasmgym_abi::ABI_SECTION => {
                layout.abi_version = section.data().try_into().ok().map(u32::from_le_bytes);
            }
            Payload::CustomSection(section) => {
                if let wasmparser::KnownCustom::Name(names) = section.as_known() {
                    stack_pointer = stack_pointer.or_else(|| find_stack_pointer(names));
                }
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            // A section may claim more bytes than the module has: refuse it, never slice past the end.
            let data = wasm.get(range.start as usize..range.end as usize).ok_or_else(|| Error::InvalidModule {
                message: format!("section {id} claims bytes {range:?}, past the end of the {}-byte module", wasm.len()),
            })?;
            out.section(&RawSection { id, data });
        }
    }
    if !export_written {
        write_exports(&mut out, &existing_exports, &layout);
    }

    layout.stack_pointer = stack_pointer.and_then(|g| layout.mutable_globals.iter().position(|&i| i == g));
    // Invalid code is found here, in linear time, rather than by the compiler after it has
    // compiled the valid functions (and then again by the plain compile that names the error):
    // a hostile invalid module costs milliseconds. The feature set is wasmparser's default, wider
    // than the engine's, so only code no engine would take is refused here.
    wasmparser::Validator::new()
        .validate_all(wasm)
        .map_err(|e| Error::InvalidModule { message: format!("the module is not valid WebAssembly: {e}") })?;
    Ok((out.finish(), layout))
}

impl Layout {
    /// Fails unless the module defines a linear memory, which every kind of guest needs. Checked
    /// after the module's other faults, so those are reported first.
    pub fn require_memory(&self) -> Result<(), Error> {
        if self.memories == 0 {
            return Err(Error::Unsupported {
                message: "the module defines no linear memory; guests need one (the ABI and WASI pass data \
                          through memory 0): a wasm32-wasip1 build always has one"
                    .into(),
            });
        }
        Ok(())
    }
}

/// The index of the global named `__stack_pointer`, if the name section names it. A malformed
/// name section is ignored, as engines do.
fn find_stack_pointer(names: wasmparser::NameSectionReader<'_>) -> Option<u32> {
    for name in names.into_iter().flatten() {
        if let wasmparser::Name::Global(map) = name {
            for naming in map.into_iter().flatten() {
                if naming.name == "__stack_pointer" {
                    return Some(naming.index);
                }
            }
        }
    }
    None
}

fn write_exports(out: &mut Module, existing: &ExportSection, layout: &Layout) {
    let mut exports = existing.clone();
    for i in 0..layout.memories {
        exports.export(&format!("{MEMORY_EXPORT}{i}"), ExportKind::Memory, i);
    }
    for &i in &layout.mutable_globals {
        exports.export(&format!("{GLOBAL_EXPORT}{i}"), ExportKind::Global, i);
    }
    out.section(&exports);
}

/// Position of a known section in the order the binary format requires.
fn order(id: u8) -> u8 {
    // type, import, function, table, memory, tag, global, export, start, element, datacount, code, data
    const ORDER: [u8; 13] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
    ORDER.iter().position(|&x| x == id).map_or(u8::MAX, |p| p as u8)
}

fn export_kind(kind: ExternalKind) -> ExportKind {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

fn unsupported_import(module: &str, name: &str, kind: &str) -> Error {
    Error::UnknownImport {
        module: module.to_owned(),
        name: name.to_owned(),
        detail: format!("imported {kind}s are not provided: define it in the module instead"),
    }
}

/// The first instruction of `body` whose effect lives outside memories and globals, which snapshots
/// hold, and the number of control blocks, having checked the body is within `limits` (locals,
/// blocks, nesting depth).
fn check_body(
    body: &wasmparser::FunctionBody<'_>,
    function: u32,
    limits: &LoadLimits,
) -> Result<(Option<&'static str>, u64), Error> {
    let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule { message: e.to_string() };
    let mut locals = 0u64;
    for group in body.get_locals_reader().map_err(invalid)? {
        locals += group.map_err(invalid)?.0 as u64;
        within(|| format!("locals (defined function {function})"), locals, limits.locals as u64)?;
    }
    let mut ops = body.get_operators_reader().map_err(invalid)?;
    let mut depth = 0u32;
    let mut blocks = 0u64;
    let mut found = None;
    while !ops.eof() {
        let op = ops.read().map_err(invalid)?;
        let name = match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. }
            | Operator::Try { .. } => {
                depth += 1;
                blocks += 1;
                within(
                    || format!("nesting_depth (defined function {function})"),
                    depth as u64,
                    limits.nesting_depth as u64,
                )?;
                within(
                    || format!("function_blocks (defined function {function})"),
                    blocks,
                    limits.function_blocks as u64,
                )?;
                continue;
            }
            Operator::End | Operator::Delegate { .. } => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Operator::TableSet { .. } => "table.set",
            Operator::TableGrow { .. } => "table.grow",
            Operator::TableFill { .. } => "table.fill",
            Operator::TableCopy { .. } => "table.copy",
            Operator::TableInit { .. } => "table.init",
            Operator::ElemDrop { .. } => "elem.drop",
            Operator::DataDrop { .. } => "data.drop",
            _ => continue,
        };
        found = found.or(Some(name));
    }
    Ok((found, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_exported_mutable_globals_and_memories_get_exports() {
        let wasm = wat::parse_str(
            r#"(module
                 (global $hidden (mut i32) (i32.const 7))
                 (global $const i32 (i32.const 1))
                 (global $other (mut i64) (i64.const 2))
                 (memory 1)
                 (func (export "f") (result i32) global.get $hidden))"#,
        )
        .unwrap();
        let (rewritten, layout) = rewrite(&wasm).unwrap();
        assert_eq!(layout.mutable_globals, vec![0, 2]);
        assert_eq!(layout.memories, 1);
        assert_eq!(layout.exports, vec!["f".to_owned()]);
        let names: Vec<String> = Parser::new(0)
            .parse_all(&rewritten)
            .filter_map(|p| match p.unwrap() {
                Payload::ExportSection(r) => {
                    Some(r.into_iter().map(|e| e.unwrap().name.to_owned()).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(names, ["f", "__wasmgym_memory_0", "__wasmgym_global_0", "__wasmgym_global_2"]);
        wasmparser::Validator::new().validate_all(&rewritten).unwrap();
    }

    #[test]
    fn a_module_without_exports_gets_an_export_section_in_order() {
        let wasm =
            wat::parse_str("(module (global (mut i32) (i32.const 0)) (memory 1) (data (i32.const 0) \"x\"))").unwrap();
        let (rewritten, layout) = rewrite(&wasm).unwrap();
        assert_eq!(layout.mutable_globals, vec![0]);
        wasmparser::Validator::new().validate_all(&rewritten).unwrap();
    }

    #[test]
    fn table_mutation_and_imported_memory_are_refused() {
        let grow = wat::parse_str(
            "(module (memory 1) (table 1 funcref) (func (drop (table.grow 0 (ref.null func) (i32.const 1)))))",
        )
        .unwrap();
        assert!(matches!(rewrite(&grow), Err(Error::Unsupported { message }) if message.contains("table.grow")));
        let imported = wat::parse_str(r#"(module (import "env" "mem" (memory 1)))"#).unwrap();
        assert!(matches!(rewrite(&imported), Err(Error::UnknownImport { .. })));
        assert!(matches!(rewrite(b"garbage!"), Err(Error::InvalidModule { .. })));
    }

    #[test]
    fn programs_may_mutate_tables_and_the_layout_says_so() {
        let grow = wat::parse_str(
            "(module (memory 1) (table 1 funcref) (func (drop (table.grow 0 (ref.null func) (i32.const 1)))))",
        )
        .unwrap();
        let (_, layout) = rewrite_with(&grow, &Options { allow_table_mutation: true, ..Options::default() }).unwrap();
        assert_eq!(layout.unsnapshotted.as_deref(), Some("table.grow"));
        let (_, plain) = rewrite_with(
            &wat::parse_str("(module (memory 1))").unwrap(),
            &Options { allow_table_mutation: true, ..Options::default() },
        )
        .unwrap();
        assert_eq!(plain.unsnapshotted, None);
    }
}
