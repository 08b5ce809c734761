//! A hostile guest. Each command tries one way out of the ringfence sandbox and reports, on
//! stdout, what happened: `ALLOWED ...` when the attempt worked, `DENIED ...` when it did not.
//! The security tests run it under `ringfence` and read the captured stdout from the job record.
//!
//! Commands: `read PATH`, `write PATH`, `list PATH`, `env`, `stdin`, `symlink TARGET [NAME]`,
//! `time`, `spin`, `alloc`, `recurse`, `stdout BYTES`, `stderr BYTES`, `export-bytes BYTES`,
//! `export-files COUNT`, `unlink-write BYTES`, `pwrite-far OFFSET`, `set-size BYTES`,
//! `deep-dirs DEPTH`, `long-names COUNT`, `hardlink FROM TO` (then writes through `TO`),
//! `rename FROM TO`,
//! `raw CALL HEX ARGS...` (one guarded WASI call with arguments of the caller's choosing, for the
//! fuzzer), `sleep`, `export NAME TEXT [NAME TEXT]...`, which writes files of
//! its choosing under `/export/` — a hand-written manifest that lies about a table, say — and
//! `leak`, which tries every side door to the researcher at once.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let number = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    match arg(1).as_str() {
        "read" => report("read", std::fs::read(arg(2)).map(|b| format!("{} bytes", b.len()))),
        "write" => report("write", std::fs::write(arg(2), b"escaped").map(|()| "wrote".into())),
        "list" => report("list", list(&arg(2))),
        "env" => {
            let vars: Vec<String> = std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
            println!("env {} [{}]", vars.len(), vars.join(","));
        }
        "stdin" => {
            let mut input = Vec::new();
            let read = std::io::Read::read_to_end(&mut std::io::stdin(), &mut input);
            println!("stdin {} bytes ({})", input.len(), if read.is_ok() { "ok" } else { "error" });
        }
        "symlink" => {
            let name = if arg(3).is_empty() { "link".to_string() } else { arg(3) };
            report("symlink", symlink_then_read(&arg(2), &name));
        }
        "time" => time(),
        "spin" => spin(),
        "alloc" => alloc(),
        "recurse" => println!("depth {}", recurse(0)),
        "stdout" => flood(number(2)),
        "stderr" => {
            let line = [b'e'; 1024];
            let mut err = std::io::stderr().lock();
            for _ in 0..number(2).div_ceil(1024) {
                let _ = err.write_all(&line);
            }
        }
        "export-bytes" => report("export-bytes", export_bytes(number(2))),
        "export-files" => report("export-files", export_files(number(2))),
        "unlink-write" => report("unlink-write", unlink_write(number(2))),
        "pwrite-far" => report("pwrite-far", pwrite_far(number(2))),
        "set-size" => report("set-size", set_size(number(2))),
        "deep-dirs" => report("deep-dirs", deep_dirs(number(2))),
        "hardlink" => report("hardlink", hardlink(&arg(2), &arg(3))),
        "rename" => report("rename", std::fs::rename(arg(2), arg(3)).map(|()| "renamed".into())),
        "raw" => raw::call(&args[2..]),
        "long-names" => report("long-names", long_names(number(2))),
        "export" => report("export", export(&args[2..])),
        "leak" => leak(),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            println!("ALLOWED sleep");
        }
        other => println!("unknown command {other:?}"),
    }
}

fn report(what: &str, result: std::io::Result<String>) {
    match result {
        Ok(detail) => println!("ALLOWED {what}: {detail}"),
        Err(err) => println!("DENIED {what}: {err}"),
    }
}

fn list(path: &str) -> std::io::Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names.join(","))
}

/// Creates `/export/<name>` pointing at `target` with the raw WASI call (std's wrapper is
/// unstable), then reads through it: the link itself, or, when `target` is a directory path
/// ending in `/`, the file `passwd` below it.
#[cfg(target_os = "wasi")]
fn symlink_then_read(target: &str, name: &str) -> std::io::Result<String> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn path_symlink(old: *const u8, old_len: usize, fd: i32, new: *const u8, new_len: usize) -> u16;
    }
    /// The second preopen, after the one dataset the tests grant: `/export`.
    const EXPORT_FD: i32 = 4;
    // SAFETY: both pointers and lengths describe live, initialised byte slices.
    let errno = unsafe { path_symlink(target.as_ptr(), target.len(), EXPORT_FD, name.as_ptr(), name.len()) };
    if errno != 0 {
        return Err(std::io::Error::other(format!("path_symlink failed with errno {errno}")));
    }
    let through = if target.ends_with('/') { format!("/export/{name}passwd") } else { format!("/export/{name}") };
    std::fs::read(&through).map(|b| format!("{} bytes through the link", b.len()))
}

#[cfg(not(target_os = "wasi"))]
fn symlink_then_read(_target: &str, _name: &str) -> std::io::Result<String> {
    Err(std::io::Error::other("symlink attempts only make sense inside the sandbox"))
}

fn time() {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let start = std::time::Instant::now();
    let mut x = 0u64;
    for i in 0..5_000_000u64 {
        x = std::hint::black_box(x.wrapping_add(i));
    }
    println!("wall_subsec_nanos {} elapsed_nanos {} ({x})", wall.subsec_nanos(), start.elapsed().as_nanos());
}

fn spin() {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn alloc() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![1u8; 16 << 20]);
        println!("allocated {} MiB", blocks.len() * 16);
    }
}

fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 16]);
    if pad[0] == u64::MAX { depth } else { recurse(depth + 1) + pad[15] - pad[14] }
}

fn flood(bytes: u64) {
    let line = [b'x'; 1023];
    let mut out = std::io::stdout().lock();
    let mut written = 0;
    while written < bytes {
        let _ = out.write_all(&line);
        let _ = out.write_all(b"\n");
        written += 1024;
    }
    let _ = out.flush();
    drop(out);
    eprintln!("flooded {written} bytes");
}

fn export_bytes(bytes: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::create("/export/big.bin")?;
    let chunk = vec![7u8; 64 << 10];
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    Ok(format!("{written} bytes"))
}

fn export(pairs: &[String]) -> std::io::Result<String> {
    for pair in pairs.chunks(2) {
        std::fs::write(format!("/export/{}", pair[0]), pair.get(1).map_or("", String::as_str))?;
    }
    Ok(format!("{} files", pairs.len().div_ceil(2)))
}

/// Tries to hand the researcher a number taken from the data (the size in bytes of the granted
/// projection, as `SECRET<n>`) without a checker: names an export after it, puts it in the
/// manifest's description, variable and cell label, writes an export and stdout of exactly that
/// many bytes, wraps it in a terminal escape sequence in another file's name, and exits with a
/// code made from it. Checkers may see all of it; the researcher none of it.
fn leak() {
    let secret = std::fs::metadata("/data/persons/data.arrow").map_or(0, |m| m.len());
    let marker = format!("SECRET{secret}");
    let name = format!("leak-{marker}.csv");
    let _ = std::fs::write(format!("/export/{name}"), vec![b'x'; secret as usize]);
    let manifest = format!(
        r#"{{"version": 1, "outputs": [{{"file": "{name}", "kind": "frequency", "description": "{marker}",
            "variables": ["{marker}"], "cells": [{{"key": ["{marker}"], "count": 1}}]}}]}}"#
    );
    let _ = std::fs::write("/export/manifest.json", manifest);
    let _ = std::fs::write(format!("/export/\u{1b}]0;{marker}\u{7}.txt"), marker.as_bytes());
    let _ = std::io::stdout().write_all(&vec![b'.'; secret as usize]);
    std::process::exit(i32::try_from(secret % 100).unwrap_or(0) + 2);
}

/// Creates `/export/ghost`, unlinks it while it is open, and keeps writing to it: bytes the
/// directory no longer shows.
fn unlink_write(bytes: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::create("/export/ghost")?;
    std::fs::remove_file("/export/ghost")?;
    let chunk = vec![7u8; 64 << 10];
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    Ok(format!("{written} bytes into an unlinked file"))
}

/// Writes one byte at `offset` of a new file with the raw `fd_pwrite` call: a sparse file
/// whose length is far more than what was written.
#[cfg(target_os = "wasi")]
fn pwrite_far(offset: u64) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn fd_pwrite(fd: i32, iovs: *const [usize; 2], iovs_len: usize, offset: u64, nwritten: *mut usize) -> u16;
    }
    let file = std::fs::File::create("/export/sparse.bin")?;
    let byte = [1u8];
    let iov = [byte.as_ptr() as usize, 1];
    let mut written = 0usize;
    // SAFETY: the iovec points at a live one-byte buffer; `written` is a live usize.
    let errno = unsafe { fd_pwrite(file.as_raw_fd(), &iov, 1, offset, &mut written) };
    if errno != 0 {
        return Err(std::io::Error::other(format!("fd_pwrite failed with errno {errno}")));
    }
    Ok(format!("{written} byte at offset {offset}"))
}

#[cfg(not(target_os = "wasi"))]
fn pwrite_far(_offset: u64) -> std::io::Result<String> {
    Err(std::io::Error::other("raw WASI calls only make sense inside the sandbox"))
}

/// Grows a new file to `bytes` without writing them (`fd_filestat_set_size`).
fn set_size(bytes: u64) -> std::io::Result<String> {
    std::fs::File::create("/export/grown.bin")?.set_len(bytes)?;
    Ok(format!("{bytes} bytes long"))
}

/// Makes `to` a hard link of `from`, then appends to it through the link: a way to write a
/// file the guest may only read, if the host let it link one.
fn hardlink(from: &str, to: &str) -> std::io::Result<String> {
    std::fs::hard_link(from, to)?;
    let mut file = std::fs::OpenOptions::new().append(true).open(to)?;
    file.write_all(b"tampered")?;
    Ok(format!("linked {from} as {to} and wrote through it"))
}

/// Nests `depth` directories under `/export/`.
fn deep_dirs(depth: u64) -> std::io::Result<String> {
    let mut path = String::from("/export");
    for _ in 0..depth {
        path.push_str("/d");
        std::fs::create_dir(&path)?;
    }
    Ok(format!("{depth} levels"))
}

/// Creates `count` empty files with 255-byte names: bytes held in names alone.
fn long_names(count: u64) -> std::io::Result<String> {
    for i in 0..count {
        std::fs::write(format!("/export/{i:0>255}"), b"")?;
    }
    Ok(format!("{count} names"))
}

fn export_files(count: u64) -> std::io::Result<String> {
    for i in 0..count {
        std::fs::write(format!("/export/file-{i}.txt"), b"x")?;
    }
    Ok(format!("{count} files"))
}

/// Raw WASI calls with guest-chosen arguments, for fuzzing the host's guarded calls.
mod raw {
    /// `raw CALL HEX ARG...`: copies the bytes `HEX` into a scratch buffer, then calls WASI
    /// function `CALL` with the numeric `ARG`s. An argument below the buffer's length is taken as
    /// an offset into it (so pointers can point at the bytes given); any other is passed as is.
    /// Prints the errno.
    pub fn call(args: &[String]) {
        let name = args.first().map_or("", String::as_str);
        let mut scratch: Vec<u8> = args.get(1).map_or_else(Vec::new, |hex| decode(hex));
        scratch.resize(scratch.len().max(4096), 0);
        let base = scratch.as_mut_ptr() as i64;
        let len = scratch.len() as i64;
        let values: Vec<i64> = args
            .iter()
            .skip(2)
            .map(|a| a.parse::<i64>().unwrap_or(0))
            .map(|v| if (0..len).contains(&v) { base + v } else { v })
            .collect();
        let arg = |i: usize| values.get(i).copied().unwrap_or(0);
        println!("raw {name}: errno {}", invoke(name, &arg));
    }

    fn decode(hex: &str) -> Vec<u8> {
        hex.as_bytes()
            .chunks(2)
            .filter_map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
            .collect()
    }

    #[cfg(target_os = "wasi")]
    fn invoke(name: &str, arg: &dyn Fn(usize) -> i64) -> i32 {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        unsafe extern "C" {
            fn fd_write(fd: i32, iovs: i32, n: i32, out: i32) -> i32;
            fn fd_pwrite(fd: i32, iovs: i32, n: i32, offset: i64, out: i32) -> i32;
            fn fd_filestat_set_size(fd: i32, size: i64) -> i32;
            fn fd_close(fd: i32) -> i32;
            fn fd_renumber(fd: i32, to: i32) -> i32;
            fn poll_oneoff(input: i32, output: i32, n: i32, events: i32) -> i32;
            fn path_open(
                fd: i32,
                dirflags: i32,
                path: i32,
                len: i32,
                oflags: i32,
                base: i64,
                inheriting: i64,
                fdflags: i32,
                out: i32,
            ) -> i32;
            fn path_create_directory(fd: i32, path: i32, len: i32) -> i32;
            fn path_remove_directory(fd: i32, path: i32, len: i32) -> i32;
            fn path_unlink_file(fd: i32, path: i32, len: i32) -> i32;
            fn path_symlink(old: i32, old_len: i32, fd: i32, new: i32, new_len: i32) -> i32;
            fn path_link(old_fd: i32, flags: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32) -> i32;
            fn path_rename(fd: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32) -> i32;
        }
        let a = |i: usize| arg(i) as i32;
        // SAFETY: the host checks every pointer and length against the guest's memory; whatever
        // they are, the worst a bad one does is an errno or a trap of this guest.
        unsafe {
            match name {
                "fd_write" => fd_write(a(0), a(1), a(2), a(3)),
                "fd_pwrite" => fd_pwrite(a(0), a(1), a(2), arg(3), a(4)),
                "fd_filestat_set_size" => fd_filestat_set_size(a(0), arg(1)),
                "fd_close" => fd_close(a(0)),
                "fd_renumber" => fd_renumber(a(0), a(1)),
                "poll_oneoff" => poll_oneoff(a(0), a(1), a(2), a(3)),
                "path_open" => path_open(a(0), a(1), a(2), a(3), a(4), arg(5), arg(6), a(7), a(8)),
                "path_create_directory" => path_create_directory(a(0), a(1), a(2)),
                "path_remove_directory" => path_remove_directory(a(0), a(1), a(2)),
                "path_unlink_file" => path_unlink_file(a(0), a(1), a(2)),
                "path_symlink" => path_symlink(a(0), a(1), a(2), a(3), a(4)),
                "path_link" => path_link(a(0), a(1), a(2), a(3), a(4), a(5), a(6)),
                "path_rename" => path_rename(a(0), a(1), a(2), a(3), a(4), a(5)),
                _ => -1,
            }
        }
    }

    #[cfg(not(target_os = "wasi"))]
    fn invoke(_name: &str, _arg: &dyn Fn(usize) -> i64) -> i32 {
        -1
    }
}
