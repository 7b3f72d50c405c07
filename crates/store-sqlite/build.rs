// `sqlx::migrate!` embeds the migrations when the crate compiles; without this a migration added
// later is not seen by an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
