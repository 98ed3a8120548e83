//! Hindsight: a self-hosted incident and post-mortem tracker in one binary with an embedded
//! SQLite database. `app::app` builds the whole HTTP application; `cli` runs the commands.

#[macro_use]
mod choice;

pub mod action_items;
pub mod alerts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod csv;
pub mod db;
pub mod demo;
pub mod demo_traffic;
pub mod error;
pub mod evidence;
pub mod inbox;
pub mod incidents;
pub mod insights;
pub mod integrations;
pub mod markdown;
pub mod metrics;
pub mod net;
pub mod notifications;
pub mod postmortems;
pub mod recurrence;
pub mod reports;
pub mod review_delivery;
pub mod search;
pub mod signals;
pub mod similar;
pub mod time;
pub mod timeline;
pub mod visibility;
pub mod web;
pub mod writing;

pub use app::{AppState, app};
pub mod server;
