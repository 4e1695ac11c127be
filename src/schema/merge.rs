//! Turning the descriptors of several binaries into one loadable set.
//!
//! Binaries carry duplicates, and not always identical ones: Debian's
//! containerd has two different files named `api.proto` (packages
//! `runtime.v1` and `runtime.v1alpha2`), several variants of the well-known
//! types, gogo's `descriptor.proto` beside `google/protobuf/descriptor.proto`,
//! and imports under names no file was registered with
//! (`gogoproto/gogo.proto` for `gogo.proto`). [`build_set`] settles all of it:
//!
//! 1. identical copies are dropped;
//! 2. files of one package that share a name or a top-level type are
//!    variants of one file and are merged (the union of their types,
//!    fields and values; the first variant wins a conflict);
//! 3. files of different packages that still share a name are renamed after
//!    their package (`runtime/v1/api.proto`);
//! 4. imports are recomputed: an import naming exactly one file stays,
//!    and every file defining a type the importer uses is imported, so
//!    renamed and misnamed imports point at the right file and option-only
//!    imports nobody registered disappear;
//! 5. files whose types cannot all be resolved are dropped, with the files
//!    that need them, and the rest is checked by loading it with
//!    prost-reflect, deps first.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};

use super::SchemaError;

/// One thing [`build_set`] changed on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeNote {
    /// Several variants of one file (same package) became one.
    Merged { name: String, package: String, variants: usize, names: Vec<String> },
    /// A file was renamed because another package has a file of the same name.
    Renamed { from: String, to: String, package: String },
    /// An import that names no file (or only option definitions) was removed.
    ImportDropped { file: String, import: String },
    /// A file could not be kept.
    FileDropped { file: String, reason: String },
    /// Two variants disagree; the first was kept.
    Conflict { file: String, detail: String },
}

impl fmt::Display for MergeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeNote::Merged { name, package, variants, names } => {
                write!(f, "merged {variants} variants of {name} (package {package})")?;
                let others: Vec<&str> =
                    names.iter().map(String::as_str).filter(|n| n != name).collect();
                if !others.is_empty() {
                    write!(f, ", including {}", others.join(", "))?;
                }
                Ok(())
            }
            MergeNote::Renamed { from, to, package } => {
                write!(f, "renamed {from} (package {package}) to {to}")
            }
            MergeNote::ImportDropped { file, import } => {
                write!(f, "{file}: dropped import {import}: no file has that name")
            }
            MergeNote::FileDropped { file, reason } => write!(f, "{file}: dropped: {reason}"),
            MergeNote::Conflict { file, detail } => {
                write!(f, "{file}: variants differ, kept the first: {detail}")
            }
        }
    }
}

/// What [`build_set`] did, for the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Identical copies dropped.
    pub duplicates: usize,
    pub notes: Vec<MergeNote>,
}

impl MergeReport {
    pub fn renamed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.notes.iter().filter_map(|n| match n {
            MergeNote::Renamed { from, to, .. } => Some((from.as_str(), to.as_str())),
            _ => None,
        })
    }
}

/// Dedups, merges and renames `files`, resolves their imports and returns a
/// set that includes them, deps first, as `protoc --include_imports` does.
pub fn build_set(
    files: Vec<FileDescriptorProto>,
) -> Result<(FileDescriptorSet, MergeReport), SchemaError> {
    let mut report = MergeReport::default();

    // 1. Identical copies.
    let mut seen = HashSet::new();
    let total = files.len();
    let mut files: Vec<(Vec<u8>, FileDescriptorProto)> = files
        .into_iter()
        .map(|f| (f.encode_to_vec(), f))
        .filter(|(bytes, _)| seen.insert(bytes.clone()))
        .collect();
    report.duplicates = total - files.len();
    // The result must not depend on the order binaries were given in.
    files.sort_by(|(ab, a), (bb, b)| {
        (a.package(), a.name(), std::cmp::Reverse(ab.len()), ab).cmp(&(
            b.package(),
            b.name(),
            std::cmp::Reverse(bb.len()),
            bb,
        ))
    });
    let files: Vec<FileDescriptorProto> = files.into_iter().map(|(_, f)| f).collect();

    // 2. Variants of one file.
    let mut merged = Vec::new();
    let mut old_names: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for group in variant_groups(&files) {
        let members: Vec<&FileDescriptorProto> = group.iter().map(|&i| &files[i]).collect();
        let file = merge_variants(&members, &mut report);
        for m in &members {
            old_names.entry(m.name().to_owned()).or_default().insert(merged.len());
        }
        merged.push(file);
    }

    // 3. Same name, different packages.
    rename_clashes(&mut merged, &mut report);

    // 4. Imports.
    let symbols = symbol_table(&merged);
    let mut deps: Vec<Option<Vec<usize>>> = Vec::with_capacity(merged.len());
    for (i, file) in merged.iter().enumerate() {
        deps.push(resolve_imports(i, file, &old_names, &symbols, &mut report));
    }

    // 5. Drop what cannot load, then check the rest with prost-reflect.
    drop_unresolved(&merged, &mut deps, &mut report);
    let order = topological(&merged, &deps);
    let mut pool = DescriptorPool::new();
    let mut out = Vec::new();
    for i in order {
        let Some(dep_list) = &deps[i] else { continue };
        let mut file = merged[i].clone();
        set_dependencies(&mut file, dep_list.iter().map(|&d| merged[d].name().to_owned()));
        match pool.add_file_descriptor_proto(file.clone()) {
            Ok(()) => out.push(file),
            Err(e) => report.notes.push(MergeNote::FileDropped {
                file: file.name().to_owned(),
                reason: format!("prost-reflect rejects it: {e}"),
            }),
        }
    }
    if out.is_empty() {
        return Err(SchemaError::NothingLoadable);
    }
    Ok((FileDescriptorSet { file: out }, report))
}

/// Keeps the files of `set` whose package is one of `packages` (or below one:
/// `containerd.services` keeps `containerd.services.tasks.v1`) and every file
/// they import, in the set's order.
pub fn filter_packages(set: &FileDescriptorSet, packages: &[String]) -> FileDescriptorSet {
    let by_name: HashMap<&str, &FileDescriptorProto> =
        set.file.iter().map(|f| (f.name(), f)).collect();
    let mut keep: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = set
        .file
        .iter()
        .filter(|f| packages.iter().any(|p| in_package(f.package(), p)))
        .map(|f| f.name())
        .collect();
    while let Some(name) = todo.pop() {
        if keep.insert(name) {
            if let Some(f) = by_name.get(name) {
                todo.extend(f.dependency.iter().map(String::as_str));
            }
        }
    }
    FileDescriptorSet {
        file: set.file.iter().filter(|f| keep.contains(f.name())).cloned().collect(),
    }
}

/// Whether `package` is `prefix` or nested below it.
fn in_package(package: &str, prefix: &str) -> bool {
    package.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Full names (without the leading dot) of the top-level definitions of a file.
fn top_level_names(file: &FileDescriptorProto) -> Vec<String> {
    let names = file
        .message_type
        .iter()
        .map(|m| m.name())
        .chain(file.enum_type.iter().map(|e| e.name()))
        .chain(file.service.iter().map(|s| s.name()))
        .chain(file.extension.iter().map(|e| e.name()));
    names.map(|n| qualify(file.package(), n)).collect()
}

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

/// Groups of indexes into `files` that are variants of one file: same
/// package, and the same name or a top-level definition in common.
fn variant_groups(files: &[FileDescriptorProto]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..files.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_by_key: HashMap<(String, String), usize> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        let keys = std::iter::once(format!("file:{}", f.name()))
            .chain(top_level_names(f).into_iter().map(|n| format!("def:{n}")));
        for key in keys {
            let key = (f.package().to_owned(), key);
            match first_by_key.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    first_by_key.insert(key, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..files.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}

/// The name a merged file keeps: the one laid out like its package
/// (`google/protobuf/descriptor.proto` over gogo's `descriptor.proto`),
/// else the longest, else the first in order.
fn canonical_name(members: &[&FileDescriptorProto]) -> String {
    let package_dir = members[0].package().replace('.', "/");
    let mut names: Vec<&str> = members.iter().map(|m| m.name()).collect();
    names.sort();
    names.dedup();
    let laid_out = |n: &str| n.rsplit_once('/').is_some_and(|(dir, _)| dir.ends_with(&package_dir));
    names
        .iter()
        .copied()
        .max_by(|a, b| {
            (laid_out(a), a.len(), std::cmp::Reverse(*a)).cmp(&(
                laid_out(b),
                b.len(),
                std::cmp::Reverse(*b),
            ))
        })
        .unwrap_or_default()
        .to_owned()
}

/// One file from its variants: the first, completed by the others.
fn merge_variants(
    members: &[&FileDescriptorProto],
    report: &mut MergeReport,
) -> FileDescriptorProto {
    let name = canonical_name(members);
    // The variant carrying the canonical name leads.
    let mut ordered: Vec<&FileDescriptorProto> = members.to_vec();
    ordered.sort_by_key(|m| m.name() != name);
    let mut base = ordered[0].clone();
    let mut public: BTreeSet<String> = public_imports(&base);
    for other in &ordered[1..] {
        public.extend(public_imports(other));
        for dep in &other.dependency {
            if !base.dependency.contains(dep) {
                base.dependency.push(dep.clone());
            }
        }
        let file = name.as_str();
        merge_by_name(&mut base.message_type, &other.message_type, |a, b| {
            merge_message(file, a, b, report)
        });
        merge_by_name(&mut base.enum_type, &other.enum_type, |a, b| merge_enum(file, a, b, report));
        merge_by_name(&mut base.service, &other.service, merge_service);
        for ext in &other.extension {
            if !base.extension.iter().any(|e| e.name() == ext.name()) {
                base.extension.push(ext.clone());
            }
        }
    }
    base.name = Some(name.clone());
    mark_public(&mut base, &public);
    if members.len() > 1 {
        let mut names: Vec<String> = members.iter().map(|m| m.name().to_owned()).collect();
        names.sort();
        names.dedup();
        report.notes.push(MergeNote::Merged {
            name,
            package: base.package().to_owned(),
            variants: members.len(),
            names,
        });
    }
    base
}

fn public_imports(file: &FileDescriptorProto) -> BTreeSet<String> {
    file.public_dependency
        .iter()
        .filter_map(|&i| file.dependency.get(usize::try_from(i).ok()?).cloned())
        .collect()
}

/// Something with a name in a descriptor.
trait Named {
    fn key(&self) -> &str;
}
impl Named for DescriptorProto {
    fn key(&self) -> &str {
        self.name()
    }
}
impl Named for EnumDescriptorProto {
    fn key(&self) -> &str {
        self.name()
    }
}
impl Named for ServiceDescriptorProto {
    fn key(&self) -> &str {
        self.name()
    }
}

/// Appends the items of `other` missing from `base`, and merges those both have.
fn merge_by_name<T: Named + Clone>(
    base: &mut Vec<T>,
    other: &[T],
    mut merge: impl FnMut(&mut T, &T),
) {
    for item in other {
        match base.iter_mut().find(|b| b.key() == item.key()) {
            Some(b) => merge(b, item),
            None => base.push(item.clone()),
        }
    }
}

fn merge_message(
    file: &str,
    a: &mut DescriptorProto,
    b: &DescriptorProto,
    report: &mut MergeReport,
) {
    for field in &b.field {
        let same_number = a.field.iter().find(|f| f.number == field.number);
        let same_name = a.field.iter().find(|f| f.name == field.name);
        match (same_number, same_name) {
            (Some(x), _) => {
                let differs = x.name != field.name
                    || x.r#type != field.r#type
                    || x.type_name != field.type_name
                    || x.label != field.label;
                if differs {
                    report.notes.push(MergeNote::Conflict {
                        file: file.to_owned(),
                        detail: format!("field {} of message {}", field.number(), a.name()),
                    });
                }
            }
            (None, Some(_)) => report.notes.push(MergeNote::Conflict {
                file: file.to_owned(),
                detail: format!("field {} of message {} has two numbers", field.name(), a.name()),
            }),
            (None, None) => {
                let mut field = field.clone();
                // The oneof is named in `b`; find (or add) the same one in `a`.
                let decl = field
                    .oneof_index
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| b.oneof_decl.get(i))
                    .cloned();
                field.oneof_index =
                    decl.map(|d| match a.oneof_decl.iter().position(|o| o.name == d.name) {
                        Some(i) => i as i32,
                        None => {
                            a.oneof_decl.push(d);
                            a.oneof_decl.len() as i32 - 1
                        }
                    });
                a.field.push(field);
            }
        }
    }
    merge_by_name(&mut a.nested_type, &b.nested_type, |x, y| merge_message(file, x, y, report));
    merge_by_name(&mut a.enum_type, &b.enum_type, |x, y| merge_enum(file, x, y, report));
}

fn merge_enum(
    file: &str,
    a: &mut EnumDescriptorProto,
    b: &EnumDescriptorProto,
    report: &mut MergeReport,
) {
    for value in &b.value {
        let same_name = a.value.iter().find(|v| v.name == value.name);
        match same_name {
            Some(v) if v.number != value.number => report.notes.push(MergeNote::Conflict {
                file: file.to_owned(),
                detail: format!("value {} of enum {}", value.name(), a.name()),
            }),
            Some(_) => {}
            None => a.value.push(value.clone()),
        }
    }
}

fn merge_service(a: &mut ServiceDescriptorProto, b: &ServiceDescriptorProto) {
    for method in &b.method {
        if !a.method.iter().any(|m| m.name == method.name) {
            a.method.push(method.clone());
        }
    }
}

/// Renames files that share a name with a file of another package to a name
/// made from their package.
fn rename_clashes(files: &mut [FileDescriptorProto], report: &mut MergeReport) {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        by_name.entry(f.name().to_owned()).or_default().push(i);
    }
    let mut taken: HashSet<String> = by_name.keys().cloned().collect();
    for (name, idxs) in by_name {
        if idxs.len() < 2 {
            continue;
        }
        for i in idxs {
            let package = files[i].package().to_owned();
            let base = name.rsplit('/').next().unwrap_or(&name);
            let dir = if package.is_empty() { "_".to_owned() } else { package.replace('.', "/") };
            let stem = base.strip_suffix(".proto").unwrap_or(base);
            let mut to = format!("{dir}/{base}");
            let mut n = 2;
            while taken.contains(&to) {
                to = format!("{dir}/{stem}_{n}.proto");
                n += 1;
            }
            taken.insert(to.clone());
            files[i].name = Some(to.clone());
            report.notes.push(MergeNote::Renamed { from: name.clone(), to, package });
        }
    }
}

/// Where each message and enum (nested ones too) is defined: full name with
/// its leading dot → index of the file.
fn symbol_table(files: &[FileDescriptorProto]) -> HashMap<String, usize> {
    fn add_message(out: &mut HashMap<String, usize>, scope: &str, m: &DescriptorProto, i: usize) {
        let full = qualify(scope, m.name());
        for e in &m.enum_type {
            out.entry(format!(".{}", qualify(&full, e.name()))).or_insert(i);
        }
        for n in &m.nested_type {
            add_message(out, &full, n, i);
        }
        out.entry(format!(".{full}")).or_insert(i);
    }
    let mut out = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        for m in &f.message_type {
            add_message(&mut out, f.package(), m, i);
        }
        for e in &f.enum_type {
            out.entry(format!(".{}", qualify(f.package(), e.name()))).or_insert(i);
        }
    }
    out
}

/// Every type a file refers to, with the scope the reference is made from.
fn type_references(file: &FileDescriptorProto) -> Vec<(String, String)> {
    fn from_message(out: &mut Vec<(String, String)>, scope: &str, m: &DescriptorProto) {
        let full = qualify(scope, m.name());
        for f in m.field.iter().chain(&m.extension) {
            for t in [&f.type_name, &f.extendee].into_iter().flatten() {
                out.push((full.clone(), t.clone()));
            }
        }
        for n in &m.nested_type {
            from_message(out, &full, n);
        }
    }
    let mut out = Vec::new();
    for m in &file.message_type {
        from_message(&mut out, file.package(), m);
    }
    for e in &file.extension {
        for t in [&e.type_name, &e.extendee].into_iter().flatten() {
            out.push((file.package().to_owned(), t.clone()));
        }
    }
    for s in &file.service {
        for m in &s.method {
            for t in [&m.input_type, &m.output_type].into_iter().flatten() {
                out.push((file.package().to_owned(), t.clone()));
            }
        }
    }
    out
}

/// Finds the file defining `name` as seen from `scope` (protobuf's lookup:
/// innermost scope first).
fn lookup(symbols: &HashMap<String, usize>, scope: &str, name: &str) -> Option<usize> {
    if name.starts_with('.') {
        return symbols.get(name).copied();
    }
    let mut scope = scope;
    loop {
        let full = if scope.is_empty() { format!(".{name}") } else { format!(".{scope}.{name}") };
        if let Some(&i) = symbols.get(&full) {
            return Some(i);
        }
        if scope.is_empty() {
            return None;
        }
        scope = scope.rsplit_once('.').map_or("", |(outer, _)| outer);
    }
}

/// The files `file` (index `me`) must import, or `None` if a type it uses is
/// defined nowhere.
fn resolve_imports(
    me: usize,
    file: &FileDescriptorProto,
    old_names: &HashMap<String, BTreeSet<usize>>,
    symbols: &HashMap<String, usize>,
    report: &mut MergeReport,
) -> Option<Vec<usize>> {
    let mut deps: Vec<usize> = Vec::new();
    let mut needed: BTreeSet<usize> = BTreeSet::new();
    for (scope, name) in type_references(file) {
        match lookup(symbols, &scope, &name) {
            Some(i) => {
                needed.insert(i);
            }
            None => {
                report.notes.push(MergeNote::FileDropped {
                    file: file.name().to_owned(),
                    reason: format!("type {name} is defined in none of the files found"),
                });
                return None;
            }
        }
    }
    for import in &file.dependency {
        match old_names.get(import).map(|s| s.iter().copied().collect::<Vec<_>>()) {
            Some(targets) if targets.len() == 1 => deps.push(targets[0]),
            // Ambiguous (renamed) names: the type references pick the file.
            Some(_) => {}
            None => report.notes.push(MergeNote::ImportDropped {
                file: file.name().to_owned(),
                import: import.clone(),
            }),
        }
    }
    for i in needed {
        if !deps.contains(&i) {
            deps.push(i);
        }
    }
    deps.retain(|&d| d != me);
    deps.dedup();
    Some(deps)
}

/// Drops, until nothing changes, every file importing a dropped file.
fn drop_unresolved(
    files: &[FileDescriptorProto],
    deps: &mut [Option<Vec<usize>>],
    report: &mut MergeReport,
) {
    loop {
        let mut changed = false;
        for i in 0..deps.len() {
            let Some(list) = &deps[i] else { continue };
            if let Some(&gone) = list.iter().find(|&&d| deps[d].is_none()) {
                report.notes.push(MergeNote::FileDropped {
                    file: files[i].name().to_owned(),
                    reason: format!("it needs {}, which was dropped", files[gone].name()),
                });
                deps[i] = None;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// Indexes of the kept files, each after the files it imports; ties by name.
fn topological(files: &[FileDescriptorProto], deps: &[Option<Vec<usize>>]) -> Vec<usize> {
    let mut order = Vec::new();
    let mut state = vec![0u8; files.len()]; // 0 new, 1 visiting, 2 done
    let mut idxs: Vec<usize> = (0..files.len()).filter(|&i| deps[i].is_some()).collect();
    idxs.sort_by(|&a, &b| files[a].name().cmp(files[b].name()));
    fn visit(i: usize, deps: &[Option<Vec<usize>>], state: &mut [u8], order: &mut Vec<usize>) {
        if state[i] != 0 {
            return; // done, or an import cycle: prost-reflect will reject it
        }
        state[i] = 1;
        for &d in deps[i].iter().flatten() {
            visit(d, deps, state, order);
        }
        state[i] = 2;
        order.push(i);
    }
    for i in idxs {
        visit(i, deps, &mut state, &mut order);
    }
    order
}

/// Replaces the imports of `file`, keeping public ones public.
pub(crate) fn set_dependencies(file: &mut FileDescriptorProto, deps: impl Iterator<Item = String>) {
    let public = public_imports(file);
    file.dependency = deps.collect();
    mark_public(file, &public);
}

/// Makes the imports of `file` named in `public` its public ones, and none weak.
fn mark_public(file: &mut FileDescriptorProto, public: &BTreeSet<String>) {
    file.public_dependency = file
        .dependency
        .iter()
        .enumerate()
        .filter(|(_, d)| public.contains(*d))
        .map(|(i, _)| i as i32)
        .collect();
    file.weak_dependency.clear();
}

#[cfg(test)]
mod tests {
    use prost_types::FieldDescriptorProto;

    use super::super::extract::tests::sample;
    use super::*;

    fn message_field(name: &str, number: i32, type_name: &str) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(11),
            label: Some(1),
            type_name: Some(type_name.into()),
            ..Default::default()
        }
    }

    fn names(set: &FileDescriptorSet) -> Vec<&str> {
        set.file.iter().map(|f| f.name()).collect()
    }

    #[test]
    fn same_name_other_package_is_renamed() {
        let a = sample("api.proto", "runtime.v1", "Req");
        let b = sample("api.proto", "runtime.v1alpha2", "Req");
        let mut user = sample("user.proto", "user", "U");
        user.dependency = vec!["api.proto".into()];
        user.message_type[0].field.push(message_field("r", 2, ".runtime.v1alpha2.Req"));
        let (set, report) = build_set(vec![user, a, b]).unwrap();
        assert_eq!(
            names(&set),
            ["runtime/v1/api.proto", "runtime/v1alpha2/api.proto", "user.proto"]
        );
        let renamed: Vec<_> = report.renamed().collect();
        assert_eq!(
            renamed,
            [("api.proto", "runtime/v1/api.proto"), ("api.proto", "runtime/v1alpha2/api.proto")]
        );
        // The import now names the file whose type the importer uses.
        assert_eq!(set.file[2].dependency, ["runtime/v1alpha2/api.proto"]);
    }

    #[test]
    fn same_package_variants_are_merged() {
        let mut a = sample("google/protobuf/any.proto", "google.protobuf", "Any");
        let mut b = a.clone();
        a.options =
            Some(prost_types::FileOptions { go_package: Some("a".into()), ..Default::default() });
        b.message_type[0].field.push(FieldDescriptorProto {
            name: Some("value".into()),
            number: Some(2),
            r#type: Some(12),
            label: Some(1),
            ..Default::default()
        });
        // gogo's descriptor.proto beside the real one: shares a type.
        let gogo = sample("descriptor.proto", "google.protobuf", "Any");
        let (set, report) = build_set(vec![a, b, gogo]).unwrap();
        assert_eq!(names(&set), ["google/protobuf/any.proto"]);
        assert_eq!(set.file[0].message_type[0].field.len(), 2);
        let merged_gogo = report.notes.iter().any(|n| {
            matches!(n, MergeNote::Merged { variants: 3, names, .. }
                if names.iter().any(|n| n == "descriptor.proto"))
        });
        assert!(merged_gogo, "{report:?}");
    }

    #[test]
    fn misnamed_and_missing_imports_are_fixed() {
        let gogo = sample("gogo.proto", "gogoproto", "G");
        let mut user = sample("u.proto", "u", "U");
        user.dependency = vec!["gogoproto/gogo.proto".into(), "plugin/fieldpath.proto".into()];
        user.weak_dependency = vec![0, 1];
        user.message_type[0].field.push(message_field("g", 2, ".gogoproto.G"));
        let (set, report) = build_set(vec![user, gogo]).unwrap();
        assert_eq!(names(&set), ["gogo.proto", "u.proto"]);
        assert_eq!(set.file[1].dependency, ["gogo.proto"]);
        assert!(set.file[1].weak_dependency.is_empty());
        let dropped =
            report.notes.iter().filter(|n| matches!(n, MergeNote::ImportDropped { .. })).count();
        assert_eq!(dropped, 2, "{report:?}");
    }

    #[test]
    fn files_with_unknown_types_are_dropped_with_their_users() {
        let mut a = sample("a.proto", "a", "A");
        a.message_type[0].field.push(message_field("x", 2, ".nowhere.X"));
        let mut b = sample("b.proto", "b", "B");
        b.message_type[0].field.push(message_field("a", 2, ".a.A"));
        let c = sample("c.proto", "c", "C");
        let (set, report) = build_set(vec![a, b, c]).unwrap();
        assert_eq!(names(&set), ["c.proto"]);
        let text: Vec<String> = report.notes.iter().map(|n| n.to_string()).collect();
        assert!(text.iter().any(|t| t.contains("a.proto: dropped: type .nowhere.X")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("b.proto: dropped: it needs a.proto")), "{text:?}");
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let a = sample("api.proto", "runtime.v1", "Req");
        let b = sample("api.proto", "runtime.v1alpha2", "Req");
        let c = sample("c.proto", "c", "C");
        let one = build_set(vec![a.clone(), b.clone(), c.clone()]).unwrap();
        let two = build_set(vec![c, b, a]).unwrap();
        assert_eq!(one, two);
    }

    #[test]
    fn relative_type_names_resolve() {
        let a = sample("a.proto", "x.y", "A");
        let mut b = sample("b.proto", "x.z", "B");
        b.message_type[0].field.push(message_field("a", 2, "y.A"));
        let (set, _) = build_set(vec![a, b]).unwrap();
        assert_eq!(set.file[1].dependency, ["a.proto"]);
    }

    #[test]
    fn filter_keeps_packages_and_imports() {
        let a = sample("a.proto", "keep.me", "A");
        let mut b = sample("b.proto", "keep", "B");
        b.message_type[0].field.push(message_field("a", 2, ".dep.D"));
        let d = sample("d.proto", "dep", "D");
        let e = sample("e.proto", "keepnot", "E");
        let (set, _) = build_set(vec![a, b, d, e]).unwrap();
        let kept = filter_packages(&set, &["keep".to_string()]);
        assert_eq!(names(&kept), ["a.proto", "d.proto", "b.proto"]);
    }
}
