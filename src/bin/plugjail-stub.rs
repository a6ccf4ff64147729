//! The program that runs inside the jail and hosts the plugin. For now it only reports
//! its version; the plugin protocol comes with plugin mode.

fn main() {
    println!("plugjail-stub {}", env!("CARGO_PKG_VERSION"));
}
