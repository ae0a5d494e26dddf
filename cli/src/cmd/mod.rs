//! One module per subcommand: its arguments (`Args`) and `run`.

pub mod check;
pub mod demo;
pub mod envs;
pub mod inspect;
pub mod play;
pub mod run;
