//! One module per subcommand: its arguments (`Args`) and `run`.

pub mod bench;
pub mod bench_fork;
pub mod bench_python;
pub mod check;
pub mod demo;
pub mod envs;
pub mod eval;
pub mod grade;
pub mod inspect;
pub mod new;
pub mod play;
pub mod run;
pub mod search;
pub mod selfplay;
pub mod serve;
