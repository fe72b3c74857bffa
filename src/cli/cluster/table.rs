//! Plain-text tables with aligned columns, for humans.

/// Renders `rows` under `headers`, columns padded to their widest cell, two
/// spaces apart, one row per line.
pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_aligned() {
        let t = super::render(
            &["NODE", "ADDRESS"],
            &[
                vec!["node1".into(), "127.0.0.1:1".into()],
                vec!["n".into(), "x".into()],
            ],
        );
        assert_eq!(t, "NODE   ADDRESS\nnode1  127.0.0.1:1\nn      x\n");
    }
}
