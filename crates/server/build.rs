//! Rebuilds the server when the web UI's build output changes, so the embedded UI is the
//! one in `web/dist`.

fn main() {
    let dist = std::path::Path::new("../../web/dist");
    if dist.exists() {
        println!("cargo:rerun-if-changed=../../web/dist");
    } else {
        // Until the UI is built, watch for its output appearing.
        println!("cargo:rerun-if-changed=../../web");
    }
}
