// A SONAME of its own, which a test can rename in a copy (`libnvrtc.so.12`) to stand for an NVRTC
// that the loader hands out under that name once it is loaded by its full path.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgpu-test-fake-cuda.so.0");
}
