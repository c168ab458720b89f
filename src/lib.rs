//! espchat
