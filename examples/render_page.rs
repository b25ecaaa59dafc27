//! Renders a recorded log to a standalone HTML page with the site's stylesheet, to look at the
//! log view in a browser: `cargo run --example render_page -- LOG > page.html`.

use tether::render::{Renderer, line_markup};

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: render_page LOG");
    let bytes = std::fs::read(path)?;
    let mut renderer = Renderer::new();
    let mut lines = String::new();
    for line in renderer.push(&bytes).iter().chain(renderer.finish().iter()) {
        lines.push_str(&line_markup(line, std::time::SystemTime::now()));
    }
    let css = include_str!("../static/tether.css");
    println!("<!doctype html><html><head><meta charset=\"utf-8\"><style>{css}</style></head>");
    println!(
        "<body><main><h1>cargo build</h1><div class=\"log\">{lines}</div></main></body></html>"
    );
    Ok(())
}
