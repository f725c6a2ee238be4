//! `report.md` rendered into the page, so the page states exactly what the Markdown report
//! states (one text, two renderings). Images become links to the static figure: the page draws
//! its own interactive figures and loads no file.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

pub fn to_html(markdown: &str) -> String {
    let mut in_image = false;
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|e| match e {
        Event::Start(Tag::Image { dest_url, .. }) => {
            in_image = true;
            Event::InlineHtml(CowStr::from(format!(
                "<a class=\"figure-link\" href=\"{}\">figure: ",
                super::chart::html_escape(&dest_url)
            )))
        }
        Event::End(TagEnd::Image) => {
            in_image = false;
            Event::InlineHtml(CowStr::from("</a>"))
        }
        Event::Text(t) if in_image => Event::Text(t),
        // Raw HTML in the report is shown as text, never interpreted.
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        e => e,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}
