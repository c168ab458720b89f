//! Crash output decoded: the code addresses that panics and exception dumps print are found in
//! console lines (`scan`), and resolved to function, file and line from the app's ELF.

pub mod scan;
