//! Visibility's query language, store-independent: Temporal's list queries (an SQL `WHERE`
//! body, as its SQL visibility reads them) are parsed once into a typed [`Filter`], checked
//! against the system attributes and a namespace's custom ones, with Temporal's error
//! messages. The stores translate a `Filter` into their own SQL; [`index`] turns a run's
//! search attributes into the plain values they store and match. [`custom`] keeps a namespace's
//! own attributes in typed slots; [`validate`] checks the attributes a run is given and
//! annotates the ones it shows.

mod attributes;
pub mod custom;
pub mod index;
mod lexer;
mod parse;
mod resolve;
pub mod time;
pub mod validate;

pub use attributes::{Column, SaType, custom_attribute_limit, is_reserved, system_attributes};
pub use resolve::{Atom, CmpOp, Field, Filter, Query, Test, Value, parse_query, status_name};

/// A query that cannot be run; the message is Temporal's, `invalid query: ` and all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}
