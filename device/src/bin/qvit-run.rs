fn main() { println!("qvit-run: not yet"); }
