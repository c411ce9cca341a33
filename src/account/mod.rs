//! The account commands: `whoami`, `ls` and `check`. They read, never write (the write check
//! of `check` stores nothing).

pub mod check;
pub mod ls;
pub mod whoami;
