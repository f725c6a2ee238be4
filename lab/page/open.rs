//! `lab report --open`: the page in the desktop's browser, where there is a desktop.

use std::path::Path;
use std::process::{Command, Stdio};

/// Open `page` with the desktop's opener (`open` on macOS, `xdg-open` elsewhere) and return
/// at once. Without a desktop (no DISPLAY or WAYLAND_DISPLAY on Linux), or when the opener is
/// missing, print the page's `file://` address to open by hand.
pub fn in_browser(page: &Path) {
    let abs = std::path::absolute(page).unwrap_or_else(|_| page.to_path_buf());
    let url = format!("file://{}", abs.display());
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let desktop = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let spawned = desktop
        && Command::new(opener)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_ok();
    match spawned {
        true => crate::say!("opened {url}"),
        false => crate::say!("no desktop browser to open it with; open {url}"),
    }
}
