//! `release_free_memory` gives freed heap pages back to the kernel: a test
//! binary of its own, so that no other test allocates while the resident set
//! is read.

/// This process's resident set in bytes (`/proc/self/statm`, in pages).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_heap_pages_go_back_to_the_kernel() {
    const MIB: usize = 1 << 20;
    // 256 MiB in blocks below glibc's mmap threshold, so they come from the
    // heap, written so that they are resident; a block allocated after them
    // keeps the heap's top in use, so freeing them leaves free pages in the
    // middle of the heap, which glibc's automatic trimming (of the top only)
    // never returns.
    let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8 | 1; 64 * 1024]).collect();
    let pin = std::hint::black_box(vec![7u8; 4096]);
    let full = resident_bytes();
    drop(std::hint::black_box(blocks));
    let freed = resident_bytes();
    tessera_solver::release_free_memory();
    let released = resident_bytes();
    println!(
        "resident: {} MiB with the blocks, {} MiB freed, {} MiB released",
        full / MIB,
        freed / MIB,
        released / MIB
    );
    assert!(freed + 128 * MIB > full, "freeing alone kept the pages");
    assert!(released + 192 * MIB < freed, "the free pages went back");
    assert_eq!(pin[4095], 7);
}
