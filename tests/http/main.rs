//! Integration tests: every route, through the real router and middleware, on a
//! fresh database per test; and the command line, run as the real binary.

// Test helpers are shared between the modules of this one test crate.
#![allow(unreachable_pub)]

mod common;

mod account;
mod action_item_pages;
mod action_items;
mod alertmanager_e2e;
mod alerts;
mod audit;
mod auth;
mod cli;
mod contract;
mod demo;
mod evidence;
mod faults;
mod inbox;
mod incidents;
mod insights;
mod layers;
mod migrations;
mod notifications;
mod otlp;
mod otlp_sdk;
mod postmortems;
mod prometheus;
mod receivers;
mod reports;
mod restricted;
mod review_delivery;
mod search;
mod security;
mod server;
mod signals;
mod similar;
mod sso;
mod storm;
mod timeline;
