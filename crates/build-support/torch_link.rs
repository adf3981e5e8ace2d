// Shared build script of the crates that link libtorch (included by each crate's build.rs).
//
// * Adds an rpath to libtorch's lib directory so binaries, tests and benches run without
//   LD_LIBRARY_PATH (torch-sys only tells the linker where the libraries are).
// * Keeps libtorch_cuda.so as a needed library: Rust links with --as-needed, which would drop
//   it because no symbol of it is referenced, and then CUDA is invisible even on a GPU machine.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=../build-support/torch_link.rs");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; binaries will need LD_LIBRARY_PATH to find libtorch");
        return;
    };
    let lib = std::path::Path::new(&libtorch).join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!(
            "cargo:rustc-link-arg=-Wl,--no-as-needed,-L{},-ltorch_cuda,--as-needed",
            lib.display()
        );
    }
}
