//! The page's fixed parts, compiled in: the HTML skeleton, its style and script, and the
//! vendored plotly.js (lab/page/vendor/README.md says where it comes from).

pub const TEMPLATE: &str = include_str!("assets/report.html");
pub const STYLE: &str = include_str!("assets/report.css");
pub const APP: &str = include_str!("assets/report.js");
pub const PLOTLY: &str = include_str!("vendor/plotly-cartesian-4.1.1.min.js");
