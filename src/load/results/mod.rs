//! Results: what a run measured, judged and written down.
//!
//! In: the run's totals and per-second series from `measure`, the budgets of the
//! `plan`. Out: a [`summary::LoadSummary`] (the terminal table, `report.json`), the
//! budgets' verdicts ([`judge`]), the report folder ([`report`], [`html`]), and one
//! report from several workers' ([`merge`]).

pub mod checks;
pub mod html;
pub mod judge;
pub mod merge;
pub mod report;
pub mod summary;
pub mod table;
