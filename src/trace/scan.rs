//! Finds the code addresses in panic and exception output, format by format.
