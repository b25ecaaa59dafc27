//! Big logs: placeholder.

use crate::Row;

pub async fn run() -> anyhow::Result<Vec<Row>> {
    Ok(vec![])
}
