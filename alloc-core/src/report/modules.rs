//! The loaded object files and their load addresses, read with `dl_iterate_phdr`, for
//! the `modules` field of reports and profiles: with them a report written without
//! symbols (`symbolize=0`, a stripped binary) can be symbolized later from the binaries.
//!
//! # Who calls it
//! Report and profile building, after the world resumed, with the reentrancy guard set
//! (the `Vec` and `String`s here go to the internal heap). Never on the allocation path.

use super::model::Module;
use crate::platform::{self, LoadedObject, PT_LOAD, PT_NOTE};

/// The executable and shared objects mapped now, in the loader's order (executable
/// first). Objects without loadable segments (the vDSO has one, so it is listed) or
/// without a name other than the executable's are left out.
pub(crate) fn loaded_modules() -> Vec<Module> {
    let mut out: Vec<Module> = Vec::new();
    platform::for_each_loaded_object(|object| collect(object, &mut out));
    out
}

/// Appends `object` to `out` as a module (the first one listed is the executable).
fn collect(object: &LoadedObject<'_>, out: &mut Vec<Module>) {
    let first = out.is_empty();
    let name = object.name.to_string_lossy().into_owned();
    let path = if name.is_empty() && first {
        match std::fs::read_link("/proc/self/exe") {
            Ok(p) => p.display().to_string(),
            Err(_) => return,
        }
    } else if name.is_empty() {
        return;
    } else {
        name
    };
    let base = object.load_bias as u64;
    let (mut start, mut end) = (u64::MAX, 0u64);
    let mut build_id = None;
    for ph in object.program_headers {
        match ph.p_type {
            PT_LOAD => {
                start = start.min(base.wrapping_add(ph.p_vaddr));
                end = end.max(base.wrapping_add(ph.p_vaddr).wrapping_add(ph.p_memsz));
            }
            PT_NOTE if build_id.is_none() => {
                // SAFETY: a PT_NOTE segment of a loaded object is mapped readable at
                // `base + p_vaddr` for `p_memsz` bytes (notes sit in a PT_LOAD segment).
                let notes = unsafe {
                    core::slice::from_raw_parts(base.wrapping_add(ph.p_vaddr) as *const u8, ph.p_memsz as usize)
                };
                build_id = gnu_build_id(notes);
            }
            _ => {}
        }
    }
    if start < end {
        out.push(Module {
            path,
            base: format!("{base:#x}"),
            start: format!("{start:#x}"),
            end: format!("{end:#x}"),
            build_id,
        });
    }
}

/// The `NT_GNU_BUILD_ID` note among `notes` (ELF note records, 4-byte aligned), as hex.
fn gnu_build_id(notes: &[u8]) -> Option<String> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |at: usize| -> Option<u32> { Some(u32::from_ne_bytes(notes.get(at..at + 4)?.try_into().ok()?)) };
    let align4 = |n: usize| (n + 3) & !3;
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (namesz, descsz, kind) = (word(at)? as usize, word(at + 4)? as usize, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at + align4(namesz);
        let next = desc_at + align4(descsz);
        if next > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes.get(name_at..name_at + namesz) == Some(b"GNU\0") {
            return Some(notes[desc_at..desc_at + descsz].iter().map(|b| format!("{b:02x}")).collect());
        }
        at = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_comes_first_and_holds_this_function() {
        let mods = loaded_modules();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(mods[0].path, exe.display().to_string());
        let here = the_executable_comes_first_and_holds_this_function as *const () as u64;
        assert!(mods[0].contains(here), "{:?} does not hold {here:#x}", mods[0]);
        assert!(mods.iter().any(|m| m.path.contains("libc.so")), "{mods:?}");
        for m in &mods {
            let (s, e, b) =
                (Module::parse_address(&m.start), Module::parse_address(&m.end), Module::parse_address(&m.base));
            assert!(s.is_some() && e.is_some() && b.is_some() && s < e, "{m:?}");
        }
    }

    #[test]
    fn build_ids_are_read_from_notes() {
        // Rust binaries on Linux are linked with a build id by default (--build-id).
        let mods = loaded_modules();
        let libc = mods.iter().find(|m| m.path.contains("libc.so")).expect("libc is loaded");
        let id = libc.build_id.as_deref().expect("Debian's libc has a build id");
        assert!(id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let mut note = Vec::new();
        for w in [4u32, 3, 3] {
            note.extend_from_slice(&w.to_ne_bytes());
        }
        note.extend_from_slice(b"GNU\0\xab\xcd\xef\0");
        assert_eq!(gnu_build_id(&note).as_deref(), Some("abcdef"));
        assert_eq!(gnu_build_id(&note[..18]), None, "a note cut short is no note");
    }
}
