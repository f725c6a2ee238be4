//! The reports' Markdown: a document built section by section ([`Doc`]) and its tables
//! ([`Table`]), so a section states what it shows, not how pipes and newlines are laid out.

/// A Markdown document under construction.
#[derive(Default)]
pub struct Doc(String);

impl Doc {
    /// `## title`, after a blank line.
    pub fn heading(&mut self, title: &str) {
        self.0.push_str(&format!("\n## {title}\n\n"));
    }
    /// A paragraph (its text, then a blank line).
    pub fn para(&mut self, text: &str) {
        self.0.push_str(&format!("{text}\n\n"));
    }
    /// One line, as it is.
    pub fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }
    /// A list item.
    pub fn item(&mut self, text: &str) {
        self.line(&format!("- {text}"));
    }
    pub fn table(&mut self, table: Table) {
        self.0.push_str(&table.0);
    }
    /// A figure and, beneath it, its caption and a link to its SVG: `plots_rel` is the
    /// figures' directory relative to the report.
    pub fn figure(&mut self, plots_rel: &str, stem: &str, caption: &str) {
        self.0.push_str(&format!(
            "\n![{caption}]({plots_rel}/{stem}.png)\n\n*{caption}* ([SVG]({plots_rel}/{stem}.svg))\n"
        ));
    }
    pub fn finish(self) -> String {
        self.0
    }
}

/// A Markdown table: a header row and its rule, then one row per [`Table::row`].
pub struct Table(String, usize);

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        let mut t = Table(String::new(), headers.len());
        t.push(headers.iter().map(|h| h.to_string()));
        t.0.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
        t
    }

    /// A row of cells, one per column.
    pub fn row(&mut self, cells: &[String]) {
        debug_assert_eq!(cells.len(), self.1, "one cell per column");
        self.push(cells.iter().cloned());
    }

    fn push(&mut self, cells: impl Iterator<Item = String>) {
        let cells: Vec<String> = cells.collect();
        self.0.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
}

/// `cells![a, b, …]` → the cells of a row: each value's `Display`.
macro_rules! cells {
    ($($x:expr),* $(,)?) => { [$(($x).to_string()),*] };
}
pub(crate) use cells;
