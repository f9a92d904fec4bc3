//! The gridguard command-line tool.

fn main() {}
