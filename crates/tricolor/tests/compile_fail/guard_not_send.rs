// INV-GUARD: a `Guard` pins the thread that created it; it is `!Send`.
fn main() {
    let g = tricolor::pin();
    std::thread::spawn(move || drop(g)).join().unwrap();
}
